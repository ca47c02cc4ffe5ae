// Package tree is `lavascope tree` and its subcommands show, linearize and
// diff, over package trees.
package tree

import (
	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/tree/diff"
	"github.com/lavascope/lavascope/pkg/cmd/tree/linearize"
	"github.com/lavascope/lavascope/pkg/cmd/tree/show"
)

// NewCmdTree builds `lavascope tree`.
func NewCmdTree(f *factory.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tree",
		Short: "Show, linearize and compare Penn Treebank parse trees",
		Long: `The tree commands read Penn Treebank bracketings, such as
  (S (NP (NNP Danny)) (VP (VBD left)) (. .))
from their arguments (each may hold several trees; "-" reads stdin) or, with
none, from stdin. A malformed tree is reported with its line:column and exit
status 2.`,
	}
	cmd.AddCommand(show.NewCmdShow(f, nil), linearize.NewCmdLinearize(f, nil), diff.NewCmdDiff(f, nil))
	return cmd
}
