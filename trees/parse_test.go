package trees

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"one line", lavaPairs[0].a, lavaPairs[0].a},
		{"newlines and tabs", "(S\n\t(NP (NNP Danny))\r\n\t(VP (VBD left))\n)", "(S (NP (NNP Danny)) (VP (VBD left)))"},
		{"no space after label", "(S(NP(NNP Danny))(VP(VBD left)))", "(S (NP (NNP Danny)) (VP (VBD left)))"},
		{"unicode whitespace", "(S\u00a0(NP\u3000(NNP Danny)))", "(S (NP (NNP Danny)))"},
		{"ROOT wrapper", "(ROOT (S (NP (PRP it)) (VP (VBZ is))))", "(S (NP (PRP it)) (VP (VBZ is)))"},
		{"TOP wrapper", "(TOP (S (VP (VB go))))", "(S (VP (VB go)))"},
		{"unlabelled wrapper", "( (S (VP (VB go))) )", "(S (VP (VB go)))"},
		{"unlabelled around ROOT", "((ROOT (S (VP (VB go)))))", "(S (VP (VB go)))"},
		{"ROOT over a leaf", "(ROOT (UH hello))", "(UH hello)"},
		{"ROOT with two children stays", "(ROOT (NP (NN a)) (NP (NN b)))", "(ROOT (NP (NN a)) (NP (NN b)))"},
		{"inner ROOT stays", "(S (ROOT (NN a)))", "(S (ROOT (NN a)))"},
		{"single leaf", "(NN bag)", "(NN bag)"},
		{"labels with - = $", "(S (NP-SBJ=2 (PRP$ my) (NN bag)) (VP (VBZ is)))", "(S (NP-SBJ=2 (PRP$ my) (NN bag)) (VP (VBZ is)))"},
		{"empty element", "(S (NP-SBJ (-NONE- *T*-1)) (VP (VBD left)))", "(S (NP-SBJ (-NONE- *T*-1)) (VP (VBD left)))"},
		{"bracket leaves", "(NP (-LRB- -LRB-) (NN bag) (-RRB- -RRB-))", "(NP (-LRB- -LRB-) (NN bag) (-RRB- -RRB-))"},
		{"punctuation tags", "(S (, ,) (: ;) (`` ``) ('' '') (. ?))", "(S (, ,) (: ;) (`` ``) ('' '') (. ?))"},
		{"unicode words", "(NP (NN café) (NN 鞄) (NN 🙂))", "(NP (NN café) (NN 鞄) (NN 🙂))"},
		{"left-to-right marks are text", "(NP (NN a\u200eb))", "(NP (NN a\u200eb))"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.src)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := Format(n); got != tt.want {
				t.Errorf("Format(Parse(src)) =\n  %s\nwant\n  %s", got, tt.want)
			}
		})
	}
}

func TestParseStructure(t *testing.T) {
	n := mustParse(t, "(ROOT (S (NP-SBJ (PRP$ my) (NN bag)) (VP (VBZ is) (NP (-NONE- *T*-1)))))")
	want := &Node{Label: "S", Children: []*Node{
		{Label: "NP-SBJ", Children: []*Node{{Label: "PRP$", Word: "my"}, {Label: "NN", Word: "bag"}}},
		{Label: "VP", Children: []*Node{{Label: "VBZ", Word: "is"}, {Label: "NP", Children: []*Node{{Label: "-NONE-", Word: "*T*-1"}}}}},
	}}
	if !reflect.DeepEqual(n, want) {
		t.Errorf("Parse = %s, want %s", Format(n), Format(want))
	}
	if got, want := n.Words(), []string{"my", "bag", "is"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Words() = %q, want %q (empty elements are not words)", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
		msg       string
	}{
		{"unbalanced close", "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the)))))", 1, 57, "unbalanced ')'"},
		{"close first", ") (S (VP (VB go)))", 1, 1, "unbalanced ')'"},
		{"unclosed points at the innermost open bracket", "(S (NP (NNP Danny))\n  (VP (VBD left)", 2, 3, "unclosed '('"},
		{"unclosed after label", "(S", 1, 1, "unclosed '('"},
		{"empty", "", 1, 1, "input is empty"},
		{"only whitespace", "  \n\t ", 2, 3, "input is empty"},
		{"empty brackets", "(S ())", 1, 4, "empty brackets"},
		{"bare text", "Danny left.", 1, 1, `found "Danny"`},
		{"word among constituents", "(NP (DT the) bag)", 1, 14, `word "bag" among constituents`},
		{"word before constituent", "(NP the (NN bag))", 1, 9, `constituent after the word "the"`},
		{"two words", "(NN yellow bag)", 1, 12, `second word "bag"`},
		{"no children", "(S (NP) (VP (VB go)))", 1, 4, "(NP) has no children"},
		{"unlabelled inside", "(S ( (NP (NN a))))", 1, 4, "unlabelled bracket inside a tree"},
		{"unlabelled wraps two", "( (NP (NN a)) (NP (NN b)))", 1, 1, "holds 2 constituents"},
		{"word in unlabelled bracket", "( (NP (NN a)) b)", 1, 15, `word "b" in an unlabelled bracket`},
		{"second tree", "(NN a) (NN b)", 1, 8, "second tree"},
		{"text after tree", "(NN a) b", 1, 8, `found "b"`},
		{"escape sequence", "(NN dan\x1b[31mny)", 1, 8, "control character U+001B"},
		{"C1 control", "(NN a\u009bb)", 1, 6, "control character U+009B"},
		{"bidi override", "(NN a\u202eb)", 1, 6, "control character U+202E"},
		{"invalid UTF-8", "(NN a\xffb)", 1, 6, "invalid UTF-8 byte 0xff"},
		{"columns count characters", "(NP (NN café) (NN 鞄) x)", 1, 22, `word "x"`},
		{"third line", "(S\n (NP (NN a))\n (VP (VB b) c))", 3, 13, `word "c" among constituents`},
		{"too deep", strings.Repeat("(X ", MaxDepth+1) + "(NN a)" + strings.Repeat(")", MaxDepth+1), 1, 3*MaxDepth + 1, "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse error = %v, want a *SyntaxError", err)
			}
			if se.Line != tt.line || se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("got %q at %d:%d, want %q at %d:%d", se.Msg, se.Line, se.Col, tt.msg, tt.line, tt.col)
			}
			if first := strings.SplitN(err.Error(), "\n", 2)[0]; !strings.HasSuffix(first, " at "+strconv.Itoa(tt.line)+":"+strconv.Itoa(tt.col)) {
				t.Errorf("message %q does not end in its position", first)
			}
			checkCaret(t, tt.src, se)
		})
	}
}

// checkCaret checks that the snippet's caret stands under the character at
// the error's position, unless the line was cut to a window.
func checkCaret(t *testing.T, src string, se *SyntaxError) {
	t.Helper()
	lines := strings.Split(se.Snippet, "\n")
	if len(lines) != 2 {
		t.Fatalf("snippet has %d lines, want 2:\n%s", len(lines), se.Snippet)
	}
	text, caret := lines[0], lines[1]
	if strings.TrimLeft(caret, " ") != "^" {
		t.Fatalf("caret line %q is not spaces and a caret", caret)
	}
	if strings.ContainsAny(se.Snippet, "\x1b\t\r") {
		t.Errorf("snippet %q holds control characters", se.Snippet)
	}
	at := len(caret) - 1 // cells before the caret
	lineText := strings.Split(src, "\n")[se.Line-1]
	if strings.HasPrefix(text, "  …") {
		return
	}
	runes := []rune(strings.NewReplacer("\t", " ", "\r", "").Replace(lineText))
	prefix := string(runes[:min(se.Col-1, len(runes))])
	if w := ansi.StringWidth(prefix) + 2; w != at {
		t.Errorf("caret at cell %d, want %d:\n%s", at, w, se.Snippet)
	}
}

func TestParseErrorSnippetWindow(t *testing.T) {
	long := "(S " + strings.Repeat("(NP (NN word)) ", 20) + "(NP (NN a) b))"
	_, err := Parse(long)
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("Parse error = %v", err)
	}
	lines := strings.Split(se.Snippet, "\n")
	if w := ansi.StringWidth(lines[0]); w > snippetWidth+4 {
		t.Errorf("snippet line is %d cells wide, want at most %d:\n%s", w, snippetWidth+4, se.Snippet)
	}
	if !strings.HasPrefix(lines[0], "  …") {
		t.Errorf("cut snippet should start with an ellipsis:\n%s", se.Snippet)
	}
	under := []rune(lines[0])[len(lines[1])-1]
	if under != 'b' {
		t.Errorf("caret stands under %q, want under the word b:\n%s", under, se.Snippet)
	}
}

func TestParseErrorLongWords(t *testing.T) {
	long := strings.Repeat("w", 100000)
	for _, src := range []string{"(" + long + " " + long + " " + long + ")", "(NP " + long + " (NN a))", long, "(" + long + ")"} {
		_, err := Parse(src)
		if err == nil {
			t.Fatalf("Parse of a %d-byte input succeeded", len(src))
		}
		if n := len(err.Error()); n > 400 {
			t.Errorf("error message is %d bytes long: %.120s…", n, err.Error())
		}
	}
}

func TestParseAll(t *testing.T) {
	src := lavaPairs[0].a + "\n" + lavaPairs[0].b + "\n\n(ROOT " + lavaPairs[1].a + ")\n"
	ts, err := ParseAll(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{lavaPairs[0].a, lavaPairs[0].b, lavaPairs[1].a}
	if len(ts) != len(want) {
		t.Fatalf("got %d trees, want %d", len(ts), len(want))
	}
	for i := range ts {
		if Format(ts[i]) != want[i] {
			t.Errorf("tree %d = %s, want %s", i, Format(ts[i]), want[i])
		}
	}
	if _, err := ParseAll(" \n"); err == nil {
		t.Error("ParseAll of blank input succeeded")
	}
	_, err = ParseAll(lavaPairs[0].a + "\n(S (NP (NN a)) b)")
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 || se.Col != 16 {
		t.Errorf("error in second tree = %v, want it at 2:16", err)
	}
}

// TestRoundTrip checks Parse(Format(t)) == t on random trees, and that any
// whitespace between tokens leaves the parse unchanged.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		tree := randomTree(r, 0)
		src := Format(tree)
		got, err := Parse(src)
		if err != nil {
			t.Fatalf("tree %d: Parse(Format(t)): %v\n%s", i, err, src)
		}
		if !reflect.DeepEqual(got, tree) {
			t.Fatalf("tree %d: Parse(Format(t)) != t\n got %s\nwant %s", i, Format(got), src)
		}
		spaced := respace(r, src)
		got, err = Parse(spaced)
		if err != nil {
			t.Fatalf("tree %d: Parse of re-spaced form: %v\n%q", i, err, spaced)
		}
		if !reflect.DeepEqual(got, tree) {
			t.Fatalf("tree %d: re-spacing changed the tree\n%q", i, spaced)
		}
	}
	for _, p := range lavaPairs {
		for _, src := range []string{p.a, p.b} {
			if got := Format(mustParse(t, src)); got != src {
				t.Errorf("Format(Parse(%s)) = %s", src, got)
			}
		}
	}
}

var (
	randLabels = []string{"S", "NP", "VP", "PP", "NP-SBJ=2", "SBAR", "WHNP", "NML", "ADJP", "S-TPC-1"}
	randTags   = []string{"NN", "NNP", "DT", "JJ", "IN", "PRP$", "-LRB-", "-RRB-", ".", ",", "``", "-NONE-", "VBD"}
	randWords  = []string{"bag", "Danny", "the", "-LRB-", "*T*-1", "café", "鞄", "🙂", "a=b", "$", "n't", "'s", ".", "e\u0301"}
)

func randomTree(r *rand.Rand, depth int) *Node {
	if depth > 5 || r.IntN(3) == 0 {
		return &Node{Label: randTags[r.IntN(len(randTags))], Word: randWords[r.IntN(len(randWords))]}
	}
	n := &Node{Label: randLabels[r.IntN(len(randLabels))]}
	for range 1 + r.IntN(4) {
		n.Children = append(n.Children, randomTree(r, depth+1))
	}
	return n
}

// respace replaces the single spaces of a canonical bracketing with random
// whitespace and adds some around brackets.
func respace(r *rand.Rand, src string) string {
	ws := []string{" ", "  ", "\n", "\t", "\r\n", " \n  "}
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == ' ':
			b.WriteString(ws[r.IntN(len(ws))])
		case (c == '(' || c == ')') && r.IntN(4) == 0:
			b.WriteString(ws[r.IntN(len(ws))])
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func BenchmarkParse(b *testing.B) {
	src := lavaPairs[2].a
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}
