package trees

import (
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/internal/termtext"
)

// SegmentKind says what a piece of a laid-out line shows.
type SegmentKind uint8

const (
	// SegGuide is box-drawing: the connector that leads to Node, or the
	// indentation that continues the child list of Node.
	SegGuide SegmentKind = iota + 1
	// SegLabel is Node's label.
	SegLabel
	// SegWord is the word of the leaf Node.
	SegWord
	// SegBracket is an opening or closing bracket of Node in the compact form.
	SegBracket
	// SegSpace separates a label from a word or a constituent from the next;
	// Node is the constituent it lies in.
	SegSpace
	// SegEllipsis marks where a line was cut to fit; Node is the node whose
	// text was cut.
	SegEllipsis
)

// Segment is a run of text on one line of a layout, tied to one node. Its text
// holds no control characters or escape sequences.
type Segment struct {
	Text string
	Node *Node
	Kind SegmentKind
}

// Line is one row of a layout.
type Line []Segment

// String returns the line's text.
func (l Line) String() string {
	var b strings.Builder
	for _, s := range l {
		b.WriteString(s.Text)
	}
	return b.String()
}

// Width returns the line's width in terminal cells.
func (l Line) Width() int { return ansi.StringWidth(l.String()) }

// Layout is a tree laid out as rows of text.
type Layout []Line

// String returns the plain text of the layout, each line ending in a newline.
func (l Layout) String() string { return l.Render(nil) }

// StyleHook returns what to write before and after a segment's text, such as
// the escape sequences of a colour chosen from the segment's node and kind.
// What it returns is written as is and does not count towards the width.
type StyleHook func(Segment) (prefix, suffix string)

// Render writes the layout with each segment wrapped by hook; a nil hook
// writes plain text.
func (l Layout) Render(hook StyleHook) string {
	var b strings.Builder
	for _, line := range l {
		for _, s := range line {
			if hook == nil {
				b.WriteString(s.Text)
				continue
			}
			pre, suf := hook(s)
			b.WriteString(pre)
			b.WriteString(s.Text)
			b.WriteString(suf)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Vertical lays t out top-down, one node per line, children below their parent
// behind box-drawing connectors, a leaf as its tag and word:
//
//	S
//	├─ NP
//	│  └─ NNP Danny
//	└─ VP
//	   └─ VBD left
//
// When a line would be wider than width cells, the connectors narrow to two
// cells and then to one; lines still too wide are cut and end in "…".
// width <= 0 means no limit.
func Vertical(t *Node, width int) Layout {
	g := guideSets[0]
	if width > 0 {
		for _, cand := range guideSets {
			g = cand
			if widest(t, ansi.StringWidth(cand.tee), 0) <= width {
				break
			}
		}
	}
	var out Layout
	var walk func(n *Node, lead, guides Line)
	walk = func(n *Node, lead, guides Line) {
		line := append(append(Line{}, lead...), head(n)...)
		out = append(out, fit(line, width))
		for i, c := range n.Children {
			conn, cont := g.tee, g.bar
			if i == len(n.Children)-1 {
				conn, cont = g.corner, g.blank
			}
			lead := append(append(Line{}, guides...), Segment{Text: conn, Node: c, Kind: SegGuide})
			walk(c, lead, append(append(Line{}, guides...), Segment{Text: cont, Node: n, Kind: SegGuide}))
		}
	}
	walk(t, nil, nil)
	return out
}

// guideSets are the connectors of Vertical, from the widest.
var guideSets = []struct{ tee, corner, bar, blank string }{
	{"├─ ", "└─ ", "│  ", "   "},
	{"├╴", "└╴", "│ ", "  "},
	{"├", "└", "│", " "},
}

// widest returns the width of the widest line of n's subtree when n is at
// depth and each level indents by unit cells.
func widest(n *Node, unit, depth int) int {
	w := depth*unit + head(n).Width()
	for _, c := range n.Children {
		w = max(w, widest(c, unit, depth+1))
	}
	return w
}

// head is what a node's own line shows after its connector.
func head(n *Node) Line {
	l := Line{{Text: termtext.Sanitize(n.Label), Node: n, Kind: SegLabel}}
	if n.IsLeaf() {
		l = append(l, Segment{Text: " ", Node: n, Kind: SegSpace}, Segment{Text: termtext.Sanitize(n.Word), Node: n, Kind: SegWord})
	}
	return l
}

// fit cuts line to width cells, ending it in an ellipsis when anything was cut.
func fit(line Line, width int) Line {
	if width <= 0 || line.Width() <= width {
		return line
	}
	var out Line
	room := width - 1
	for _, s := range line {
		if w := ansi.StringWidth(s.Text); w <= room {
			out = append(out, s)
			room -= w
			continue
		}
		if cut := ansi.Truncate(s.Text, room, ""); cut != "" {
			out = append(out, Segment{Text: cut, Node: s.Node, Kind: s.Kind})
		}
		return append(out, Segment{Text: "…", Node: s.Node, Kind: SegEllipsis})
	}
	return out
}

// Compact lays t out in its bracketed one-line form, (S (NP (NNP Danny)) ...),
// folded at spaces into lines of at most width cells; a run without spaces
// wider than that is broken between characters. width <= 0 means one line.
func Compact(t *Node, width int) Layout {
	var segs Line
	var walk func(n, parent *Node)
	walk = func(n, parent *Node) {
		if parent != nil {
			segs = append(segs, Segment{Text: " ", Node: parent, Kind: SegSpace})
		}
		segs = append(segs, Segment{Text: "(", Node: n, Kind: SegBracket}, Segment{Text: termtext.Sanitize(n.Label), Node: n, Kind: SegLabel})
		if n.IsLeaf() {
			segs = append(segs, Segment{Text: " ", Node: n, Kind: SegSpace}, Segment{Text: termtext.Sanitize(n.Word), Node: n, Kind: SegWord})
		}
		for _, c := range n.Children {
			walk(c, n)
		}
		segs = append(segs, Segment{Text: ")", Node: n, Kind: SegBracket})
	}
	walk(t, nil)
	if width <= 0 {
		return Layout{segs}
	}

	// Greedy filling of runs between spaces; a space at a fold is dropped.
	var out Layout
	var cur Line
	cw := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, cw = nil, 0
	}
	for start := 0; start < len(segs); {
		end := start + 1
		for end < len(segs) && segs[end].Kind != SegSpace {
			end++
		}
		sep, run := segs[start], segs[start:end]
		if sep.Kind == SegSpace {
			run = segs[start+1 : end]
		}
		w := run.Width()
		switch {
		case cw > 0 && cw+1+w <= width:
			cur = append(append(cur, sep), run...)
			cw += 1 + w
		case w <= width:
			flush()
			cur, cw = append(Line{}, run...), w
		default:
			flush()
			lines := breakRun(run, width)
			out = append(out, lines[:len(lines)-1]...)
			cur = lines[len(lines)-1]
			cw = cur.Width()
		}
		start = end
	}
	flush()
	return out
}

// breakRun lays run out over lines of at most width cells, breaking between
// grapheme clusters; a cluster wider than width becomes "…".
func breakRun(run Line, width int) Layout {
	var out Layout
	var cur Line
	cw := 0
	for _, s := range run {
		for rest := s.Text; rest != ""; {
			g, gw := ansi.FirstGraphemeCluster(rest, ansi.GraphemeWidth)
			if g == "" {
				// Never stall on text the segmenter does not consume.
				_, size := utf8.DecodeRuneInString(rest)
				g, gw = rest[:size], ansi.StringWidth(rest[:size])
			}
			rest = rest[len(g):]
			kind := s.Kind
			if gw > width {
				g, gw, kind = "…", 1, SegEllipsis
			}
			if cw+gw > width {
				out = append(out, cur)
				cur, cw = nil, 0
			}
			if k := len(cur) - 1; k >= 0 && cur[k].Node == s.Node && cur[k].Kind == kind {
				cur[k].Text += g
			} else {
				cur = append(cur, Segment{Text: g, Node: s.Node, Kind: kind})
			}
			cw += gw
		}
	}
	return append(out, cur)
}
