package trees

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func spanString(c Constituent) string { return fmt.Sprintf("%s[%d,%d)", c.Label, c.Start, c.End) }

func spanStrings(cs []Constituent) []string {
	var s []string
	for _, c := range cs {
		s = append(s, spanString(c))
	}
	return s
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name         string
		a, b         string
		onlyA, onlyB []string
		divergence   string
		moves        []string // "moved: site in A -> site in B"
	}{
		{
			name:  "pp attachment",
			a:     lavaPairs[0].a,
			b:     lavaPairs[0].b,
			onlyB: []string{"NP[2,9)"},
			// the PP hangs under the VP in A and under the NP in B
			divergence: "VP[1,9)",
			moves:      []string{"PP[5,9): VP[1,9) -> NP[2,9)"},
		},
		{
			name:       "adjective scope over coordination",
			a:          lavaPairs[1].a,
			b:          lavaPairs[1].b,
			onlyA:      []string{"NML[4,7)"},
			onlyB:      []string{"NP[2,5)", "NP[6,7)"},
			divergence: "NP[2,7)",
		},
		{
			name:       "vp attachment through a unary S",
			a:          lavaPairs[2].a,
			b:          lavaPairs[2].b,
			onlyA:      []string{"PP[2,8)", "NP[3,8)"},
			onlyB:      []string{"PP[2,4)", "S[4,8)"},
			divergence: "VP[1,8)",
			moves:      []string{"VP[4,8): NP[3,8) -> VP[1,8)"},
		},
		{
			name:  "the other way round",
			a:     lavaPairs[0].b,
			b:     lavaPairs[0].a,
			onlyA: []string{"NP[2,9)"},
			// B's VP is A's VP: the divergence is named from each side.
			divergence: "VP[1,9)",
			moves:      []string{"PP[5,9): NP[2,9) -> VP[1,9)"},
		},
		{
			name:  "pos tag only",
			a:     "(S (NP (NNS flies)) (VP (VBP like) (NP (NN honey))))",
			b:     "(S (NP (NNS flies)) (VP (VBZ like) (NP (NN honey))))",
			onlyA: []string{"VBP[1,2)"}, onlyB: []string{"VBZ[1,2)"},
			divergence: "VP[1,3)",
		},
		{
			name: "equal",
			a:    lavaPairs[1].a,
			b:    lavaPairs[1].a,
		},
		{
			name:  "unary chains pair from the top",
			a:     "(S (NP (NP (NN a))) (VP (VB b)))",
			b:     "(S (NP (NN a)) (VP (VB b)))",
			onlyA: []string{"NP[0,1)"},
			// A's outer NP is B's NP, so the inner one is the extra one.
			divergence: "NP[0,1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := mustParse(t, tt.a), mustParse(t, tt.b)
			d, err := Diff(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if got := spanStrings(d.OnlyA); !reflect.DeepEqual(got, tt.onlyA) {
				t.Errorf("only in A = %v, want %v", got, tt.onlyA)
			}
			if got := spanStrings(d.OnlyB); !reflect.DeepEqual(got, tt.onlyB) {
				t.Errorf("only in B = %v, want %v", got, tt.onlyB)
			}
			var div string
			if d.DivergenceA != nil {
				div = spanString(*d.DivergenceA)
				if d.Counterpart(d.DivergenceA.Node) != d.DivergenceB.Node {
					t.Errorf("divergence nodes do not correspond")
				}
			}
			if div != tt.divergence {
				t.Errorf("divergence = %q, want %q", div, tt.divergence)
			}
			var moves []string
			for _, m := range d.Moves {
				moves = append(moves, fmt.Sprintf("%s: %s -> %s", spanString(m.Constituent), spanString(m.SiteA), spanString(m.SiteB)))
				if d.Counterpart(m.Node) != m.B || Format(m.Node) != Format(m.B) {
					t.Errorf("move %s: A and B nodes differ", spanString(m.Constituent))
				}
			}
			if !reflect.DeepEqual(moves, tt.moves) {
				t.Errorf("moves = %q, want %q", moves, tt.moves)
			}
			if d.Equal() != (len(tt.onlyA)+len(tt.onlyB) == 0) {
				t.Errorf("Equal() = %v", d.Equal())
			}
			// Every node is either matched, to a node with the same label
			// and span, or listed as only in its tree.
			for _, side := range []struct {
				root *Node
				only []Constituent
			}{{a, d.OnlyA}, {b, d.OnlyB}} {
				listed := map[*Node]bool{}
				for _, c := range side.only {
					listed[c.Node] = true
				}
				side.root.Walk(func(n *Node) bool {
					cp := d.Counterpart(n)
					if (cp == nil) != listed[n] {
						t.Errorf("(%s) matched=%v listed=%v", n.Label, cp != nil, listed[n])
					}
					if cp != nil {
						s1, e1, _ := d.Span(n)
						s2, e2, _ := d.Span(cp)
						if cp.Label != n.Label || s1 != s2 || e1 != e2 || d.Counterpart(cp) != n {
							t.Errorf("(%s)[%d,%d) matched to (%s)[%d,%d)", n.Label, s1, e1, cp.Label, s2, e2)
						}
					}
					return true
				})
			}
		})
	}
}

func TestDiffWordsDiffer(t *testing.T) {
	tests := []struct {
		a, b string
		want string
	}{
		{lavaPairs[0].a, strings.Replace(lavaPairs[0].b, "chair", "table", 1),
			`word 5 is "chair" in A and "table" in B ("… approached the green chair with a yellow …")`},
		{lavaPairs[0].a, strings.Replace(lavaPairs[0].a, " (. .)", "", 1),
			`A has 10 words and B 9; A goes on with "." after word 9`},
		{"(NP (NN a))", "(NP (NN a) (NN b))", `B goes on with "b" after word 1`},
	}
	for _, tt := range tests {
		_, err := Diff(mustParse(t, tt.a), mustParse(t, tt.b))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Diff error = %v, want one containing %q", err, tt.want)
		}
	}
	n := mustParse(t, lavaPairs[0].a)
	if _, err := Diff(n, n); err == nil {
		t.Error("Diff of a tree with itself (shared nodes) succeeded")
	}
}

func TestDiffUnaryChain(t *testing.T) {
	a := mustParse(t, "(S (NP (NP (NN a))) (VP (VB b)))")
	d, err := Diff(a, mustParse(t, "(S (NP (NN a)) (VP (VB b)))"))
	if err != nil {
		t.Fatal(err)
	}
	if inner := a.Children[0].Children[0]; len(d.OnlyA) != 1 || d.OnlyA[0].Node != inner {
		t.Errorf("only in A = %v, want the inner NP", spanStrings(d.OnlyA))
	}
}

func TestUnmatchedParts(t *testing.T) {
	a, b := mustParse(t, lavaPairs[0].a), mustParse(t, lavaPairs[0].b)
	d, err := Diff(a, b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tree  *Node
		style Style
		want  string // the unmatched parts' text, marked in the linearization
	}{
		{a, StylePaper, ""},
		{b, StylePaper, "(np ) "},
		{b, StyleNoPOS, "(np ) "},
		{b, StyleWords, ""},
	}
	for _, tt := range tests {
		l := Linearize(tt.tree, tt.style)
		idx, err := d.UnmatchedParts(l)
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		for _, i := range idx {
			p := l.Parts[i]
			if p.Node != d.OnlyB[0].Node {
				t.Errorf("%s: part %q of (%s) reported unmatched", tt.style, l.Text[p.Start:p.End], p.Node.Label)
			}
			got.WriteString(l.Text[p.Start:p.End] + " ")
		}
		if got.String() != tt.want {
			t.Errorf("%s: unmatched parts %q, want %q", tt.style, got.String(), tt.want)
		}
	}
	if _, err := d.UnmatchedParts(Linearize(mustParse(t, lavaPairs[0].a), StylePaper)); err == nil {
		t.Error("UnmatchedParts of a third tree succeeded")
	}
}

func BenchmarkDiff(b *testing.B) {
	ta, tb := mustParse(b, lavaPairs[2].a), mustParse(b, lavaPairs[2].b)
	for b.Loop() {
		if _, err := Diff(ta, tb); err != nil {
			b.Fatal(err)
		}
	}
}
