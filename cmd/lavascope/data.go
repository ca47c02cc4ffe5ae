package main

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
)

func init() {
	addCommand(func(a *app) *cobra.Command {
		data := &cobra.Command{
			Use:   "data",
			Short: "Check a pair manifest or count what is in it",
			Args:  cobra.NoArgs,
		}
		data.AddCommand(dataCheckCmd(a), dataStatsCmd(a))
		return data
	})
}

func dataCheckCmd(a *app) *cobra.Command {
	var opts loader.Options
	var allowLeakage bool
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := termtext.NewWriter(cmd.OutOrStdout())
			var problems loader.Errors
			pairs := 0
			name := a.cfg.Data
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
				problems, err = loader.CheckLines(name, opts, func(line int, p loader.Pair) { pairs++; leaks.Add(line, &p) })
				if err != nil {
					return withExit(exitUsage, err)
				}
			}
			for _, l := range leaks.Errors() {
				if allowLeakage {
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
			return withExit(exitFailure, fmt.Errorf("%s has %d problems", name, len(problems)))
		},
	}
	config.AddFlags(cmd.Flags(), "data")
	cmd.Flags().BoolVar(&opts.CheckImages, "check-images", false, "decode every image, not only check that it exists")
	cmd.Flags().BoolVar(&opts.AllowOutside, "allow-outside", false, "accept image paths outside the manifest's folder")
	cmd.Flags().BoolVar(&allowLeakage, "allow-leakage", false, "report pairs and sentences in more than one split as warnings, not problems")
	return cmd
}

func dataStatsCmd(a *app) *cobra.Command {
	var allowOutside bool
	cmd := &cobra.Command{
		Use:   "stats --data FILE",
		Short: "Count pairs per split and ambiguity family",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var pairs []loader.Pair
			var problems loader.Errors
			name := a.cfg.Data
			if name == "demo" {
				cfg := synth.Demo()
				cfg.Split = ""
				var err error
				if pairs, err = synth.Generate(cfg); err != nil {
					return err
				}
				name = fmt.Sprintf("demo (synthetic, %d pairs, seed %d)", cfg.Pairs, cfg.Seed)
			} else {
				var err error
				problems, err = loader.Check(name, loader.Options{AllowOutside: allowOutside}, func(p loader.Pair) { pairs = append(pairs, p) })
				if err != nil {
					return withExit(exitUsage, err)
				}
			}
			writeStats(termtext.NewWriter(cmd.OutOrStdout()), name, pairs)
			if len(problems) > 0 {
				lines := map[int]bool{}
				for _, p := range problems {
					lines[p.Line] = true
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d lines with problems are not counted (see lavascope data check)\n", len(lines))
			}
			return nil
		},
	}
	config.AddFlags(cmd.Flags(), "data")
	cmd.Flags().BoolVar(&allowOutside, "allow-outside", false, "accept image paths outside the manifest's folder")
	return cmd
}

func writeStats(w io.Writer, name string, pairs []loader.Pair) {
	count := map[[2]string]int{}
	var families []string
	readings := 0
	roles := map[string]int{}
	for _, p := range pairs {
		fam := termtext.Sanitize(p.Ambiguity)
		if fam == "" {
			fam = "(none)"
		}
		if !slices.Contains(families, fam) {
			families = append(families, fam)
		}
		count[[2]string{fam, p.Split}]++
		count[[2]string{fam, ""}]++
		count[[2]string{"", p.Split}]++
		readings += len(p.Readings)
		for _, r := range p.Readings {
			for _, b := range r.Boxes {
				roles[b.Role]++
			}
		}
	}
	slices.Sort(families)
	fmt.Fprintf(w, "%s: %d pairs, %d readings\n\n", name, len(pairs), readings)
	width := len("family")
	for _, f := range families {
		width = max(width, len(f))
	}
	fmt.Fprintf(w, "%-*s  %6s  %6s  %6s  %6s\n", width, "family", loader.SplitTrain, loader.SplitVal, loader.SplitTest, "total")
	for _, f := range append(families, "") {
		label, total := f, count[[2]string{f, ""}]
		if f == "" {
			label, total = "total", len(pairs)
		}
		fmt.Fprintf(w, "%-*s  %6d  %6d  %6d  %6d\n", width, label,
			count[[2]string{f, loader.SplitTrain}], count[[2]string{f, loader.SplitVal}], count[[2]string{f, loader.SplitTest}], total)
	}
	if n := roles[loader.RoleEvidence] + roles[loader.RolePerson] + roles[loader.RoleObject]; n > 0 {
		fmt.Fprintf(w, "\nboxes: %d evidence, %d person, %d object\n", roles[loader.RoleEvidence], roles[loader.RolePerson], roles[loader.RoleObject])
	}
}
