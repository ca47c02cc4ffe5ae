package trees

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestLinearize(t *testing.T) {
	tests := []struct {
		tree  string
		style Style
		want  string
	}{
		// The paper's example, as written in the issue and the architecture.
		{lavaPairs[0].b, StylePaper, "(s (np (nnp danny)) (vp (vbd approached) (np (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag))))) (. .))"},
		{lavaPairs[0].a, StylePaper, "(s (np (nnp danny)) (vp (vbd approached) (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag)))) (. .))"},
		{lavaPairs[0].a, StylePTB, lavaPairs[0].a},
		{lavaPairs[0].a, StyleNoPOS, "(s (np danny) (vp approached (np the green chair) (pp with (np a yellow bag))) .)"},
		{lavaPairs[0].b, StyleNoPOS, "(s (np danny) (vp approached (np (np the green chair) (pp with (np a yellow bag)))) .)"},
		{lavaPairs[1].a, StylePaper, "(s (np (nnp andrei)) (vp (vbd moved) (np (dt the) (jj yellow) (nml (nn chair) (cc and) (nn bag)))) (. .))"},
		{lavaPairs[2].b, StyleNoPOS, "(s (np yevgeni) (vp looked (pp at (np danny)) (s (vp picking (prt up) (np the bag)))) .)"},
		{"(S (NP-SBJ (-NONE- *T*-1)) (VP (VBD Left)))", StylePaper, "(s (np-sbj (-none- *t*-1)) (vp (vbd left)))"},
		{"(S (NP (-LRB- -LRB-) (NNP Danny) (-RRB- -RRB-)) (VP (VBD did) (RB n't) (VB go)) (, ,) (`` ``) (NP (PRP it) (POS 's)) ('' '') (. !))", StyleWords,
			`(Danny) didn't go, "it's"!`},
		{"(S (NP-SBJ (-NONE- *T*-1)) (VP (VBD left)))", StyleWords, "left"},
	}
	for _, p := range lavaPairs {
		tests = append(tests, struct {
			tree  string
			style Style
			want  string
		}{p.a, StyleWords, p.sentence}, struct {
			tree  string
			style Style
			want  string
		}{p.b, StyleWords, p.sentence})
	}
	for _, tt := range tests {
		t.Run(tt.style.String(), func(t *testing.T) {
			n := mustParse(t, tt.tree)
			l := Linearize(n, tt.style)
			if l.Text != tt.want {
				t.Errorf("Linearize(%s, %s) =\n  %s\nwant\n  %s", tt.tree, tt.style, l.Text, tt.want)
			}
			checkLinear(t, n, l, n.Words())
		})
	}
}

// checkLinear checks the invariants every linearization keeps: parts in text
// order separated by single spaces, each byte mapped to its part, words
// numbered in order, and brackets that rebuild the tree.
func checkLinear(t *testing.T, n *Node, l *Linear, words []string) {
	t.Helper()
	end := 0
	next := 0
	for i, p := range l.Parts {
		if p.Start >= p.End {
			t.Fatalf("%s: part %d [%d,%d) is empty", l.Style, i, p.Start, p.End)
		}
		gap := l.Text[end:p.Start]
		if (i == 0 && gap != "") || (i > 0 && gap != "" && gap != " ") {
			t.Fatalf("%s: %q between parts %d and %d", l.Style, gap, i-1, i)
		}
		for b := p.Start; b < p.End; b++ {
			if l.PartAt(b) != i {
				t.Fatalf("%s: PartAt(%d) = %d, want %d", l.Style, b, l.PartAt(b), i)
			}
		}
		for b := end; b < p.Start; b++ {
			if l.PartAt(b) != -1 {
				t.Fatalf("%s: separator byte %d maps to part %d", l.Style, b, l.PartAt(b))
			}
		}
		if p.Kind == PartWord && p.Word >= 0 {
			if p.Word != next {
				t.Fatalf("%s: word part %d numbered %d, want %d", l.Style, i, p.Word, next)
			}
			if p.Node.Word != words[next] {
				t.Fatalf("%s: word %d is %q, its node has %q", l.Style, next, words[next], p.Node.Word)
			}
			next++
		}
		end = p.End
	}
	if end != len(l.Text) {
		t.Fatalf("%s: text goes on after the last part: %q", l.Style, l.Text[end:])
	}
	if next != len(words) {
		t.Fatalf("%s: %d word parts, tree has %d words", l.Style, next, len(words))
	}
	if l.PartAt(-1) != -1 || l.PartAt(len(l.Text)) != -1 {
		t.Fatalf("%s: PartAt out of range is not -1", l.Style)
	}
	switch l.Style {
	case StylePTB:
		if l.Text != Format(n) {
			t.Fatalf("ptb linearization %q differs from Format %q", l.Text, Format(n))
		}
	case StylePaper:
		if l.Text != strings.ToLower(Format(n)) {
			t.Fatalf("paper linearization %q is not the lower-cased bracketing", l.Text)
		}
	}
	if l.Style == StyleWords {
		return
	}
	// Brackets pair up with their nodes in a well-nested way.
	var stack []*Node
	for _, p := range l.Parts {
		switch p.Kind {
		case PartOpen:
			stack = append(stack, p.Node)
		case PartClose:
			if len(stack) == 0 || stack[len(stack)-1] != p.Node {
				t.Fatalf("%s: closing bracket of (%s) does not close its own opening", l.Style, p.Node.Label)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("%s: %d brackets left open", l.Style, len(stack))
	}
}

func TestParseStyle(t *testing.T) {
	for _, name := range StyleNames() {
		s, err := ParseStyle(name)
		if err != nil || s.String() != name {
			t.Errorf("ParseStyle(%q) = %v, %v", name, s, err)
		}
	}
	if _, err := ParseStyle("PTB"); err == nil || !strings.Contains(err.Error(), "paper, ptb, nopos, words") {
		t.Errorf("ParseStyle(PTB) error = %v, want one listing the styles", err)
	}
	var v struct{ Style Style }
	if err := json.Unmarshal([]byte(`{"Style":"nopos"}`), &v); err != nil || v.Style != StyleNoPOS {
		t.Errorf("unmarshal nopos: %v, %v", v.Style, err)
	}
	if b, err := json.Marshal(v); err != nil || string(b) != `{"Style":"nopos"}` {
		t.Errorf("marshal: %s, %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"Style":"tree"}`), &v); err == nil {
		t.Error("unmarshal of an unknown style succeeded")
	}
}

func BenchmarkLinearize(b *testing.B) {
	n := mustParse(b, lavaPairs[0].b)
	for b.Loop() {
		Linearize(n, StylePaper)
	}
}
