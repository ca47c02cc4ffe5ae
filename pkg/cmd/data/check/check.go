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

--data demo checks the embedded demo's pairs.`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runCheck),
	}
	config.AddFlags(cmd.Flags(), "data")
	cmd.Flags().BoolVar(&opts.Load.CheckImages, "check-images", false, "decode every image, not only check that it exists")
	cmd.Flags().BoolVar(&opts.Load.AllowOutside, "allow-outside", false, "accept image paths outside the manifest's folder")
	cmd.Flags().BoolVar(&opts.AllowLeakage, "allow-leakage", false, "report pairs and sentences in more than one split as warnings, not problems")
	return cmd
}

func runCheck(opts *CheckOptions) error {
	w := termtext.NewWriter(opts.Cmd.OutOrStdout())
	var problems loader.Errors
	pairs := 0
	name := opts.Config.Data
	leaks := loader.NewLeakage(name)
	if name == "demo" {
		ps, err := synth.Generate(synth.Demo())
		if err != nil {
			return err
		}
		pairs = len(ps)
		for i := range ps {
			leaks.Add(i+1, &ps[i])
		}
		if err := loader.Validate(ps, "demo"); err != nil && !errors.As(err, &problems) {
			return err
		}
	} else {
		var err error
		problems, err = loader.CheckLines(name, opts.Load, func(line int, p loader.Pair) { pairs++; leaks.Add(line, &p) })
		if err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
	}
	for _, l := range leaks.Errors() {
		if opts.AllowLeakage {
			fmt.Fprintln(w, "warning:", l)
		} else {
			problems = append(problems, l)
		}
	}
	lines := map[int]bool{}
	for _, p := range problems {
		fmt.Fprintln(w, p)
		lines[p.Line] = true
	}
	if len(problems) == 0 {
		fmt.Fprintf(w, "%s: %d pairs, no problems\n", name, pairs)
		return nil
	}
	fmt.Fprintf(w, "%s: %d good pairs; %d problems on %d lines\n", name, pairs, len(problems), len(lines))
	return factory.WithExit(factory.ExitFailure, fmt.Errorf("%s has %d problems", name, len(problems)))
}
