package pipeline

import (
	"math"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/trees"
)

// TestExplainedReport lays a hand-made result out as a report: the tokens
// take the text row's relevance, the images follow the cells through the
// batch's columns, and the logits decide correctness.
func TestExplainedReport(t *testing.T) {
	p := &loader.Pair{ID: "p", Sentence: "I saw her.", Readings: []loader.Reading{
		{Tree: "(S (NP (PRP I)) (VP (VBD saw) (NP (PRP her))))", Image: "a.png"},
		{Tree: "(S (NP (PRP I)) (VP (VP (VBD saw)) (NP (PRP her))))", Image: "b.png"},
	}}
	texts, err := model.ReadingTexts(p, trees.StylePaper)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LearnBPE(texts, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	enc := tok.Encode(texts[1], 77)
	n := len(enc.IDs)
	raw := make([]float32, n)
	for k := range raw {
		raw[k] = float32(k)
	}
	norm := make([]float32, n-2)
	for k := range norm {
		norm[k] = 1 / float32(n-2)
	}
	// The pair's images sit in batch columns 3 and 5, its second text in
	// row 4; the target is all: both images against reading 1.
	cols := []int{5, 3}
	res := &explain.Result{
		Logit: 1.5,
		Texts: []explain.TextRelevance{{Index: 4, EOT: n - 1, Raw: raw, Norm: norm}},
		Images: []explain.ImageRelevance{
			{Index: 5, Grid: 1, Raw: []float32{0.5}, Norm: []float32{0}},
			{Index: 3, Grid: 1, Raw: []float32{0.25}, Norm: []float32{0}},
		},
	}
	x := Explained{Pair: p, J: 1, Text: texts[1], Enc: enc, Row: 4, Cols: cols, Cells: report.TargetAll.Cells(1, 2), Result: res, Logits: []float64{2, 1}}
	r, err := x.Report(tok, report.Settings{Checkpoint: "c", Method: explain.Rollout, Target: report.TargetAll}, trees.StylePaper)
	if err != nil {
		t.Fatal(err)
	}
	if r.Correct || r.Logit != 1.5 || r.StartLayer != "-" || len(r.Tokens) != n {
		t.Errorf("report %+v", r)
	}
	if r.Tokens[0].Normalized != 0 || r.Tokens[n-1].Normalized != 0 || r.Tokens[1].Relevance != 1 {
		t.Errorf("tokens %+v", r.Tokens)
	}
	if len(r.Images) != 2 || r.Images[0].Image != 0 || r.Images[0].File != "a.png" || r.Images[0].Relevance[0] != 0.5 || r.Images[1].Relevance[0] != 0.25 {
		t.Errorf("images %+v", r.Images)
	}
	sum := r.Unassigned
	for _, nd := range r.Nodes {
		sum += nd.Relevance
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Errorf("nodes and unassigned sum to %v, want 1", sum)
	}
	x.Row = 2
	if _, err := x.Report(tok, report.Settings{}, trees.StylePaper); err == nil {
		t.Error("a result without the text's relevance gives a report")
	}
}
