// Package train is `lavascope train`: flags and recipes parsed into
// model.TrainOptions, a run of model.Train, and its progress display.
package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// Options are the settings of one `lavascope train` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	From, Base, Init, Tokenizer string
	LearnVocab                  int
	Input, Style                string
	Train                       model.TrainOptions
	Progress                    string
	Precision                   string
	Recipe                      string
	FreezeVision                bool
	AllowOutside                bool
	// Ranks: data-parallel training (docs/distributed.md).
	factory.Ranks
	// BucketMB is --bucket-mb: MiB of gradients per all-reduce.
	BucketMB float64
}

// NewCmdTrain builds `lavascope train`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdTrain(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f, Train: model.DefaultTrainOptions()}
	cmd := &cobra.Command{
		Use:   "train --data FILE (--from CKPT | --init CONFIG) --out DIR [flags]",
		Short: "Fine-tune CLIP on whole pairs with the contrastive loss",
		Long: `train fine-tunes a CLIP checkpoint (--from) or one initialised from a
configuration (--init) on the train split of a pair manifest, as the seed paper
does: every batch holds whole pairs, so both readings of a sentence are always
in the same batch (--batch-pairs K gives batches of 2K items; the paper's batch
2 and 4 are K = 1 and 2). The text encoder reads the linearized tree (--input
tree, in --style) or the sentence (--input text). The loss is CLIP's symmetric
contrastive loss, the optimizer torch's AdamW with a linear warmup (--warmup)
and then --schedule's decay to 0 (cosine, linear) or none (constant);
gradients are clipped to --clip-grad (0: not clipped), and the logit scale is
clamped to [0, ln 100] after each step as OpenAI trained CLIP
(--logit-scale-clamp off leaves it free, as transformers' CLIPModel does).
--freeze keeps parameter groups fixed (no gradient, no optimizer state, no
update): none, or a comma-separated list of vision-model (vision_model.*),
visual-projection, text-model, text-projection, logit-scale, or the
shorthands vision (vision-model,visual-projection) and text.

` + recipeHelp() + `

Every --eval-every steps (by default ten times a run) the model is evaluated
on the val split as ` + "`lavascope eval`" + ` does; DIR/best/ keeps the best evaluation
and DIR/last/ the latest state, both Hugging Face checkpoints, each replaced
atomically. last/ also holds the optimizer state and the position in the data,
so --resume continues exactly where the run stopped. Ctrl-C finishes the
current step, writes last/ (never best/) and exits 0. DIR/log.jsonl records
every step and evaluation. The optimizer state is twice the trainable weights
(about 1.2 GB for ViT-B/32): --save-optimizer end writes it only when the run
ends (its last step, --stop-after or Ctrl-C), so a run killed in between
cannot be resumed (--resume refuses it; start again with --from DIR/last).

On a GPU, --cuda-graphs replays each step from a CUDA graph: one launch for
the thousands of kernels of a step (texts are padded to the context so that
every full batch has one shape; the first step and a last partial batch run
op by op). It needs a shim built against a CUDA libtorch 2.4 or later. --tf32
(or the tf32 setting) lets the matrix products run in TF32: on an H200 the
64-item step of ViT-B/32 went from about 810 items/s to 1400–2000 with it and
2180 with both; the loss and weights then differ from float32's by TF32's
rounding.

--init needs a tokenizer: --tokenizer DIR, or --learn-vocab N to learn a BPE
vocabulary of at most N merges from the training split's inputs (trees and
sentences), which also sets the config's vocabulary size and special ids.
--data demo trains on the embedded demo's synthetic train split.`,
		Example: `  lavascope train --data data/pairs.jsonl --from openai/clip-vit-base-patch32 \
      --input tree --batch-pairs 2 --epochs 10 --lr 1e-5 --out runs/tree-b4
  lavascope train --out runs/tree-b4 --resume
  lavascope train --data demo --init tiny --learn-vocab 400 --steps 3000 --lr 5e-4 --out runs/demo`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runTrain),
	}
	fs := cmd.Flags()
	config.AddFlags(fs, "data", "tf32", "base")
	fs.StringVar(&opts.From, "from", "", "checkpoint to fine-tune: HF folder, HF cache model id, torch.save state_dict (with --base), or demo")
	fs.StringVar(&opts.Init, "init", "", "train from random weights of a configuration: "+strings.Join(model.ConfigNames, ", ")+" or a config.json")
	fs.StringVar(&opts.Tokenizer, "tokenizer", "", "with --init: folder (or HF model id) with vocab.json and merges.txt")
	fs.IntVar(&opts.LearnVocab, "learn-vocab", 0, "with --init: learn a BPE vocabulary of at most N merges from the training inputs")
	fs.StringVar(&opts.Input, "input", model.InputTree, "what the text encoder reads: tree or text")
	fs.StringVar(&opts.Style, "style", trees.StylePaper.String(), "linearization of --input tree: "+strings.Join(trees.StyleNames(), ", "))
	fs.IntVar(&opts.Train.BatchPairs, "batch-pairs", opts.Train.BatchPairs, "pairs per batch (K pairs = 2K items)")
	fs.IntVar(&opts.Train.Steps, "steps", opts.Train.Steps, "optimizer steps (the schedule's length)")
	fs.Float64Var(&opts.Train.Epochs, "epochs", 0, "passes over the training pairs instead of --steps")
	fs.IntVar(&opts.Train.StopAfter, "stop-after", 0, "stop after this step, resumably, keeping the schedule of --steps (0: run to the end)")
	fs.Float64Var(&opts.Train.AdamW.LR, "lr", opts.Train.AdamW.LR, "peak learning rate")
	fs.Float64Var(&opts.Train.AdamW.Beta1, "beta1", opts.Train.AdamW.Beta1, "AdamW beta1")
	fs.Float64Var(&opts.Train.AdamW.Beta2, "beta2", opts.Train.AdamW.Beta2, "AdamW beta2")
	fs.Float64Var(&opts.Train.AdamW.Eps, "eps", opts.Train.AdamW.Eps, "AdamW eps")
	fs.Float64Var(&opts.Train.AdamW.WeightDecay, "weight-decay", opts.Train.AdamW.WeightDecay, "AdamW decoupled weight decay")
	fs.IntVar(&opts.Train.Warmup, "warmup", opts.Train.Warmup, "steps of linear learning-rate warmup before --schedule's decay (0: none)")
	fs.Var(&opts.Train.Schedule, "schedule", "learning rate after the warmup: cosine or linear decay to 0, or constant")
	fs.Float64Var(&opts.Train.ClipGrad, "clip-grad", opts.Train.ClipGrad, "largest gradient 2-norm (0: no clipping)")
	fs.Var(choiceFlag{&opts.Train.NoLogitScaleClamp, "off", "on"}, "logit-scale-clamp", "on: clamp the logit scale to [0, ln 100] after each step; off: leave it free")
	fs.Var(&opts.Train.Freeze, "freeze", "parameter groups kept fixed: none, or a list of "+strings.Join(model.FreezeNames(), ", "))
	fs.BoolVar(&opts.FreezeVision, "freeze-vision", false, "the same as --freeze vision")
	_ = fs.MarkDeprecated("freeze-vision", "use --freeze vision")
	fs.StringVar(&opts.Recipe, "recipe", "", "start from a recipe's settings ("+recipeNames()+"); flags given as well override it")
	fs.Var(choiceFlag{&opts.Train.OptimizerAtEnd, "end", "every"}, "save-optimizer", "when last/ gets the optimizer state: every (each time last/ is written) or end (when the run ends)")
	fs.StringVar(&opts.Precision, "precision", string(model.PrecisionFP32), "fp32, tf32 (TF32 matrix products on CUDA; the same as --tf32) or bf16-mixed (autocast: bf16 products and attention, f32 weights, AdamW state and loss)")
	fs.BoolVar(&opts.Train.Graphs, "cuda-graphs", false, "replay each step from a CUDA graph (CUDA, a shim against libtorch ≥ 2.4; texts padded to the context)")
	fs.Uint64Var(&opts.Train.Seed, "seed", opts.Train.Seed, "seed of the data order (and of --init's weights)")
	fs.IntVar(&opts.Train.EvalEvery, "eval-every", 0, "steps between evaluations on the val split (0: ten times a run)")
	fs.StringVar(&opts.Train.Out, "out", "", "run folder: best/, last/ and log.jsonl")
	fs.BoolVar(&opts.Train.Resume, "resume", false, "continue the run in --out from last/")
	fs.StringVar(&opts.Progress, "progress", "auto", "progress display: auto (a bar on a terminal, lines otherwise), bar, lines or none")
	fs.BoolVar(&opts.AllowOutside, "allow-outside", false, "accept images outside the manifest's folder (by path or symbolic link)")
	opts.Ranks.AddFlags(fs, "train data-parallel")
	fs.Float64Var(&opts.BucketMB, "bucket-mb", float64(torch.DefaultBucketBytes)/(1<<20), "with several processes: MiB of gradients per all-reduce (DDP's bucket_cap_mb)")
	fs.Var(choiceFlag{&opts.Train.NoOverlap, "off", "on"}, "overlap", "with several processes: on sums the gradients during the backward pass, off after it")
	return cmd
}

func runTrain(opts *Options) error {
	fs := opts.Cmd.Flags()
	if opts.Train.Out == "" {
		return factory.WithExit(factory.ExitUsage, errors.New("train needs --out DIR, the run folder"))
	}
	switch opts.Progress {
	case "auto", "bar", "lines", "none":
	default:
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--progress %q: want auto, bar, lines or none", opts.Progress))
	}
	var saved *model.TrainState
	if opts.Train.Resume {
		var err error
		if saved, err = resumeFlags(fs, opts); err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
	} else {
		if (opts.From == "") == (opts.Init == "") {
			return factory.WithExit(factory.ExitUsage, errors.New("train needs exactly one of --from CKPT (fine-tune) and --init CONFIG (random weights)"))
		}
		if opts.Init != "" && (opts.Tokenizer == "") == (opts.LearnVocab == 0) {
			return factory.WithExit(factory.ExitUsage, errors.New("--init needs exactly one of --tokenizer DIR and --learn-vocab N"))
		}
		if opts.From != "" && (opts.Tokenizer != "" || opts.LearnVocab != 0) {
			return factory.WithExit(factory.ExitUsage, errors.New("--tokenizer and --learn-vocab go with --init; --from uses the checkpoint's tokenizer"))
		}
		if opts.LearnVocab < 0 {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--learn-vocab must be ≥ 1, got %d", opts.LearnVocab))
		}
		if fs.Changed("epochs") && fs.Changed("steps") {
			return factory.WithExit(factory.ExitUsage, errors.New("give --steps or --epochs, not both"))
		}
		if fs.Changed("epochs") {
			opts.Train.Steps = 0
		}
		if err := applyRecipe(fs, opts); err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
		st, err := trees.ParseStyle(opts.Style)
		if err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--style: %w", err))
		}
		opts.Train.Input, opts.Train.Style = opts.Input, st
		if _, err := model.InputStyle(opts.Train.Input, opts.Train.Style); err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--input: %w", err))
		}
	}
	prec, err := model.ResolvePrecision(opts.Precision, opts.Config.TF32, fs.Changed("precision"))
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--precision: %w", err))
	}
	if !(opts.BucketMB > 0 && opts.BucketMB <= 1<<12) {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--bucket-mb %v: want a size in MiB above 0 and at most 4096", opts.BucketMB))
	}
	opts.Train.BucketBytes = max(1, int64(opts.BucketMB*(1<<20)))
	if launched, err := opts.Ranks.Launch(opts.Cmd, splitsBatch(opts.Train.BatchPairs)); launched {
		return err
	}
	data := opts.Config.Data
	if saved != nil && !fs.Changed("data") && saved.Data.Source != "" {
		data = saved.Data.Source
	}
	train, val, dataName, err := demo.TrainSplits(data, loader.Options{AllowOutside: opts.AllowOutside})
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	w, dev, err := opts.StartTorch(opts.Cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer w.Close()
	if opts.Train.Group, dev, err = opts.Ranks.Join(dev, splitsBatch(opts.Train.BatchPairs)); err != nil {
		return err
	}
	if g := opts.Train.Group; g != nil {
		defer w.Do(g.Close)
		if g.Rank() != 0 {
			opts.Progress = "none"
		}
	}
	if opts.Train.Graphs {
		if err := model.GraphsUsable(dev, opts.Train.AdamW.Impl); err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--cuda-graphs: %w", err))
		}
	}
	if prec.Mixed() {
		if err := w.Do(func() error { return prec.Usable(dev, torch.Float32) }); err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--precision: %w", err))
		}
		opts.Train.Precision = prec
	}
	tf32 := prec == model.PrecisionTF32 && dev.IsCUDA()
	if tf32 {
		if err := w.Do(func() error { return torch.SetAllowTF32(true) }); err != nil {
			return err
		}
	} else if prec == model.PrecisionTF32 {
		fmt.Fprintf(opts.Cmd.ErrOrStderr(), "tf32: no effect on %s\n", dev)
	}
	opts.Base = opts.Config.Base
	m, tok, err := trainModel(w, opts, saved, train, dev)
	if err != nil {
		return err
	}
	defer w.Do(m.Close)

	ctx, stop := signal.NotifyContext(opts.Cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first Ctrl-C a second one ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	opts.Train.Worker = w
	opts.Train.Command = commandLine(opts.Cmd)
	opts.Train.Data = data
	if data != demo.Name {
		if abs, err := filepath.Abs(data); err == nil {
			opts.Train.Data = abs
		}
	}
	progress := make(chan model.Progress, 16)
	opts.Train.Progress = progress
	disp := newProgressDisplay(opts.Cmd.ErrOrStderr(), opts.Progress)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range progress {
			disp.update(p)
		}
	}()
	what := "a new model"
	if m.Source != "" {
		what = m.Source
	}
	if opts.Train.Resume {
		what = fmt.Sprintf("%s from step %d", what, saved.Step)
	}
	if tf32 {
		what += " with TF32"
	}
	if prec.Mixed() {
		what += " in " + string(prec)
	}
	recipe := ""
	if opts.Train.Recipe != "" {
		recipe = ", recipe " + opts.Train.Recipe
	}
	if g := opts.Train.Group; g != nil {
		recipe += fmt.Sprintf(", rank %d of %d (%s)", g.Rank(), g.WorldSize(), g.Backend())
	}
	fmt.Fprintf(opts.Cmd.ErrOrStderr(), "training %s on %s: %d train pairs, %d val pairs, input %s, batch %d pairs%s\n",
		what, dataName, train.Len(), lenOf(val), opts.Train.Input, opts.Train.BatchPairs, recipe)
	res, err := model.Train(ctx, m, tok, train, val, opts.Train)
	if errors.Is(err, model.ErrNoOptimizerState) {
		return factory.WithExit(factory.ExitUsage, err)
	}
	close(progress)
	<-done
	disp.finish()
	if res != nil && res.Interrupted && errors.Is(err, context.Canceled) {
		if opts.Train.Group != nil && opts.Train.Group.Rank() != 0 {
			return nil // rank 0 writes last/ and says so
		}
		fmt.Fprintf(opts.Cmd.ErrOrStderr(), "interrupted after step %d of %d; %s holds a resumable checkpoint (best/ untouched)\ncontinue with: lavascope train --out %s --resume\n",
			res.Step, res.Steps, filepath.Join(opts.Train.Out, model.LastDir), opts.Train.Out)
		return nil
	}
	if err != nil {
		return factory.InputExit(err)
	}
	if opts.Train.Group == nil || opts.Train.Group.Rank() == 0 {
		writeTrainSummary(opts.Cmd.OutOrStdout(), opts.Train.Out, res)
	}
	return nil
}

// applyRecipe gives the flags of --recipe their values, except the flags
// given on the command line, which win wherever they stand; and turns the
// deprecated --freeze-vision into --freeze vision.
func applyRecipe(fs *pflag.FlagSet, f *Options) error {
	if f.FreezeVision {
		if fs.Changed("freeze") {
			return errors.New("give --freeze or --freeze-vision, not both")
		}
		f.Train.Freeze = model.FreezeVision
	}
	if f.Recipe == "" {
		return nil
	}
	r, err := model.FindRecipe(f.Recipe)
	if err != nil {
		return fmt.Errorf("--recipe: %w", err)
	}
	for _, s := range r.Settings {
		fl := fs.Lookup(s.Flag)
		if fl == nil {
			return fmt.Errorf("--recipe %s: no flag --%s", r.Name, s.Flag)
		}
		if fl.Changed || (s.Flag == "freeze" && f.FreezeVision) {
			continue
		}
		if err := fl.Value.Set(s.Value); err != nil {
			return fmt.Errorf("--recipe %s: --%s %s: %w", r.Name, s.Flag, s.Value, err)
		}
	}
	f.Train.Recipe = r.Name
	return nil
}

// recipeNames lists the recipes --recipe takes.
func recipeNames() string {
	var names []string
	for _, r := range model.TrainRecipes {
		names = append(names, r.Name)
	}
	return strings.Join(names, ", ")
}

// recipeHelp is the help's paragraph on the recipes: exactly the flags
// each sets.
func recipeHelp() string {
	var b strings.Builder
	for _, r := range model.TrainRecipes {
		fmt.Fprintf(&b, "--recipe %s sets exactly these flags, the settings of %s:\n", r.Name, r.Source)
		for _, s := range r.Settings {
			fmt.Fprintf(&b, "  %-26s %s\n", "--"+s.Flag+" "+s.Value, s.Why)
		}
	}
	b.WriteString(`Flags given beside --recipe, before or after it, override its values. The
others (steps or epochs, batch, input, data, the starting checkpoint) keep
their usual defaults: give them as the run needs. The run records the recipe
and every value in last/trainer_state.json, and --resume continues with them.`)
	return b.String()
}

// choiceFlag is a flag of two words for a bool: yes sets it, no clears it.
type choiceFlag struct {
	p       *bool
	yes, no string
}

func (c choiceFlag) String() string {
	if c.p != nil && *c.p {
		return c.yes
	}
	return c.no
}

func (c choiceFlag) Set(s string) error {
	switch s {
	case c.yes:
		*c.p = true
	case c.no:
		*c.p = false
	default:
		return fmt.Errorf("%q: want %s or %s", s, c.no, c.yes)
	}
	return nil
}

func (c choiceFlag) Type() string { return c.no + "|" + c.yes }

func lenOf(s model.Split) int {
	if s == nil {
		return 0
	}
	return s.Len()
}

// resumeFlags reads the saved run and puts its settings into f, refusing
// flags given with other values.
func resumeFlags(fs *pflag.FlagSet, f *Options) (*model.TrainState, error) {
	last := filepath.Join(f.Train.Out, model.LastDir)
	st, err := model.ReadTrainState(last)
	if err != nil {
		return nil, fmt.Errorf("--resume: %w", err)
	}
	o, err := st.Args.Options()
	if err != nil {
		return nil, fmt.Errorf("--resume: %s: %w", last, err)
	}
	var bad []string
	check := func(name string, given, saved any) {
		if fs.Changed(name) && fmt.Sprint(given) != fmt.Sprint(saved) {
			bad = append(bad, fmt.Sprintf("--%s %v (the run has %v)", name, given, saved))
		}
	}
	check("input", f.Input, o.Input)
	check("style", f.Style, o.Style)
	check("batch-pairs", f.Train.BatchPairs, o.BatchPairs)
	check("steps", f.Train.Steps, o.Steps)
	check("lr", f.Train.AdamW.LR, o.AdamW.LR)
	check("beta1", f.Train.AdamW.Beta1, o.AdamW.Beta1)
	check("beta2", f.Train.AdamW.Beta2, o.AdamW.Beta2)
	check("eps", f.Train.AdamW.Eps, o.AdamW.Eps)
	check("weight-decay", f.Train.AdamW.WeightDecay, o.AdamW.WeightDecay)
	check("warmup", f.Train.Warmup, o.Warmup)
	check("schedule", f.Train.Schedule, o.Schedule)
	check("clip-grad", f.Train.ClipGrad, o.ClipGrad)
	check("logit-scale-clamp", f.Train.NoLogitScaleClamp, o.NoLogitScaleClamp)
	check("freeze", f.Train.Freeze, o.Freeze)
	check("freeze-vision", f.FreezeVision, o.Freeze == model.FreezeVision)
	check("recipe", f.Recipe, o.Recipe)
	check("seed", f.Train.Seed, o.Seed)
	check("eval-every", f.Train.EvalEvery, o.EvalEvery)
	for _, name := range []string{"epochs", "from", "init", "tokenizer", "learn-vocab"} {
		if fs.Changed(name) {
			bad = append(bad, "--"+name+" (the run's model comes from last/)")
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("--resume continues the saved run; these flags differ from it: %s", strings.Join(bad, ", "))
	}
	o.Out, o.Resume, o.StopAfter, o.Graphs = f.Train.Out, true, f.Train.StopAfter, f.Train.Graphs
	// How the ranks sum gradients is this run's choice, not the saved one's.
	o.NoOverlap = f.Train.NoOverlap
	o.OptimizerAtEnd = st.OptimizerAtEnd
	if fs.Changed("save-optimizer") {
		o.OptimizerAtEnd = f.Train.OptimizerAtEnd
	}
	f.Train = o
	return st, nil
}

// trainModel loads or initialises the model to train, with its tokenizer.
func trainModel(w *torch.Worker, f *Options, saved *model.TrainState, train model.Split, dev torch.Device) (*model.CLIP, *tokenizer.Tokenizer, error) {
	o := model.Options{Device: dev}
	var m *model.CLIP
	var tok *tokenizer.Tokenizer
	switch {
	case saved != nil:
		last := filepath.Join(f.Train.Out, model.LastDir)
		err := w.Do(func() (err error) { m, err = model.Load(last, o); return err })
		if err != nil {
			return nil, nil, err
		}
		if tok, err = model.CheckpointTokenizer(last); err != nil {
			w.Do(m.Close)
			return nil, nil, err
		}
		return m, tok, nil
	case f.From != "":
		var loc model.Location
		var err error
		if loc, tok, err = factory.OpenTokenizer("--from", f.From, f.Base, true); err != nil {
			return nil, nil, err
		}
		if err := w.Do(func() (err error) { m, err = model.LoadLocation(loc, o); return err }); err != nil {
			return nil, nil, factory.WithExit(factory.ExitUsage, err)
		}
	default:
		cfg, err := model.ConfigFromArg(f.Init)
		if err != nil {
			return nil, nil, factory.WithExit(factory.ExitUsage, fmt.Errorf("--init: %w", err))
		}
		if f.Tokenizer != "" {
			if _, tok, err = factory.OpenTokenizer("--tokenizer", f.Tokenizer, "", false); err != nil {
				return nil, nil, err
			}
		} else {
			if tok, err = model.LearnSplitVocab(train, f.Train.Style, f.LearnVocab); err != nil {
				return nil, nil, err
			}
			cfg.Text.VocabSize = tok.VocabSize()
			cfg.Text.BOSTokenID, cfg.Text.EOSTokenID, cfg.Text.PadTokenID = int(tok.BOS()), int(tok.EOS()), int(tok.EOS())
		}
		if err := w.Do(func() (err error) { m, err = model.Init(cfg, o, f.Train.Seed); return err }); err != nil {
			return nil, nil, factory.WithExit(factory.ExitUsage, err)
		}
	}
	if err := model.CheckTokenizer(tok, m.Config()); err != nil {
		w.Do(m.Close)
		return nil, nil, factory.WithExit(factory.ExitUsage, err)
	}
	return m, tok, nil
}

// commandLine is the command as given, rebuilt from the flags that were
// set, quoted so that a shell takes it back.
func commandLine(cmd *cobra.Command) string {
	parts := strings.Fields(cmd.CommandPath())
	add := func(f *pflag.Flag) {
		if f.Value.Type() == "bool" && f.Value.String() == "true" {
			parts = append(parts, "--"+f.Name)
			return
		}
		parts = append(parts, "--"+f.Name, shellQuote(f.Value.String()))
	}
	// Flags holds the inherited flags too once parsed; Changed marks the
	// ones given.
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			add(f)
		}
	})
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writeTrainSummary(w io.Writer, out string, r *model.TrainResult) {
	state := "done"
	if r.Stopped {
		state = fmt.Sprintf("stopped (--stop-after); continue with: lavascope train --out %s --resume", out)
	}
	fmt.Fprintf(w, "%d of %d steps in %s, %.1f items/s: %s\n", r.Step, r.Steps, r.Elapsed.Round(time.Second), r.ItemsPerSec, state)
	if e := r.LastEval; e != nil {
		fmt.Fprintf(w, "val accuracy %.2f%% (%d readings, %d ties) at the last evaluation\n", e.Accuracy, e.Readings, e.Ties)
	}
	if r.Best > 0 {
		fmt.Fprintf(w, "best %s %.4g at step %d: %s\n", r.BestMetric, r.BestValue, r.Best, filepath.Join(out, model.BestDir))
	}
	fmt.Fprintf(w, "last: %s\nlog:  %s\n", filepath.Join(out, model.LastDir), filepath.Join(out, "log.jsonl"))
	if r.Truncated > 0 {
		fmt.Fprintf(w, "warning: %d training texts were cut to the context length\n", r.Truncated)
	}
}

// progressDisplay shows training progress: a bar redrawn in place on a
// terminal, plain lines otherwise.
type progressDisplay struct {
	w        io.Writer
	bar      bool
	none     bool
	width    int
	lastLine time.Time
	drawn    bool
}

func newProgressDisplay(w io.Writer, mode string) *progressDisplay {
	d := &progressDisplay{w: w, none: mode == "none", width: 100}
	f, isFile := w.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	d.bar = mode == "bar" || (mode == "auto" && tty)
	if tty {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
			d.width = cols
		}
	}
	return d
}

func (d *progressDisplay) update(p model.Progress) {
	if d.none {
		return
	}
	stats := fmt.Sprintf("loss %.4f  lr %.3g  %.1f items/s  ETA %s", p.Loss, p.LR, p.ItemsPerSec, p.ETA.Round(time.Second))
	if p.ValStep > 0 {
		stats += fmt.Sprintf("  val %.2f%%", p.ValAccuracy)
	}
	var events []string
	if p.Eval != nil {
		events = append(events, fmt.Sprintf("step %d: val accuracy %.2f%% (%d readings, %d ties)", p.Step, p.Eval.Accuracy, p.Eval.Readings, p.Eval.Ties))
	}
	for _, s := range p.Saved {
		events = append(events, fmt.Sprintf("step %d: wrote %s/", p.Step, s))
	}
	if d.bar {
		// Redraw at most ten times a second, but always for news.
		now := time.Now()
		if len(events) == 0 && p.Step < p.Steps && now.Sub(d.lastLine) < 100*time.Millisecond {
			return
		}
		d.lastLine = now
		d.clear()
		for _, e := range events {
			fmt.Fprintln(d.w, e)
		}
		head := fmt.Sprintf("%d/%d ", p.Step, p.Steps)
		line := head + stats
		if room := min(40, d.width-len(head)-len(stats)-4); room >= 10 {
			n := room * p.Step / max(1, p.Steps)
			line = head + "[" + strings.Repeat("=", n) + strings.Repeat(" ", room-n) + "] " + stats
		}
		if len(line) >= d.width {
			line = line[:d.width-1]
		}
		fmt.Fprint(d.w, "\r"+line)
		d.drawn = true
		return
	}
	if now := time.Now(); len(events) > 0 || p.Step == p.Steps || now.Sub(d.lastLine) >= 10*time.Second || p.Step == 1 {
		d.lastLine = now
		fmt.Fprintf(d.w, "step %d/%d  %s\n", p.Step, p.Steps, stats)
		for _, e := range events {
			fmt.Fprintln(d.w, e)
		}
	}
}

// clear erases the bar's line.
func (d *progressDisplay) clear() {
	if d.drawn {
		fmt.Fprint(d.w, "\r\x1b[K")
		d.drawn = false
	}
}

func (d *progressDisplay) finish() {
	if d.bar {
		d.clear()
	}
}
