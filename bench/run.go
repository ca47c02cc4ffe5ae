package bench

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// Options choose how rows run. The zero value is not usable; see
// DefaultOptions.
type Options struct {
	// Warmup runs are done first and not timed; Repeat runs are timed.
	Warmup, Repeat int
	// TreeTokens is the content length of every synthetic text.
	TreeTokens int
	// Seed draws the synthetic pixels and token ids.
	Seed uint64
	// ClipGrad is the largest joint gradient norm of a training step, as
	// `lavascope train` clips; 0 does not clip (a plain loop).
	ClipGrad float64
	// AdamW is the optimizer of the training rows.
	AdamW torch.AdamWOptions
	// TF32 records that float32 products ran on TF32 (torch.SetAllowTF32,
	// which the caller sets: it is process-wide).
	TF32 bool
	// Mixed runs the rows in bf16 mixed precision (model.PrecisionBF16Mixed):
	// relevance and scoring under autocast, training steps as `lavascope
	// train --precision bf16-mixed` takes them.
	Mixed bool
	// Graphs runs every row from a CUDA graph captured before the warm-up
	// runs: relevance (explain.Static), scoring (torch.Replay) and training
	// (model.StepGraph, after one ordinary step for AdamW's state).
	Graphs bool
	// Profile runs each row this many more times under libtorch's
	// profiler after the timed runs (Record.Profile); 0 does not.
	Profile int
	// TraceDir, with Profile, is where each row's profiled runs are
	// written as a trace, WORK.trace.json (Chrome's trace event format).
	TraceDir string
	// Base is copied into every record before the row fills it: Impl,
	// Config, DeviceName, Versions, Threads.
	Base Record
	// Progress, when set, receives each record as soon as its row is done.
	Progress func(Record)
}

// DefaultOptions are 3 warm-up runs, 10 timed runs, trees of 56 tokens,
// and `lavascope train`'s defaults for the training step (clipping at 1,
// AdamW lr 1e-5, betas 0.9/0.98, eps 1e-6, weight decay 0.2).
func DefaultOptions() Options {
	return Options{
		Warmup:     3,
		Repeat:     10,
		TreeTokens: DefaultTreeTokens,
		Seed:       1,
		ClipGrad:   1,
		AdamW:      model.DefaultTrainOptions().AdamW,
		Base:       Record{Impl: "lavascope"},
	}
}

// Validate says what is wrong with o, if anything: a command checks it
// before loading a model; Run checks it again.
func (o *Options) Validate() error {
	switch {
	case o.Warmup < 0:
		return fmt.Errorf("warm-up runs must be ≥ 0, got %d", o.Warmup)
	case o.Repeat < 1:
		return fmt.Errorf("repeat must be ≥ 1, got %d", o.Repeat)
	case o.TreeTokens < 1:
		return fmt.Errorf("tree tokens must be ≥ 1, got %d", o.TreeTokens)
	case o.Profile < 0:
		return fmt.Errorf("profiled runs must be ≥ 0, got %d", o.Profile)
	case o.TraceDir != "" && o.Profile == 0:
		return errors.New("a trace folder needs profiled runs (bench --profile N) to write")
	case !(o.ClipGrad >= 0):
		return fmt.Errorf("gradient clipping norm must be ≥ 0 (0: off), got %g", o.ClipGrad)
	case o.Mixed && o.Graphs:
		return errors.New("bf16-mixed and CUDA graphs do not go together yet: the graphs are captured without autocast")
	}
	return nil
}

// Run times every work item on m, in order, and returns one record each.
// It must run on the goroutine that runs m's torch calls. The training
// rows change m's weights; they leave its parameters not requiring grad.
func Run(m *model.CLIP, works []Work, o Options) ([]Record, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	width := m.Config().Text.MaxPositionEmbeddings
	if o.TreeTokens+2 > width {
		return nil, fmt.Errorf("trees of %d tokens do not fit the model's %d positions with their start and end", o.TreeTokens, width)
	}
	var out []Record
	for _, w := range works {
		if w.Pairs < 1 {
			return out, fmt.Errorf("%s: %d pairs: want at least 1", w.ID, w.Pairs)
		}
		rec, err := runOne(m, w, &o)
		if err != nil {
			return out, fmt.Errorf("%s (%d items): %w", w.ID, w.Items(), err)
		}
		out = append(out, rec)
		if o.Progress != nil {
			o.Progress(rec)
		}
	}
	return out, nil
}

// runOne makes the row's inputs, warms up, times the runs and reads the
// peak memory.
func runOne(m *model.CLIP, w Work, o *Options) (Record, error) {
	dev := m.Device()
	rec := o.Base
	rec.Work, rec.Title = w.ID, w.Title
	rec.Device, rec.DType = dev.String(), m.DType().String()
	rec.Pairs, rec.Items = w.Pairs, w.Items()
	rec.TreeTokens, rec.Warmup = o.TreeTokens, o.Warmup

	inputs := torch.NewScope()
	defer inputs.Close()
	cfg := m.Config()
	// lavascope pads a batch to its longest text for scoring and training
	// (model's eval and train batchers); the explainer cuts the padding
	// itself, so it gets the full context, as the TUI gives it.
	width := o.TreeTokens + 2
	if w.Kind == Explain {
		width = cfg.Text.MaxPositionEmbeddings
	}
	rec.TextLen = width
	ids, err := model.SyntheticIDs(&cfg.Text, w.Items(), o.TreeTokens, width, o.Seed)
	if err != nil {
		return rec, err
	}
	if err := torch.ManualSeed(o.Seed); err != nil {
		return rec, err
	}
	size := int64(cfg.Vision.ImageSize)
	px := inputs.Randn([]int64{int64(w.Items()), int64(cfg.Vision.NumChannels), size, size}, torch.Options{Device: dev, DType: m.DType()})
	idt := inputs.FromInt64(ids, int64(w.Items()), int64(width)).ToDevice(dev)
	if err := inputs.Err(); err != nil {
		return rec, fmt.Errorf("inputs: %w", err)
	}

	// A shim built against a CUDA libtorch without the CUDA headers runs
	// on the GPU but has no memory statistics. The peak counts from before
	// prepare: a CUDA graph's capture takes the memory its replays reuse.
	memStats := dev.IsCUDA() && torch.CUDACompiled()
	if memStats {
		if err := torch.CUDAResetPeakMemory(dev.Index); err != nil {
			return rec, err
		}
	}
	run, done, note, err := prepare(m, w, o, px, idt)
	if err != nil {
		return rec, err
	}
	defer done()
	rec.Options = optionsText(w, o, note)

	sync := func() error { return nil }
	if dev.IsCUDA() {
		sync = func() error { return torch.CUDASynchronize(dev.Index) }
	}
	for range o.Warmup {
		if err := run(); err != nil {
			return rec, err
		}
	}
	times := make([]time.Duration, 0, o.Repeat)
	var calls uint64
	for range o.Repeat {
		if err := sync(); err != nil {
			return rec, err
		}
		start := time.Now()
		c0 := torch.Calls()
		if err := run(); err != nil {
			return rec, err
		}
		calls = torch.Calls() - c0
		if err := sync(); err != nil {
			return rec, err
		}
		times = append(times, time.Since(start))
	}
	rec.Stats(times)
	// Every run makes the same calls.
	n := int64(calls)
	rec.BindingCalls = &n
	if memStats {
		st, err := torch.CUDAMemory(dev.Index)
		if err != nil {
			return rec, err
		}
		rec.PeakMemBytes = &st.PeakAllocated
	}
	// After the timing and the peak memory: the profiler costs host time.
	if o.Profile > 0 {
		trace := ""
		if o.TraceDir != "" {
			trace = filepath.Join(o.TraceDir, w.ID+".trace.json")
		}
		if rec.Profile, err = profileRuns(run, sync, o.Profile, dev.IsCUDA(), trace); err != nil {
			return rec, fmt.Errorf("profiling: %w", err)
		}
	}
	return rec, nil
}

// prepare returns the timed function of a row, what undoes its setup, and
// a note for the record's options.
func prepare(m *model.CLIP, w Work, o *Options, px, ids *torch.Tensor) (func() error, func(), string, error) {
	row, done, note, err := prepareRow(m, w, o, px, ids)
	if err != nil || !o.Mixed || w.Kind == Train {
		return row, done, note, err
	}
	// Relevance and scoring have no master weights to keep: the whole run
	// is under autocast, as `with torch.autocast(...)` around it would be.
	return func() error {
		restore, err := torch.Autocast(m.Device(), torch.BFloat16)
		if err != nil {
			return err
		}
		return errors.Join(row(), restore())
	}, done, note, nil
}

func prepareRow(m *model.CLIP, w Work, o *Options, px, ids *torch.Tensor) (run func() error, done func(), note string, err error) {
	none := func() {}
	switch w.Kind {
	case Explain:
		opt := explain.Options{Method: explain.Chefer, Start: explain.LastLayer}
		if w.AllLayers {
			opt.Start = explain.AllLayers
		}
		targets := explain.Own(w.Items())
		if o.Graphs {
			return prepareStaticExplain(m, w, o, opt, px, ids)
		}
		return func() error {
			_, err := explain.Explain(m, px, ids, targets, opt)
			return err
		}, none, "", nil
	case Score:
		if o.Graphs {
			return prepareGraphScore(m, px, ids)
		}
		return func() error {
			s := torch.NewScope()
			out, err := m.Forward(s, px, ids, model.ForwardOptions{})
			if err == nil {
				_, err = out.LogitsPerImage.Float32s()
			}
			return errors.Join(err, s.Close())
		}, none, "", nil
	case Train:
		return prepareTrain(m, o, px, ids)
	}
	return nil, none, "", fmt.Errorf("unknown kind of work %q", w.Kind)
}

// prepareStaticExplain captures the relevance of w's pairs in a CUDA graph
// as wide as the texts' longest (the eager explainer cuts them there too);
// a run is what the explorer does per pair: check and copy the inputs in,
// replay, read the maps back.
func prepareStaticExplain(m *model.CLIP, w Work, o *Options, opt explain.Options, px, ids *torch.Tensor) (func() error, func(), string, error) {
	n := w.Items()
	st, err := explain.NewStatic(m, n, n, o.TreeTokens+2, explain.Own(n), opt, true)
	if err != nil {
		return nil, nil, "", err
	}
	run := func() error {
		_, err := st.Explain(px, ids)
		return err
	}
	return run, func() { st.Close() }, "CUDA graph", nil
}

// prepareGraphScore captures the scoring forward pass in a CUDA graph; a
// run checks the ids, replays and reads the logits back.
func prepareGraphScore(m *model.CLIP, px, ids *torch.Tensor) (func() error, func(), string, error) {
	r, err := newScoreReplay(m, px, ids, true)
	if err != nil {
		return nil, nil, "", err
	}
	run := func() error {
		if _, err := m.CheckIDs(ids); err != nil {
			return err
		}
		if err := r.Run(); err != nil {
			return err
		}
		_, err := r.Outputs()[0].Float32s()
		return err
	}
	return run, func() { r.Close() }, "CUDA graph", nil
}

// newScoreReplay is the scoring forward pass on px and ids as a Replay
// whose output is the logits per image; in a CUDA graph with graph.
func newScoreReplay(m *model.CLIP, px, ids *torch.Tensor, graph bool) (*torch.Replay, error) {
	return torch.NewReplay(m.Device(), graph, nil, func(s *torch.Scope) ([]*torch.Tensor, error) {
		var out *model.Output
		err := torch.NoGrad(func() error {
			var err error
			out, err = m.Forward(s, px, ids, model.ForwardOptions{CheckedIDs: true})
			return err
		})
		if err != nil {
			return nil, err
		}
		return []*torch.Tensor{out.LogitsPerImage}, nil
	})
}

// prepareTrain makes the parameters trainable and an optimizer, and
// returns one training step as `lavascope train` takes it, and the
// optimizer's implementation.
func prepareTrain(m *model.CLIP, o *Options, px, ids *torch.Tensor) (func() error, func(), string, error) {
	if err := m.SetRequiresGrad(true); err != nil {
		return nil, nil, "", err
	}
	params := m.Params()
	ts := make([]*torch.Tensor, len(params))
	for i, p := range params {
		ts[i] = p.Tensor
	}
	opt, err := torch.NewAdamW(ts, o.AdamW)
	if err != nil {
		return nil, nil, "", errors.Join(err, m.SetRequiresGrad(false))
	}
	done := func() {
		opt.Close()
		m.SetRequiresGrad(false)
	}
	step := func() error {
		s := torch.NewScope()
		defer s.Close()
		_, _, err := model.OptimizerStep(s, m, opt, ts, px, ids, model.StepOptions{ClipGrad: o.ClipGrad, ClampLogitScale: true, Precision: o.precision()})
		return err
	}
	note := "AdamW " + string(opt.Impl())
	if !o.Graphs {
		return step, done, note, nil
	}
	// A graph cannot create AdamW's state: one ordinary step first.
	if err := step(); err != nil {
		done()
		return nil, nil, "", err
	}
	g, _, _, err := model.NewStepGraph(m, opt, ts, px, ids, o.AdamW.LR, model.StepOptions{ClipGrad: o.ClipGrad, ClampLogitScale: true})
	if err != nil {
		done()
		return nil, nil, "", err
	}
	graphed := func() error {
		_, _, err := g.Step(px, ids, o.AdamW.LR)
		return err
	}
	return graphed, func() { g.Close(); done() }, note + ", CUDA graph", nil
}

func (o *Options) precision() model.Precision {
	if o.Mixed {
		return model.PrecisionBF16Mixed
	}
	return model.PrecisionFP32
}

// optionsText says how lavascope ran a row, for the record.
func optionsText(w Work, o *Options, note string) string {
	switch {
	case o.TF32:
		return workText(w, o, note) + ", TF32"
	case o.Mixed:
		return workText(w, o, note) + ", bf16-mixed"
	}
	return workText(w, o, note)
}

func workText(w Work, o *Options, note string) string {
	switch w.Kind {
	case Explain:
		layers := "last layer"
		if w.AllLayers {
			layers = "all layers"
		}
		text := "texts cut at their end"
		if note != "" {
			text = note + ", texts as wide as the longest"
		}
		return "chefer " + layers + ", one shim call per encoder capturing attention, one backward, the rule in one call per encoder, " + text
	case Score:
		if note != "" {
			return "no grad, " + note + ", libtorch sdpa, texts padded to the longest"
		}
		return "no grad, one shim call per encoder, libtorch sdpa, texts padded to the longest"
	case Train:
		clip := "no clipping"
		if o.ClipGrad > 0 {
			clip = fmt.Sprintf("clip %g", o.ClipGrad)
		}
		return "one shim call per encoder, libtorch sdpa, " + note + ", " + clip + ", texts padded to the longest"
	}
	return ""
}
