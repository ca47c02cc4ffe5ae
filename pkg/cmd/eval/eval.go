// Package eval is `lavascope eval`: a checkpoint scored on a split with
// model.Evaluate and printed as a table or JSON.
package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// Options are the settings of one `lavascope eval` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	Split, Input, Style string
	JSON, Scores        bool
	AllowOutside        bool
	Chunk               int
	// Ranks share the pairs out among several processes.
	factory.Ranks
}

// NewCmdEval builds `lavascope eval`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdEval(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "eval --checkpoint DIR --data FILE [--split test] --input tree|text [--json]",
		Short: "Score every reading of a split as the paper's Table 1 does",
		Long: `eval scores a checkpoint on one split of a pair manifest with the protocol of
the seed paper's Table 1. For each reading, the reading's input (its linearized
tree with --input tree, the sentence with --input text) is scored against every
image of its pair: the reading is correct when its own image has the strictly
highest logit. A tie (its own image shares the highest logit) counts half and
is reported separately. Accuracy = (correct + ties/2) / readings. Beside it,
"first index" is the authors' rule (their scripts take torch's argmax, the
first of the highest logits): a tie is right for the pair's first reading and
wrong for the other.

With --input text both readings of a pair read the same sentence and so score
the pair's images identically: one reading is right and the other wrong (or
both tie), and the accuracy is exactly 50% by either rule, the paper's text
baseline. The other direction, each image against the readings' inputs, is
reported too (image_to_text): there identical sentences tie on every reading.

Retrieval over the whole split, as the authors' test script reports it:
R@1, R@5 and R@10 text→image (each reading's input against every distinct
image of the split; identical pixels are one image; its own image is the
answer) and image→text (each distinct image against every reading's input,
one per reading, identical inputs not merged; the image's readings are the
answers). Candidates with equal logits are ranked in random order and R@K is
the expected share found in the top K (a two-way tie for first counts 0.5 at
R@1), like the half-each rule.

Accuracy is shown overall and per ambiguity family. --json prints one object
with accuracy (percent), accuracy_first_index, readings, correct, ties,
ties_first_index, wrong, image_to_text, families (each with the same fields)
and retrieval (readings, images, text_to_image and image_to_text, each with
r_at_1, r_at_5, r_at_10 in percent); --scores adds every reading's logits.
--checkpoint demo and --data demo name the embedded model and its synthetic
test split.

--nproc-per-node N (or torchrun) runs N processes, each scoring a contiguous
share of the pairs; rank 0 gathers the scores and prints what one process
prints, the others print nothing (docs/distributed.md).`,
		Example: `  lavascope eval --checkpoint demo --data demo --input tree
  lavascope eval --checkpoint runs/tree-b4/best --data data/pairs.jsonl --input text --json`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runEval),
	}
	config.AddFlags(cmd.Flags(), "checkpoint", "base", "data")
	cmd.Flags().StringVar(&opts.Split, "split", loader.SplitTest, "split to score: train, val or test")
	cmd.Flags().StringVar(&opts.Input, "input", model.InputTree, "what the text encoder reads: tree or text")
	cmd.Flags().StringVar(&opts.Style, "style", trees.StylePaper.String(), "linearization of --input tree: "+strings.Join(trees.StyleNames(), ", "))
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object")
	cmd.Flags().BoolVar(&opts.Scores, "scores", false, "with --json, add every reading's logits and outcome")
	cmd.Flags().IntVar(&opts.Chunk, "chunk-pairs", 16, "pairs per forward pass (speed and memory only)")
	cmd.Flags().BoolVar(&opts.AllowOutside, "allow-outside", false, "accept images outside the manifest's folder (by path or symbolic link)")
	opts.Ranks.AddFlags(cmd.Flags(), "score the split")
	return cmd
}

func runEval(opts *Options) error {
	st, err := trees.ParseStyle(opts.Style)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--style: %w", err))
	}
	st, err = model.InputStyle(opts.Input, st)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--input: %w", err))
	}
	data, err := demo.OpenSplit(opts.Config.Data, opts.Split, loader.Options{AllowOutside: opts.AllowOutside})
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	if launched, err := opts.Ranks.Launch(opts.Cmd, nil); launched {
		return err
	}
	var res *model.EvalResult
	rank := 0
	err = opts.WithRankModel(opts.Cmd, &opts.Ranks, func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer, g *torch.ProcessGroup) (err error) {
		if g != nil {
			rank = g.Rank()
		}
		res, err = model.Evaluate(ctx, m, tok, data, model.EvalOptions{Style: st, ChunkPairs: opts.Chunk, Worker: w, Retrieval: true, Group: g})
		return err
	})
	if err != nil || rank != 0 {
		return err
	}
	rep := evalReport{Checkpoint: opts.Config.Checkpoint, Data: opts.Config.Data, Split: opts.Split, Pairs: data.Len(), Input: opts.Input, EvalResult: res}
	if !opts.Scores {
		rep.Scores = nil
	}
	if opts.JSON {
		data, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = opts.Cmd.OutOrStdout().Write(append(termtext.JSON(data), '\n'))
		return err
	}
	writeEvalTable(termtext.NewWriter(opts.Cmd.OutOrStdout()), &rep)
	return nil
}

// evalReport is what eval prints.
type evalReport struct {
	Checkpoint string `json:"checkpoint"`
	Data       string `json:"data"`
	Split      string `json:"split"`
	Pairs      int    `json:"pairs"`
	Input      string `json:"input"`
	*model.EvalResult
}

// writeEvalTable prints the result as a row of the paper's Table 1, then
// the rows of the families.
func writeEvalTable(w io.Writer, r *evalReport) {
	fmt.Fprintf(w, "checkpoint %s, data %s (%s split, %d pairs)\n\n", r.Checkpoint, r.Data, r.Split, r.Pairs)
	name := "Text input"
	if r.Input == model.InputTree {
		name = fmt.Sprintf("Tree input (%s)", r.Style)
	}
	labels := []string{name}
	tallies := []model.Tally{r.Tally}
	for _, f := range r.Families {
		labels = append(labels, "  "+termtext.Sanitize(f.Family))
		tallies = append(tallies, f.Tally)
	}
	width := len("Input")
	for _, l := range labels {
		width = max(width, len(l))
	}
	fmt.Fprintf(w, "%-*s  %8s  %11s  %8s  %7s  %4s  %5s\n", width, "Input", "Accuracy", "First index", "Readings", "Correct", "Ties", "Wrong")
	for i, t := range tallies {
		fmt.Fprintf(w, "%-*s  %8.2f  %11.2f  %8d  %7d  %4d  %5d\n", width, labels[i], t.Accuracy, t.AccuracyFirstIndex, t.Readings, t.Correct, t.Ties, t.Wrong)
	}
	fmt.Fprintf(w, "\nA reading is correct when its own image has the strictly highest logit; ties count 0.5\n"+
		"(first index: the authors' argmax, a tie goes to the pair's first reading).\n")
	fmt.Fprintf(w, "Image to text (each image against the readings' inputs): %.2f (%d ties).\n", r.ImageToText.Accuracy, r.ImageToText.Ties)
	if ret := r.Retrieval; ret != nil {
		fmt.Fprintf(w, "\nRetrieval over the split (%d readings' inputs, %d distinct images; ties ranked at random):\n", ret.Readings, ret.Images)
		fmt.Fprintf(w, "%-13s  %6s  %6s  %6s\n", "", "R@1", "R@5", "R@10")
		for _, row := range []struct {
			name string
			rc   model.Recall
		}{{"text to image", ret.TextToImage}, {"image to text", ret.ImageToText}} {
			fmt.Fprintf(w, "%-13s  %6.2f  %6.2f  %6.2f\n", row.name, row.rc.At1, row.rc.At5, row.rc.At10)
		}
	}
	if r.Truncated > 0 {
		fmt.Fprintf(w, "warning: %d inputs were cut to the context length\n", r.Truncated)
	}
}
