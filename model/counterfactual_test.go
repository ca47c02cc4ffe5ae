package model_test

import (
	"context"
	"image"
	"math"
	"testing"
	"time"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// TestVariantsOnDemo scores a demo pair's counterfactuals in one batch on
// the demo checkpoint. Within one forward pass an unchanged input shares
// the original's row or column, so "no change" is checked to 1e-6 (it is
// exact by construction; the tolerance only states the contract) and a
// swap to 1e-5.
func TestVariantsOnDemo(t *testing.T) {
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
	var evidence []loader.Box
	for _, b := range p.Readings[0].Boxes {
		if b.Role == loader.RoleEvidence {
			evidence = append(evidence, b)
		}
	}
	if len(evidence) == 0 {
		t.Fatal("pp-00009's reading A has no evidence box")
	}
	empty := loader.Box{X0: 5, Y0: 5, X1: 5, Y1: 5}
	vs := []model.Variant{
		{Mask: [][]loader.Box{evidence}, Fill: model.FillGrey},
		{Mask: [][]loader.Box{{empty}}, Fill: model.FillMean},
		{Swap: true},
		{Drop: [][]int{{}, nil}},
		{Drop: [][]int{{1, 2}}},
		{Neutral: true},
		{Mask: [][]loader.Box{evidence}, Fill: model.FillBlur},
	}
	w := torch.NewWorker()
	defer w.Close()
	began := time.Now()
	out, err := model.ScoreVariants(context.Background(), w, m, tok, split, i, trees.StylePaper, vs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the pair and %d variants in one forward pass: %v", len(vs), time.Since(began))
	if len(out) != len(vs)+1 {
		t.Fatalf("%d results for %d variants", len(out), len(vs))
	}
	orig := out[0]
	for v, want := range map[int][][]float64{2: orig, 4: orig} {
		for r := range want {
			for k := range want[r] {
				if d := math.Abs(out[v][r][k] - want[r][k]); d > 1e-6 {
					t.Errorf("variant %d (no change): text %d image %d: %g, want %g", v, r, k, out[v][r][k], want[r][k])
				}
			}
		}
	}
	for r := range orig {
		for k := range orig[r] {
			if d := math.Abs(out[3][r][k] - orig[r][1-k]); d > 1e-5 {
				t.Errorf("swap: text %d image %d: %g, want %g", r, k, out[3][r][k], orig[r][1-k])
			}
		}
	}
	for _, v := range []int{1, 7} {
		if d := math.Abs(out[v][0][0] - orig[0][0]); d < 1e-3 {
			t.Errorf("masking the evidence (%v) changed text A × image A by %g, want a visible change", vs[v-1].Fill, d)
		}
		if d := math.Abs(out[v][0][1] - orig[0][1]); d > 1e-6 {
			t.Errorf("masking image A changed image B's logit by %g", d)
		}
	}
	if d := math.Abs(out[5][0][0] - orig[0][0]); d < 1e-4 {
		t.Errorf("dropping tokens 1 and 2 of text A changed its logit by %g", d)
	}
	if d := math.Abs(out[5][1][0] - orig[1][0]); d > 1e-6 {
		t.Errorf("dropping tokens of text A changed text B's logit by %g", d)
	}
	if d := math.Abs(out[6][0][0] - orig[0][0]); d < 1e-4 {
		t.Errorf("the neutral sentence changed text A × image A by %g", d)
	}
	t.Logf("pp-00009 text A × image A: %.4f; evidence grey %.4f, blur %.4f; neutral %.4f", orig[0][0], out[1][0][0], out[7][0][0], out[6][0][0])

	if _, err := model.ScoreVariants(context.Background(), w, m, tok, split, i, trees.StylePaper, []model.Variant{{Drop: [][]int{{0}}}}); err == nil {
		t.Error("dropping the start of text: no error")
	}
}

// TestMaskPixels checks the box mapping: a 200×100 file resized to a
// shortest edge of 8 (16×8) and centre-cropped to 8×8 shows file columns
// 50 to 150, so a box over the file's left half fills the input's left
// half; grey is 0, mean the image's mean, and a box outside the crop or
// of zero size fills nothing.
func TestMaskPixels(t *testing.T) {
	prep := loader.DefaultPreprocessConfig()
	prep.ShortestEdge, prep.CropHeight, prep.CropWidth = 8, 8, 8
	src := image.Pt(200, 100)
	fresh := func() []float32 {
		px := make([]float32, 3*64)
		for i := range px {
			px[i] = float32(i%8) + 1
		}
		return px
	}
	px := fresh()
	changed, err := model.MaskPixels(px, src, prep, []loader.Box{{X0: 0, Y0: 0, X1: 100, Y1: 100}}, model.FillGrey)
	if err != nil || !changed {
		t.Fatalf("changed %v, %v", changed, err)
	}
	for i, v := range px {
		if x := i % 8; (x < 4) != (v == 0) {
			t.Fatalf("pixel %d (column %d) = %g after masking the left half", i, x, v)
		}
	}
	px = fresh()
	if _, err := model.MaskPixels(px, src, prep, []loader.Box{{X0: 0, Y0: 0, X1: 200, Y1: 100}}, model.FillMean); err != nil {
		t.Fatal(err)
	}
	for i, v := range px {
		if math.Abs(float64(v)-4.5) > 1e-6 {
			t.Fatalf("pixel %d = %g, want the mean 4.5", i, v)
		}
	}
	for _, b := range []loader.Box{{X0: 0, Y0: 0, X1: 40, Y1: 100}, {X0: 80, Y0: 30, X1: 80, Y1: 60}} {
		px = fresh()
		if changed, err := model.MaskPixels(px, src, prep, []loader.Box{b}, model.FillBlur); err != nil || changed {
			t.Errorf("box %v: changed %v, %v; want nothing filled", b, changed, err)
		}
	}
	if _, err := model.MaskPixels(fresh(), image.Point{}, prep, nil, model.FillGrey); err == nil {
		t.Error("empty source size: no error")
	}
}

func TestParseFill(t *testing.T) {
	for _, s := range []string{"grey", "mean", "blur"} {
		if f, err := model.ParseFill(s); err != nil || f.String() != s {
			t.Errorf("ParseFill(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := model.ParseFill("gray"); err == nil {
		t.Error("ParseFill(gray): no error")
	}
}
