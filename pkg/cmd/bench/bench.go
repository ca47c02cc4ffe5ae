// Package bench is `lavascope bench`: it times relevance, scoring and
// training with package bench and compares records.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/bench"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/version"
	"github.com/lavascope/lavascope/torch"
)

// Options are the settings of one timing run of `lavascope bench` (explain,
// score, train or all).
type Options struct {
	*factory.Factory
	factory.Invocation
	// Works gives the rows to time.
	Works      func(*Options) []bench.Work
	Model      string
	DType      string
	Pairs      int
	BatchPairs []int
	JSON       bool
	TF32       bool
	Precision  string
	AdamW      string // "auto" where the subcommand times no training
	Bench      bench.Options
}

// NewCmdBench builds `lavascope bench` and its subcommands; runF, when not
// nil, runs in place of a timing subcommand (tests check the parsed options
// with it).
func NewCmdBench(fac *factory.Factory, runF func(*Options) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench explain|score|train|all|compare",
		Short: "Time relevance, scoring and training, and compare with the Hugging Face reference",
		Long: `bench times the work the explorer does on a CLIP model with synthetic inputs of
LAVA's shapes (random pixels; texts of --tokens ids, the length of a
linearized tree, padded to the context): relevance with Chefer's rule (one
pair, last layer and all layers; --pairs pairs batched), scoring one pair,
and training steps of --batch-pairs pairs. Each row runs --warmup times, then
--repeat timed runs with the device synchronised around each; it reports the
median, quartiles and extremes, and on CUDA the peak memory.

--config is a built-in configuration initialised at random (vit-b-32,
vit-b-16, vit-l-14, vit-l-14-336, tiny: OpenAI's CLIPs' dimensions),
demo (the embedded model), a config.json, or a checkpoint folder. (Here
--config names the model, not lavascope's settings file.) The device comes
from --device: auto falls back to the CPU with a notice.

--precision bf16-mixed runs the rows under autocast (bf16 matrix products
and attention, float32 weights, AdamW state and loss), on the CPU too where
libtorch has bf16 kernels. Options a GPU user can turn on, each stated in
the records: --precision tf32 (or --tf32; with its accuracy against float32), --cuda-graphs (every row replayed from a CUDA
graph: the same kernels, one launch; its accuracy against float32 op by op
too), --adamw fused|foreach (the training rows' optimizer; auto picks fused
where libtorch has it). --profile N runs each row N more times under
libtorch's profiler and prints where the time went: the host's in libtorch,
waiting for the GPU and outside libtorch, the GPU's busy time, the busiest
ops and kernels; --profile-trace DIR also writes them as a timeline to open
in ui.perfetto.dev.

--json prints one JSON object per row, the records that
scripts/reference/hf_bench.py prints for the same rows with transformers;
` + "`lavascope bench compare FILE...`" + ` puts such files side by side.`,
		Args: cobra.NoArgs,
	}
	// Each subcommand shows only the flags of the rows it times.
	for _, sub := range []struct {
		name, short    string
		explain, train bool
		works          func(f *Options) []bench.Work
	}{
		{"explain", "Time relevance: one pair (last layer, all layers) and --pairs pairs batched", true, false,
			func(f *Options) []bench.Work { return bench.ExplainWork(f.Pairs) }},
		{"score", "Time scoring one pair (forward only)", false, false,
			func(*Options) []bench.Work { return bench.ScoreWork() }},
		{"train", "Time training steps of --batch-pairs pairs", false, true,
			func(f *Options) []bench.Work { return bench.TrainWork(f.BatchPairs) }},
		{"all", "Time every row: relevance, scoring, training", true, true,
			func(f *Options) []bench.Work {
				return slices.Concat(bench.ExplainWork(f.Pairs), bench.ScoreWork(), bench.TrainWork(f.BatchPairs))
			}},
	} {
		f := &Options{Factory: fac, Works: sub.works, AdamW: "auto", Bench: bench.DefaultOptions()}
		c := &cobra.Command{
			Use:   sub.name + " [flags]",
			Short: sub.short,
			Args:  cobra.NoArgs,
			RunE:  factory.RunE(f, runF, runBench),
		}
		fs := c.Flags()
		fs.StringVar(&f.Model, "config", "vit-b-32", "model: "+strings.Join(model.ConfigNames, ", ")+", demo, a config.json or a checkpoint folder")
		fs.StringVar(&f.DType, "dtype", "f32", "compute dtype: f32, bf16 or f16")
		f.Pairs, f.BatchPairs = bench.DefaultPairs, bench.DefaultBatchPairs
		if sub.explain {
			fs.IntVar(&f.Pairs, "pairs", bench.DefaultPairs, "pairs of the batched relevance row")
		}
		if sub.train {
			fs.IntSliceVar(&f.BatchPairs, "batch-pairs", bench.DefaultBatchPairs, "pairs per training step, one row each (K pairs = 2K items)")
			fs.Float64Var(&f.Bench.ClipGrad, "clip-grad", f.Bench.ClipGrad, "gradient clipping norm of the training step (0: off)")
			fs.StringVar(&f.AdamW, "adamw", "auto", "AdamW of the training rows: auto (fused with libtorch ≥ 2 on CUDA or ≥ 2.4 on the CPU, else foreach), foreach or fused")
		}
		fs.IntVar(&f.Bench.Warmup, "warmup", f.Bench.Warmup, "untimed runs before timing each row")
		fs.IntVar(&f.Bench.Repeat, "repeat", f.Bench.Repeat, "timed runs of each row")
		fs.IntVar(&f.Bench.TreeTokens, "tokens", f.Bench.TreeTokens, "ids per synthetic text between its start and end")
		fs.Uint64Var(&f.Bench.Seed, "seed", f.Bench.Seed, "seed of the weights and inputs")
		fs.BoolVar(&f.JSON, "json", false, "print one JSON record per row")
		fs.StringVar(&f.Precision, "precision", string(model.PrecisionFP32), "fp32, tf32 (TF32 matrix products on CUDA, its accuracy against f32 stated) or bf16-mixed (autocast: bf16 products, f32 weights and loss)")
		fs.BoolVar(&f.TF32, "tf32", false, "the same as --precision tf32")
		fs.BoolVar(&f.Bench.Graphs, "cuda-graphs", false, "run every row from a CUDA graph (CUDA, a shim against libtorch ≥ 2; training ≥ 2.4 and fused AdamW)")
		fs.IntVar(&f.Bench.Profile, "profile", 0, "after timing a row, run it this many more times under libtorch's profiler and print where the time went (host ops, GPU kernels)")
		fs.StringVar(&f.Bench.TraceDir, "profile-trace", "", "with --profile: write each row's profiled runs to `DIR`/WORK.trace.json (Chrome's trace format, for ui.perfetto.dev)")
		cmd.AddCommand(c)
	}
	cmd.AddCommand(NewCmdCompare(fac, nil))
	return cmd
}

func runBench(f *Options) error {
	dt, err := torch.ParseDType(f.DType)
	if err != nil || !slices.Contains([]torch.DType{torch.Float32, torch.BFloat16, torch.Float16}, dt) {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--dtype %q: want f32, bf16 or f16", f.DType))
	}
	if f.Pairs < 1 {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--pairs %d: want at least 1", f.Pairs))
	}
	for _, k := range f.BatchPairs {
		if k < 1 {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--batch-pairs %d: want at least 1", k))
		}
	}
	if err := f.Bench.Validate(); err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("bench: %w", err))
	}
	prec, err := model.ResolvePrecision(f.Precision, f.TF32, f.Cmd.Flags().Changed("precision"))
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--precision: %w", err))
	}
	f.TF32, f.Bench.Mixed = prec == model.PrecisionTF32, prec.Mixed()
	if f.Bench.Mixed && dt != torch.Float32 {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--precision %s keeps float32 weights: it goes with --dtype f32, not %s", prec, dt))
	}
	impl, err := torch.ParseAdamWImpl(f.AdamW)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--adamw: %w", err))
	}
	f.Bench.AdamW.Impl = impl
	ws := f.Works(f)
	stderr := f.Cmd.ErrOrStderr()
	if dt != torch.Float32 && slices.ContainsFunc(ws, func(w bench.Work) bool { return w.Kind == bench.Train }) {
		fmt.Fprintf(stderr, "note: training in %s keeps the parameters and AdamW's state in %s (no float32 master copy)\n", dt, dt)
	}
	arg := f.Model
	if arg == demo.Name {
		if arg, err = demo.Checkpoint(); err != nil {
			return err
		}
	}
	w, dev, err := f.StartTorch(stderr)
	if err != nil {
		return err
	}
	defer w.Close()
	if f.Bench.Mixed {
		if err := w.Do(func() error { return prec.Usable(dev, dt) }); err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--precision: %w", err))
		}
	}
	if f.TF32 && !dev.IsCUDA() {
		fmt.Fprintf(stderr, "precision tf32: no effect on %s (TF32 is a CUDA setting)\n", dev)
	}
	if f.Bench.Graphs {
		if err := torch.CUDAGraphsUsable(dev); err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--cuda-graphs: %w", err))
		}
	}
	if f.Bench.TraceDir != "" {
		// Before the timing, not after it.
		if err := os.MkdirAll(f.Bench.TraceDir, 0o755); err != nil {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--profile-trace: %w", err))
		}
	}
	if f.Bench.Profile > 0 && !torch.ProfilerCompiled() {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--profile: the libtorch shim has no profiler: its headers did not compile against libtorch %s (see `make torch`'s output)", torch.Version()))
	}
	var recs []bench.Record
	err = w.Do(func() error {
		m, notice, err := bench.OpenModel(arg, model.Options{Device: dev, DType: dt}, f.Bench.Seed)
		if err != nil {
			return err
		}
		defer m.Close()
		if notice != "" {
			fmt.Fprintln(stderr, notice)
		}
		o := f.Bench
		vsF32 := ""
		if dt != torch.Float32 {
			// The same seed gives the same weights, rounded: compare
			// before the training rows change them.
			ref, _, err := bench.OpenModel(arg, model.Options{Device: dev}, f.Bench.Seed)
			if err != nil {
				return fmt.Errorf("the float32 model to compare %s with: %w", dt, err)
			}
			vsF32, err = bench.Accuracy(ref, m, f.Bench.TreeTokens, f.Bench.Seed)
			ref.Close()
			if err != nil {
				return fmt.Errorf("accuracy of %s: %w", dt, err)
			}
		}
		// TF32 is process-wide; bf16 and f16 products do not use it, so a
		// lower dtype keeps its own accuracy statement.
		if dt == torch.Float32 && (f.TF32 || f.Bench.Graphs) {
			if vsF32, err = bench.AccuracyOptions(m, f.TF32, f.Bench.Graphs, f.Bench.TreeTokens, f.Bench.Seed); err != nil {
				return fmt.Errorf("accuracy of the options against float32: %w", err)
			}
		}
		if f.Bench.Mixed {
			if vsF32, err = bench.AccuracyMixed(m, f.Bench.TreeTokens, f.Bench.Seed); err != nil {
				return fmt.Errorf("accuracy of bf16-mixed against float32: %w", err)
			}
		}
		if f.TF32 {
			o.TF32 = true
			if err := torch.SetAllowTF32(true); err != nil {
				return err
			}
			defer torch.SetAllowTF32(false)
		}
		o.Base = bench.Record{
			Impl:       benchImpl(&o, f.TF32),
			Config:     f.Model,
			VsF32:      vsF32,
			DeviceName: bench.CPUName(),
			Threads:    torch.NumThreads(),
			Versions:   fmt.Sprintf("lavascope %s, libtorch %s", version.Build(), torch.Version()),
		}
		if dev.IsCUDA() {
			o.Base.DeviceName = "CUDA GPU " + dev.String()
		}
		if dev.IsCUDA() && torch.CUDACompiled() {
			st, err := torch.CUDAMemory(dev.Index)
			if err != nil {
				return err
			}
			o.Base.DeviceName = st.Name
		}
		o.Progress = func(r bench.Record) { benchProgress(f.Cmd.OutOrStdout(), stderr, f.JSON, r) }
		recs, err = bench.Run(m, ws, o)
		return err
	})
	if err != nil {
		return model.AsDeviceError(err, dev)
	}
	if f.JSON {
		return nil
	}
	if err := bench.WriteTable(f.Cmd.OutOrStdout(), recs); err != nil {
		return err
	}
	return bench.WriteProfiles(f.Cmd.OutOrStdout(), recs)
}

// benchProgress reports a finished row: its JSON record on stdout, or a
// line on stderr while the table waits for the end.
func benchProgress(stdout, stderr io.Writer, asJSON bool, r bench.Record) {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", r.Work, err)
			return
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return
	}
	fmt.Fprintf(stderr, "%-14s median %.2f ms (timed runs: %d), %.1f items/s\n", r.Work, r.MedianMS, r.Repeat, r.ItemsPerS)
}

// benchImpl names lavascope's variant in the records, so that runs with
// different options stand in separate columns of a comparison.
func benchImpl(o *bench.Options, tf32 bool) string {
	impl := "lavascope"
	if tf32 {
		impl += "+tf32"
	}
	if o.Mixed {
		impl += "+bf16-mixed"
	}
	if o.Graphs {
		impl += "+graphs"
	}
	if o.AdamW.Impl != torch.AdamWAuto {
		impl += "+" + string(o.AdamW.Impl)
	}
	return impl
}

// CompareOptions are the settings of one `lavascope bench compare` run.
type CompareOptions struct {
	factory.Invocation
	Markdown bool
}

// NewCmdCompare builds `lavascope bench compare`; runF, when not nil, runs
// in place of the command (tests check the parsed options with it).
func NewCmdCompare(_ *factory.Factory, runF func(*CompareOptions) error) *cobra.Command {
	opts := &CompareOptions{}
	cmd := &cobra.Command{
		Use:   "compare FILE...",
		Short: "Put benchmark records (from bench --json and hf_bench.py --json) side by side",
		Args:  cobra.MinimumNArgs(1),
		RunE:  factory.RunE(opts, runF, runCompare),
	}
	cmd.Flags().BoolVar(&opts.Markdown, "markdown", false, "print the table in Markdown, as docs/performance.md holds it")
	return cmd
}

func runCompare(opts *CompareOptions) error {
	recs, err := bench.ReadRecordFiles(opts.Args)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	return bench.WriteComparison(opts.Cmd.OutOrStdout(), recs, opts.Markdown)
}
