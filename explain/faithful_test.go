package explain

import (
	"math"
	"slices"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

func TestGeometry(t *testing.T) {
	clip := loader.DefaultPreprocessConfig()
	fixed := clip
	fixed.ShortestEdge, fixed.Width, fixed.Height, fixed.DoCenterCrop = 0, 224, 224, false
	for _, tc := range []struct {
		name       string
		w, h       int
		p          loader.PreprocessConfig
		rw, rh     int
		left, top  int
		src0, src1 [2]float64 // where input (0,0) and (224,224) land in the source
	}{
		{"square", 224, 224, clip, 224, 224, 0, 0, [2]float64{0, 0}, [2]float64{224, 224}},
		{"LAVA frame 720x540", 720, 540, clip, 298, 224, 37, 0, [2]float64{37 * 720.0 / 298, 0}, [2]float64{261 * 720.0 / 298, 540}},
		{"portrait", 100, 150, clip, 224, 336, 0, 56, [2]float64{0, 56 * 150.0 / 336}, [2]float64{100, 280 * 150.0 / 336}},
		{"fixed resize", 300, 200, fixed, 224, 224, 0, 0, [2]float64{0, 0}, [2]float64{300, 200}},
	} {
		g, err := NewGeometry(tc.w, tc.h, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if g.ResizedW != tc.rw || g.ResizedH != tc.rh || g.Left != tc.left || g.Top != tc.top || g.W != 224 || g.H != 224 {
			t.Errorf("%s: %+v", tc.name, g)
		}
		x0, y0 := g.ToSource(0, 0)
		x1, y1 := g.ToSource(224, 224)
		for _, c := range [][2]float64{{x0 - tc.src0[0], y0 - tc.src0[1]}, {x1 - tc.src1[0], y1 - tc.src1[1]}} {
			if math.Abs(c[0]) > 1e-9 || math.Abs(c[1]) > 1e-9 {
				t.Errorf("%s: input corners map to (%g,%g) (%g,%g)", tc.name, x0, y0, x1, y1)
			}
		}
	}
	// An image smaller than the crop is padded: part of the input is no
	// source at all.
	small := clip
	small.DoResize = false
	g, err := NewGeometry(200, 100, small)
	if err != nil {
		t.Fatal(err)
	}
	if g.Left != -12 || g.Top != -62 {
		t.Errorf("padding offsets %d, %d; want -12, -62", g.Left, g.Top)
	}
	cover, err := g.PatchCoverage(7, []loader.Box{{X0: 0, Y0: 0, X1: 200, Y1: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if cover[0] != 0 || cover[24] != 1 {
		t.Errorf("coverage of the whole padded image: corner %g, centre %g", cover[0], cover[24])
	}
	if _, err := NewGeometry(0, 10, clip); err == nil {
		t.Error("empty image: no error")
	}
	if _, err := g.PatchCoverage(5, nil); err == nil {
		t.Error("224 pixels in a 5×5 grid: no error")
	}
}

func TestPatchCoverageAndPointing(t *testing.T) {
	p := loader.DefaultPreprocessConfig()
	p.DoResize, p.CropWidth, p.CropHeight = false, 64, 64
	g, err := NewGeometry(64, 64, p)
	if err != nil {
		t.Fatal(err)
	}
	// Patch (1,1) whole, half of patch (1,2), nothing else.
	boxes := []loader.Box{{X0: 16, Y0: 16, X1: 32, Y1: 32}, {X0: 32, Y0: 16, X1: 40, Y1: 32}}
	cover, err := g.PatchCoverage(4, boxes)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, 16)
	want[5], want[6] = 1, 0.5
	if !slices.Equal(cover, want) {
		t.Errorf("coverage %v, want %v", cover, want)
	}
	for _, tc := range []struct {
		name string
		rel  []float32
		want Pointing
	}{
		{"hit", []float32{0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			Pointing{Top: 5, Hit: true, Chance: 2.0 / 16, Mass: 1, ChanceMass: 1.5 / 16}},
		{"half inside", []float32{1, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			Pointing{Top: 6, Hit: true, Chance: 2.0 / 16, Mass: 1.5 / 4, ChanceMass: 1.5 / 16}},
		{"miss, negatives ignored", []float32{5, 0, 0, 0, 0, -9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
			Pointing{Top: 0, Hit: false, Chance: 2.0 / 16, Mass: 0.5 / 6, ChanceMass: 1.5 / 16}},
		{"tie goes to the first", make([]float32, 16),
			Pointing{Top: 0, Hit: false, Chance: 2.0 / 16, Mass: 0, ChanceMass: 1.5 / 16}},
	} {
		got, err := PointingGame(tc.rel, cover)
		if err != nil {
			t.Fatal(err)
		}
		if got.Top != tc.want.Top || got.Hit != tc.want.Hit || math.Abs(got.Chance-tc.want.Chance) > 1e-12 ||
			math.Abs(got.Mass-tc.want.Mass) > 1e-12 || math.Abs(got.ChanceMass-tc.want.ChanceMass) > 1e-12 {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if _, err := PointingGame(make([]float32, 16), make([]float64, 16)); err == nil {
		t.Error("boxes covering nothing: no error")
	}
	if _, err := PointingGame(make([]float32, 9), cover); err == nil {
		t.Error("9 values for 16 patches: no error")
	}
}

// tinyPair returns the fixture's two images [3,224,224] and its first text
// [77] as tensors of s.
func tinyPair(t *testing.T, s *torch.Scope) (m *model.CLIP, own, twin, ids *torch.Tensor) {
	t.Helper()
	m, pixels, idt, _ := hfTiny(t, s)
	return m, pixels.Select(0, 0), pixels.Select(0, 1), idt.Select(0, 0)
}

// margin scores ids against own and twin without any help from Perturb.
func margin(t *testing.T, m *model.CLIP, own, twin, ids *torch.Tensor) float64 {
	t.Helper()
	s := torch.NewScope()
	defer s.Close()
	out, err := m.Forward(s, torch.Stack([]*torch.Tensor{own.In(s), twin.In(s)}, 0), ids.In(s).Unsqueeze(0), model.ForwardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := out.LogitsPerImage.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return l[0] - l[1]
}

func TestPerturbMatchesManualMasking(t *testing.T) {
	torchtest.Require(t)
	s := torchtest.Scope(t)
	m, own, twin, ids := tinyPair(t, s)
	// Relevance rising with the patch index: most relevant first removes
	// patches 48, 47, …; least relevant first 0, 1, ….
	rel := make([]float32, 49)
	for i := range rel {
		rel[i] = float32(i)
	}
	p, err := Perturb(m, own, twin, ids, rel, []float64{0, 0.1, 0.5, 1})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Positive.Removed, []int{0, 5, 25, 49}) {
		t.Errorf("removed %v", p.Positive.Removed)
	}
	base := margin(t, m, own, twin, ids)
	removeManually := func(patches []int) float64 {
		v, err := own.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range patches {
			r, c := q/7, q%7
			for ch := range 3 {
				for y := r * 32; y < (r+1)*32; y++ {
					for x := c * 32; x < (c+1)*32; x++ {
						v[ch*224*224+y*224+x] = 0
					}
				}
			}
		}
		return margin(t, m, s.FromFloat32(v, 3, 224, 224), twin, ids)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"positive at 0", p.Positive.Margins[0], base},
		{"negative at 0", p.Negative.Margins[0], base},
		{"positive at 10%", p.Positive.Margins[1], removeManually([]int{48, 47, 46, 45, 44})},
		{"negative at 10%", p.Negative.Margins[1], removeManually([]int{0, 1, 2, 3, 4})},
		{"everything removed", p.Positive.Margins[3], p.Negative.Margins[3]},
	} {
		if math.Abs(c.got-c.want) > 1e-4 {
			t.Errorf("%s: margin %g, want %g", c.name, c.got, c.want)
		}
	}
	m0, m1, m2, m3 := p.Positive.Margins[0], p.Positive.Margins[1], p.Positive.Margins[2], p.Positive.Margins[3]
	wantAUC := 0.1*(m0+m1)/2 + 0.4*(m1+m2)/2 + 0.5*(m2+m3)/2
	if math.Abs(p.Positive.AUC-wantAUC) > 1e-9 {
		t.Errorf("AUC %g, want %g", p.Positive.AUC, wantAUC)
	}
	for _, bad := range [][]float64{{0.5, 0.1}, {-0.1}, {1.5}, {}} {
		if _, err := Perturb(m, own, twin, ids, rel, bad); err == nil {
			t.Errorf("fractions %v: no error", bad)
		}
	}
	if _, err := Perturb(m, own, twin, ids, rel[:48], nil); err == nil {
		t.Error("48 relevance values: no error")
	}
}

func TestDeleteTokensMatchesManualDeletion(t *testing.T) {
	torchtest.Require(t)
	s := torchtest.Scope(t)
	m, own, twin, ids := tinyPair(t, s)
	row, err := ids.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	const eot = 10 // the fixture's first text
	rel := make([]float32, 77)
	for i := range rel {
		rel[i] = float32((i * 7) % 11) // over 1..9: 7 3 10 6 2 9 5 1 8
	}
	rel[0], rel[eot] = 100, 100 // never dropped
	d, err := DeleteTokens(m, own, twin, ids, rel, eot, []int{1, 2, 20})
	if err != nil {
		t.Fatal(err)
	}
	drop := func(pos ...int) float64 {
		var v []int64
		for p, id := range row {
			if !slices.Contains(pos, p) {
				v = append(v, id)
			}
		}
		for len(v) < 77 {
			v = append(v, row[eot])
		}
		return margin(t, m, own, twin, s.FromInt64(v, 77))
	}
	base := margin(t, m, own, twin, ids)
	if math.Abs(d.Margin-base) > 1e-4 {
		t.Errorf("margin %g, want %g", d.Margin, base)
	}
	if !slices.Equal(d.Top[0].Removed, []int{3}) || !slices.Equal(d.Top[1].Removed, []int{3, 6}) || len(d.Top[2].Removed) != 9 {
		t.Errorf("removed %v, %v, %v", d.Top[0].Removed, d.Top[1].Removed, d.Top[2].Removed)
	}
	if !slices.Equal(d.Bottom[0].Removed, []int{8}) {
		t.Errorf("least relevant removed %v, want [8]", d.Bottom[0].Removed)
	}
	for _, c := range []struct {
		name string
		got  TokenDeletion
		want float64
	}{
		{"top 1", d.Top[0], drop(3)},
		{"top 2", d.Top[1], drop(3, 6)},
		{"bottom 1", d.Bottom[0], drop(8)},
	} {
		if math.Abs(c.got.Margin-c.want) > 1e-4 || c.got.Delta != c.got.Margin-d.Margin {
			t.Errorf("%s: margin %g delta %g, want %g", c.name, c.got.Margin, c.got.Delta, c.want)
		}
	}
	for _, tc := range []struct {
		name string
		eot  int
		ks   []int
		rel  []float32
	}{
		{"eot 0", 0, nil, rel},
		{"eot past the end", 77, nil, rel},
		{"k 0", eot, []int{0}, rel},
		{"short relevance", eot, nil, rel[:50]},
	} {
		if _, err := DeleteTokens(m, own, twin, ids, tc.rel, tc.eot, tc.ks); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestSummarize(t *testing.T) {
	ms := []Metrics{
		{Margin: 1, Perturbation: &Perturbation{Positive: Curve{AUC: 0.2}, Negative: Curve{AUC: 0.8}},
			Pointing: &Pointing{Hit: true, Chance: 0.1, Mass: 0.5, ChanceMass: 0.05},
			Text:     &TextDeletion{Ks: []int{1}, Top: []TokenDeletion{{Delta: -1}}, Bottom: []TokenDeletion{{Delta: 0}}}},
		{Margin: -1, Perturbation: &Perturbation{Positive: Curve{AUC: 0.4}, Negative: Curve{AUC: 0.6}},
			Text: &TextDeletion{Ks: []int{1}, Top: []TokenDeletion{{Delta: -3}}, Bottom: []TokenDeletion{{Delta: 1}}}},
		{Margin: 3},
	}
	s := Summarize(ms)
	want := Summary{Readings: 3, Correct: 2, MeanMargin: 1, Perturbed: 2, AUCPositive: 0.3, AUCNegative: 0.7,
		Pointed: 1, PointingHits: 1, PointingAccuracy: 1, PointingChance: 0.1, Mass: 0.5, ChanceMass: 0.05,
		TextDeleted: 2, Ks: []int{1}, TopDelta: []float64{-2}, BottomDelta: []float64{0.5}}
	if math.Abs(s.AUCPositive-want.AUCPositive) > 1e-12 || math.Abs(s.AUCNegative-want.AUCNegative) > 1e-12 {
		t.Errorf("AUCs %g %g", s.AUCPositive, s.AUCNegative)
	}
	s.AUCPositive, s.AUCNegative = want.AUCPositive, want.AUCNegative
	if s.Readings != want.Readings || s.Correct != want.Correct || s.MeanMargin != want.MeanMargin || s.Perturbed != want.Perturbed ||
		s.Pointed != want.Pointed || s.PointingAccuracy != want.PointingAccuracy || s.Mass != want.Mass ||
		s.TextDeleted != want.TextDeleted || !slices.Equal(s.TopDelta, want.TopDelta) || !slices.Equal(s.BottomDelta, want.BottomDelta) {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
}
