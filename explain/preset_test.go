package explain_test

import (
	"context"
	"math"
	"testing"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// TestDeletionIsAnAblationPreset: the token-deletion metric's margins
// (DeleteTokens) equal those of model.ScoreVariants dropping the same
// preset tokens, on a demo pair and checkpoint. DeleteTokens pads its
// texts to 77 positions, ScoreVariants to the batch's longest; the causal
// mask makes the padding irrelevant, so only the order of float
// operations differs: 1e-4 absolute on margins of a few units.
func TestDeletionIsAnAblationPreset(t *testing.T) {
	torchtest.Require(t)
	m, tok, err := demo.Load(model.Options{Device: torchtest.Device(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	split, i, p, err := demo.FindPair("pp-00009")
	if err != nil {
		t.Fatal(err)
	}
	prep, err := model.PreprocessFor(m)
	if err != nil {
		t.Fatal(err)
	}
	texts, err := model.ReadingTexts(&p, trees.StylePaper)
	if err != nil {
		t.Fatal(err)
	}
	ctxLen := m.Config().Text.MaxPositionEmbeddings
	enc := tok.Encode(texts[0], ctxLen)
	eot := len(enc.IDs) - 1
	row, err := tok.Pack([]tokenizer.Encoding{enc}, ctxLen)
	if err != nil {
		t.Fatal(err)
	}
	// Any relevance will do: the test is about the tokens dropped and
	// the scores, not about where relevance comes from.
	rel := make([]float32, ctxLen)
	for pos := range rel {
		rel[pos] = float32((pos * 7) % 13)
	}
	s := torchtest.Scope(t)
	size := int64(m.Config().Vision.ImageSize)
	var imgs [2]*torch.Tensor
	for r := range 2 {
		img, err := split.Image(&p.Readings[r])
		if err != nil {
			t.Fatal(err)
		}
		px, err := loader.Preprocess(img, prep)
		if err != nil {
			t.Fatal(err)
		}
		imgs[r] = s.FromFloat32(px, 3, size, size).ToDevice(m.Device())
	}
	ks := []int{1, 2, 3}
	d, err := explain.DeleteTokens(m, imgs[0], imgs[1], s.FromInt64(row, int64(ctxLen)).ToDevice(m.Device()), rel, eot, ks)
	if err != nil {
		t.Fatal(err)
	}
	var vs []model.Variant
	var want []float64
	for i, k := range ks {
		for j, td := range []explain.TokenDeletion{d.Top[i], d.Bottom[i]} {
			preset := model.DeletionPreset(rel, eot, k, j == 0)
			if len(preset) != len(td.Removed) {
				t.Fatalf("k %d: preset %v, DeleteTokens removed %v", k, preset, td.Removed)
			}
			for x := range preset {
				if preset[x] != td.Removed[x] {
					t.Fatalf("k %d: preset %v, DeleteTokens removed %v", k, preset, td.Removed)
				}
			}
			vs = append(vs, model.Variant{Drop: [][]int{preset}})
			want = append(want, td.Margin)
		}
	}
	w := torch.NewWorker()
	defer w.Close()
	out, err := model.ScoreVariants(context.Background(), w, m, tok, split, i, trees.StylePaper, vs)
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0][0][0] - out[0][0][1]; math.Abs(got-d.Margin) > 1e-4 {
		t.Errorf("full text: margin %g, DeleteTokens %g", got, d.Margin)
	}
	for v, wm := range want {
		if got := out[v+1][0][0] - out[v+1][0][1]; math.Abs(got-wm) > 1e-4 {
			t.Errorf("variant %d (drop %v): margin %g, DeleteTokens %g", v, vs[v].Drop[0], got, wm)
		}
	}
}
