// Package explaincmd is `lavascope explain`: flags parsed once into
// pipeline.ExplainOptions, and a run that pipeline carries out.
package explaincmd

import (
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/dist"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/figure"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pipeline"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui/graphics"
)

type explainFlags struct {
	pair, split, target, out, style, show, formats string
	limit, batch, width                            int
	metrics, allowOutside                          bool
	ranks                                          factory.Ranks
}

// NewCmdExplain builds `lavascope explain`.
func NewCmdExplain(a *factory.Factory) *cobra.Command {
	{
		var f explainFlags
		cmd := &cobra.Command{
			Use:   "explain --checkpoint DIR --data FILE [--pair ID | --split test] --out DIR",
			Short: "Write relevance heatmaps, token relevance and faithfulness metrics for readings",
			Long: `explain computes, for every reading of the chosen pairs, where the model looked
when it scored the reading's tree against an image, and how far to trust it.

--method chefer (default) is the rule of Chefer et al. (2021) as the CLIP
notebook of Transformer-MM-Explainability computes it; --start-layer last (the
notebook's default), all or a number selects its layers. The baselines are
rollout (attention rollout over every layer), attention (the last layer's
attention) and gradattn (the last layer's gradient × attention); they ignore
--start-layer. --start-layer-text gives the text encoder its own start layer
(the notebook's start_layer_text; by default --start-layer's). A negative
number counts from the end: -1 is the last layer, -2 the last two. The
notebook reads -1 as the last layer too, but any other negative number takes
every layer (its loop skips the layers below the number).

--target own explains each reading's text against its own image, twin against
the other reading's image, all the sum over the pair's images.

Per pair it writes to --out one figure, PAIR_METHOD_LAYER_TARGET.png and .svg
(--figure-format): the sentence and settings, and per reading its gloss, its
tree coloured by relevance, the image its target explains as it is and with
the patch relevance (--colormap) and evidence boxes over it, each panel saying
which image it shows, the logits against the pair's images, and a colour bar.
The SVG holds the text as text. Per reading it writes
  PAIR-rJ.json   logits, token relevance with the tokens' text (raw, and
                 normalised over the tokens between start and end of text as
                 the notebook shows it), node and word relevance on the tree
                 (the normalised token relevance gathered by trees.Align: a
                 token over k parts gives each 1/k), the patch grid (raw and
                 min–max normalised), and the metrics
and over all readings readings.csv (one row each) and summary.csv (means).

The metrics (skip them with --metrics=false) measure the explanation of each
reading's own logit, whatever --target draws: perturbation curves (patches of
the own image removed most relevant first and least relevant first, 0% to 90%,
margin own − twin and its area under the curve), the pointing game and the
share of relevance inside the reading's evidence boxes, and the margin change
when its most and least relevant 1, 2, 3 tokens are dropped from the text.

--checkpoint demo and --data demo name the embedded model and synthetic data.

--nproc-per-node N (or torchrun) runs N processes, each explaining a
contiguous share of the pairs and writing their PNG and JSON files into --out
(a folder every rank sees); rank 0 gathers the rows and writes the CSV files
and the summary, so that --out holds what one process writes. Rank 0 prints
its own readings' lines, the others print nothing (docs/distributed.md).`,
			Example: `  lavascope explain --checkpoint demo --data demo --split test --limit 10 --out explained/
  lavascope explain --checkpoint ckpt/best --data pairs.jsonl --pair pp-0007 --target all --out /tmp/x --show auto`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runExplain(cmd, a, f)
			},
		}
		fs := cmd.Flags()
		config.AddFlags(fs, "checkpoint", "base", "data", "method", "start_layer", "start_layer_text", "colormap")
		fs.StringVar(&f.pair, "pair", "", "explain only the pair with this id")
		fs.StringVar(&f.split, "split", loader.SplitTest, "split to explain: train, val, test, or all (a manifest only)")
		fs.IntVar(&f.limit, "limit", 0, "explain at most this many pairs (0: all)")
		fs.StringVar(&f.target, "target", "own", "logit to explain for each reading: own, twin or all")
		fs.StringVar(&f.out, "out", "", "folder to write PNG, JSON and CSV files into (created if missing)")
		fs.StringVar(&f.style, "style", trees.StylePaper.String(), "linearization the model reads: "+strings.Join(trees.StyleNames(), ", "))
		fs.BoolVar(&f.metrics, "metrics", true, "compute the faithfulness metrics")
		fs.IntVar(&f.batch, "batch-pairs", 8, "pairs per forward and backward pass (speed and memory only)")
		fs.IntVar(&f.width, "figure-width", figure.DefaultWidth, "width of the PNG figures in pixels")
		fs.StringVar(&f.formats, "figure-format", "png,svg", "figure files to write per pair: png, svg or png,svg")
		fs.StringVar(&f.show, "show", "", "also print each figure in the terminal: auto, sixel, kitty or blocks")
		fs.BoolVar(&f.allowOutside, "allow-outside", false, "accept images outside the manifest's folder (by path or symbolic link)")
		f.ranks.AddFlags(fs, "explain the pairs")
		return cmd
	}
}

// parseExplainFlags turns the flags into the run's options, each setting
// parsed once, here.
func parseExplainFlags(a *factory.Factory, f explainFlags) (pipeline.ExplainOptions, error) {
	opt := pipeline.ExplainOptions{Checkpoint: a.Config.Checkpoint, Out: f.out, Metrics: f.metrics, FigureWidth: f.width}
	var err error
	if f.out == "" {
		return opt, errors.New("--out DIR is required")
	}
	if f.width < figure.MinWidth || f.width > figure.MaxWidth {
		return opt, fmt.Errorf("--figure-width must be between %d and %d pixels, got %d", figure.MinWidth, figure.MaxWidth, f.width)
	}
	if opt.FigureFormats, err = figure.ParseFormats(f.formats); err != nil {
		return opt, fmt.Errorf("--figure-format: %w", err)
	}
	if opt.Method, err = explain.ParseMethod(a.Config.Method); err != nil {
		return opt, fmt.Errorf("--method: %w", err)
	}
	if opt.Start, err = explain.ParseStartLayer(a.Config.StartLayer); err != nil {
		return opt, fmt.Errorf("--start-layer: %w", err)
	}
	if a.Config.StartLayerText != "" {
		ts, err := explain.ParseStartLayer(a.Config.StartLayerText)
		if err != nil {
			return opt, fmt.Errorf("--start-layer-text: %w", err)
		}
		opt.TextStart = &ts
	}
	if opt.Target, err = report.ParseTarget(f.target); err != nil {
		return opt, fmt.Errorf("--target: %w", err)
	}
	if opt.Style, err = trees.ParseStyle(f.style); err != nil {
		return opt, fmt.Errorf("--style: %w", err)
	}
	if opt.Colormap, err = explain.ColormapNamed(a.Config.Colormap); err != nil {
		return opt, fmt.Errorf("--colormap: %w", err)
	}
	if f.show != "" {
		mode, err := graphics.ParseMode(f.show)
		if err != nil {
			return opt, fmt.Errorf("--show: %w", err)
		}
		opt.Show = func(w io.Writer, fig image.Image) error { return graphics.Write(w, fig, mode, 80, 16) }
	}
	if f.limit < 0 {
		return opt, fmt.Errorf("--limit must be ≥ 0, got %d", f.limit)
	}
	if f.batch < 1 {
		return opt, fmt.Errorf("--batch-pairs must be ≥ 1, got %d", f.batch)
	}
	return opt, nil
}

// runExplain opens the data, the checkpoint and the model, and hands them
// to a pipeline.Explainer chunk by chunk.
func runExplain(cmd *cobra.Command, a *factory.Factory, f explainFlags) error {
	opt, err := parseExplainFlags(a, f)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	split, idx, err := demo.PickPairs(a.Config.Data, f.split, f.pair, f.limit, loader.Options{AllowOutside: f.allowOutside})
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	loc, tok, err := factory.OpenTokenizer("--checkpoint", a.Config.Checkpoint, a.Config.Base, true)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--out: %w", err))
	}
	if launched, err := f.ranks.Launch(cmd, nil); launched {
		return err
	}
	w, m, g, done, err := a.LoadRankModel(cmd.ErrOrStderr(), loc, &f.ranks)
	if err != nil {
		return err
	}
	defer done()
	stdout, picked := cmd.OutOrStdout(), idx
	if g != nil {
		lo, hi := dist.Share(len(idx), g.Rank(), g.WorldSize())
		idx = idx[lo:hi]
		if g.Rank() != 0 {
			stdout = io.Discard
		}
	}
	prep, err := model.PreprocessFor(m)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	run := pipeline.NewExplainer(m, tok, prep, split, w, stdout, opt)
	for lo := 0; lo < len(idx); lo += f.batch {
		if err := ctx.Err(); err != nil {
			return factory.WithExit(factory.ExitInterrupted, errors.New("interrupted"))
		}
		if err := run.Chunk(idx[lo:min(lo+f.batch, len(idx))]); err != nil {
			return factory.InputExit(err)
		}
	}
	if g != nil {
		if err := run.Gather(g, picked); err != nil {
			return err
		}
		if g.Rank() != 0 {
			return nil
		}
	}
	return run.Finish()
}
