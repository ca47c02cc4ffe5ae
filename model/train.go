package model

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// TrainOptions say how Train fine-tunes a model. The zero value is not
// usable; DefaultTrainOptions gives sensible values.
type TrainOptions struct {
	// Input is InputTree or InputText; Style is the linearization of
	// InputTree (see InputStyle).
	Input string
	Style trees.Style
	// BatchPairs is how many whole pairs make a batch: K pairs are 2K
	// items (the paper's batch 2 and 4 are K = 1 and 2).
	BatchPairs int
	// Steps is the length of the run (and of its schedule). When 0, Epochs
	// sets it: ⌈Epochs · steps per epoch⌉, an epoch being ⌊pairs / K⌋ steps.
	Steps  int
	Epochs float64
	// StopAfter ends this run once that step is done, leaving a resumable
	// last/ checkpoint, while the schedule still spans Steps; 0 runs to the
	// end. It lets a long run be done in slices.
	StopAfter int
	// AdamW holds the optimizer's hyper-parameters; its LR is the peak of
	// the schedule.
	AdamW torch.AdamWOptions
	// Warmup is the number of steps over which the learning rate rises
	// linearly from 0; Schedule's decay follows.
	Warmup   int
	Schedule Schedule
	// ClipGrad is the largest joint 2-norm of the gradients; 0 does not clip.
	ClipGrad float64
	// NoLogitScaleClamp leaves the logit scale free after each step, as
	// transformers' CLIPModel does; otherwise it is clamped to [0, ln 100]
	// as OpenAI trained CLIP.
	NoLogitScaleClamp bool
	// Graphs replays the training step from a CUDA graph (StepGraph): texts
	// are padded to the context so every full batch has one shape; the
	// first step runs op by op (it makes AdamW's state), the second builds
	// the graph, a last partial batch runs op by op. It needs a CUDA
	// device, a shim with CUDA graphs against libtorch 2.4 or later, and
	// the fused AdamW.
	Graphs bool
	// Group, when set, trains data-parallel with the other ranks of a
	// process group (train_dist.go): each takes its share of every batch
	// of BatchPairs pairs, which the world size must divide, and only rank
	// 0 evaluates and writes Out. Every rank must be given the same
	// options and data.
	Group *torch.ProcessGroup
	// BucketBytes is the size of the buckets the group's gradients are
	// summed in (0: torch.DefaultBucketBytes, 25 MiB as in DDP).
	BucketBytes int64
	// NoOverlap sums the gradients after the backward pass instead of
	// during it: the reference path.
	NoOverlap bool
	// Freeze is the parameter groups kept fixed.
	Freeze Freeze
	// Precision is the training step's (empty: fp32). TF32 is a
	// process-wide switch the caller sets; bf16-mixed runs the forward pass
	// under autocast with float32 master weights, AdamW state and loss.
	Precision Precision
	// OptimizerAtEnd writes the optimizer state into last/ only when this
	// run ends (its last step, StopAfter, or a cancelled context), not at
	// every evaluation, since AdamW's two moments are twice the model's
	// size. A run killed in between leaves a last/ that cannot be resumed
	// exactly.
	OptimizerAtEnd bool
	// Recipe names the recipe the settings came from (TrainRecipes), for
	// the record; it changes nothing by itself.
	Recipe string
	// Seed fixes the data order.
	Seed uint64
	// EvalEvery is the number of steps between evaluations on the val
	// split (and at the last step); 0 evaluates ten times a run.
	EvalEvery int
	// Out is the folder of the run: best/ and last/ checkpoints, log.jsonl.
	// Empty trains in memory only.
	Out string
	// Resume continues the run in Out from its last/ checkpoint, whose
	// weights the model must have been loaded from (see OpenRun).
	Resume bool
	// Worker runs the torch calls; nil starts one for the run.
	Worker *torch.Worker
	// Progress, when set, receives a report after every step. Train sends
	// without dropping, so the receiver must keep reading until Train
	// returns; a cancelled context unblocks a pending send.
	Progress chan<- Progress
	// Command and Data are recorded in the run's state: the command line
	// that started it and what its data was (a manifest path or demo).
	Command, Data string
}

// DefaultTrainOptions returns tree input in the paper's style, batches of
// one pair, 1000 steps, AdamW with lr 1e-5, betas 0.9/0.98, eps 1e-6, weight
// decay 0.2 (CLIP's fine-tuning values), 50 warmup steps then a cosine
// decay, clipping at 1, the logit scale clamped, nothing frozen.
func DefaultTrainOptions() TrainOptions {
	return TrainOptions{
		Input:      InputTree,
		Style:      trees.StylePaper,
		BatchPairs: 1,
		Steps:      1000,
		AdamW:      torch.AdamWOptions{LR: 1e-5, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2},
		Warmup:     50,
		Schedule:   ScheduleCosine,
		ClipGrad:   1,
		Seed:       1,
	}
}

func (o *TrainOptions) validate() error {
	if _, err := InputStyle(o.Input, o.Style); err != nil {
		return err
	}
	if o.Schedule == "" {
		o.Schedule = ScheduleCosine
	}
	if _, err := ParseSchedule(string(o.Schedule)); err != nil {
		return err
	}
	switch {
	case o.BatchPairs < 1:
		return fmt.Errorf("batch pairs must be at least 1, got %d", o.BatchPairs)
	case o.Steps < 0:
		return fmt.Errorf("steps must be at least 1, got %d", o.Steps)
	case o.Steps == 0 && !(o.Epochs > 0 && o.Epochs < 1e6):
		return fmt.Errorf("give a number of steps or a positive number of epochs (got %g)", o.Epochs)
	case o.StopAfter < 0:
		return fmt.Errorf("stop-after must be ≥ 0, got %d", o.StopAfter)
	case !(o.AdamW.LR > 0) || math.IsInf(o.AdamW.LR, 0):
		return fmt.Errorf("learning rate must be a positive number, got %g", o.AdamW.LR)
	case o.AdamW.Beta1 < 0 || o.AdamW.Beta1 >= 1 || o.AdamW.Beta2 < 0 || o.AdamW.Beta2 >= 1:
		return fmt.Errorf("AdamW betas must lie in [0, 1), got %g and %g", o.AdamW.Beta1, o.AdamW.Beta2)
	case !(o.AdamW.Eps >= 0) || !(o.AdamW.WeightDecay >= 0):
		return fmt.Errorf("AdamW eps and weight decay must be ≥ 0, got %g and %g", o.AdamW.Eps, o.AdamW.WeightDecay)
	case o.Warmup < 0:
		return fmt.Errorf("warmup must be ≥ 0 steps, got %d", o.Warmup)
	case o.Freeze&^freezeAll != 0:
		return fmt.Errorf("freeze: unknown groups %#x", uint8(o.Freeze))
	case o.Freeze == freezeAll:
		return errors.New("freeze: every parameter is frozen; nothing would train")
	case !(o.ClipGrad >= 0):
		return fmt.Errorf("gradient clipping norm must be ≥ 0 (0: off), got %g", o.ClipGrad)
	case o.EvalEvery < 0:
		return fmt.Errorf("eval-every must be ≥ 0 steps (0: ten times a run), got %d", o.EvalEvery)
	case o.Resume && o.Out == "":
		return errors.New("resuming needs the run's output folder")
	case o.Precision.Mixed() && o.Graphs:
		return fmt.Errorf("%s and CUDA graphs do not go together yet: the graphed step is captured without autocast", o.Precision)
	}
	if o.Precision != "" {
		if _, err := ParsePrecision(string(o.Precision)); err != nil {
			return err
		}
	}
	return o.validateGroup()
}

// ContrastiveLoss is CLIP's symmetric loss over a batch whose item i is
// image i with text i: (CE(logits_per_image, arange) + CE(logits_per_text,
// arange)) / 2, as transformers' clip_loss. The result belongs to the
// scope of logitsPerImage.
func ContrastiveLoss(logitsPerImage, logitsPerText *torch.Tensor) *torch.Tensor {
	s := logitsPerImage.Scope()
	n := logitsPerImage.Size(0)
	target := s.Arange(0, float64(n), 1, torch.Options{DType: torch.Int64, Device: logitsPerImage.Device()})
	return logitsPerImage.CrossEntropy(target).Add(logitsPerText.CrossEntropy(target)).DivScalar(2)
}

// maxLogitScale is ln 100: CLIP's training clamps the learned temperature
// so that logits never exceed 100 times the cosine similarity.
var maxLogitScale = math.Log(100)

// maxNorm is the clipping norm for torch.ClipGradNorm: +Inf measures
// without clipping.
func (o StepOptions) maxNorm() float64 {
	if o.ClipGrad > 0 {
		return o.ClipGrad
	}
	return math.Inf(1)
}

// clamp clamps the logit scale where o asks for it.
func (o StepOptions) clamp(sc *torch.Scope, m *CLIP) error {
	if !o.ClampLogitScale {
		return nil
	}
	err := torch.NoGrad(func() error {
		return m.logitScale.Copy_(m.logitScale.In(sc).Clamp(0, maxLogitScale))
	})
	if err != nil {
		return fmt.Errorf("clamping logit_scale: %w", err)
	}
	return nil
}

// Progress is one report of a running training.
type Progress struct {
	// Step is the number of steps done, out of Steps.
	Step, Steps int
	Epoch       float64
	// Loss, LR and GradNorm (before clipping) are those of the last step.
	Loss, LR, GradNorm float64
	// ItemsPerSec is this run's training throughput (an item is one
	// reading: one image and one text).
	ItemsPerSec float64
	// Elapsed is the time of this run; ETA a guess of the time left.
	Elapsed, ETA time.Duration
	// Eval is set on the steps that evaluated on the val split.
	Eval *EvalResult
	// ValStep is the step of the latest evaluation (0 before the first),
	// ValAccuracy its accuracy in percent.
	ValStep     int
	ValAccuracy float64
	// BestStep is the step of the best checkpoint so far (0 before one).
	BestStep int
	// Saved names the checkpoints written at this step: "best", "last".
	Saved []string
}

// TrainResult is how a training run ended.
type TrainResult struct {
	// Step is the last step done, out of Steps.
	Step, Steps int
	// Stopped is set when StopAfter ended the run before Steps;
	// Interrupted when the context did.
	Stopped, Interrupted bool
	// Best is the step of the best checkpoint, 0 when none was chosen;
	// BestMetric names the metric ("val_accuracy" or, without a val split,
	// "train_loss") and BestValue its value there.
	Best       int
	BestMetric string
	BestValue  float64
	// LastEval is the latest evaluation on the val split.
	LastEval *EvalResult
	// ItemsPerSec is the training throughput of this run.
	ItemsPerSec float64
	Elapsed     time.Duration
	// Truncated counts the training texts cut to the context length.
	Truncated int
}

// trainer is the state of one Train call.
type trainer struct {
	ctx     context.Context
	m       *CLIP
	tok     *tokenizer.Tokenizer
	train   Split
	val     Split
	o       TrainOptions
	w       *torch.Worker
	prep    loader.PreprocessConfig
	style   trees.Style
	order   *dataOrder
	params  []Param         // trainable, in model order
	tensors []*torch.Tensor // the tensors of params
	opt     *torch.AdamW
	log     *runLog
	state   TrainState
	// graph replays the step with Graphs; stepped says whether AdamW has
	// state to build it on.
	graph   *StepGraph
	stepped bool
	// reducer sums the gradients over the group during backward.
	reducer *torch.GradReducer

	start     time.Time
	stepTime  time.Duration
	items     int
	lossSum   float64 // since the last evaluation, for runs without val
	lossSteps int
	savedLast int // step of the latest last/ checkpoint
	// savedLastOptimizer says whether that checkpoint holds the optimizer.
	savedLastOptimizer bool
	runStart           int // step this run started from
	result             TrainResult
	lastReport         Progress

	// images are the training images' hashes by path; prevImages those the
	// run folder recorded (train_images.go).
	images, prevImages map[string]imageRecord
}

// Train fine-tunes m on the train split with the contrastive loss, AdamW
// and a warmup + cosine schedule, evaluating on val (which may be nil)
// every o.EvalEvery steps. With o.Out it writes best/ (the best evaluation
// so far) and last/ (resumable: optimizer state and data position) in
// Hugging Face layout, each replaced atomically, and log.jsonl.
//
// When ctx is cancelled, Train finishes the step under way, writes last/ (never
// best/) and returns the result with ctx's error, so the run can be resumed.
// The model is left with the trained weights, its parameters not requiring
// grad. Every call on m must go through o.Worker while Train runs.
func Train(ctx context.Context, m *CLIP, tok *tokenizer.Tokenizer, train, val Split, o TrainOptions) (*TrainResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Group != nil && o.Group.Rank() != 0 {
		// Rank 0 alone evaluates and writes; the others get its state.
		o.Out, o.Resume, val = "", false, nil
	}
	t := &trainer{ctx: ctx, m: m, tok: tok, train: train, val: val, o: o, w: o.Worker, start: time.Now()}
	if t.w == nil {
		t.w = torch.NewWorker()
		defer t.w.Close()
	}
	if err := t.setup(); err != nil {
		t.close()
		return nil, err
	}
	res, err := t.run()
	if cerr := t.close(); err == nil {
		err = cerr
	}
	return res, err
}

// setup checks the data, restores a resumed run and makes the optimizer.
func (t *trainer) setup() error {
	var err error
	if t.style, err = InputStyle(t.o.Input, t.o.Style); err != nil {
		return err
	}
	if t.train == nil || t.train.Len() == 0 {
		return errors.New("the training split has no pairs")
	}
	if t.o.Graphs {
		if err := GraphsUsable(t.m.Device(), t.o.AdamW.Impl); err != nil {
			return err
		}
	}
	if err := t.w.Do(func() error { return t.o.Precision.Usable(t.m.Device(), t.m.DType()) }); err != nil {
		return err
	}
	if t.prep, err = PreprocessFor(t.m); err != nil {
		return err
	}
	if t.order, err = newDataOrder(t.o.Seed, t.train.Len(), t.o.BatchPairs); err != nil {
		return err
	}
	if t.o.Steps == 0 {
		t.o.Steps = int(math.Ceil(t.o.Epochs * float64(t.order.perEpoch)))
	}
	if t.o.StopAfter == 0 || t.o.StopAfter > t.o.Steps {
		t.o.StopAfter = t.o.Steps
	}
	if t.o.EvalEvery == 0 {
		t.o.EvalEvery = max(1, (t.o.Steps+9)/10)
	}
	fp, err := splitFingerprint(t.train)
	if err != nil {
		return err
	}
	if t.o.Out != "" {
		t.prevImages = readImageRecords(t.o.Out)
	}
	images, imagesFP, err := hashImages(t.train, t.prevImages)
	if err != nil {
		return err
	}
	t.images = images
	t.state = TrainState{
		Format:  trainStateFormat,
		Steps:   t.o.Steps,
		Args:    argsOf(&t.o),
		Data:    DataInfo{Source: t.o.Data, TrainPairs: t.train.Len(), Fingerprint: fp, Images: imagesFP},
		Command: t.o.Command,
		// Kept so that a resumed run saves as the run did.
		OptimizerAtEnd: t.o.OptimizerAtEnd,
	}
	if t.val != nil && t.val.Len() > 0 {
		t.state.BestMetric = "val_accuracy"
		t.state.Data.ValPairs = t.val.Len()
	} else {
		t.state.BestMetric = "train_loss"
	}
	var saved *TrainState
	if t.o.Out != "" {
		if saved, err = t.prepareOut(); err != nil {
			return err
		}
		if err := writeImageRecords(t.o.Out, t.images); err != nil {
			return fmt.Errorf("run folder %s: %w", t.o.Out, err)
		}
	}
	for _, p := range t.m.Params() {
		if t.o.Freeze.Frozen(p.Name) {
			continue
		}
		t.params = append(t.params, p)
	}
	err = t.w.Do(func() error {
		for _, p := range t.params {
			if err := p.Tensor.SetRequiresGrad(true); err != nil {
				return fmt.Errorf("parameter %s: %w", p.Name, err)
			}
		}
		for _, p := range t.params {
			t.tensors = append(t.tensors, p.Tensor)
		}
		opt, err := torch.NewAdamW(t.tensors, t.o.AdamW)
		if err != nil {
			return err
		}
		t.opt = opt
		if saved != nil {
			return t.loadOptimizer(saved)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if saved != nil {
		t.state = *saved
		t.savedLast, t.savedLastOptimizer = saved.Step, true
	}
	if t.o.Group != nil {
		if err := t.syncRanks(fp); err != nil {
			return err
		}
		if err := t.hookReducer(); err != nil {
			return err
		}
	}
	if t.o.Out != "" {
		t.log, err = openRunLog(t.o.Out, t.state.Step)
	}
	return err
}

// stepOptions are the options of each OptimizerStep of the run.
func (t *trainer) stepOptions() StepOptions {
	return StepOptions{
		ClipGrad:        t.o.ClipGrad,
		ClampLogitScale: !t.o.NoLogitScaleClamp && !t.o.Freeze.Frozen("logit_scale"),
		Precision:       t.o.Precision,
	}
}

// close frees the optimizer, closes the log and turns gradients off.
func (t *trainer) close() error {
	var errs []error
	if t.log != nil {
		errs = append(errs, t.log.Close())
	}
	errs = append(errs, t.w.Do(func() error {
		var err error
		if t.graph != nil {
			err = t.graph.Close()
		}
		if t.opt != nil {
			err = errors.Join(err, t.opt.Close())
		}
		err = errors.Join(err, t.reducer.Close())
		return errors.Join(err, t.m.SetRequiresGrad(false))
	}))
	return errors.Join(errs...)
}

func (t *trainer) run() (*TrainResult, error) {
	t.result = TrainResult{Steps: t.o.Steps, Step: t.state.Step, BestMetric: t.state.BestMetric}
	t.result.Best, t.result.BestValue = t.state.BestStep, t.state.BestValue
	from, to := t.state.Step, t.o.StopAfter
	t.runStart = from
	if from >= to {
		return &t.result, nil
	}
	// With a group, a cancelled context stops the ranks together, at a step
	// boundary (stopAgreed), never one alone while waiting for a batch: the
	// others would wait for it in a collective.
	batchCtx := t.ctx
	if t.o.Group != nil {
		batchCtx = context.Background()
	}
	ctx, cancel := context.WithCancel(batchCtx)
	defer cancel()
	b := &batcher{split: t.train, tok: t.tok, style: t.style, prep: t.prep,
		context: t.m.cfg.Text.MaxPositionEmbeddings, size: t.m.cfg.Vision.ImageSize}
	if g := t.o.Group; g != nil {
		b.rank, b.world = g.Rank(), g.WorldSize()
	}
	if t.o.Graphs {
		b.width = b.context
	}
	batches := b.prefetch(ctx, t.order, from, to)
	for s := from; s < to; s++ {
		if stop, err := t.stopAgreed(); err != nil {
			return &t.result, fmt.Errorf("step %d: %w", s+1, err)
		} else if stop {
			return t.interrupt()
		}
		began := time.Now()
		var be batchOrErr
		if t.o.Group != nil {
			be = <-batches
		} else {
			select {
			case be = <-batches:
			case <-t.ctx.Done():
				return t.interrupt()
			}
		}
		if be.err != nil {
			return &t.result, fmt.Errorf("step %d: %w", s+1, be.err)
		}
		if be.b == nil {
			return t.interrupt()
		}
		rep, err := t.step(s, be.b)
		if err != nil {
			return &t.result, err
		}
		t.stepTime += time.Since(began)
		if err := t.after(s+1, &rep); err != nil {
			if t.ctx.Err() != nil {
				return t.interrupt()
			}
			return &t.result, err
		}
	}
	t.result.Stopped = t.state.Step < t.o.Steps
	return &t.result, nil
}

// step runs the forward, backward and update of step s (0-based).
func (t *trainer) step(s int, eb *encodedBatch) (Progress, error) {
	lr := t.o.Schedule.LR(t.o.AdamW.LR, s, t.o.Warmup, t.o.Steps)
	var loss, norm float64
	err := t.w.Do(func() error {
		sc := torch.NewScope()
		defer sc.Close()
		size := int64(t.m.cfg.Vision.ImageSize)
		px := sc.FromFloat32(eb.pixels, int64(eb.items), 3, size, size)
		ids := sc.FromInt64(eb.ids, int64(eb.items), int64(eb.length))
		var err error
		loss, norm, err = t.update(sc, px, ids, lr)
		return err
	})
	if err != nil {
		return Progress{}, fmt.Errorf("step %d: %w", s+1, err)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return Progress{}, fmt.Errorf("step %d: the loss is %v; lower the learning rate (%g) or clip gradients", s+1, loss, lr)
	}
	t.items += eb.items
	t.result.Truncated += eb.truncated
	t.state.Truncated += eb.truncated
	t.lossSum += loss
	t.lossSteps++
	return Progress{Loss: loss, LR: lr, GradNorm: norm}, nil
}

// update is one optimizer step on the batch at learning rate lr. It runs on
// the worker.
func (t *trainer) update(sc *torch.Scope, px, ids *torch.Tensor, lr float64) (loss, norm float64, err error) {
	if t.o.Graphs && t.stepped {
		full := px.Size(0) == int64(2*t.o.BatchPairs)
		switch {
		case t.graph != nil && t.graph.Fits(px, ids):
			return t.graph.Step(px, ids, lr)
		case t.graph == nil && full:
			t.graph, loss, norm, err = NewStepGraph(t.m, t.opt, t.tensors, px, ids, lr, t.stepOptions())
			return loss, norm, err
		}
	}
	if err := t.opt.SetLR(lr); err != nil {
		return 0, 0, err
	}
	if t.o.Group != nil {
		return distStep(sc, t.m, t.opt, t.tensors, px, ids, t.stepOptions(), gradSum{t.o.Group, t.reducer, t.o.BucketBytes})
	}
	loss, norm, err = OptimizerStep(sc, t.m, t.opt, t.tensors, px, ids, t.stepOptions())
	t.stepped = t.stepped || err == nil
	return loss, norm, err
}

// GraphsUsable says why training on dev with AdamW impl cannot replay its
// steps from a CUDA graph (TrainOptions.Graphs), or nil when it can.
func GraphsUsable(dev torch.Device, impl torch.AdamWImpl) error {
	if err := torch.CUDAGraphsUsable(dev); err != nil {
		return err
	}
	switch {
	case !torch.TensorLRCompiled():
		return fmt.Errorf("a graphed training step needs a shim against libtorch 2.4 or later (this is libtorch %s)", torch.Version())
	case impl == torch.AdamWForeach:
		return errors.New("a graphed training step needs the fused AdamW, not foreach")
	}
	return nil
}

// StepOptions say what a training step does besides the optimizer's step.
type StepOptions struct {
	// ClipGrad is the largest joint 2-norm of the gradients; ≤ 0 does not
	// clip (the norm is still measured).
	ClipGrad float64
	// ClampLogitScale clamps the logit scale to [0, ln 100] after the step,
	// as OpenAI trained CLIP.
	ClampLogitScale bool
	// Precision is the forward pass's (see mixedForward); empty is fp32.
	Precision Precision
}

// OptimizerStep is the step `lavascope train` takes on a batch whose image i
// goes with text i: forward, CLIP's contrastive loss, backward, clipping of
// the gradients of params (opt's parameters), opt's step, zeroing the
// gradients, and the clamp of the logit scale (see StepOptions). It returns
// the loss and the gradient norm before clipping. It runs on the model's
// torch worker; the intermediate tensors belong to sc.
func OptimizerStep(sc *torch.Scope, m *CLIP, opt *torch.AdamW, params []*torch.Tensor, px, ids *torch.Tensor, o StepOptions) (loss, norm float64, err error) {
	out, err := mixedForward(sc, m, px, ids, o.Precision)
	if err != nil {
		return 0, 0, err
	}
	return finishStep(sc, m, opt, params, ContrastiveLoss(out.LogitsPerImage, out.LogitsPerText), o, gradSum{})
}

// finishStep is the part of a training step after the loss l: backward,
// with g's sum of the gradients over its ranks (see distStep), clipping,
// opt's step, zeroing the gradients and the clamp of the logit scale.
func finishStep(sc *torch.Scope, m *CLIP, opt *torch.AdamW, params []*torch.Tensor, l *torch.Tensor, o StepOptions, g gradSum) (loss, norm float64, err error) {
	if err := g.backward(sc, l, params); err != nil {
		return 0, 0, err
	}
	if norm, err = torch.ClipGradNorm(params, o.maxNorm()); err != nil {
		return 0, 0, err
	}
	if err := opt.Step(); err != nil {
		return 0, 0, err
	}
	if err := opt.ZeroGrad(); err != nil {
		return 0, 0, err
	}
	if err := o.clamp(sc, m); err != nil {
		return 0, 0, err
	}
	loss, err = l.Item()
	return loss, norm, err
}

// after records step s (1-based): log, evaluation, checkpoints, progress.
func (t *trainer) after(s int, rep *Progress) error {
	t.state.Step = s
	t.state.Epoch = t.order.epochAt(s)
	t.result.Step = s
	elapsed := time.Since(t.start)
	done := s - t.runStart
	rep.Step, rep.Steps, rep.Epoch = s, t.o.Steps, t.state.Epoch
	rep.Elapsed = elapsed
	if t.stepTime > 0 {
		rep.ItemsPerSec = float64(t.items) / t.stepTime.Seconds()
	}
	if done > 0 {
		rep.ETA = time.Duration(float64(elapsed) / float64(done) * float64(t.o.StopAfter-s))
	}
	t.result.ItemsPerSec = rep.ItemsPerSec
	t.result.Elapsed = elapsed
	if t.log != nil {
		if err := t.log.step(rep); err != nil {
			return err
		}
	}
	final := s == t.o.StopAfter
	// Once cancelled, nothing but last/ is written: the interrupt must not
	// start a best/ checkpoint.
	if t.ctx.Err() != nil {
		return nil
	}
	if s%t.o.EvalEvery == 0 || s == t.o.Steps {
		if err := t.evaluate(s, rep); err != nil {
			return err
		}
	}
	if t.o.Out != "" && (s%t.o.EvalEvery == 0 || final) && t.savedLast != s {
		if err := t.saveLast(final); err != nil {
			return err
		}
		rep.Saved = append(rep.Saved, "last")
	}
	rep.ValStep, rep.ValAccuracy = t.lastReport.ValStep, t.lastReport.ValAccuracy
	if rep.Eval != nil {
		rep.ValStep, rep.ValAccuracy = s, rep.Eval.Accuracy
	}
	rep.BestStep = t.state.BestStep
	t.lastReport = *rep
	if t.o.Progress != nil {
		select {
		case t.o.Progress <- *rep:
		case <-t.ctx.Done():
		}
	}
	return nil
}

// evaluate scores the val split at step s, or without one takes the mean
// training loss since the previous evaluation, and writes best/ when the
// result beats the best so far.
func (t *trainer) evaluate(s int, rep *Progress) error {
	var value float64
	if t.val == nil || t.val.Len() == 0 {
		if t.lossSteps == 0 {
			return nil
		}
		value = t.lossSum / float64(t.lossSteps)
		if t.log != nil {
			if err := t.log.trainLoss(s, value); err != nil {
				return err
			}
		}
	} else {
		res, err := Evaluate(t.ctx, t.m, t.tok, t.val, EvalOptions{Style: t.style, Preprocess: &t.prep, Worker: t.w})
		if err != nil {
			return fmt.Errorf("evaluating on the val split at step %d: %w", s, err)
		}
		rep.Eval = res
		t.result.LastEval = res
		t.state.LastEval = summarize(s, res)
		value = res.Accuracy
		if t.log != nil {
			if err := t.log.eval(s, res); err != nil {
				return err
			}
		}
	}
	t.lossSum, t.lossSteps = 0, 0
	better := t.state.BestStep == 0 ||
		(t.state.BestMetric == "val_accuracy" && value > t.state.BestValue) ||
		(t.state.BestMetric == "train_loss" && value < t.state.BestValue)
	if !better {
		return nil
	}
	t.state.BestStep, t.state.BestValue = s, value
	t.result.Best, t.result.BestValue = s, value
	if t.o.Out == "" {
		return nil
	}
	if err := t.saveBest(); err != nil {
		return err
	}
	rep.Saved = append(rep.Saved, BestDir)
	if t.log != nil {
		return t.log.best(s, t.state.BestMetric, value)
	}
	return nil
}

// interrupt ends a cancelled run: last/ is brought up to the last step done,
// best/ is left alone.
func (t *trainer) interrupt() (*TrainResult, error) {
	t.result.Interrupted = true
	cause := t.ctx.Err()
	if cause == nil {
		// Another rank's context stopped the group.
		cause = context.Canceled
	}
	if t.o.Out != "" && (t.savedLast != t.state.Step || !t.savedLastOptimizer || !exists(filepath.Join(t.o.Out, LastDir))) {
		if err := t.saveLast(true); err != nil {
			return &t.result, errors.Join(cause, err)
		}
	}
	return &t.result, cause
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
