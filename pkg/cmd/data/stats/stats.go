// Package stats is `lavascope data stats`: pairs counted per split and
// ambiguity family.
package stats

import (
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
)

// StatsOptions are the settings of one `lavascope data stats` run.
type StatsOptions struct {
	*factory.Factory
	factory.Invocation
	AllowOutside bool
	// Split narrows the count to one split ("all": every pair).
	Split string
}

// NewCmdStats builds `lavascope data stats`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdStats(f *factory.Factory, runF func(*StatsOptions) error) *cobra.Command {
	opts := &StatsOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "stats --data FILE",
		Short: "Count pairs per split and ambiguity family",
		Long: `stats counts the pairs of a manifest, or of the embedded demo (--data demo),
per split and ambiguity family: all splits, as lavascope data check counts
them, or the one --split names.`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runStats),
	}
	config.AddFlags(cmd.Flags(), "data")
	cmd.Flags().BoolVar(&opts.AllowOutside, "allow-outside", false, "accept image paths outside the manifest's folder")
	cmd.Flags().StringVar(&opts.Split, "split", "all", "split to count: train, val, test, or all")
	return cmd
}

func runStats(opts *StatsOptions) error {
	split, err := loader.SplitFlag(opts.Split)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	var pairs []loader.Pair
	var problems loader.Errors
	name := opts.Config.Data
	if name == "demo" {
		cfg := synth.Demo()
		cfg.Split = ""
		if pairs, err = synth.Generate(cfg); err != nil {
			return err
		}
		name = fmt.Sprintf("demo (synthetic, seed %d)", cfg.Seed)
	} else {
		problems, err = loader.Check(name, loader.Options{AllowOutside: opts.AllowOutside}, func(p loader.Pair) { pairs = append(pairs, p) })
		if err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
	}
	all := len(pairs)
	pairs = loader.FilterSplit(pairs, split)
	counted := "all splits counted"
	if split != "" {
		counted = fmt.Sprintf("split %s counted; %d in all splits", split, all)
	}
	writeStats(termtext.NewWriter(opts.Cmd.OutOrStdout()), name, counted, pairs)
	if len(problems) > 0 {
		lines := map[int]bool{}
		for _, p := range problems {
			lines[p.Line] = true
		}
		fmt.Fprintf(opts.Cmd.OutOrStdout(), "%d lines with problems are not counted (see lavascope data check)\n", len(lines))
	}
	return nil
}

// writeStats writes the table of pairs; counted says how many and of which
// split, as data check says it.
func writeStats(w io.Writer, name, counted string, pairs []loader.Pair) {
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
	fmt.Fprintf(w, "%s: %d pairs, %d readings (%s)\n\n", name, len(pairs), readings, counted)
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
