// Package diff is `lavascope tree diff`: the two readings of one sentence
// compared by trees.Diff.
package diff

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/tree/shared"
	"github.com/lavascope/lavascope/trees"
)

// DiffOptions are the settings of one `lavascope tree diff` run.
type DiffOptions struct {
	*factory.Factory
	factory.Invocation
	Style string
	JSON  bool
}

// NewCmdDiff builds `lavascope tree diff`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdDiff(f *factory.Factory, runF func(*DiffOptions) error) *cobra.Command {
	opts := &DiffOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "diff [TREE_A TREE_B]",
		Short: "Compare the two readings of one sentence",
		Long: `diff compares two trees over the same words: the labelled spans only one
of them has, the smallest constituent holding every difference, the moved
constituent with its attachment site in each tree, and the brackets of each
linearization (in --style) that the other lacks, marked with ^.`,
		Example: `  lavascope tree diff '(S (NP (NNP Danny)) (VP (VBD saw) (NP (DT a) (NN man)) (PP (IN with) (NP (DT a) (NN telescope)))) (. .))' \
                     '(S (NP (NNP Danny)) (VP (VBD saw) (NP (NP (DT a) (NN man)) (PP (IN with) (NP (DT a) (NN telescope))))) (. .))'`,
		RunE: factory.RunE(opts, runF, runDiff),
	}
	cmd.Flags().StringVar(&opts.Style, "style", "paper", "linearization whose brackets are compared: "+strings.Join(trees.StyleNames(), ", "))
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the diff as one JSON object")
	return cmd
}

func runDiff(opts *DiffOptions) error {
	st, ts, err := shared.ReadStyled(opts.Cmd, opts.Args, opts.Style)
	if err != nil {
		return err
	}
	if len(ts) != 2 {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("diff compares two trees, got %d", len(ts)))
	}
	d, err := trees.Diff(ts[0], ts[1])
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	la, lb := trees.Linearize(ts[0], st), trees.Linearize(ts[1], st)
	ua, err := d.UnmatchedParts(la)
	if err != nil {
		return err
	}
	ub, err := d.UnmatchedParts(lb)
	if err != nil {
		return err
	}
	if opts.JSON {
		return json.NewEncoder(opts.Cmd.OutOrStdout()).Encode(trees.DiffJSON(d, la, lb, ua, ub))
	}
	return trees.WriteDiff(opts.Cmd.OutOrStdout(), d, la, lb, ua, ub)
}
