// Package check is `lavascope data check`: every problem of a manifest, as
// package loader finds them.
package check

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
)

// CheckOptions are the settings of one `lavascope data check` run.
type CheckOptions struct {
	*factory.Factory
	factory.Invocation
	Load         loader.Options
	AllowLeakage bool
	// Split narrows the count to one split ("all": every pair); every
	// line is checked whatever it says, since a leak spans splits.
	Split string
}

// NewCmdCheck builds `lavascope data check`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdCheck(f *factory.Factory, runF func(*CheckOptions) error) *cobra.Command {
	opts := &CheckOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "check --data FILE",
		Short: "Report every problem in a manifest; exit 1 when there is any",
		Long: `check reads a pair manifest (JSONL) and reports every problem it finds, each
as FILE:LINE: FIELD: what is wrong. It checks required fields and their
types, at least two readings a pair, unique ids, trees that parse and share
their words, image files that exist inside the manifest's folder, and boxes
that lie inside their image. --check-images also decodes every image.
A pair (same trees and images) or a sentence in more than one split is a
leak, reported at each line of the later splits; --allow-leakage makes
leaks warnings.

The rules beyond the format:
  - a line is UTF-8, gives each key once per object (keys match ignoring
    case), and the manifest has at least one pair;
  - an id has at most 200 bytes and no control or bidirectional characters;
    ids become file names (letters, digits, '.', '-' and '_' kept, anything
    else '_'), and two ids whose file names are equal ignoring case (pp/7 and
    pp_7, PP-7 and pp-7) are refused;
  - the sentence reads as the words of readings[0]'s tree: both lower-cased,
    keeping only letters, digits, marks and symbols (spaces and punctuation
    dropped, the tree's -LRB- -RRB- -LSB- -RSB- -LCB- -RCB- too), must be
    equal, so "Mary's bag." matches the leaves Mary 's bag . and "didn't"
    matches did n't;
  - an image path stays inside the manifest's folder once symbolic links are
    resolved (--allow-outside accepts any), and its header says it decodes
    to at most 256 MiB (width x height x bytes per pixel).

Text from the manifest is printed with control and bidirectional characters
escaped (\x1b, \u202e).

--data demo checks the embedded demo's pairs, all splits of them, as
lavascope data stats counts them. Every line is checked whatever --split
says; --split narrows the count that the last line reports.`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runCheck),
	}
	config.AddFlags(cmd.Flags(), "data")
	cmd.Flags().BoolVar(&opts.Load.CheckImages, "check-images", false, "decode every image, not only check that it exists")
	cmd.Flags().BoolVar(&opts.Load.AllowOutside, "allow-outside", false, "accept image paths outside the manifest's folder")
	cmd.Flags().BoolVar(&opts.AllowLeakage, "allow-leakage", false, "report pairs and sentences in more than one split as warnings, not problems")
	cmd.Flags().StringVar(&opts.Split, "split", "all", "split to count: train, val, test, or all (every line is checked)")
	return cmd
}

func runCheck(opts *CheckOptions) error {
	split, err := loader.SplitFlag(opts.Split)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	w := termtext.NewWriter(opts.Cmd.OutOrStdout())
	var problems loader.Errors
	pairs, inSplit := 0, 0
	count := func(p *loader.Pair) {
		pairs++
		if split == "" || p.Split == split {
			inSplit++
		}
	}
	name := opts.Config.Data
	leaks := loader.NewLeakage(name)
	if name == "demo" {
		cfg := synth.Demo()
		cfg.Split = ""
		ps, err := synth.Generate(cfg)
		if err != nil {
			return err
		}
		for i := range ps {
			count(&ps[i])
			leaks.Add(i+1, &ps[i])
		}
		if err := loader.Validate(ps, "demo"); err != nil && !errors.As(err, &problems) {
			return err
		}
	} else {
		problems, err = loader.CheckLines(name, opts.Load, func(line int, p loader.Pair) { count(&p); leaks.Add(line, &p) })
		if err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
	}
	demoLeaks := 0
	for _, l := range leaks.Errors() {
		switch {
		case name == "demo":
			// The demo's grammar is small: its sentences recur across
			// splits by construction, each time with other images.
			demoLeaks++
		case opts.AllowLeakage:
			fmt.Fprintln(w, "warning:", l)
		default:
			problems = append(problems, l)
		}
	}
	if demoLeaks > 0 {
		fmt.Fprintf(w, "note: %d demo pairs repeat a sentence of another split (a small synthetic grammar; the images differ): not counted as problems\n", demoLeaks)
	}
	lines := map[int]bool{}
	for _, p := range problems {
		fmt.Fprintln(w, p)
		lines[p.Line] = true
	}
	counted, shown := "all splits counted", pairs
	if split != "" {
		counted, shown = fmt.Sprintf("split %s counted; %d in all splits", split, pairs), inSplit
	}
	if len(problems) == 0 {
		fmt.Fprintf(w, "%s: %d pairs, no problems (%s)\n", name, shown, counted)
		return nil
	}
	fmt.Fprintf(w, "%s: %d good pairs; %d problems on %d lines (%s)\n", name, shown, len(problems), len(lines), counted)
	return factory.WithExit(factory.ExitFailure, fmt.Errorf("%s has %d problems", name, len(problems)))
}
