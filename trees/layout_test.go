package trees

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/termtext"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./trees/ -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

type namedTree struct {
	name string
	tree *Node
}

// layoutTrees are the trees of the golden files: the LAVA readings, a tree
// with wide and combining characters, and one whose label and word carry
// escape sequences, as a hand-built tree might.
func layoutTrees(t *testing.T) []namedTree {
	var out []namedTree
	for _, p := range lavaPairs {
		out = append(out, namedTree{p.name + "-a", mustParse(t, p.a)}, namedTree{p.name + "-b", mustParse(t, p.b)})
	}
	out = append(out, namedTree{"wide", mustParse(t, "(S (NP (NN 黄色い鞄)) (VP (VBZ is) (NP (NN 🙂) (NN cafe\u0301))))")})
	out = append(out, namedTree{"hostile", &Node{Label: "S\x1b]0;pwned\x07", Children: []*Node{
		{Label: "NN", Word: "bag\x1b[2J\u202e"},
		{Label: "\x9b31m", Word: "ok"},
	}}})
	return out
}

func TestVerticalGolden(t *testing.T) {
	var b strings.Builder
	for _, tt := range layoutTrees(t) {
		for _, w := range []int{0, 24, 6} {
			fmt.Fprintf(&b, "== %s width=%d\n", tt.name, w)
			b.WriteString(Vertical(tt.tree, w).String())
		}
	}
	golden(t, "vertical.golden", b.String())
}

func TestCompactGolden(t *testing.T) {
	var b strings.Builder
	for _, tt := range layoutTrees(t) {
		for _, w := range []int{0, 40, 12, 3} {
			fmt.Fprintf(&b, "== %s width=%d\n", tt.name, w)
			b.WriteString(Compact(tt.tree, w).String())
		}
	}
	golden(t, "compact.golden", b.String())
}

// TestRenderDiffGolden marks the PP-attachment diff through a style hook as
// the TUI does with colours: constituents only in B in «», the moved PP in
// <>, its attachment site in {}.
func TestRenderDiffGolden(t *testing.T) {
	a, b := mustParse(t, lavaPairs[0].a), mustParse(t, lavaPairs[0].b)
	d, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	hook := func(site func(Move) Constituent, mover func(Move) *Node) StyleHook {
		return func(s Segment) (string, string) {
			if s.Kind != SegLabel && s.Kind != SegBracket {
				return "", ""
			}
			for _, m := range d.Moves {
				switch s.Node {
				case mover(m):
					return "<", ">"
				case site(m).Node:
					return "{", "}"
				}
			}
			if d.Counterpart(s.Node) == nil {
				return "«", "»"
			}
			return "", ""
		}
	}
	hookA := hook(func(m Move) Constituent { return m.SiteA }, func(m Move) *Node { return m.Node })
	hookB := hook(func(m Move) Constituent { return m.SiteB }, func(m Move) *Node { return m.B })
	var out strings.Builder
	out.WriteString("== A vertical\n" + Vertical(a, 0).Render(hookA))
	out.WriteString("== B vertical\n" + Vertical(b, 0).Render(hookB))
	out.WriteString("== B compact width=50\n" + Compact(b, 50).Render(hookB))
	golden(t, "render-diff.golden", out.String())
}

func TestLayoutWidths(t *testing.T) {
	trees := layoutTrees(t)
	trees = append(trees, namedTree{"deep", mustParse(t, strings.Repeat("(X ", 40)+"(NN "+strings.Repeat("w", 50)+")"+strings.Repeat(")", 40))})
	for _, tt := range trees {
		for w := -1; w <= 30; w++ {
			for kind, l := range map[string]Layout{"vertical": Vertical(tt.tree, w), "compact": Compact(tt.tree, w)} {
				for i, line := range l {
					if w > 0 && line.Width() > w {
						t.Fatalf("%s %s width %d: line %d %q is %d cells", tt.name, kind, w, i, line.String(), line.Width())
					}
					if line.Width() == 0 {
						t.Fatalf("%s %s width %d: line %d is empty", tt.name, kind, w, i)
					}
					for _, s := range line {
						if s.Node == nil || s.Text == "" {
							t.Fatalf("%s %s width %d: segment %+v has no node or text", tt.name, kind, w, s)
						}
					}
				}
				if out := l.String(); strings.ContainsFunc(out, func(r rune) bool { return r != '\n' && termtext.Unsafe(r) }) {
					t.Fatalf("%s %s width %d: output %q holds control characters", tt.name, kind, w, out)
				}
			}
		}
	}
}

func TestLayoutStructure(t *testing.T) {
	for _, p := range lavaPairs {
		n := mustParse(t, p.b)
		// One line per node, its label segment tied to it.
		v := Vertical(n, 0)
		var nodes []*Node
		n.Walk(func(m *Node) bool { nodes = append(nodes, m); return true })
		if len(v) != len(nodes) {
			t.Fatalf("%s: %d lines for %d nodes", p.name, len(v), len(nodes))
		}
		for i, line := range v {
			var label *Segment
			for j := range line {
				if line[j].Kind == SegLabel {
					label = &line[j]
				}
			}
			if label == nil || label.Node != nodes[i] || label.Text != nodes[i].Label {
				t.Fatalf("%s: line %d %q does not show node %s", p.name, i, line.String(), nodes[i].Label)
			}
		}
		// The compact form is the bracketing; folded at a width every run
		// fits, it is the bracketing cut at spaces.
		if got := Compact(n, 0).String(); got != Format(n)+"\n" {
			t.Errorf("%s: compact form %q, want %q", p.name, got, Format(n))
		}
		var lines []string
		for _, line := range Compact(n, 30) {
			lines = append(lines, line.String())
		}
		if got := strings.Join(lines, " "); got != Format(n) {
			t.Errorf("%s: folded compact form joined = %q", p.name, got)
		}
	}
}

func BenchmarkVertical(b *testing.B) {
	n := mustParse(b, lavaPairs[0].b)
	for b.Loop() {
		Vertical(n, 40)
	}
}

func BenchmarkCompact(b *testing.B) {
	n := mustParse(b, lavaPairs[0].b)
	for b.Loop() {
		Compact(n, 40)
	}
}
