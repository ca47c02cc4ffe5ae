package loader_test

import (
	"testing"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
)

func TestTreeFamily(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{"(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (NN chair)) (PP-LOC (IN with) (NP (DT a) (NN bag)))))",
			"(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (NN chair)) (PP-LOC (IN with) (NP (DT a) (NN bag))))))", "pp-attachment"},
		{"(S (NP (NNP Danny) (CC and) (NNP Andrei)) (VP (VBD left) (NP (DT the) (NN room) (CC and) (NN hall))))",
			"(S (NP (NNP Danny) (CC and) (NNP Andrei)) (VP (VBD left) (NP (NP (DT the) (NN room)) (CC and) (NP (NN hall)))))", "coordination"},
		{"(S (NP (NNP Danny)) (VP (VBD left)))", "(S (NP (NNP Danny)) (VP (VBD left)))", ""},
		{"(S (NP (NNP Danny)) (VP (VBD left)))", "(S (NP (NNP Danny)) (VP (VBD went)))", ""},
		{"(S (NP (NNP Danny)) (VP (VBD left)))", "(S (NP (NNP Danny)) (VP (VBD left)", ""},
		{"(S (NP (NNP Danny)) (VP (VBD left)))", "(S (NP (NNP Danny)) (VP (VBZ left)))", ""},
	} {
		if got := loader.TreeFamily(c.a, c.b); got != c.want {
			t.Errorf("family of\n  %s\n  %s\nis %q, want %q", c.a, c.b, got, c.want)
		}
	}
}

// TestTreeFamilySynth checks that the trees of every synthetic pair name the
// family the generator made them for.
func TestTreeFamilySynth(t *testing.T) {
	pairs, err := synth.Generate(synth.Config{Pairs: 60, Seed: 5, Size: synth.MinSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if got := loader.TreeFamily(p.Readings[0].Tree, p.Readings[1].Tree); got != p.Ambiguity {
			t.Errorf("%s: family %q from the trees, made as %q\n  %s\n  %s", p.ID, got, p.Ambiguity, p.Readings[0].Tree, p.Readings[1].Tree)
		}
	}
}
