package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/trees"
)

func init() {
	addCommand(func(a *app) *cobra.Command {
		var (
			split, input, style string
			asJSON, scores      bool
			chunk               int
		)
		cmd := &cobra.Command{
			Use:   "eval --checkpoint DIR --data FILE [--split test] --input tree|text [--json]",
			Short: "Score every reading of a split as the paper's Table 1 does",
			Long: `eval scores a checkpoint on one split of a pair manifest with the protocol of
the seed paper's Table 1. For each reading, the reading's input (its linearized
tree with --input tree, the sentence with --input text) is scored against every
image of its pair: the reading is correct when its own image has the strictly
highest logit. A tie (its own image shares the highest logit) counts half and
is reported separately. Accuracy = (correct + ties/2) / readings.

With --input text both readings of a pair read the same sentence and so score
the pair's images identically: one reading is right and the other wrong (or
both tie), and the accuracy is exactly 50%, the paper's text baseline. The
other direction, each image against the readings' inputs, is reported too
(image_to_text): there identical sentences tie on every reading.

Accuracy is shown overall and per ambiguity family. --json prints one object
with accuracy (percent), readings, correct, ties, wrong, image_to_text and
families; --scores adds every reading's logits. --checkpoint demo and --data
demo name the embedded model and its synthetic test split.`,
			Example: `  lavascope eval --checkpoint demo --data demo --input tree
  lavascope eval --checkpoint runs/tree-b4/best --data data/pairs.jsonl --input text --json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				st, err := trees.ParseStyle(style)
				if err != nil {
					return withExit(2, fmt.Errorf("--style: %w", err))
				}
				st, err = model.InputStyle(input, st)
				if err != nil {
					return withExit(2, fmt.Errorf("--input: %w", err))
				}
				data, err := evalSplit(a.cfg.Data, split)
				if err != nil {
					return withExit(2, err)
				}
				dir, tok, err := openTokenizer("--checkpoint", a.cfg.Checkpoint)
				if err != nil {
					return err
				}
				w, m, done, err := loadModel(a, cmd.ErrOrStderr(), dir)
				if err != nil {
					return err
				}
				defer done()
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
				defer stop()
				res, err := model.Evaluate(ctx, m, tok, data, model.EvalOptions{Style: st, ChunkPairs: chunk, Worker: w})
				if err != nil {
					if errors.Is(err, context.Canceled) {
						return withExit(130, errors.New("interrupted"))
					}
					return err
				}
				rep := evalReport{Checkpoint: a.cfg.Checkpoint, Data: a.cfg.Data, Split: split, Pairs: data.Len(), Input: input, EvalResult: res}
				if !scores {
					rep.Scores = nil
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					return enc.Encode(rep)
				}
				writeEvalTable(cmd.OutOrStdout(), &rep)
				return nil
			},
		}
		config.AddFlags(cmd.Flags(), "checkpoint", "data")
		cmd.Flags().StringVar(&split, "split", loader.SplitTest, "split to score: train, val or test")
		cmd.Flags().StringVar(&input, "input", model.InputTree, "what the text encoder reads: tree or text")
		cmd.Flags().StringVar(&style, "style", trees.StylePaper.String(), "linearization of --input tree: "+strings.Join(trees.StyleNames(), ", "))
		cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
		cmd.Flags().BoolVar(&scores, "scores", false, "with --json, add every reading's logits and outcome")
		cmd.Flags().IntVar(&chunk, "chunk-pairs", 16, "pairs per forward pass (speed and memory only)")
		return cmd
	})
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

// evalSplit opens one split of --data.
func evalSplit(data, split string) (model.Split, error) {
	if data == demo.Name {
		s, err := demo.Split(split)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	switch split {
	case loader.SplitTrain, loader.SplitVal, loader.SplitTest:
	default:
		return nil, fmt.Errorf("--split %q: want train, val or test", split)
	}
	ds, err := loader.Load(data, loader.Options{})
	if err != nil {
		return nil, err
	}
	s := model.DatasetSplit(ds, split)
	if s.Len() == 0 {
		counts := map[string]int{}
		for _, p := range ds.Pairs {
			counts[p.Split]++
		}
		return nil, fmt.Errorf("%s has no pairs in the %s split (train %d, val %d, test %d)", data, split,
			counts[loader.SplitTrain], counts[loader.SplitVal], counts[loader.SplitTest])
	}
	return s, nil
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
		labels = append(labels, "  "+f.Family)
		tallies = append(tallies, f.Tally)
	}
	width := len("Input")
	for _, l := range labels {
		width = max(width, len(l))
	}
	fmt.Fprintf(w, "%-*s  %8s  %8s  %7s  %4s  %5s\n", width, "Input", "Accuracy", "Readings", "Correct", "Ties", "Wrong")
	for i, t := range tallies {
		fmt.Fprintf(w, "%-*s  %8.2f  %8d  %7d  %4d  %5d\n", width, labels[i], t.Accuracy, t.Readings, t.Correct, t.Ties, t.Wrong)
	}
	fmt.Fprintf(w, "\nA reading is correct when its own image has the strictly highest logit; ties count 0.5.\n")
	fmt.Fprintf(w, "Image to text (each image against the readings' inputs): %.2f (%d ties).\n", r.ImageToText.Accuracy, r.ImageToText.Ties)
	if r.Truncated > 0 {
		fmt.Fprintf(w, "warning: %d inputs were cut to the context length\n", r.Truncated)
	}
}
