package trees

import (
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/internal/termtext"
)

// nonNil gives JSON an empty list instead of null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type partJSON struct {
	Start int      `json:"start"`
	End   int      `json:"end"`
	Kind  PartKind `json:"kind"`
	Node  int      `json:"node"` // preorder index
	Label string   `json:"label"`
	Word  *int     `json:"word,omitempty"`
}

// LinearOut is a linearization as `lavascope tree linearize --json` prints
// it: the text, the words, and every part with its span, kind and node
// (preorder index); Unmatched lists the parts a diff found in one tree only.
type LinearOut struct {
	Style     Style      `json:"style"`
	Text      string     `json:"text"`
	Words     []string   `json:"words"`
	Parts     []partJSON `json:"parts"`
	Unmatched []partJSON `json:"unmatched,omitempty"`
}

// LinearJSON is l, with the parts of index unmatched, as LinearOut.
func LinearJSON(l *Linear, unmatched []int) LinearOut {
	index := map[*Node]int{}
	l.Tree.Walk(func(n *Node) bool {
		index[n] = len(index)
		return true
	})
	part := func(p Part) partJSON {
		j := partJSON{Start: p.Start, End: p.End, Kind: p.Kind, Node: index[p.Node], Label: p.Node.Label}
		if p.Word >= 0 {
			w := p.Word
			j.Word = &w
		}
		return j
	}
	o := LinearOut{Style: l.Style, Text: l.Text, Words: nonNil(l.Tree.Words()), Parts: []partJSON{}}
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

// DiffJSON is d, with the linearizations of both trees and their unmatched
// parts, as `lavascope tree diff --json` prints it.
func DiffJSON(d *TreeDiff, la, lb *Linear, ua, ub []int) any {
	span := func(c Constituent) spanJSON {
		return spanJSON{c.Label, c.Start, c.End, strings.Join(d.Words[c.Start:c.End], " ")}
	}
	spans := func(cs []Constituent) []spanJSON {
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
		A          LinearOut  `json:"a"`
		B          LinearOut  `json:"b"`
	}{nonNil(d.Words), d.Equal(), spans(d.OnlyA), spans(d.OnlyB), div, moves, LinearJSON(la, ua), LinearJSON(lb, ub)}
}

// WriteDiff prints d for a reader: what only one tree has, where they
// differ, the moves, and each linearization with its unmatched parts marked.
// Text from the trees is sanitised for the terminal.
func WriteDiff(w io.Writer, d *TreeDiff, la, lb *Linear, ua, ub []int) error {
	site := func(c Constituent) string {
		return fmt.Sprintf("%s[%d,%d)", termtext.Sanitize(c.Label), c.Start, c.End)
	}
	span := func(c Constituent) string {
		return fmt.Sprintf("%s %q", site(c), termtext.Sanitize(strings.Join(d.Words[c.Start:c.End], " ")))
	}
	list := func(cs []Constituent) string {
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
		l         *Linear
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
func markParts(l *Linear, parts []int) string {
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
