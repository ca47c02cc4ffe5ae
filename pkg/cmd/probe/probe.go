// Package probe is `lavascope probe`: the structures one re-attachment away
// from each reading, ranked by model.Probe.
package probe

import (
	"context"
	"encoding/json"
	"errors"
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

const probeDefinition = `A reading is structurally discriminated when, among its structures (its
tree, the trees one re-attachment away from it, and the other readings'
trees), its own image gives its own tree the strictly highest logit and each
other reading's image gives that reading's tree the strictly highest logit.
The score is the percentage of readings that are.`

// Options are the settings of one `lavascope probe` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	Pair, Split, Reading, Style string
	JSON, Scores, AllowOutside  bool
	Chunk                       int
	// Ablate, MaskBox, Fill and SwapImages ask for one counterfactual of
	// --pair (runCounterfactual).
	Ablate, MaskBox, Fill string
	SwapImages            bool
	// Ranks share the pairs out among several processes.
	factory.Ranks
}

// NewCmdProbe builds `lavascope probe`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdProbe(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "probe --checkpoint DIR --data FILE (--pair ID [--reading a|b] | --split test) [--json]",
		Short: "Rank the structures one re-attachment away by what the model sees in each image",
		Long: `probe asks which structure the model sees in an image. For each reading of a
pair it builds the alternatives of the reading's tree: every tree over the same
words that attaches one PP, clause or participial clause to another NP or VP,
or gives the premodifiers of a coordination the other scope. The reading's
tree, its alternatives and the other readings' trees are scored against both
images of the pair in one forward pass.

With --pair, the structures are listed per reading from the one that most
prefers the reading's own image (its logit there minus the other image's) to
the least, with their logits against each image; the other reading's tree is
marked. --reading a (or b, ...) keeps one reading.

With --split (and no --pair), every pair of the split is probed, a few pairs a
forward pass, and the structural-discrimination score is reported overall and
per ambiguity family, with the mean number of structures per reading, how
many readings reach the other reading's tree in one move, and the mean ranks
of the readings' own trees for their own images and of the other readings'
trees for theirs.

` + probeDefinition + `

--json prints one object: the tallies (readings, discriminated, score,
reachable, structures, own_rank, other_rank; per family under families) and,
under probes, each reading's structures (role, reading, tree, text, move,
logits, margin, ranks): with --pair always, with --split under --scores. --checkpoint demo
and --data demo name the embedded model and its synthetic test split.

--nproc-per-node N (or torchrun) runs N processes, each probing a contiguous
share of the pairs; rank 0 gathers the probes and prints what one process
prints, the others print nothing (docs/distributed.md).

--ablate, --mask-box and --swap-images (with --pair) score one counterfactual
of the pair instead: the texts with token ids dropped (by position, so the
rest keep their ids), a constituent's tokens dropped or the plain sentence
read; boxes of the images filled in the preprocessed image; or the images
swapped. The pair and its counterfactual go through the model in one batch,
and the logits before and after are printed with their deltas. --reading
limits the change to one reading's text and image.`,
		Example: `  lavascope probe --checkpoint demo --data demo --pair pp-00009
  lavascope probe --checkpoint demo --data demo --pair pp-00009 --reading a --json
  lavascope probe --checkpoint demo --data demo --split test
  lavascope probe --checkpoint demo --data demo --pair pp-00009 --mask-box evidence --fill blur
  lavascope probe --checkpoint demo --data demo --pair pp-00009 --ablate constituent:PP --reading a`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runProbe),
	}
	config.AddFlags(cmd.Flags(), "checkpoint", "data")
	fs := cmd.Flags()
	fs.StringVar(&opts.Pair, "pair", "", "probe the pair with this id (searched in every split)")
	fs.BoolVar(&opts.AllowOutside, "allow-outside", false, "accept images outside the manifest's folder (by path or symbolic link)")
	fs.StringVar(&opts.Split, "split", loader.SplitTest, "without --pair, probe every pair of this split: train, val or test")
	fs.StringVar(&opts.Reading, "reading", "", "with --pair, list one reading's structures: a, b, ... (default: every reading)")
	fs.StringVar(&opts.Style, "style", trees.StylePaper.String(), "linearization the text encoder reads: paper, ptb or nopos")
	fs.BoolVar(&opts.JSON, "json", false, "print one JSON object")
	fs.BoolVar(&opts.Scores, "scores", false, "with --split --json, add every reading's structures")
	fs.IntVar(&opts.Chunk, "chunk-pairs", 16, "pairs per forward pass (speed and memory only)")
	fs.StringVar(&opts.Ablate, "ablate", "", "with --pair, rescore with the texts changed: tokens:N,M (drop token ids at those positions), constituent:LABEL or neutral (the plain sentence)")
	fs.StringVar(&opts.MaskBox, "mask-box", "", "with --pair, rescore with boxes of the images filled: evidence, or N for each image's N-th box")
	fs.StringVar(&opts.Fill, "fill", model.FillGrey.String(), "what --mask-box fills with: grey (CLIP's mean colour), mean (the image's) or blur")
	fs.BoolVar(&opts.SwapImages, "swap-images", false, "with --pair, rescore with each reading given its twin's image")
	opts.Ranks.AddFlags(fs, "probe the pairs")
	return cmd
}

// probeReport is what probe prints.
type probeReport struct {
	Checkpoint string `json:"checkpoint"`
	Data       string `json:"data"`
	Split      string `json:"split,omitempty"`
	Pairs      int    `json:"pairs"`
	// Pair, Sentence and Glosses are there with --pair.
	Pair     string   `json:"pair,omitempty"`
	Sentence string   `json:"sentence,omitempty"`
	Glosses  []string `json:"glosses,omitempty"`
	*model.ProbeResult
}

func runProbe(opts *Options) error {
	st, err := trees.ParseStyle(opts.Style)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--style: %w", err))
	}
	if st == trees.StyleWords {
		return factory.WithExit(factory.ExitUsage, errors.New("--style words: every structure reads the same sentence; probe paper, ptb or nopos"))
	}
	if opts.Chunk < 1 {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--chunk-pairs must be ≥ 1, got %d", opts.Chunk))
	}
	if opts.Reading != "" && opts.Pair == "" {
		return factory.WithExit(factory.ExitUsage, errors.New("--reading needs --pair"))
	}
	if opts.Ablate != "" || opts.MaskBox != "" || opts.SwapImages {
		return runCounterfactual(opts, st)
	}
	rep := probeReport{Checkpoint: opts.Config.Checkpoint, Data: opts.Config.Data}
	var (
		data    model.Split
		idx     []int
		reading = -1
	)
	if opts.Pair != "" {
		var p loader.Pair
		if data, idx, p, err = probePair(opts.Config.Data, opts.Pair, loader.Options{AllowOutside: opts.AllowOutside}); err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
		if reading, err = parseReading(opts.Reading, &p); err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
		rep.Pair, rep.Sentence = p.ID, p.Sentence
		for _, r := range p.Readings {
			rep.Glosses = append(rep.Glosses, r.Gloss)
		}
	} else {
		if data, err = demo.OpenSplit(opts.Config.Data, opts.Split, loader.Options{AllowOutside: opts.AllowOutside}); err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
		rep.Split = opts.Split
	}
	rep.Pairs = len(idx)
	if idx == nil {
		rep.Pairs = data.Len()
	}
	if launched, err := opts.Ranks.Launch(opts.Cmd, nil); launched {
		return err
	}
	var res *model.ProbeResult
	rank := 0
	err = opts.WithRankModel(opts.Cmd, &opts.Ranks, func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer, g *torch.ProcessGroup) (err error) {
		if g != nil {
			rank = g.Rank()
		}
		res, err = model.Probe(ctx, m, tok, data, idx, model.EvalOptions{Style: st, ChunkPairs: opts.Chunk, Worker: w, Group: g})
		return err
	})
	if err != nil || rank != 0 {
		return err
	}
	rep.ProbeResult = res
	if reading >= 0 {
		res.Probes = res.Probes[reading : reading+1]
	}
	out := opts.Cmd.OutOrStdout()
	switch {
	case opts.JSON:
		if opts.Pair == "" && !opts.Scores {
			res.Probes = nil
		}
		return json.NewEncoder(out).Encode(rep)
	case opts.Pair != "":
		writeProbePair(out, &rep)
	default:
		writeProbeSplit(out, &rep)
	}
	return nil
}

// probePair finds the pair with id in --data. The demo's pairs are found
// from their ids; a manifest's are searched.
func probePair(data, id string, opts loader.Options) (model.Split, []int, loader.Pair, error) {
	if data == demo.Name {
		s, i, p, err := demo.FindPair(id)
		return s, []int{i}, p, err
	}
	s, idx, err := demo.PickPairs(data, "all", id, 1, opts)
	if err != nil {
		return nil, nil, loader.Pair{}, err
	}
	p, err := s.Pair(idx[0])
	return s, idx, p, err
}

// readingName is a reading's letter: A for reading 0.
func readingName(r int) string {
	if r < 26 {
		return string(rune('A' + r))
	}
	return fmt.Sprint(r + 1)
}

// parseReading turns --reading into a reading index of p, -1 for all.
func parseReading(s string, p *loader.Pair) (int, error) {
	if s == "" {
		return -1, nil
	}
	var names []string
	for r := range p.Readings {
		names = append(names, strings.ToLower(readingName(r)))
		if strings.EqualFold(s, readingName(r)) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("--reading %q: pair %s has readings %s", s, termtext.Sanitize(p.ID), strings.Join(names, ", "))
}

// writeProbePair prints each reading's structures, highest margin first.
func writeProbePair(w io.Writer, r *probeReport) {
	fmt.Fprintf(w, "%s (%s): %s\ncheckpoint %s, %s linearization\n", r.Pair, termtext.Sanitize(familyOf(r)), termtext.Sanitize(r.Sentence), r.Checkpoint, r.Style)
	for _, rp := range r.Probes {
		n := len(r.Glosses)
		own := readingName(rp.Reading)
		gloss := ""
		if rp.Reading < n && r.Glosses[rp.Reading] != "" {
			gloss = " (" + termtext.Sanitize(r.Glosses[rp.Reading]) + ")"
		}
		verdict := "not discriminated"
		if rp.Discriminated {
			verdict = "discriminated"
		}
		fmt.Fprintf(w, "\nReading %s%s: %d structures; its tree ranks %d for image %s, the other reading's tree %d for its image: %s\n",
			own, gloss, len(rp.Structures), rp.OwnRank, own, rp.OtherRank, verdict)
		header := fmt.Sprintf("  %4s", "#")
		for k := range n {
			header += fmt.Sprintf("  %8s", "image "+readingName(k))
		}
		header += fmt.Sprintf("  %8s  %s", "margin", "structure")
		fmt.Fprintln(w, header)
		for i, s := range rp.Structures {
			line := fmt.Sprintf("  %4d", i+1)
			for _, v := range s.Logits {
				line += fmt.Sprintf("  %8.3f", v)
			}
			what := "alternative"
			switch s.Role {
			case model.RoleOriginal:
				what = "reading " + own + " (its own tree)"
			case model.RoleReading:
				what = "reading " + readingName(s.Reading)
			}
			if s.Move != nil {
				what += ": " + s.Move.Describe(rp.Words)
			}
			fmt.Fprintf(w, "%s  %+8.3f  %s\n        %s\n", line, s.Margin, what, s.Tree)
		}
	}
	fmt.Fprintf(w, "\nmargin = logit for the reading's image minus the highest for another image.\n")
}

func familyOf(r *probeReport) string {
	if len(r.Probes) > 0 {
		return r.Probes[0].Family
	}
	return ""
}

// writeProbeSplit prints the tallies overall and per family.
func writeProbeSplit(w io.Writer, r *probeReport) {
	fmt.Fprintf(w, "checkpoint %s, data %s (%s split, %d pairs), %s linearization\n\n", r.Checkpoint, r.Data, r.Split, r.Pairs, r.Style)
	labels := []string{"All"}
	tallies := []model.ProbeTally{r.ProbeTally}
	for _, f := range r.Families {
		labels = append(labels, "  "+termtext.Sanitize(f.Family))
		tallies = append(tallies, f.ProbeTally)
	}
	width := len("Family")
	for _, l := range labels {
		width = max(width, len(l))
	}
	fmt.Fprintf(w, "%-*s  %8s  %10s  %9s  %8s  %10s  %13s  %5s\n", width, "Family", "Readings", "Structures", "Reachable", "Own rank", "Other rank", "Discriminated", "Score")
	for i, t := range tallies {
		fmt.Fprintf(w, "%-*s  %8d  %10.2f  %9d  %8.2f  %10.2f  %13d  %5.2f\n", width, labels[i], t.Readings, t.Structures, t.Reachable, t.OwnRank, t.OtherRank, t.Discriminated, t.Score)
	}
	fmt.Fprintf(w, "\n%s\nStructures, ranks: means per reading. Reachable: readings whose alternatives hold the other reading's tree.\n", probeDefinition)
	if r.Truncated > 0 {
		fmt.Fprintf(w, "warning: %d inputs were cut to the context length\n", r.Truncated)
	}
}
