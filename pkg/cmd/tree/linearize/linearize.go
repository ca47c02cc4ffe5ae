// Package linearize is `lavascope tree linearize`: trees written as the
// strings the text encoder reads.
package linearize

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/tree/shared"
	"github.com/lavascope/lavascope/trees"
)

// LinearizeOptions are the settings of one `lavascope tree linearize` run.
type LinearizeOptions struct {
	*factory.Factory
	factory.Invocation
	Style string
	JSON  bool
}

// NewCmdLinearize builds `lavascope tree linearize`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdLinearize(f *factory.Factory, runF func(*LinearizeOptions) error) *cobra.Command {
	opts := &LinearizeOptions{Factory: f}
	cmd := &cobra.Command{
		Use:   "linearize [TREE...]",
		Short: "Write trees as the strings the text encoder reads",
		Long: `linearize writes each tree on one line in a style:
  paper  lower-cased bracketing with POS tags (the seed paper's input)
  ptb    the bracketing in its original case
  nopos  lower-cased phrase brackets over bare words
  words  the plain sentence (the text baseline)
With --json it also gives, for each part of the string (an opening bracket
and label, a word, a closing bracket), its byte range and node.`,
		Example: `  lavascope tree linearize --style nopos '(S (NP (NNP Danny)) (VP (VBD left)) (. .))'`,
		RunE:    factory.RunE(opts, runF, runLinearize),
	}
	cmd.Flags().StringVar(&opts.Style, "style", "paper", "linearization style: "+strings.Join(trees.StyleNames(), ", "))
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print each linearization as a JSON object with its parts, one per line")
	return cmd
}

func runLinearize(opts *LinearizeOptions) error {
	st, ts, err := shared.ReadStyled(opts.Cmd, opts.Args, opts.Style)
	if err != nil {
		return err
	}
	out := opts.Cmd.OutOrStdout()
	enc := json.NewEncoder(out)
	for _, t := range ts {
		l := trees.Linearize(t, st)
		if !opts.JSON {
			if _, err := fmt.Fprintln(out, l.Text); err != nil {
				return err
			}
			continue
		}
		if err := enc.Encode(trees.LinearJSON(l, nil)); err != nil {
			return err
		}
	}
	return nil
}
