package main

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
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// trainFlags are the flags of train.
type trainFlags struct {
	from, base, init, tokenizer string
	learnVocab                  int
	input, style                string
	o                           model.TrainOptions
	progress                    string
	recipe                      string
	freezeVision                bool
	allowOutside                bool
	// nproc and backend: data-parallel training (train_dist.go).
	nproc   int
	backend string
}

func init() {
	addCommand(func(a *app) *cobra.Command {
		f := &trainFlags{o: model.DefaultTrainOptions()}
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
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runTrain(cmd, a, f)
			},
		}
		fs := cmd.Flags()
		config.AddFlags(fs, "data", "tf32", "base")
		fs.StringVar(&f.from, "from", "", "checkpoint to fine-tune: HF folder, HF cache model id, torch.save state_dict (with --base), or demo")
		fs.StringVar(&f.init, "init", "", "train from random weights of a configuration: vit-b-32, tiny or a config.json")
		fs.StringVar(&f.tokenizer, "tokenizer", "", "with --init: folder (or HF model id) with vocab.json and merges.txt")
		fs.IntVar(&f.learnVocab, "learn-vocab", 0, "with --init: learn a BPE vocabulary of at most N merges from the training inputs")
		fs.StringVar(&f.input, "input", model.InputTree, "what the text encoder reads: tree or text")
		fs.StringVar(&f.style, "style", trees.StylePaper.String(), "linearization of --input tree: "+strings.Join(trees.StyleNames(), ", "))
		fs.IntVar(&f.o.BatchPairs, "batch-pairs", f.o.BatchPairs, "pairs per batch (K pairs = 2K items)")
		fs.IntVar(&f.o.Steps, "steps", f.o.Steps, "optimizer steps (the schedule's length)")
		fs.Float64Var(&f.o.Epochs, "epochs", 0, "passes over the training pairs instead of --steps")
		fs.IntVar(&f.o.StopAfter, "stop-after", 0, "stop after this step, resumably, keeping the schedule of --steps (0: run to the end)")
		fs.Float64Var(&f.o.AdamW.LR, "lr", f.o.AdamW.LR, "peak learning rate")
		fs.Float64Var(&f.o.AdamW.Beta1, "beta1", f.o.AdamW.Beta1, "AdamW beta1")
		fs.Float64Var(&f.o.AdamW.Beta2, "beta2", f.o.AdamW.Beta2, "AdamW beta2")
		fs.Float64Var(&f.o.AdamW.Eps, "eps", f.o.AdamW.Eps, "AdamW eps")
		fs.Float64Var(&f.o.AdamW.WeightDecay, "weight-decay", f.o.AdamW.WeightDecay, "AdamW decoupled weight decay")
		fs.IntVar(&f.o.Warmup, "warmup", f.o.Warmup, "steps of linear learning-rate warmup before --schedule's decay (0: none)")
		fs.Var(&f.o.Schedule, "schedule", "learning rate after the warmup: cosine or linear decay to 0, or constant")
		fs.Float64Var(&f.o.ClipGrad, "clip-grad", f.o.ClipGrad, "largest gradient 2-norm (0: no clipping)")
		fs.Var(choiceFlag{&f.o.NoLogitScaleClamp, "off", "on"}, "logit-scale-clamp", "on: clamp the logit scale to [0, ln 100] after each step; off: leave it free")
		fs.Var(&f.o.Freeze, "freeze", "parameter groups kept fixed: none, or a list of "+strings.Join(model.FreezeNames(), ", "))
		fs.BoolVar(&f.freezeVision, "freeze-vision", false, "the same as --freeze vision")
		_ = fs.MarkDeprecated("freeze-vision", "use --freeze vision")
		fs.StringVar(&f.recipe, "recipe", "", "start from a recipe's settings ("+recipeNames()+"); flags given as well override it")
		fs.Var(choiceFlag{&f.o.OptimizerAtEnd, "end", "every"}, "save-optimizer", "when last/ gets the optimizer state: every (each time last/ is written) or end (when the run ends)")
		fs.BoolVar(&f.o.Graphs, "cuda-graphs", false, "replay each step from a CUDA graph (CUDA, a shim against libtorch ≥ 2.4; texts padded to the context)")
		fs.Uint64Var(&f.o.Seed, "seed", f.o.Seed, "seed of the data order (and of --init's weights)")
		fs.IntVar(&f.o.EvalEvery, "eval-every", 0, "steps between evaluations on the val split (0: ten times a run)")
		fs.StringVar(&f.o.Out, "out", "", "run folder: best/, last/ and log.jsonl")
		fs.BoolVar(&f.o.Resume, "resume", false, "continue the run in --out from last/")
		fs.StringVar(&f.progress, "progress", "auto", "progress display: auto (a bar on a terminal, lines otherwise), bar, lines or none")
		fs.BoolVar(&f.allowOutside, "allow-outside", false, "accept images outside the manifest's folder (by path or symbolic link)")
		fs.IntVar(&f.nproc, "nproc-per-node", 0, "train data-parallel as N processes on this machine, one per GPU (docs/distributed.md); under torchrun, leave it out")
		fs.StringVar(&f.backend, "dist-backend", "auto", "with several processes: gloo (CPU), nccl (CUDA) or auto (nccl on a GPU)")
		return cmd
	})
}

func runTrain(cmd *cobra.Command, a *app, f *trainFlags) error {
	fs := cmd.Flags()
	if f.o.Out == "" {
		return withExit(exitUsage, errors.New("train needs --out DIR, the run folder"))
	}
	switch f.progress {
	case "auto", "bar", "lines", "none":
	default:
		return withExit(exitUsage, fmt.Errorf("--progress %q: want auto, bar, lines or none", f.progress))
	}
	var saved *model.TrainState
	if f.o.Resume {
		var err error
		if saved, err = resumeFlags(fs, f); err != nil {
			return withExit(exitUsage, err)
		}
	} else {
		if (f.from == "") == (f.init == "") {
			return withExit(exitUsage, errors.New("train needs exactly one of --from CKPT (fine-tune) and --init CONFIG (random weights)"))
		}
		if f.init != "" && (f.tokenizer == "") == (f.learnVocab == 0) {
			return withExit(exitUsage, errors.New("--init needs exactly one of --tokenizer DIR and --learn-vocab N"))
		}
		if f.from != "" && (f.tokenizer != "" || f.learnVocab != 0) {
			return withExit(exitUsage, errors.New("--tokenizer and --learn-vocab go with --init; --from uses the checkpoint's tokenizer"))
		}
		if f.learnVocab < 0 {
			return withExit(exitUsage, fmt.Errorf("--learn-vocab must be ≥ 1, got %d", f.learnVocab))
		}
		if fs.Changed("epochs") && fs.Changed("steps") {
			return withExit(exitUsage, errors.New("give --steps or --epochs, not both"))
		}
		if fs.Changed("epochs") {
			f.o.Steps = 0
		}
		if err := applyRecipe(fs, f); err != nil {
			return withExit(exitUsage, err)
		}
		st, err := trees.ParseStyle(f.style)
		if err != nil {
			return withExit(exitUsage, fmt.Errorf("--style: %w", err))
		}
		f.o.Input, f.o.Style = f.input, st
		if _, err := model.InputStyle(f.o.Input, f.o.Style); err != nil {
			return withExit(exitUsage, fmt.Errorf("--input: %w", err))
		}
	}
	if launched, err := launchRanks(cmd, f.nproc, f.o.BatchPairs); launched {
		return err
	}
	data := a.cfg.Data
	if saved != nil && !fs.Changed("data") && saved.Data.Source != "" {
		data = saved.Data.Source
	}
	train, val, dataName, err := trainSplits(data, loader.Options{AllowOutside: f.allowOutside})
	if err != nil {
		return withExit(exitUsage, err)
	}
	w, dev, err := startTorch(a, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer w.Close()
	if f.o.Group, dev, err = joinRanks(f.backend, dev, f.o.BatchPairs); err != nil {
		return err
	}
	if g := f.o.Group; g != nil {
		defer w.Do(g.Close)
		if g.Rank() != 0 {
			f.progress = "none"
		}
	}
	if f.o.Graphs {
		if err := model.GraphsUsable(dev, f.o.AdamW.Impl); err != nil {
			return withExit(exitUsage, fmt.Errorf("--cuda-graphs: %w", err))
		}
	}
	tf32 := a.cfg.TF32 && dev.IsCUDA()
	if tf32 {
		if err := w.Do(func() error { return torch.SetAllowTF32(true) }); err != nil {
			return err
		}
	} else if a.cfg.TF32 {
		fmt.Fprintf(cmd.ErrOrStderr(), "tf32: no effect on %s\n", dev)
	}
	f.base = a.cfg.Base
	m, tok, err := trainModel(w, f, saved, train, dev)
	if err != nil {
		return err
	}
	defer w.Do(m.Close)

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first Ctrl-C a second one ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	f.o.Worker = w
	f.o.Command = commandLine(cmd)
	f.o.Data = data
	if data != demo.Name {
		if abs, err := filepath.Abs(data); err == nil {
			f.o.Data = abs
		}
	}
	progress := make(chan model.Progress, 16)
	f.o.Progress = progress
	disp := newProgressDisplay(cmd.ErrOrStderr(), f.progress)
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
	if f.o.Resume {
		what = fmt.Sprintf("%s from step %d", what, saved.Step)
	}
	if tf32 {
		what += " with TF32"
	}
	recipe := ""
	if f.o.Recipe != "" {
		recipe = ", recipe " + f.o.Recipe
	}
	if g := f.o.Group; g != nil {
		recipe += fmt.Sprintf(", rank %d of %d (%s)", g.Rank(), g.WorldSize(), g.Backend())
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "training %s on %s: %d train pairs, %d val pairs, input %s, batch %d pairs%s\n",
		what, dataName, train.Len(), lenOf(val), f.o.Input, f.o.BatchPairs, recipe)
	res, err := model.Train(ctx, m, tok, train, val, f.o)
	if errors.Is(err, model.ErrNoOptimizerState) {
		return withExit(exitUsage, err)
	}
	close(progress)
	<-done
	disp.finish()
	if res != nil && res.Interrupted && errors.Is(err, context.Canceled) {
		if f.o.Group != nil && f.o.Group.Rank() != 0 {
			return nil // rank 0 writes last/ and says so
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "interrupted after step %d of %d; %s holds a resumable checkpoint (best/ untouched)\ncontinue with: lavascope train --out %s --resume\n",
			res.Step, res.Steps, filepath.Join(f.o.Out, model.LastDir), f.o.Out)
		return nil
	}
	if err != nil {
		return inputExit(err)
	}
	if f.o.Group == nil || f.o.Group.Rank() == 0 {
		writeTrainSummary(cmd.OutOrStdout(), f.o.Out, res)
	}
	return nil
}

// applyRecipe gives the flags of --recipe their values, except the flags
// given on the command line, which win wherever they stand; and turns the
// deprecated --freeze-vision into --freeze vision.
func applyRecipe(fs *pflag.FlagSet, f *trainFlags) error {
	if f.freezeVision {
		if fs.Changed("freeze") {
			return errors.New("give --freeze or --freeze-vision, not both")
		}
		f.o.Freeze = model.FreezeVision
	}
	if f.recipe == "" {
		return nil
	}
	r, err := model.FindRecipe(f.recipe)
	if err != nil {
		return fmt.Errorf("--recipe: %w", err)
	}
	for _, s := range r.Settings {
		fl := fs.Lookup(s.Flag)
		if fl == nil {
			return fmt.Errorf("--recipe %s: no flag --%s", r.Name, s.Flag)
		}
		if fl.Changed || (s.Flag == "freeze" && f.freezeVision) {
			continue
		}
		if err := fl.Value.Set(s.Value); err != nil {
			return fmt.Errorf("--recipe %s: --%s %s: %w", r.Name, s.Flag, s.Value, err)
		}
	}
	f.o.Recipe = r.Name
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
func resumeFlags(fs *pflag.FlagSet, f *trainFlags) (*model.TrainState, error) {
	last := filepath.Join(f.o.Out, model.LastDir)
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
	check("input", f.input, o.Input)
	check("style", f.style, o.Style)
	check("batch-pairs", f.o.BatchPairs, o.BatchPairs)
	check("steps", f.o.Steps, o.Steps)
	check("lr", f.o.AdamW.LR, o.AdamW.LR)
	check("beta1", f.o.AdamW.Beta1, o.AdamW.Beta1)
	check("beta2", f.o.AdamW.Beta2, o.AdamW.Beta2)
	check("eps", f.o.AdamW.Eps, o.AdamW.Eps)
	check("weight-decay", f.o.AdamW.WeightDecay, o.AdamW.WeightDecay)
	check("warmup", f.o.Warmup, o.Warmup)
	check("schedule", f.o.Schedule, o.Schedule)
	check("clip-grad", f.o.ClipGrad, o.ClipGrad)
	check("logit-scale-clamp", f.o.NoLogitScaleClamp, o.NoLogitScaleClamp)
	check("freeze", f.o.Freeze, o.Freeze)
	check("freeze-vision", f.freezeVision, o.Freeze == model.FreezeVision)
	check("recipe", f.recipe, o.Recipe)
	check("seed", f.o.Seed, o.Seed)
	check("eval-every", f.o.EvalEvery, o.EvalEvery)
	for _, name := range []string{"epochs", "from", "init", "tokenizer", "learn-vocab"} {
		if fs.Changed(name) {
			bad = append(bad, "--"+name+" (the run's model comes from last/)")
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("--resume continues the saved run; these flags differ from it: %s", strings.Join(bad, ", "))
	}
	o.Out, o.Resume, o.StopAfter, o.Graphs = f.o.Out, true, f.o.StopAfter, f.o.Graphs
	o.OptimizerAtEnd = st.OptimizerAtEnd
	if fs.Changed("save-optimizer") {
		o.OptimizerAtEnd = f.o.OptimizerAtEnd
	}
	f.o = o
	return st, nil
}

// trainSplits opens the train and val splits of --data.
func trainSplits(data string, opts loader.Options) (train, val model.Split, name string, err error) {
	if data == demo.Name {
		tr, err := demo.Split(loader.SplitTrain)
		if err != nil {
			return nil, nil, "", err
		}
		va, err := demo.Split(loader.SplitVal)
		if err != nil {
			return nil, nil, "", err
		}
		return tr, va, "the demo's synthetic pairs", nil
	}
	ds, err := loader.Load(data, opts)
	if err != nil {
		return nil, nil, "", err
	}
	train = model.DatasetSplit(ds, loader.SplitTrain)
	if train.Len() == 0 {
		return nil, nil, "", fmt.Errorf("%s has no pairs in the train split", data)
	}
	return train, model.DatasetSplit(ds, loader.SplitVal), data, nil
}

// trainModel loads or initialises the model to train, with its tokenizer.
func trainModel(w *torch.Worker, f *trainFlags, saved *model.TrainState, train model.Split, dev torch.Device) (*model.CLIP, *model.Tokenizer, error) {
	o := model.Options{Device: dev}
	var m *model.CLIP
	var tok *model.Tokenizer
	switch {
	case saved != nil:
		last := filepath.Join(f.o.Out, model.LastDir)
		err := w.Do(func() (err error) { m, err = model.Load(last, o); return err })
		if err != nil {
			return nil, nil, err
		}
		if tok, err = model.CheckpointTokenizer(last); err != nil {
			w.Do(m.Close)
			return nil, nil, err
		}
		return m, tok, nil
	case f.from != "":
		var loc model.Location
		var err error
		if loc, tok, err = openTokenizer("--from", f.from, f.base, true); err != nil {
			return nil, nil, err
		}
		if err := w.Do(func() (err error) { m, err = model.LoadLocation(loc, o); return err }); err != nil {
			return nil, nil, withExit(exitUsage, err)
		}
	default:
		cfg, err := model.ConfigFromArg(f.init)
		if err != nil {
			return nil, nil, withExit(exitUsage, fmt.Errorf("--init: %w", err))
		}
		if f.tokenizer != "" {
			if _, tok, err = openTokenizer("--tokenizer", f.tokenizer, "", false); err != nil {
				return nil, nil, err
			}
		} else {
			if tok, err = learnVocab(train, f.o.Style, f.learnVocab); err != nil {
				return nil, nil, err
			}
			cfg.Text.VocabSize = tok.VocabSize()
			cfg.Text.BOSTokenID, cfg.Text.EOSTokenID, cfg.Text.PadTokenID = int(tok.BOS()), int(tok.EOS()), int(tok.EOS())
		}
		if err := w.Do(func() (err error) { m, err = model.Init(cfg, o, f.o.Seed); return err }); err != nil {
			return nil, nil, withExit(exitUsage, err)
		}
	}
	if err := model.CheckTokenizer(tok, m.Config()); err != nil {
		w.Do(m.Close)
		return nil, nil, withExit(exitUsage, err)
	}
	return m, tok, nil
}

// learnVocab learns the BPE vocabulary of --learn-vocab from the training
// pairs' trees, in the style of the run, and their sentences.
func learnVocab(train model.Split, style trees.Style, merges int) (*model.Tokenizer, error) {
	var texts []string
	for i := range train.Len() {
		p, err := train.Pair(i)
		if err != nil {
			return nil, err
		}
		for _, st := range []trees.Style{style, trees.StyleWords} {
			ts, err := model.ReadingTexts(&p, st)
			if err != nil {
				return nil, err
			}
			texts = append(texts, ts...)
		}
	}
	return model.LearnBPE(texts, merges, 2)
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
