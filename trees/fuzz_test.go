package trees

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lavascope/lavascope/internal/termtext"
)

// FuzzParse checks that Parse never panics, that every error is a
// SyntaxError inside the input, and that every tree it returns round-trips,
// linearizes consistently and lays out within any width without letting
// control characters through.
func FuzzParse(f *testing.F) {
	for _, p := range lavaPairs {
		f.Add(p.a)
		f.Add(p.b)
	}
	for _, s := range []string{
		"", "(", ")", "()", "( )", "((S (NN a)))", "(ROOT (TOP ( (NN a))))",
		"(S (NP-SBJ=2 (PRP$ my) (-NONE- *T*-1)) (-LRB- -LRB-))",
		"(NN dan\x1b[31mny)", "(NN a\xffb)", "(NN \u202e)", "(S\n (NP (NN a))\r\n\t(VP (VB b) c))",
		"(NP (NN café) (NN 鞄) (NN 🙂) (NN e\u0301))", strings.Repeat("(X ", 50) + "(NN a)" + strings.Repeat(")", 50),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		n, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.Line < 1 || se.Col < 1 || se.Offset < 0 || se.Offset > len(src) {
				t.Fatalf("error position %d:%d (offset %d) outside the %d-byte input", se.Line, se.Col, se.Offset, len(src))
			}
			if strings.ContainsFunc(err.Error(), func(r rune) bool { return r != '\n' && termtext.Unsafe(r) }) || !utf8.ValidString(err.Error()) {
				t.Fatalf("error message %q is not safe to print", err.Error())
			}
			return
		}
		out := Format(n)
		if !utf8.ValidString(out) || strings.ContainsFunc(out, termtext.Unsafe) {
			t.Fatalf("Format(%q) = %q holds unsafe characters", src, out)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Format(t)) failed: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, n) {
			t.Fatalf("Parse(Format(t)) != t for %q", src)
		}
		words := n.Words()
		for s := StylePaper; s <= StyleWords; s++ {
			checkLinear(t, n, Linearize(n, s), words)
		}
		w := len(src)%13 + 1
		for _, l := range []Layout{Vertical(n, w), Compact(n, w)} {
			for _, line := range l {
				if lw := line.Width(); lw > w {
					t.Fatalf("line %q is %d cells wide, limit %d", line.String(), lw, w)
				}
			}
			if s := l.String(); strings.ContainsFunc(s, func(r rune) bool { return r != '\n' && termtext.Unsafe(r) }) {
				t.Fatalf("layout %q holds control characters", s)
			}
		}
	})
}
