// Package tree is `lavascope tree` and its subcommands show, linearize and
// diff, over package trees.
package tree

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/trees"
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
	cmd.AddCommand(NewCmdShow(f, nil), NewCmdLinearize(f, nil), NewCmdDiff(f, nil))
	return cmd
}

// readTrees parses every tree of the arguments, or of stdin when there are
// none. Malformed input exits with status 2.
func readTrees(cmd *cobra.Command, args []string) ([]*trees.Node, error) {
	if len(args) == 0 {
		if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return nil, factory.WithExit(factory.ExitUsage, errors.New("no trees: give them as arguments or on stdin"))
		}
		args = []string{"-"}
	}
	var all []*trees.Node
	for i, arg := range args {
		src, where := arg, fmt.Sprintf("argument %d", i+1)
		if arg == "-" {
			b, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				return nil, fmt.Errorf("reading stdin: %w", err)
			}
			src, where = string(b), "stdin"
		}
		ts, err := trees.ParseAll(src)
		if err != nil {
			return nil, factory.WithExit(factory.ExitUsage, fmt.Errorf("%s: %w", where, err))
		}
		all = append(all, ts...)
	}
	return all, nil
}

// terminalWidth is w's width in columns when w is a terminal, else 0 (no limit).
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}
