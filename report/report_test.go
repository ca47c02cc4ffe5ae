package report

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/trees"
)

func testPair() *loader.Pair {
	return &loader.Pair{ID: "p1", Sentence: "I saw her.", Readings: []loader.Reading{
		{Tree: "(S (NP (PRP I)) (VP (VBD saw) (NP (PRP her))))", Image: "a.png"},
		{Tree: "(S (NP (PRP I)) (VP (VP (VBD saw)) (NP (PRP her))))", Image: "b.png"},
	}}
}

// TestSetLogits: a reading is correct only when its own image is strictly
// highest; a tie is not correct.
func TestSetLogits(t *testing.T) {
	p := testPair()
	for _, c := range []struct {
		j      int
		logits []float64
		want   bool
	}{
		{0, []float64{2, 1}, true},
		{0, []float64{1, 1}, false},
		{1, []float64{2, 1}, false},
		{1, []float64{0, 3}, true},
	} {
		r := New(p, c.j, "", Settings{Method: explain.Rollout})
		if err := r.SetLogits(c.logits); err != nil {
			t.Fatal(err)
		}
		if r.Correct != c.want {
			t.Errorf("reading %d, logits %v: correct %v, want %v", c.j, c.logits, r.Correct, c.want)
		}
	}
	r := New(p, 1, "", Settings{})
	if err := r.SetLogits([]float64{1}); err == nil {
		t.Error("one logit for reading 1 accepted")
	}
}

// TestFinish: node relevance plus unassigned is the tokens' normalised
// relevance, and a text that is not the tree's linearization is refused.
func TestFinish(t *testing.T) {
	p := testPair()
	tree, err := trees.Parse(p.Readings[0].Tree)
	if err != nil {
		t.Fatal(err)
	}
	lin := trees.Linearize(tree, trees.StylePaper)
	start := explain.StartLayer(3)
	r := New(p, 0, lin.Text, Settings{Checkpoint: "c", Method: explain.Chefer, Start: start, Target: TargetOwn})
	if r.StartLayer != start.String() || r.Schema != Schema {
		t.Errorf("header %+v", r)
	}
	// One token per byte: every part of the text is covered.
	r.Tokens = []Token{{Token: "<s>"}}
	for i := range len(lin.Text) {
		r.Tokens = append(r.Tokens, Token{Start: i, End: i + 1, Normalized: 1 / float32(len(lin.Text))})
	}
	r.Tokens = append(r.Tokens, Token{Token: "</s>", Start: len(lin.Text), End: len(lin.Text)})
	if err := r.Finish(trees.StylePaper); err != nil {
		t.Fatal(err)
	}
	sum := r.Unassigned
	for _, n := range r.Nodes {
		sum += n.Relevance
	}
	if len(r.Nodes) == 0 || math.Abs(sum-1) > 1e-5 {
		t.Errorf("nodes %+v, unassigned %v: sum %v, want 1", r.Nodes, r.Unassigned, sum)
	}
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back["schema"] != float64(Schema) || back["start_layer"] != "3" {
		t.Errorf("written as %s", buf.Bytes())
	}
	r.Text += " "
	if err := r.Finish(trees.StylePaper); err == nil {
		t.Error("a text other than the tree's linearization accepted")
	}
}

// TestTargets: every target's name parses back to it, an unknown name is
// refused, and each target sums the cells its doc names.
func TestTargets(t *testing.T) {
	for _, tg := range Targets {
		got, err := ParseTarget(tg.String())
		if err != nil || got != tg {
			t.Errorf("ParseTarget(%q) = %v, %v", tg, got, err)
		}
	}
	if _, err := ParseTarget("both"); err == nil {
		t.Error("ParseTarget(both): no error")
	}
	for _, c := range []struct {
		tg   Target
		j    int
		want [][2]int
	}{
		{TargetOwn, 1, [][2]int{{1, 1}}},
		{TargetTwin, 1, [][2]int{{0, 1}}},
		{TargetTwin, 0, [][2]int{{1, 0}}},
		{TargetAll, 1, [][2]int{{0, 1}, {1, 1}}},
	} {
		if got := c.tg.Cells(c.j, 2); !slices.Equal(got, c.want) {
			t.Errorf("%v.Cells(%d, 2) = %v, want %v", c.tg, c.j, got, c.want)
		}
	}
}
