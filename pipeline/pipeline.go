// Package pipeline is the path the front ends take from pairs to reports:
// it picks the pairs to explain, batches them for the model, runs the
// relevance methods and the faithfulness metrics of package explain on
// each batch, and lays what the model computed for a reading out as the
// report.Reading that `lavascope explain` and the explorer's export both
// write, with the figures and CSV summaries of an explain run. Package
// model keeps the model and package explain the methods, metrics and
// heatmaps; the commands keep only their flags.
package pipeline

import (
	"fmt"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/trees"
)

// Explained is what the model gave for reading J of Pair in a batch.
type Explained struct {
	Pair *loader.Pair
	J    int
	// Text is the reading's tree linearized in the batch's style, Enc its
	// encoding, Row the text's index in the batch.
	Text string
	Enc  tokenizer.Encoding
	Row  int
	// Cols[i] is the batch index of the pair's image i.
	Cols []int
	// Cells are the (image, reading) cells of the pair that the target
	// sums, Result its relevance.
	Cells  [][2]int
	Result *explain.Result
	// Logits[i] is the logit of the pair's image i against the text; nil
	// leaves them to the caller (report.Reading.SetLogits), which may have
	// scored the pair already.
	Logits []float64
}

// Report lays x out as the report of its reading; style is the
// linearization the model read.
func (x Explained) Report(tok *tokenizer.Tokenizer, s report.Settings, style trees.Style) (report.Reading, error) {
	r := report.New(x.Pair, x.J, x.Text, s)
	fail := func(err error) (report.Reading, error) {
		return report.Reading{}, fmt.Errorf("pair %s reading %d: %w", x.Pair.ID, x.J, err)
	}
	r.Cells, r.Logit, r.Truncated = x.Cells, x.Result.Logit, x.Enc.Truncated
	if x.Logits != nil {
		if err := r.SetLogits(x.Logits); err != nil {
			return fail(err)
		}
	}
	tr := x.Result.Text(x.Row)
	if tr == nil {
		return fail(fmt.Errorf("no text relevance"))
	}
	for k, id := range x.Enc.IDs {
		t := report.Token{Token: tok.Token(id), Start: x.Enc.Offsets[k][0], End: x.Enc.Offsets[k][1], Relevance: tr.Raw[k]}
		if k >= 1 && k < tr.EOT {
			t.Normalized = tr.Norm[k-1]
		}
		r.Tokens = append(r.Tokens, t)
	}
	seen := map[int]bool{}
	for _, c := range x.Cells {
		i := c[0]
		if seen[i] {
			continue
		}
		seen[i] = true
		if i < 0 || i >= len(x.Cols) {
			return fail(fmt.Errorf("cell names image %d of %d", i, len(x.Cols)))
		}
		im := x.Result.Image(x.Cols[i])
		if im == nil {
			return fail(fmt.Errorf("no relevance for image %d", i))
		}
		r.Images = append(r.Images, report.Image{Image: i, File: x.Pair.Readings[i].Image, Grid: im.Grid, Relevance: im.Raw, Normalized: im.Norm})
	}
	if err := r.Finish(style); err != nil {
		return fail(err)
	}
	return r, nil
}
