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

// encoderOps is CLIPEncoder built of single ops, as package model's
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
		m := h.LayerNorm([]int64{d}, l.LN2W, l.LN2B, o.Eps).Linear(l.FC1W, l.FC1B)
		if o.Act == "gelu" {
			m = m.Gelu()
		} else {
			m = m.QuickGelu()
		}
		h = h.Add(m.Linear(l.FC2W, l.FC2B))
	}
	return h
}

func TestCLIPEncoderMatchesOps(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	if err := torch.ManualSeed(3); err != nil {
		t.Fatal(err)
	}
	o := torch.Options{Device: dev}
	ls := randomLayers(s, o, 3, 8)
	h := s.Randn([]int64{2, 5, 8}, o)
	for _, tc := range []torch.EncoderOptions{
		{Heads: 2, Causal: false, Act: "quick_gelu", Eps: 1e-5},
		{Heads: 2, Causal: true, Act: "quick_gelu", Eps: 1e-5},
		{Heads: 4, Causal: true, Act: "gelu", Eps: 1e-6},
		{Heads: 1, Causal: false, Act: "gelu", Eps: 1e-5},
	} {
		err := torch.NoGrad(func() error {
			got := torch.CLIPEncoder(h, ls, tc)
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

func TestCLIPEncoderErrors(t *testing.T) {
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
			out := torch.CLIPEncoder(tc.h, tc.layers, tc.o)
			err := out.Err()
			var oe *torch.OpError
			if !errors.As(err, &oe) || oe.Op != "clip_encoder" {
				t.Fatalf("error %v: want a *torch.OpError of clip_encoder", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "torch: clip_encoder: ") {
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
