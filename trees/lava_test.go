package trees

import "testing"

// lavaPair is one ambiguous sentence with its two readings, shaped like the
// LAVA test pairs the explorer steps through.
type lavaPair struct {
	name     string
	sentence string
	a, b     string
}

var lavaPairs = []lavaPair{
	{
		// PP attachment: with the bag Danny carries (A) or on the chair (B).
		name:     "pp",
		sentence: "Danny approached the green chair with a yellow bag.",
		a:        "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (JJ green) (NN chair)) (PP (IN with) (NP (DT a) (JJ yellow) (NN bag)))) (. .))",
		b:        "(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (JJ green) (NN chair)) (PP (IN with) (NP (DT a) (JJ yellow) (NN bag))))) (. .))",
	},
	{
		// Adjective scope over coordination: both yellow (A) or only the chair (B).
		name:     "coord",
		sentence: "Andrei moved the yellow chair and bag.",
		a:        "(S (NP (NNP Andrei)) (VP (VBD moved) (NP (DT the) (JJ yellow) (NML (NN chair) (CC and) (NN bag)))) (. .))",
		b:        "(S (NP (NNP Andrei)) (VP (VBD moved) (NP (NP (DT the) (JJ yellow) (NN chair)) (CC and) (NP (NN bag)))) (. .))",
	},
	{
		// VP attachment: Danny picks up the bag (A) or Yevgeni does (B).
		name:     "vp",
		sentence: "Yevgeni looked at Danny picking up the bag.",
		a:        "(S (NP (NNP Yevgeni)) (VP (VBD looked) (PP (IN at) (NP (NP (NNP Danny)) (VP (VBG picking) (PRT (RP up)) (NP (DT the) (NN bag)))))) (. .))",
		b:        "(S (NP (NNP Yevgeni)) (VP (VBD looked) (PP (IN at) (NP (NNP Danny))) (S (VP (VBG picking) (PRT (RP up)) (NP (DT the) (NN bag))))) (. .))",
	},
}

func mustParse(t testing.TB, src string) *Node {
	t.Helper()
	n, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return n
}
