// Package reportcmd is `lavascope report`: the explain pipeline run over a
// split, then package analysis's per-family report of where each reading's
// relevance falls, written as Markdown, CSV and PNG charts.
package reportcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/analysis"
	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pipeline"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// Options are the settings of one `lavascope report` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	Split, Out, Style string
	Limit, Batch      int
	Force, JSON       bool
	AllowOutside      bool
}

// NewCmdReport builds `lavascope report`; runF, when not nil, runs in place
// of the command (tests check the parsed options with it).
func NewCmdReport(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "report --checkpoint DIR --data FILE [--split test] [--out DIR]",
		Short: "Explain a split and report, per ambiguity family, where the relevance falls",
		Long: `report runs what explain runs over every pair of a split (each reading's own
logit, with the faithfulness metrics) and asks of each reading the seed paper's
question: which syntactic material carries the decision. Token relevance is
read per word and per constituent, and against the other reading of the pair:
the share of the reading's relevance on the tokens the other reading's
linearization lacks ("))))", "(np (np"), on the attachment site and on the
ambiguous noun (package analysis defines each).

It writes into --out (default report-SPLIT), beside explain's files (a figure
and a JSON report per reading, readings.csv with those shares, summary.csv):
  report.md      a table per ambiguity family and overall: accuracy, mean
                 margin, the shares, pointing game, perturbation AUC; the
                 readings whose unique tokens carry most; links to the charts
  families.csv   the table
  margin.png     histograms of the margin per family
  unique.png     histograms of the share on the tokens the twin lacks
--out must be empty or new (--force writes into a folder that is not) and
must not lie inside the dataset's folder. --json prints the summary (per
family and overall, with the histograms) as one JSON object, the progress
going to stderr. On the demo's 101 test pairs it takes 35 to 45 s on two CPU cores.`,
		Example: `  lavascope report --checkpoint demo --data demo
  lavascope report --checkpoint runs/tree-b4/best --data data/pairs.jsonl --split test --out report-b4 --json`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runReport),
	}
	config.AddFlags(cmd.Flags(), "checkpoint", "base", "data", "method", "start_layer", "colormap")
	fs := cmd.Flags()
	fs.StringVar(&opts.Split, "split", loader.SplitTest, "split to report on: train, val, test, or all (a manifest only)")
	fs.StringVar(&opts.Out, "out", "", "folder to write the report into (default report-SPLIT)")
	fs.StringVar(&opts.Style, "style", trees.StylePaper.String(), "linearization the model reads: "+strings.Join(trees.StyleNames(), ", "))
	fs.IntVar(&opts.Limit, "limit", 0, "report on at most this many pairs (0: all)")
	fs.IntVar(&opts.Batch, "batch-pairs", 8, "pairs per forward and backward pass (speed and memory only)")
	fs.BoolVar(&opts.Force, "force", false, "write into an --out folder that is not empty")
	fs.BoolVar(&opts.JSON, "json", false, "print the summary as one JSON object")
	fs.BoolVar(&opts.AllowOutside, "allow-outside", false, "accept images outside the manifest's folder (by path or symbolic link)")
	return cmd
}

func runReport(opts *Options) error {
	cfg := opts.Config
	xo := pipeline.ExplainOptions{Checkpoint: cfg.Checkpoint, Target: report.TargetOwn, Metrics: true, Out: opts.Out}
	var err error
	if xo.Out == "" {
		xo.Out = "report-" + opts.Split
	}
	if xo.Method, err = explain.ParseMethod(cfg.Method); err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--method: %w", err))
	}
	if xo.Start, err = explain.ParseStartLayer(cfg.StartLayer); err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--start-layer: %w", err))
	}
	if xo.Style, err = trees.ParseStyle(opts.Style); err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--style: %w", err))
	}
	if xo.Colormap, err = explain.ColormapNamed(cfg.Colormap); err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--colormap: %w", err))
	}
	if opts.Limit < 0 || opts.Batch < 1 {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--limit must be ≥ 0 and --batch-pairs ≥ 1, got %d and %d", opts.Limit, opts.Batch))
	}
	if err := checkOut(xo.Out, cfg.Data, opts.Force); err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	split, idx, err := demo.PickPairs(cfg.Data, opts.Split, "", opts.Limit, loader.Options{AllowOutside: opts.AllowOutside})
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	if err := os.MkdirAll(xo.Out, 0o755); err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--out: %w", err))
	}
	progress := opts.Cmd.OutOrStdout()
	if opts.JSON {
		progress = opts.Cmd.ErrOrStderr()
	}
	var rows []analysis.Row
	err = opts.WithModel(opts.Cmd, func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer) error {
		prep, err := model.PreprocessFor(m)
		if err != nil {
			return err
		}
		run := pipeline.NewExplainer(m, tok, prep, split, w, progress, xo)
		for lo := 0; lo < len(idx); lo += opts.Batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := run.Chunk(idx[lo:min(lo+opts.Batch, len(idx))]); err != nil {
				return err
			}
		}
		rows = run.Rows()
		return run.Finish()
	})
	if err != nil {
		return err
	}
	sum := analysis.Summarize(rows)
	info := analysis.Run{Checkpoint: cfg.Checkpoint, Data: cfg.Data, Split: opts.Split, Method: string(xo.Method),
		Files:  []string{"readings.csv (one row per reading)", "summary.csv (explain's means)", "PAIR-rJ.json (each reading's report) and PAIR_METHOD_LAYER_TARGET.png and .svg (each pair's figure)"},
		Report: func(r analysis.Row) string { return loader.FileName(r.Pair) + "-r" + strconv.Itoa(r.Reading) + ".json" }}
	if xo.Method == explain.Chefer {
		info.StartLayer = xo.Start.String()
	}
	if err := analysis.WriteReport(xo.Out, info, rows, sum); err != nil {
		return err
	}
	if opts.JSON {
		data, err := json.Marshal(struct {
			Out string `json:"out"`
			analysis.Summary
		}{xo.Out, sum})
		if err != nil {
			return err
		}
		_, err = opts.Cmd.OutOrStdout().Write(append(termtext.JSON(data), '\n'))
		return err
	}
	fmt.Fprintln(progress)
	if err := analysis.WriteText(progress, sum); err != nil {
		return err
	}
	_, err = fmt.Fprintf(progress, "wrote %s\n", termtext.Sanitize(filepath.Join(xo.Out, analysis.ReportFile)))
	return err
}

// checkOut refuses an --out folder that holds files (unless force) or lies
// inside the dataset's folder, where the report's files could replace the
// dataset's own.
func checkOut(out, data string, force bool) error {
	entries, err := os.ReadDir(out)
	switch {
	case err == nil && len(entries) > 0 && !force:
		return fmt.Errorf("--out %s is not empty; give an empty or new folder, or --force to write into it", out)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--out: %w", err)
	}
	if data == demo.Name {
		return nil
	}
	dir := data
	if st, err := os.Stat(data); err == nil && !st.IsDir() {
		dir = filepath.Dir(data)
	}
	inside, err := within(out, dir)
	if err != nil {
		return err
	}
	if inside {
		return fmt.Errorf("--out %s lies inside the dataset's folder %s; write the report elsewhere", out, dir)
	}
	return nil
}

// within reports whether path is dir or lies below it, symbolic links of
// the parts that exist resolved.
func within(path, dir string) (bool, error) {
	p, err := resolve(path)
	if err != nil {
		return false, err
	}
	d, err := resolve(dir)
	if err != nil {
		return false, err
	}
	rel, err := filepath.Rel(d, p)
	if err != nil {
		return false, nil
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))), nil
}

// resolve makes path absolute and resolves the symbolic links of its
// longest existing prefix.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	rest := ""
	for cur := abs; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest), nil
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return abs, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
