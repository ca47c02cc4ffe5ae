// Package shared holds what the tree subcommands share: reading trees
// from the arguments or stdin, and the terminal's width.
package shared

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

// ReadTrees parses every tree of the arguments, or of stdin when there are
// none. Malformed input exits with status 2.
func ReadTrees(cmd *cobra.Command, args []string) ([]*trees.Node, error) {
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

// TerminalWidth is w's width in columns when w is a terminal, else 0 (no limit).
func TerminalWidth(w io.Writer) int {
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

// ReadStyled parses --style, then reads the trees as ReadTrees does.
func ReadStyled(cmd *cobra.Command, args []string, style string) (trees.Style, []*trees.Node, error) {
	st, err := trees.ParseStyle(style)
	if err != nil {
		return st, nil, factory.WithExit(factory.ExitUsage, fmt.Errorf("--style: %w", err))
	}
	ts, err := ReadTrees(cmd, args)
	return st, ts, err
}
