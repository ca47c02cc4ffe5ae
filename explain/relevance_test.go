package explain

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/torch"
)

// hfTinyDir is the copy of ../shared/fixtures/hf-clip-tiny: a random CLIP
// saved by transformers 5.17 with inputs and the relevance the reference
// notebook's rule computed for them.
var hfTinyDir = filepath.Join("..", "testdata", "hf-clip-tiny")

// relTol is the relative tolerance the issue sets for relevance parity.
const relTol = 1e-4

func TestParseMethodAndStartLayer(t *testing.T) {
	for _, m := range Methods {
		got, err := ParseMethod(string(m))
		if err != nil || got != m {
			t.Errorf("ParseMethod(%q) = %q, %v", m, got, err)
		}
	}
	if _, err := ParseMethod("gradcam"); err == nil {
		t.Error("ParseMethod(gradcam) succeeded")
	}
	for _, tc := range []struct {
		in    string
		want  StartLayer
		depth int
		index int
		bad   bool
	}{
		{in: "last", want: LastLayer, depth: 12, index: 11},
		{in: "all", want: AllLayers, depth: 12, index: 0},
		{in: "5", want: 5, depth: 12, index: 5},
		{in: "-2", want: -2, depth: 12, index: 10},
		{in: "12", want: 12, depth: 12, bad: true},
		{in: "-13", want: -13, depth: 12, bad: true},
	} {
		l, err := ParseStartLayer(tc.in)
		if err != nil || l != tc.want {
			t.Errorf("ParseStartLayer(%q) = %v, %v; want %v", tc.in, l, err, tc.want)
			continue
		}
		if l.String() != tc.in {
			t.Errorf("StartLayer(%d).String() = %q, want %q", int(l), l.String(), tc.in)
		}
		i, err := l.Index(tc.depth)
		if tc.bad != (err != nil) || (!tc.bad && i != tc.index) {
			t.Errorf("%s.Index(%d) = %d, %v; want %d (error %v)", tc.in, tc.depth, i, err, tc.index, tc.bad)
		}
	}
	if _, err := ParseStartLayer("first"); err == nil {
		t.Error(`ParseStartLayer("first") succeeded`)
	}
}

// refMatrix is the Go reference of Method.Matrix in float64, over maps
// a[l][b][h][i][j] and gradients g of the same shape.
func refMatrix(m Method, a, g [][][][][]float64, start int) [][][]float64 {
	nl, nb, nh, n := len(a), len(a[0]), len(a[0][0]), len(a[0][0][0])
	headMean := func(l, b int, f func(x, y float64) float64) [][]float64 {
		out := square(n)
		for h := range nh {
			for i := range n {
				for j := range n {
					var gv float64
					if g != nil {
						gv = g[l][b][h][i][j]
					}
					out[i][j] += f(a[l][b][h][i][j], gv) / float64(nh)
				}
			}
		}
		return out
	}
	camF := func(x, y float64) float64 { return max(x*y, 0) }
	attF := func(x, _ float64) float64 { return x }
	res := make([][][]float64, nb)
	for b := range nb {
		switch m {
		case Chefer:
			r := eye(n)
			for l := start; l < nl; l++ {
				r = addM(r, mul(headMean(l, b, camF), r))
			}
			res[b] = r
		case Rollout:
			r := eye(n)
			for l := range nl {
				hat := headMean(l, b, attF)
				for i := range n {
					var sum float64
					for j := range n {
						hat[i][j] = 0.5 * hat[i][j]
						if i == j {
							hat[i][j] += 0.5
						}
						sum += hat[i][j]
					}
					for j := range n {
						hat[i][j] /= sum
					}
				}
				r = mul(hat, r)
			}
			res[b] = r
		case Attention:
			res[b] = headMean(nl-1, b, attF)
		case GradAttn:
			res[b] = headMean(nl-1, b, camF)
		}
	}
	return res
}

func square(n int) [][]float64 {
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, n)
	}
	return m
}

func eye(n int) [][]float64 {
	m := square(n)
	for i := range m {
		m[i][i] = 1
	}
	return m
}

func mul(a, b [][]float64) [][]float64 {
	n := len(a)
	out := square(n)
	for i := range n {
		for k := range n {
			for j := range n {
				out[i][j] += a[i][k] * b[k][j]
			}
		}
	}
	return out
}

func addM(a, b [][]float64) [][]float64 {
	out := square(len(a))
	for i := range a {
		for j := range a[i] {
			out[i][j] = a[i][j] + b[i][j]
		}
	}
	return out
}

// randomMaps makes L layers of [B,H,N,N] softmax rows and signed gradients.
func randomMaps(r *rand.Rand, l, b, h, n int) (a, g [][][][][]float64) {
	mk := func(f func() float64, softmax bool) [][][][][]float64 {
		out := make([][][][][]float64, l)
		for li := range out {
			out[li] = make([][][][]float64, b)
			for bi := range out[li] {
				out[li][bi] = make([][][]float64, h)
				for hi := range out[li][bi] {
					m := square(n)
					for i := range m {
						var sum float64
						for j := range m[i] {
							m[i][j] = f()
							sum += m[i][j]
						}
						if softmax {
							for j := range m[i] {
								m[i][j] /= sum
							}
						}
					}
					out[li][bi][hi] = m
				}
			}
		}
		return out
	}
	a = mk(func() float64 { return math.Exp(2 * r.NormFloat64()) }, true)
	g = mk(r.NormFloat64, false)
	return a, g
}

func flat5(x [][][][]float64) []float32 {
	var out []float32
	for _, b := range x {
		for _, h := range b {
			for _, row := range h {
				for _, v := range row {
					out = append(out, float32(v))
				}
			}
		}
	}
	return out
}

func TestMatrixMatchesGoReference(t *testing.T) {
	torchtest.Require(t)
	const nl, nb, nh, n = 3, 2, 4, 7
	a, g := randomMaps(rand.New(rand.NewPCG(1, 2)), nl, nb, nh, n)
	s := torchtest.Scope(t)
	var probs, grads []*torch.Tensor
	for l := range nl {
		probs = append(probs, s.FromFloat32(flat5(a[l]), nb, nh, n, n))
		grads = append(grads, s.FromFloat32(flat5(g[l]), nb, nh, n, n))
	}
	for _, m := range Methods {
		for _, start := range []StartLayer{LastLayer, AllLayers, 1, -2} {
			first, _ := start.Index(nl)
			name := fmt.Sprintf("%s/%s", m, start)
			r, err := m.Matrix(s, probs, grads, start)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := r.Shape(); !slices.Equal(got, []int64{nb, n, n}) {
				t.Fatalf("%s: shape %v", name, got)
			}
			got, err := r.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			want := refMatrix(m, a, g, first)
			worst := 0.0
			for b := range nb {
				for i := range n {
					for j := range n {
						w := want[b][i][j]
						worst = max(worst, math.Abs(float64(got[(b*n+i)*n+j])-w)/max(math.Abs(w), 1e-3))
					}
				}
			}
			if worst > 1e-5 {
				t.Errorf("%s: relative error %.3g against the Go reference", name, worst)
			}
		}
	}
}

func TestMatrixErrors(t *testing.T) {
	torchtest.Require(t)
	s := torchtest.Scope(t)
	p := s.Rand([]int64{1, 2, 3, 3}, torch.Options{})
	q := s.Rand([]int64{1, 2, 4, 4}, torch.Options{})
	for _, tc := range []struct {
		name         string
		m            Method
		probs, grads []*torch.Tensor
		start        StartLayer
	}{
		{"no maps", Chefer, nil, nil, LastLayer},
		{"missing grads", Chefer, []*torch.Tensor{p}, nil, LastLayer},
		{"not square", Attention, []*torch.Tensor{s.Rand([]int64{1, 2, 3, 4}, torch.Options{})}, nil, LastLayer},
		{"layers differ", Rollout, []*torch.Tensor{p, q}, nil, LastLayer},
		{"grad shape", GradAttn, []*torch.Tensor{p}, []*torch.Tensor{q}, LastLayer},
		{"start beyond depth", Chefer, []*torch.Tensor{p}, []*torch.Tensor{p}, 3},
		{"unknown method", Method("lrp"), []*torch.Tensor{p}, nil, LastLayer},
	} {
		if _, err := tc.m.Matrix(s, tc.probs, tc.grads, tc.start); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// hfTiny loads the fixture's model, inputs and expected outputs.
func hfTiny(t testing.TB, s *torch.Scope) (m *model.CLIP, pixels, ids *torch.Tensor, want map[string][]float32) {
	t.Helper()
	m, err := model.Load(filepath.Join(hfTinyDir, "checkpoint"), model.Options{Device: torchtest.Device(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	in, err := safetensors.Open(filepath.Join(hfTinyDir, "inputs.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	pv, err := in.Float32s("pixel_values")
	if err != nil {
		t.Fatal(err)
	}
	iv, err := in.Int64s("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	pi, _ := in.Tensor("pixel_values")
	ii, _ := in.Tensor("input_ids")
	pixels, ids = s.FromFloat32(pv, pi.Shape...), s.FromInt64(iv, ii.Shape...)
	ex, err := safetensors.Open(filepath.Join(hfTinyDir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	want = map[string][]float32{}
	for _, tag := range []string{"last", "all"} {
		for _, name := range []string{"rel_image_", "rel_text_", "rel_text_full_"} {
			v, err := ex.Float32s(name + tag)
			if err != nil {
				t.Fatal(err)
			}
			want[name+tag] = v
		}
	}
	return m, pixels, ids, want
}

// relErr is the largest |got−want| relative to |want|, with values smaller
// than a millionth of the largest |want| compared against that floor
// instead (so that exact zeros and rounding-level values do not divide by
// nothing).
func relErr(got, want []float32) float64 {
	scale := 0.0
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	floor := 1e-6 * scale
	worst := 0.0
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d/max(math.Abs(float64(want[i])), floor))
	}
	return worst
}

func TestParityHFTiny(t *testing.T) {
	s := torchtest.Scope(t)
	m, pixels, ids, want := hfTiny(t, s)
	for _, tc := range []struct {
		tag   string
		start StartLayer
	}{{"last", LastLayer}, {"all", AllLayers}} {
		// Without Matrices the texts are cut after their end of text.
		for _, matrices := range []bool{true, false} {
			res, err := Explain(m, pixels, ids, Own(2), Options{Method: Chefer, Start: tc.start, Matrices: matrices})
			if err != nil {
				t.Fatal(err)
			}
			var img, txt, full []float32
			for b, r := range res {
				img = append(img, r.Image(b).Raw...)
				txt = append(txt, r.Text(b).Raw...)
				full = append(full, r.Text(b).Matrix...)
			}
			got := []struct {
				prefix string
				v      []float32
			}{{"rel_image_", img}, {"rel_text_", txt}}
			if matrices {
				got = append(got, struct {
					prefix string
					v      []float32
				}{"rel_text_full_", full})
			} else if len(full) != 0 {
				t.Errorf("matrices kept without Options.Matrices")
			}
			for _, gv := range got {
				name, g := gv.prefix+tc.tag, gv.v
				w := want[name]
				if len(g) != len(w) {
					t.Fatalf("%s: %d values, want %d", name, len(g), len(w))
				}
				e := relErr(g, w)
				t.Logf("%s (matrices %v): max relative error %.3g", name, matrices, e)
				if e > relTol {
					t.Errorf("%s (matrices %v): max relative error %.3g > %g", name, matrices, e, relTol)
				}
			}
		}
	}
}

// TestTextStartLayer: a start layer for the text encoder alone (the
// notebook's start_layer_text) changes the text's relevance and not the
// image's: all layers for the image and the last for the text give the
// reference's all-layer image and last-layer text, and the other way round.
func TestTextStartLayer(t *testing.T) {
	s := torchtest.Scope(t)
	m, pixels, ids, want := hfTiny(t, s)
	for _, tc := range []struct {
		start, text       StartLayer
		imageTag, textTag string
	}{{AllLayers, LastLayer, "all", "last"}, {LastLayer, AllLayers, "last", "all"}} {
		text := tc.text
		res, err := Explain(m, pixels, ids, Own(2), Options{Method: Chefer, Start: tc.start, TextStart: &text})
		if err != nil {
			t.Fatal(err)
		}
		var img, txt []float32
		for b, r := range res {
			img = append(img, r.Image(b).Raw...)
			txt = append(txt, r.Text(b).Raw...)
		}
		if e := relErr(img, want["rel_image_"+tc.imageTag]); e > relTol {
			t.Errorf("start %s, text %s: image relevance %.3g from the reference's %s", tc.start, tc.text, e, tc.imageTag)
		}
		if e := relErr(txt, want["rel_text_"+tc.textTag]); e > relTol {
			t.Errorf("start %s, text %s: text relevance %.3g from the reference's %s", tc.start, tc.text, e, tc.textTag)
		}
	}
	// The references differ, so the test tells the layers apart.
	if e := relErr(want["rel_text_all"], want["rel_text_last"]); e < 1e-2 {
		t.Errorf("the fixture's text relevance of all layers and of the last differ by only %.3g", e)
	}
}

// TestRoundsMatchSeparateTargets explains targets that share images and
// texts (each reading against both images, the summed target, own and twin
// together) in one call and compares every result with the same target
// explained alone.
func TestRoundsMatchSeparateTargets(t *testing.T) {
	s := torchtest.Scope(t)
	m, pixels, ids, _ := hfTiny(t, s)
	targets := []Target{
		{{0, 0}, {1, 0}},
		{{0, 1}, {1, 1}},
		{{0, 0}},
		{{1, 0}},
		{{0, 1}, {0, 1}},
	}
	if got := planRounds(targets, true); len(got) < 3 {
		t.Errorf("planRounds put conflicting targets together: %v", got)
	}
	for _, method := range Methods {
		all, err := Explain(m, pixels, ids, targets, Options{Method: method, Start: AllLayers})
		if err != nil {
			t.Fatal(err)
		}
		for k, tg := range targets {
			one, err := Explain(m, pixels, ids, []Target{tg}, Options{Method: method, Start: AllLayers})
			if err != nil {
				t.Fatal(err)
			}
			a, b := all[k], one[0]
			if math.Abs(a.Logit-b.Logit) > 1e-4 || len(a.Images) != len(b.Images) || len(a.Texts) != len(b.Texts) {
				t.Fatalf("%s target %v: %+v vs alone %+v", method, tg, a, b)
			}
			for i := range a.Images {
				if a.Images[i].Index != b.Images[i].Index || relErr(a.Images[i].Raw, b.Images[i].Raw) > 1e-5 {
					t.Errorf("%s target %v image %d differs from the target alone", method, tg, a.Images[i].Index)
				}
			}
			for i := range a.Texts {
				if a.Texts[i].Index != b.Texts[i].Index || relErr(a.Texts[i].Raw, b.Texts[i].Raw) > 1e-5 {
					t.Errorf("%s target %v text %d differs from the target alone", method, tg, a.Texts[i].Index)
				}
			}
		}
	}
	// A summed target over both images gives image i the relevance of its
	// own cell alone, and the text the relevance of the sum.
	sum, err := Explain(m, pixels, ids, []Target{{{0, 0}, {1, 0}}, {{0, 0}}, {{1, 0}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(sum[0].Image(1).Raw, sum[2].Image(1).Raw); e > 1e-5 {
		t.Errorf("image 1 under the summed target differs from its own cell's by %.3g", e)
	}
	if e := relErr(sum[0].Text(0).Raw, sum[1].Text(0).Raw); e < 1e-3 {
		t.Errorf("text 0 under the summed target equals its relevance for image 0 alone (%.3g): the sum had no effect", e)
	}
}

func TestExplainErrors(t *testing.T) {
	s := torchtest.Scope(t)
	m, pixels, ids, _ := hfTiny(t, s)
	for _, tc := range []struct {
		name    string
		targets []Target
		opt     Options
	}{
		{"empty target", []Target{{}}, Options{}},
		{"image out of range", []Target{{{2, 0}}}, Options{}},
		{"text out of range", []Target{{{0, -1}}}, Options{}},
		{"bad method", Own(2), Options{Method: "lime"}},
		{"bad start", Own(2), Options{Start: 5}},
	} {
		if _, err := Explain(m, pixels, ids, tc.targets, tc.opt); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := Explain(m, nil, ids, Own(2), Options{}); err == nil {
		t.Error("nil pixels: no error")
	}
	if res, err := Explain(m, pixels, ids, nil, Options{}); err != nil || len(res) != 0 {
		t.Errorf("no targets: %v, %v", res, err)
	}
}

// perLayerGrads is the notebook's way: one autograd.grad of the objective
// per attention map, keeping the graph between them.
func perLayerGrads(objective *torch.Tensor, maps []*torch.Tensor) ([]*torch.Tensor, error) {
	out := make([]*torch.Tensor, len(maps))
	for l, a := range maps {
		g, err := torch.Grad([]*torch.Tensor{objective}, []*torch.Tensor{a}, nil, true)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		out[l] = g[0].Detach()
	}
	return out, nil
}

func TestOneBackwardEqualsPerLayerBackward(t *testing.T) {
	s := torchtest.Scope(t)
	m, pixels, ids, _ := hfTiny(t, s)
	out, err := m.Forward(s, pixels, ids, model.ForwardOptions{Capture: true})
	if err != nil {
		t.Fatal(err)
	}
	// The notebook's target: the sum of the diagonal.
	objective := out.LogitsPerImage.Mul(s.Eye(2, torch.Options{Device: m.Device()})).SumAll()
	maps := append(append([]*torch.Tensor{}, out.Image.Attentions...), out.Text.Attentions...)
	per, err := perLayerGrads(objective, maps)
	if err != nil {
		t.Fatal(err)
	}
	one, err := torch.Grad([]*torch.Tensor{objective}, maps, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	ni := len(out.Image.Attentions)
	for _, start := range []StartLayer{LastLayer, AllLayers} {
		for _, enc := range []struct {
			name       string
			maps       []*torch.Tensor
			per, one   []*torch.Tensor
			wantLayers int
		}{
			{"image", out.Image.Attentions, per[:ni], one[:ni], 2},
			{"text", out.Text.Attentions, per[ni:], one[ni:], 2},
		} {
			if len(enc.maps) != enc.wantLayers {
				t.Fatalf("%s: %d attention maps", enc.name, len(enc.maps))
			}
			a, err := Chefer.Matrix(s, enc.maps, enc.one, start)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Chefer.Matrix(s, enc.maps, enc.per, start)
			if err != nil {
				t.Fatal(err)
			}
			av, err := a.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			bv, err := b.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(av, bv); e > 1e-6 {
				t.Errorf("%s, start %s: one backward differs from per-layer backwards by %.3g relative", enc.name, start, e)
			}
			for l := range enc.one {
				g1, _ := enc.one[l].Float32s()
				g2, _ := enc.per[l].Float32s()
				// Exact: both ask the same autograd nodes for the same grads in one process.
				if !slices.Equal(g1, g2) {
					t.Errorf("%s layer %d: gradients differ (max rel %.3g)", enc.name, l, relErr(g1, g2))
				}
			}
		}
	}
}

func FuzzParseStartLayer(f *testing.F) {
	for _, s := range []string{"last", "all", "0", "-1", "11", "+3", "007", " 1", "1e3", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseStartLayer(s)
		if err != nil {
			return
		}
		back, err := ParseStartLayer(l.String())
		if err != nil || back != l {
			t.Errorf("%q parsed as %d, whose String %q parses as %d, %v", s, int(l), l.String(), int(back), err)
		}
		if i, err := l.Index(12); err == nil && (i < 0 || i >= 12) {
			t.Errorf("%q: index %d outside 12 layers", s, i)
		}
	})
}

// TestNoTensorLeaks checks that Explain and the metrics free every tensor
// they create.
func TestNoTensorLeaks(t *testing.T) {
	s := torchtest.Scope(t)
	m, pixels, ids, _ := hfTiny(t, s)
	own, twin, row := pixels.Select(0, 0), pixels.Select(0, 1), ids.Select(0, 0)
	before := torch.LiveTensors()
	for _, method := range Methods {
		res, err := Explain(m, pixels, ids, []Target{{{0, 0}, {1, 0}}, {{1, 1}}, {{0, 1}}}, Options{Method: method, Start: AllLayers, Matrices: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Perturb(m, own, twin, row, res[0].Image(0).Raw, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := DeleteTokens(m, own, twin, row, res[0].Text(0).Raw, res[0].Text(0).EOT, nil); err != nil {
			t.Fatal(err)
		}
	}
	if after := torch.LiveTensors(); after != before {
		t.Errorf("%d live tensors before, %d after", before, after)
	}
}

// TestExplainInterrupt: an Interrupt that answers an error at its nth call
// stops Explain with that error, at every stage it is asked between, and
// one that never does changes nothing.
func TestExplainInterrupt(t *testing.T) {
	s := torchtest.Scope(t)
	m, pixels, ids, _ := hfTiny(t, s)
	stop := errors.New("stop")
	want, err := Explain(m, pixels, ids, Own(2), Options{})
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	got, err := Explain(m, pixels, ids, Own(2), Options{Interrupt: func() error { asked++; return nil }})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("a silent Interrupt changed the result: %v", err)
	}
	// Before the round, after the forward and after the backward pass.
	if asked != 3 {
		t.Fatalf("Interrupt asked %d times, want 3", asked)
	}
	for n := 1; n <= asked; n++ {
		calls := 0
		_, err := Explain(m, pixels, ids, Own(2), Options{Interrupt: func() error {
			if calls++; calls == n {
				return stop
			}
			return nil
		}})
		if !errors.Is(err, stop) || calls != n {
			t.Errorf("stop at call %d: err %v after %d calls", n, err, calls)
		}
	}
}
