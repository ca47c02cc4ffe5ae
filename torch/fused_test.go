package torch_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// randomLayers makes n encoder layers of width d and MLP width 2d.
func randomLayers(s *torch.Scope, o torch.Options, n int, d int64) []torch.EncoderLayer {
	r := func(shape ...int64) *torch.Tensor { return s.Randn(shape, o).MulScalar(0.2) }
	ls := make([]torch.EncoderLayer, n)
	for i := range ls {
		ls[i] = torch.EncoderLayer{
			LN1W: r(d).AddScalar(1), LN1B: r(d),
			QW: r(d, d), QB: r(d), KW: r(d, d), KB: r(d), VW: r(d, d), VB: r(d),
			OutW: r(d, d), OutB: r(d),
			LN2W: r(d).AddScalar(1), LN2B: r(d),
			FC1W: r(2*d, d), FC1B: r(2 * d), FC2W: r(d, 2*d), FC2B: r(d),
		}
	}
	return ls
}

// encoderOps is PreLNEncoder built of single ops, as package model's
// per-op path computes it.
func encoderOps(h *torch.Tensor, ls []torch.EncoderLayer, o torch.EncoderOptions) *torch.Tensor {
	shape := h.Shape()
	b, n, d := shape[0], shape[1], shape[2]
	hd := d / int64(o.Heads)
	split := func(t *torch.Tensor) *torch.Tensor { return t.View(b, n, int64(o.Heads), hd).Transpose(1, 2) }
	for _, l := range ls {
		x := h.LayerNorm([]int64{d}, l.LN1W, l.LN1B, o.Eps)
		ctx := torch.ScaledDotProductAttention(split(x.Linear(l.QW, l.QB)), split(x.Linear(l.KW, l.KB)), split(x.Linear(l.VW, l.VB)), nil, o.Causal)
		h = h.Add(ctx.Transpose(1, 2).Reshape(b, n, d).Linear(l.OutW, l.OutB))
		h = mlpOps(h, l, o, d)
	}
	return h
}

// seeded returns a scope and float options on the test device, with the
// random generator seeded.
func seeded(t *testing.T, seed uint64, dt torch.DType) (*torch.Scope, torch.Options) {
	t.Helper()
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	if err := torch.ManualSeed(seed); err != nil {
		t.Fatal(err)
	}
	return s, torch.Options{Device: dev, DType: dt}
}

// mlpOps is a layer's MLP half with its residual, in single ops.
func mlpOps(h *torch.Tensor, l torch.EncoderLayer, o torch.EncoderOptions, d int64) *torch.Tensor {
	m := h.LayerNorm([]int64{d}, l.LN2W, l.LN2B, o.Eps).Linear(l.FC1W, l.FC1B)
	if o.Act == "gelu" {
		m = m.Gelu()
	} else {
		m = m.QuickGelu()
	}
	return h.Add(m.Linear(l.FC2W, l.FC2B))
}

func TestPreLNEncoderMatchesOps(t *testing.T) {
	s, o := seeded(t, 3, torch.Float32)
	ls := randomLayers(s, o, 3, 8)
	h := s.Randn([]int64{2, 5, 8}, o)
	for _, tc := range []torch.EncoderOptions{
		{Heads: 2, Causal: false, Act: "quick_gelu", Eps: 1e-5},
		{Heads: 2, Causal: true, Act: "quick_gelu", Eps: 1e-5},
		{Heads: 4, Causal: true, Act: "gelu", Eps: 1e-6},
		{Heads: 1, Causal: false, Act: "gelu", Eps: 1e-5},
	} {
		err := torch.NoGrad(func() error {
			got := torch.PreLNEncoder(h, ls, tc)
			if sh := got.Shape(); len(sh) != 3 || sh[0] != 2 || sh[1] != 5 || sh[2] != 8 {
				t.Errorf("%+v: shape %v, want [2 5 8]", tc, sh)
			}
			g, err := got.Float64s()
			if err != nil {
				return err
			}
			w, err := encoderOps(h, ls, tc).Float64s()
			if err != nil {
				return err
			}
			var worst float64
			for i := range g {
				worst = max(worst, math.Abs(g[i]-w[i]))
			}
			if worst > 1e-6 {
				t.Errorf("%+v: fused encoder differs from the single ops by %g", tc, worst)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
	}
}

func TestPreLNEncoderErrors(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	o := torch.Options{Device: dev}
	ls := randomLayers(s, o, 2, 8)
	bad := append([]torch.EncoderLayer(nil), ls...)
	bad[1].FC1W = s.Randn([]int64{16, 7}, o)
	noBias := append([]torch.EncoderLayer(nil), ls...)
	noBias[0].QB = nil
	h := s.Randn([]int64{1, 5, 8}, o)
	for _, tc := range []struct {
		name   string
		h      *torch.Tensor
		layers []torch.EncoderLayer
		o      torch.EncoderOptions
		want   string
	}{
		{"wrong fc1 shape", h, bad, torch.EncoderOptions{Heads: 2, Act: "gelu"}, "layer 1, hidden state f32[1,5,8]"},
		{"hidden size", s.Randn([]int64{1, 5, 6}, o), ls, torch.EncoderOptions{Heads: 2, Act: "gelu"}, "layer 0, hidden state f32[1,5,6]"},
		{"heads", h, ls, torch.EncoderOptions{Heads: 3, Act: "gelu"}, "not a multiple of 3 heads"},
		{"2-D hidden state", s.Randn([]int64{5, 8}, o), ls, torch.EncoderOptions{Heads: 2, Act: "gelu"}, "want [batch, tokens, dim]"},
		{"activation", h, ls, torch.EncoderOptions{Heads: 2, Act: "relu"}, `activation "relu"`},
		{"no layers", h, nil, torch.EncoderOptions{Heads: 2, Act: "gelu"}, "no layers"},
		{"nil bias", h, noBias, torch.EncoderOptions{Heads: 2, Act: "gelu"}, "operand 5 is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			live := torch.LiveTensors()
			out := torch.PreLNEncoder(tc.h, tc.layers, tc.o)
			err := out.Err()
			var oe *torch.OpError
			if !errors.As(err, &oe) || oe.Op != "preln_encoder" {
				t.Fatalf("error %v: want a *torch.OpError of preln_encoder", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "torch: preln_encoder: ") {
				t.Errorf("error %q: want it to name the op and say %q", err, tc.want)
			}
			if n := torch.LiveTensors(); n != live {
				t.Errorf("%d tensors alive after the failure, %d before", n, live)
			}
		})
	}
}

func TestSetAllowTF32(t *testing.T) {
	torchtest.Require(t)
	for _, on := range []bool{true, false} {
		if err := torch.SetAllowTF32(on); err != nil {
			t.Fatalf("SetAllowTF32(%v): %v", on, err)
		}
	}
}

// encoderOpsCapture is PreLNEncoderCapture built of single ops, as package
// model's eager path computes it: it returns the probabilities with their
// gradient retained.
func encoderOpsCapture(t *testing.T, h *torch.Tensor, ls []torch.EncoderLayer, o torch.EncoderOptions) (*torch.Tensor, []*torch.Tensor) {
	shape := h.Shape()
	b, n, d := shape[0], shape[1], shape[2]
	hd := d / int64(o.Heads)
	split := func(t *torch.Tensor) *torch.Tensor { return t.View(b, n, int64(o.Heads), hd).Transpose(1, 2) }
	mask := make([]bool, n*n)
	for i := range n {
		for j := i + 1; j < n; j++ {
			mask[i*n+j] = true
		}
	}
	causal := h.Scope().FromBool(mask, n, n).ToDevice(h.Device())
	var probs []*torch.Tensor
	for _, l := range ls {
		x := h.LayerNorm([]int64{d}, l.LN1W, l.LN1B, o.Eps)
		q, k, v := split(x.Linear(l.QW, l.QB)), split(x.Linear(l.KW, l.KB)), split(x.Linear(l.VW, l.VB))
		scores := q.Matmul(k.Transpose(2, 3)).MulScalar(1 / math.Sqrt(float64(hd)))
		if o.Causal {
			scores = scores.MaskedFill(causal, math.Inf(-1))
		}
		var p *torch.Tensor
		if dt := h.DType(); dt == torch.Float32 || dt == torch.Float64 {
			p = scores.Softmax(-1)
		} else {
			p = scores.ToDType(torch.Float32).Softmax(-1).ToDType(dt)
		}
		if p.RequiresGrad() {
			if err := p.RetainGrad(); err != nil {
				t.Fatal(err)
			}
		} else {
			p = p.Detach()
			if err := p.SetRequiresGrad(true); err != nil {
				t.Fatal(err)
			}
		}
		probs = append(probs, p)
		h = h.Add(p.Matmul(v).Transpose(1, 2).Reshape(b, n, d).Linear(l.OutW, l.OutB))
		h = mlpOps(h, l, o, d)
	}
	return h, probs
}

func maxDiff(t *testing.T, what string, a, b *torch.Tensor) float64 {
	t.Helper()
	va, err := a.Float64s()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	vb, err := b.Float64s()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(va) != len(vb) {
		t.Fatalf("%s: %d values against %d", what, len(va), len(vb))
	}
	var worst float64
	for i := range va {
		worst = max(worst, math.Abs(va[i]-vb[i]))
	}
	return worst
}

func setLayersRequireGrad(t *testing.T, ls []torch.EncoderLayer, on bool) {
	for i := range ls {
		for _, w := range []*torch.Tensor{ls[i].LN1W, ls[i].LN1B, ls[i].QW, ls[i].QB, ls[i].KW, ls[i].KB, ls[i].VW, ls[i].VB, ls[i].OutW, ls[i].OutB, ls[i].LN2W, ls[i].LN2B, ls[i].FC1W, ls[i].FC1B, ls[i].FC2W, ls[i].FC2B} {
			if err := w.SetRequiresGrad(on); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPreLNEncoderCaptureMatchesOps compares the captured encoder with the
// single ops: the output, every layer's probabilities, their gradients from
// one backward pass, and (when the weights are trained) a weight gradient;
// with weights that require grad (the probabilities are retained) and
// without (they become leaves), in float32 and bfloat16 (softmax in
// float32).
func TestPreLNEncoderCaptureMatchesOps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dt      torch.DType
		weights bool
		o       torch.EncoderOptions
		tol     float64
	}{
		{"f32 text", torch.Float32, false, torch.EncoderOptions{Heads: 2, Causal: true, Act: "quick_gelu", Eps: 1e-5}, 1e-5},
		{"f32 vision trained", torch.Float32, true, torch.EncoderOptions{Heads: 2, Act: "quick_gelu", Eps: 1e-5}, 1e-5},
		{"f32 gelu trained causal", torch.Float32, true, torch.EncoderOptions{Heads: 4, Causal: true, Act: "gelu", Eps: 1e-6}, 1e-5},
		{"bf16 text", torch.BFloat16, false, torch.EncoderOptions{Heads: 2, Causal: true, Act: "quick_gelu", Eps: 1e-5}, 0.02},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, o := seeded(t, 5, tc.dt)
			ls := randomLayers(s, o, 3, 8)
			setLayersRequireGrad(t, ls, tc.weights)
			h := s.Randn([]int64{2, 5, 8}, o)
			seed := s.Randn([]int64{2, 5, 8}, o)
			gotH, gotP := torch.PreLNEncoderCapture(h, ls, tc.o)
			wantH, wantP := encoderOpsCapture(t, h, ls, tc.o)
			if len(gotP) != 3 {
				t.Fatalf("%d probability maps, want 3", len(gotP))
			}
			// The same ATen calls: equal up to a kernel's choice of algorithm
			// (a bf16 ulp is 0.008 near 1).
			if d := maxDiff(t, "output", gotH, wantH); d > tc.tol {
				t.Errorf("output differs by %g", d)
			}
			for l := range gotP {
				if sh := gotP[l].Shape(); len(sh) != 4 || sh[1] != int64(tc.o.Heads) || sh[2] != 5 || sh[3] != 5 {
					t.Errorf("layer %d probabilities %v, want [2 %d 5 5]", l, sh, tc.o.Heads)
				}
				if d := maxDiff(t, "probabilities", gotP[l], wantP[l]); d > tc.tol {
					t.Errorf("layer %d probabilities differ by %g", l, d)
				}
			}
			want := append([]*torch.Tensor{}, gotP...)
			ref := append([]*torch.Tensor{}, wantP...)
			if tc.weights {
				want = append(want, ls[0].QW)
				ref = append(ref, ls[0].QW)
			}
			gg, err := torch.Grad([]*torch.Tensor{gotH.Mul(seed).SumAll()}, want, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			gr, err := torch.Grad([]*torch.Tensor{wantH.Mul(seed).SumAll()}, ref, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			for i := range gg {
				if d := maxDiff(t, "gradient", gg[i], gr[i]); d > tc.tol {
					t.Errorf("gradient %d differs by %g", i, d)
				}
			}
		})
	}
}

// TestPreLNEncoderTrains checks that a backward pass through the fused
// encoder gives every weight the gradient the single ops give it.
func TestPreLNEncoderTrains(t *testing.T) {
	s, o := seeded(t, 7, torch.Float32)
	ls := randomLayers(s, o, 2, 8)
	setLayersRequireGrad(t, ls, true)
	h := s.Randn([]int64{2, 5, 8}, o)
	seed := s.Randn([]int64{2, 5, 8}, o)
	eo := torch.EncoderOptions{Heads: 2, Causal: true, Act: "quick_gelu", Eps: 1e-5}
	var weights []*torch.Tensor
	for i := range ls {
		weights = append(weights, ls[i].LN1W, ls[i].QW, ls[i].KB, ls[i].VW, ls[i].OutB, ls[i].LN2B, ls[i].FC1W, ls[i].FC2W)
	}
	got, err := torch.Grad([]*torch.Tensor{torch.PreLNEncoder(h, ls, eo).Mul(seed).SumAll()}, weights, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := torch.Grad([]*torch.Tensor{encoderOps(h, ls, eo).Mul(seed).SumAll()}, weights, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if d := maxDiff(t, "weight gradient", got[i], want[i]); d > 1e-5 {
			t.Errorf("weight %d: gradient differs by %g", i, d)
		}
	}
}

// rolloutOps is GradWeightedRollout built of single ops, as package
// explain composed it before the fused op.
func rolloutOps(s *torch.Scope, probs, grads []*torch.Tensor) *torch.Tensor {
	sh := probs[0].Shape()
	r := s.Eye(sh[2], torch.Options{Device: probs[0].Device()}).Unsqueeze(0).Expand(sh[0], sh[2], sh[2])
	for l := range probs {
		a := probs[l].Detach().ToDType(torch.Float32)
		g := grads[l].Detach().ToDType(torch.Float32)
		r = r.Add(g.Mul(a).ClampMin(0).Mean([]int64{1}, false).BMM(r))
	}
	return r
}

func TestGradWeightedRollout(t *testing.T) {
	s, o := seeded(t, 11, torch.Float32)
	dev := o.Device
	for _, dt := range []torch.DType{torch.Float32, torch.BFloat16} {
		o := torch.Options{Device: dev, DType: dt}
		var probs, grads []*torch.Tensor
		for range 3 {
			probs = append(probs, s.Rand([]int64{2, 4, 6, 6}, o).Softmax(-1))
			grads = append(grads, s.Randn([]int64{2, 4, 6, 6}, o))
		}
		got := torch.GradWeightedRollout(probs, grads)
		if got.DType() != torch.Float32 {
			t.Errorf("%s: result %s, want float32", dt, got.DType())
		}
		if d := maxDiff(t, "relevance", got, rolloutOps(s, probs, grads)); d > 1e-6 {
			t.Errorf("%s: GradWeightedRollout differs from the single ops by %g", dt, d)
		}
		// One layer: I + its cam.
		one := torch.GradWeightedRollout(probs[2:], grads[2:])
		if d := maxDiff(t, "one layer", one, rolloutOps(s, probs[2:], grads[2:])); d > 1e-6 {
			t.Errorf("%s: one layer differs by %g", dt, d)
		}
	}
	p := s.Rand([]int64{1, 2, 3, 3}, o)
	for _, tc := range []struct {
		name         string
		probs, grads []*torch.Tensor
		want         string
	}{
		{"none", nil, nil, "no attention maps"},
		{"missing gradient", []*torch.Tensor{p, p}, []*torch.Tensor{p}, "1 gradients for 2 attention maps"},
		{"not square", []*torch.Tensor{s.Rand([]int64{1, 2, 3, 4}, o)}, []*torch.Tensor{s.Rand([]int64{1, 2, 3, 4}, o)}, "want [batch, heads, N, N]"},
		{"gradient shape", []*torch.Tensor{p}, []*torch.Tensor{s.Rand([]int64{1, 2, 2, 2}, o)}, "grad_weighted_rollout"},
	} {
		err := torch.GradWeightedRollout(tc.probs, tc.grads).Err()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}
