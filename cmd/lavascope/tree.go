package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/x/ansi"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/trees"
)

func init() {
	addCommand(func(*app) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "tree",
			Short: "Show, linearize and compare Penn Treebank parse trees",
			Long: `The tree commands read Penn Treebank bracketings, such as
  (S (NP (NNP Danny)) (VP (VBD left)) (. .))
from their arguments (each may hold several trees; "-" reads stdin) or, with
none, from stdin. A malformed tree is reported with its line:column and exit
status 2.`,
		}
		cmd.AddCommand(newTreeShowCmd(), newTreeLinearizeCmd(), newTreeDiffCmd())
		return cmd
	})
}

func newTreeShowCmd() *cobra.Command {
	var (
		layout string
		width  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show [TREE...]",
		Short: "Draw trees in the terminal",
		Example: `  lavascope tree show '(S (NP (NNP Danny)) (VP (VBD left)) (. .))'
  lavascope tree show --layout compact --width 40 < trees.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if layout != "vertical" && layout != "compact" {
				return withExit(exitUsage, fmt.Errorf("--layout %q: want vertical or compact", layout))
			}
			ts, err := readTrees(cmd, args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				for _, t := range ts {
					if err := enc.Encode(struct {
						Tree  string      `json:"tree"`
						Words []string    `json:"words"`
						Root  *trees.Node `json:"root"`
					}{trees.Format(t), nonNil(t.Words()), t}); err != nil {
						return err
					}
				}
				return nil
			}
			if !cmd.Flags().Changed("width") {
				width = terminalWidth(out)
			}
			for i, t := range ts {
				if i > 0 {
					fmt.Fprintln(out)
				}
				l := trees.Vertical(t, width)
				if layout == "compact" {
					l = trees.Compact(t, width)
				}
				if _, err := io.WriteString(out, l.String()); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&layout, "layout", "vertical", "vertical (box drawing) or compact (bracketed, folded)")
	cmd.Flags().IntVar(&width, "width", 0, "fit lines to this many columns; 0 for no limit (default: the terminal's width)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each tree as a JSON object, one per line")
	return cmd
}

func newTreeLinearizeCmd() *cobra.Command {
	var (
		style  string
		asJSON bool
	)
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
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := trees.ParseStyle(style)
			if err != nil {
				return withExit(exitUsage, fmt.Errorf("--style: %w", err))
			}
			ts, err := readTrees(cmd, args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			for _, t := range ts {
				l := trees.Linearize(t, st)
				if !asJSON {
					if _, err := fmt.Fprintln(out, l.Text); err != nil {
						return err
					}
					continue
				}
				if err := enc.Encode(linearJSON(l, nil)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&style, "style", "paper", "linearization style: "+strings.Join(trees.StyleNames(), ", "))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print each linearization as a JSON object with its parts, one per line")
	return cmd
}

func newTreeDiffCmd() *cobra.Command {
	var (
		style  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "diff [TREE_A TREE_B]",
		Short: "Compare the two readings of one sentence",
		Long: `diff compares two trees over the same words: the labelled spans only one
of them has, the smallest constituent holding every difference, the moved
constituent with its attachment site in each tree, and the brackets of each
linearization (in --style) that the other lacks, marked with ^.`,
		Example: `  lavascope tree diff '(S (NP (NNP Danny)) (VP (VBD saw) (NP (DT a) (NN man)) (PP (IN with) (NP (DT a) (NN telescope)))) (. .))' \
                     '(S (NP (NNP Danny)) (VP (VBD saw) (NP (NP (DT a) (NN man)) (PP (IN with) (NP (DT a) (NN telescope))))) (. .))'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := trees.ParseStyle(style)
			if err != nil {
				return withExit(exitUsage, fmt.Errorf("--style: %w", err))
			}
			ts, err := readTrees(cmd, args)
			if err != nil {
				return err
			}
			if len(ts) != 2 {
				return withExit(exitUsage, fmt.Errorf("diff compares two trees, got %d", len(ts)))
			}
			d, err := trees.Diff(ts[0], ts[1])
			if err != nil {
				return withExit(exitUsage, err)
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
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(diffJSON(d, la, lb, ua, ub))
			}
			return writeDiff(cmd.OutOrStdout(), d, la, lb, ua, ub)
		},
	}
	cmd.Flags().StringVar(&style, "style", "paper", "linearization whose brackets are compared: "+strings.Join(trees.StyleNames(), ", "))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the diff as one JSON object")
	return cmd
}

// readTrees parses every tree of the arguments, or of stdin when there are
// none. Malformed input exits with status 2.
func readTrees(cmd *cobra.Command, args []string) ([]*trees.Node, error) {
	if len(args) == 0 {
		if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return nil, withExit(exitUsage, errors.New("no trees: give them as arguments or on stdin"))
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
			return nil, withExit(exitUsage, fmt.Errorf("%s: %w", where, err))
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

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type partJSON struct {
	Start int            `json:"start"`
	End   int            `json:"end"`
	Kind  trees.PartKind `json:"kind"`
	Node  int            `json:"node"` // preorder index
	Label string         `json:"label"`
	Word  *int           `json:"word,omitempty"`
}

type linearOut struct {
	Style     trees.Style `json:"style"`
	Text      string      `json:"text"`
	Words     []string    `json:"words"`
	Parts     []partJSON  `json:"parts"`
	Unmatched []partJSON  `json:"unmatched,omitempty"`
}

func linearJSON(l *trees.Linear, unmatched []int) linearOut {
	index := map[*trees.Node]int{}
	l.Tree.Walk(func(n *trees.Node) bool {
		index[n] = len(index)
		return true
	})
	part := func(p trees.Part) partJSON {
		j := partJSON{Start: p.Start, End: p.End, Kind: p.Kind, Node: index[p.Node], Label: p.Node.Label}
		if p.Word >= 0 {
			w := p.Word
			j.Word = &w
		}
		return j
	}
	o := linearOut{Style: l.Style, Text: l.Text, Words: nonNil(l.Tree.Words()), Parts: []partJSON{}}
	for _, p := range l.Parts {
		o.Parts = append(o.Parts, part(p))
	}
	for _, i := range unmatched {
		o.Unmatched = append(o.Unmatched, part(l.Parts[i]))
	}
	return o
}

type spanJSON struct {
	Label string `json:"label"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Text  string `json:"text"`
}

func diffJSON(d *trees.TreeDiff, la, lb *trees.Linear, ua, ub []int) any {
	span := func(c trees.Constituent) spanJSON {
		return spanJSON{c.Label, c.Start, c.End, strings.Join(d.Words[c.Start:c.End], " ")}
	}
	spans := func(cs []trees.Constituent) []spanJSON {
		out := []spanJSON{}
		for _, c := range cs {
			out = append(out, span(c))
		}
		return out
	}
	type moveJSON struct {
		spanJSON
		SiteA spanJSON `json:"site_a"`
		SiteB spanJSON `json:"site_b"`
	}
	moves := []moveJSON{}
	for _, m := range d.Moves {
		moves = append(moves, moveJSON{span(m.Constituent), span(m.SiteA), span(m.SiteB)})
	}
	var div *spanJSON
	if d.DivergenceA != nil {
		s := span(*d.DivergenceA)
		div = &s
	}
	return struct {
		Words      []string   `json:"words"`
		Equal      bool       `json:"equal"`
		OnlyA      []spanJSON `json:"only_a"`
		OnlyB      []spanJSON `json:"only_b"`
		Divergence *spanJSON  `json:"divergence"`
		Moves      []moveJSON `json:"moves"`
		A          linearOut  `json:"a"`
		B          linearOut  `json:"b"`
	}{nonNil(d.Words), d.Equal(), spans(d.OnlyA), spans(d.OnlyB), div, moves, linearJSON(la, ua), linearJSON(lb, ub)}
}

func writeDiff(w io.Writer, d *trees.TreeDiff, la, lb *trees.Linear, ua, ub []int) error {
	site := func(c trees.Constituent) string {
		return fmt.Sprintf("%s[%d,%d)", termtext.Sanitize(c.Label), c.Start, c.End)
	}
	span := func(c trees.Constituent) string {
		return fmt.Sprintf("%s %q", site(c), termtext.Sanitize(strings.Join(d.Words[c.Start:c.End], " ")))
	}
	list := func(cs []trees.Constituent) string {
		if len(cs) == 0 {
			return "(none)"
		}
		var s []string
		for _, c := range cs {
			s = append(s, span(c))
		}
		return strings.Join(s, ", ")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "words      %s\n", termtext.Sanitize(strings.Join(d.Words, " ")))
	if d.Equal() {
		b.WriteString("the trees are the same\n")
	} else {
		fmt.Fprintf(&b, "only in A  %s\n", list(d.OnlyA))
		fmt.Fprintf(&b, "only in B  %s\n", list(d.OnlyB))
		if d.DivergenceA != nil {
			fmt.Fprintf(&b, "differ in  %s\n", span(*d.DivergenceA))
		}
		for _, m := range d.Moves {
			fmt.Fprintf(&b, "moved      %s: under %s in A, under %s in B\n", span(m.Constituent), site(m.SiteA), site(m.SiteB))
		}
	}
	for _, side := range []struct {
		name      string
		l         *trees.Linear
		unmatched []int
	}{{"A", la, ua}, {"B", lb, ub}} {
		text := termtext.Sanitize(side.l.Text)
		fmt.Fprintf(&b, "%s  %s\n", side.name, text)
		if len(side.unmatched) > 0 && text == side.l.Text {
			fmt.Fprintf(&b, "   %s\n", markParts(side.l, side.unmatched))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// markParts returns a line with ^ under the given parts of l's text, measured
// in terminal cells.
func markParts(l *trees.Linear, parts []int) string {
	marked := make([]bool, len(l.Text))
	for _, i := range parts {
		for j := l.Parts[i].Start; j < l.Parts[i].End; j++ {
			marked[j] = true
		}
	}
	var b strings.Builder
	for i := 0; i < len(l.Text); {
		g, w := ansi.FirstGraphemeCluster(l.Text[i:], ansi.GraphemeWidth)
		if g == "" {
			break
		}
		c := " "
		if marked[i] {
			c = "^"
		}
		b.WriteString(strings.Repeat(c, w))
		i += len(g)
	}
	return strings.TrimRight(b.String(), " ")
}
