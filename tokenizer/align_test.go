package tokenizer

import (
	"testing"

	"github.com/lavascope/lavascope/trees"
)

// TestTokenOffsetsAlignToTree feeds the tokenizer's real byte offsets into
// trees.Align, as the explainer and the explorer do: the paper's token `))))`
// must close the four constituents NN, NP, PP and VP of reading A, and every
// byte of every part must be covered by some token.
func TestTokenOffsetsAlignToTree(t *testing.T) {
	tok := clipTokenizer(t)
	tree, err := trees.Parse("(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (JJ green) (NN chair)) (PP (IN with) (NP (DT a) (JJ yellow) (NN bag)))) (. .))")
	if err != nil {
		t.Fatal(err)
	}
	lin := trees.Linearize(tree, trees.StylePaper)
	enc := tok.Encode(lin.Text, 77)
	if enc.Truncated {
		t.Fatal("the tree does not fit 77 tokens")
	}
	al, err := trees.Align(lin, enc.Offsets)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, off := range enc.Offsets {
		if lin.Text[off[0]:off[1]] != "))))" {
			continue
		}
		found = true
		var labels []string
		for _, p := range al.Parts[i] {
			part := lin.Parts[p]
			if part.Kind != trees.PartClose {
				t.Errorf("token )))) covers a %v part", part.Kind)
			}
			labels = append(labels, part.Node.Label)
		}
		want := []string{"NN", "NP", "PP", "VP"}
		if len(labels) != len(want) {
			t.Fatalf("token )))) closes %v, want %v", labels, want)
		}
		for k := range want {
			if labels[k] != want[k] {
				t.Errorf("token )))) closes %v, want %v", labels, want)
				break
			}
		}
	}
	if !found {
		t.Fatalf("no )))) token in %q", lin.Text)
	}
	covered := make([]bool, len(lin.Text))
	for _, off := range enc.Offsets {
		for b := off[0]; b < off[1]; b++ {
			covered[b] = true
		}
	}
	for _, p := range lin.Parts {
		for b := p.Start; b < p.End; b++ {
			if !covered[b] {
				t.Fatalf("byte %d (%q) of a %v part is in no token", b, lin.Text[b], p.Kind)
			}
		}
	}
}
