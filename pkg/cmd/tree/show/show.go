// Package show is `lavascope tree show`: trees drawn for the terminal by
// package trees.
package show

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/tree/shared"
	"github.com/lavascope/lavascope/trees"
)

// ShowOptions are the settings of one `lavascope tree show` run.
type ShowOptions struct {
	*factory.Factory
	factory.Invocation
	Layout string
	Width  int
	JSON   bool
}

// NewCmdShow builds `lavascope tree show`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdShow(f *factory.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "show [TREE...]",
		Short: "Draw trees in the terminal",
		Example: `  lavascope tree show '(S (NP (NNP Danny)) (VP (VBD left)) (. .))'
  lavascope tree show --layout compact --width 40 < trees.txt`,
		RunE: factory.RunE(opts, runF, runShow),
	}
	cmd.Flags().StringVar(&opts.Layout, "layout", "vertical", "vertical (box drawing) or compact (bracketed, folded)")
	cmd.Flags().IntVar(&opts.Width, "width", 0, "fit lines to this many columns; 0 for no limit (default: the terminal's width)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print each tree as a JSON object, one per line")
	return cmd
}

func runShow(opts *ShowOptions) error {
	if opts.Layout != "vertical" && opts.Layout != "compact" {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--layout %q: want vertical or compact", opts.Layout))
	}
	ts, err := shared.ReadTrees(opts.Cmd, opts.Args)
	if err != nil {
		return err
	}
	out := opts.Cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		for _, t := range ts {
			if err := enc.Encode(struct {
				Tree  string      `json:"tree"`
				Words []string    `json:"words"`
				Root  *trees.Node `json:"root"`
			}{trees.Format(t), append([]string{}, t.Words()...), t}); err != nil { // [] rather than null when no words
				return err
			}
		}
		return nil
	}
	if !opts.Cmd.Flags().Changed("width") {
		opts.Width = shared.TerminalWidth(out)
	}
	for i, t := range ts {
		if i > 0 {
			fmt.Fprintln(out)
		}
		l := trees.Vertical(t, opts.Width)
		if opts.Layout == "compact" {
			l = trees.Compact(t, opts.Width)
		}
		if _, err := io.WriteString(out, l.String()); err != nil {
			return err
		}
	}
	return nil
}
