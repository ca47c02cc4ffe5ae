package model

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// smallConfig is a random-init-sized CLIP for tests: width 8, 2 heads,
// 2 layers, a 64-token vocabulary, 32-pixel images in 16-pixel patches.
func smallConfig(act string, eos int) *CLIPConfig {
	c := DefaultConfig()
	c.ProjectionDim = 6
	c.Text.VocabSize, c.Text.MaxPositionEmbeddings = 64, 12
	c.Text.HiddenSize, c.Text.IntermediateSize, c.Text.NumHiddenLayers, c.Text.NumAttentionHeads = 8, 16, 2, 2
	c.Text.BOSTokenID, c.Text.EOSTokenID, c.Text.HiddenAct = 0, eos, act
	c.Vision.HiddenSize, c.Vision.IntermediateSize, c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads = 8, 16, 2, 2
	c.Vision.ImageSize, c.Vision.PatchSize, c.Vision.HiddenAct = 32, 16, act
	return c
}

// hostParams reads every parameter of m as float64.
func hostParams(tb testing.TB, m *CLIP) map[string][]float64 {
	tb.Helper()
	p := make(map[string][]float64)
	for _, prm := range m.Params() {
		v, err := prm.Tensor.Float64s()
		if err != nil {
			tb.Fatal(err)
		}
		p[prm.Name] = v
	}
	return p
}

// refText is the text tower written out in plain Go from HF's
// CLIPTextTransformer and CLIPModel.get_text_features, for one text:
// it returns the projected pooled feature and the position pooled at.
func refText(c *CLIPConfig, p map[string][]float64, ids []int64) ([]float64, int) {
	tc := c.Text
	d, n, nh := tc.HiddenSize, len(ids), tc.NumAttentionHeads
	hd := d / nh
	linear := func(x []float64, rows int, w, b []float64, out int) []float64 {
		y := make([]float64, rows*out)
		for r := range rows {
			for o := range out {
				s := 0.0
				if b != nil {
					s = b[o]
				}
				for i := range len(x) / rows {
					s += x[r*(len(x)/rows)+i] * w[o*(len(x)/rows)+i]
				}
				y[r*out+o] = s
			}
		}
		return y
	}
	ln := func(x []float64, w, b []float64) []float64 {
		y := make([]float64, len(x))
		for r := range len(x) / d {
			row := x[r*d : (r+1)*d]
			mean, vr := 0.0, 0.0
			for _, v := range row {
				mean += v / float64(d)
			}
			for _, v := range row {
				vr += (v - mean) * (v - mean) / float64(d)
			}
			for i, v := range row {
				y[r*d+i] = (v-mean)/math.Sqrt(vr+tc.LayerNormEps)*w[i] + b[i]
			}
		}
		return y
	}
	act := func(v float64) float64 {
		if tc.HiddenAct == "gelu" {
			return 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
		}
		return v / (1 + math.Exp(-1.702*v))
	}
	h := make([]float64, n*d)
	tok, pos := p["text_model.embeddings.token_embedding.weight"], p["text_model.embeddings.position_embedding.weight"]
	for i, id := range ids {
		for j := range d {
			h[i*d+j] = tok[int(id)*d+j] + pos[i*d+j]
		}
	}
	for l := range tc.NumHiddenLayers {
		pre := fmt.Sprintf("text_model.encoder.layers.%d.", l)
		w := func(name string) []float64 { return p[pre+name] }
		x := ln(h, w("layer_norm1.weight"), w("layer_norm1.bias"))
		q := linear(x, n, w("self_attn.q_proj.weight"), w("self_attn.q_proj.bias"), d)
		k := linear(x, n, w("self_attn.k_proj.weight"), w("self_attn.k_proj.bias"), d)
		v := linear(x, n, w("self_attn.v_proj.weight"), w("self_attn.v_proj.bias"), d)
		ctx := make([]float64, n*d)
		for hh := range nh {
			for i := range n {
				scores := make([]float64, i+1) // causal: keys 0..i
				top := math.Inf(-1)
				for j := range i + 1 {
					s := 0.0
					for e := range hd {
						s += q[i*d+hh*hd+e] * k[j*d+hh*hd+e]
					}
					scores[j] = s / math.Sqrt(float64(hd))
					top = max(top, scores[j])
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - top)
					sum += scores[j]
				}
				for j := range scores {
					for e := range hd {
						ctx[i*d+hh*hd+e] += scores[j] / sum * v[j*d+hh*hd+e]
					}
				}
			}
		}
		attn := linear(ctx, n, w("self_attn.out_proj.weight"), w("self_attn.out_proj.bias"), d)
		for i := range h {
			h[i] += attn[i]
		}
		x = ln(h, w("layer_norm2.weight"), w("layer_norm2.bias"))
		x = linear(x, n, w("mlp.fc1.weight"), w("mlp.fc1.bias"), tc.IntermediateSize)
		for i := range x {
			x[i] = act(x[i])
		}
		x = linear(x, n, w("mlp.fc2.weight"), w("mlp.fc2.bias"), d)
		for i := range h {
			h[i] += x[i]
		}
	}
	h = ln(h, p["text_model.final_layer_norm.weight"], p["text_model.final_layer_norm.bias"])
	at := 0
	if tc.EOSTokenID == 2 {
		for i, id := range ids {
			if id > ids[at] {
				at = i
			}
		}
	} else if i := slices.Index(ids, int64(tc.EOSTokenID)); i >= 0 {
		at = i
	}
	return linear(h[at*d:(at+1)*d], 1, p["text_projection.weight"], nil, c.ProjectionDim), at
}

// TestTextPoolingAndActivations checks the text tower against refText on
// random models: legacy argmax pooling (eos_token_id 2), first-eos pooling
// where a larger id comes before and after the eos, no eos at all, and both
// activations.
func TestTextPoolingAndActivations(t *testing.T) {
	dev := torchtest.Device(t)
	ids := [][]int64{
		{0, 5, 2, 7, 63, 9, 2, 2, 2, 2},  // argmax at 4, first 2 at 2, first 9 at 5
		{0, 40, 41, 9, 2, 2, 2, 2, 2, 2}, // argmax at 2, first 2 at 4, first 9 at 3
	}
	for _, tc := range []struct {
		act     string
		eos     int
		wantEOT []int64
	}{
		{"quick_gelu", 2, []int64{4, 2}},
		{"gelu", 2, []int64{4, 2}},
		{"gelu", 9, []int64{5, 3}},
		{"quick_gelu", 11, []int64{0, 0}},
	} {
		t.Run(fmt.Sprintf("%s/eos=%d", tc.act, tc.eos), func(t *testing.T) {
			cfg := smallConfig(tc.act, tc.eos)
			m, err := Init(cfg, Options{Device: dev, DType: torch.Float64}, 7)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			perturbNorms(t, m)
			s := torch.NewScope()
			defer s.Close()
			flat := slices.Concat(ids...)
			out, err := m.EncodeText(s, s.FromInt64(flat, 2, int64(len(ids[0]))), ForwardOptions{})
			if err != nil {
				t.Fatal(err)
			}
			eot, err := out.EOT.Int64s()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(eot, tc.wantEOT) {
				t.Errorf("pooled at %v, want %v", eot, tc.wantEOT)
			}
			got, err := out.Pooled.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			p := hostParams(t, m)
			for b := range ids {
				want, at := refText(cfg, p, ids[b])
				if int64(at) != tc.wantEOT[b] {
					t.Fatalf("reference pools text %d at %d, test expects %d", b, at, tc.wantEOT[b])
				}
				for i, w := range want {
					if d := math.Abs(got[b*cfg.ProjectionDim+i] - w); d > 1e-9 {
						t.Errorf("text %d, feature %d: %g, reference %g", b, i, got[b*cfg.ProjectionDim+i], w)
					}
				}
			}
		})
	}
}

// perturbNorms moves LayerNorm weights off 1 and biases off 0, as the HF
// fixture does, so that a swapped weight and bias cannot go unseen.
func perturbNorms(tb testing.TB, m *CLIP) {
	tb.Helper()
	s := torch.NewScope()
	defer s.Close()
	for _, p := range m.Params() {
		r, _ := initRuleFor(m.cfg, p.Name)
		if r.std != 0 || p.Name == "logit_scale" {
			continue
		}
		noise := s.Randn(p.Tensor.Shape(), torch.Options{DType: m.DType(), Device: m.Device()}).MulScalar(0.1)
		if err := p.Tensor.Copy_(p.Tensor.In(s).Add(noise)); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestCausalMask: changing the token at position 6 changes the hidden states
// from position 6 on and none before, on both attention paths. The two texts
// are rows of one batch, and BLAS may block rows differently (OpenBLAS's
// Haswell/Zen kernels put 2e-7 to 8e-7 between identical rows, its SkylakeX
// kernels none), so "unchanged" means within causalNoise and "changed" means
// beyond causalChange: one token's change moves the states by about 1.
const (
	causalNoise  = 1e-5 // 12× the largest rounding seen (8.3e-7, OpenBLAS Haswell kernels)
	causalChange = 1e-2 // 45× below the smallest real change seen (0.45)
)

func TestCausalMask(t *testing.T) {
	dev := torchtest.Device(t)
	m, err := Init(smallConfig("quick_gelu", 2), Options{Device: dev}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a := []int64{0, 5, 6, 7, 8, 9, 10, 11, 12, 2}
	b := slices.Clone(a)
	b[6] = 40
	const d = 8
	for _, o := range []ForwardOptions{{}, {Eager: true}} {
		s := torch.NewScope()
		out, err := m.EncodeText(s, s.FromInt64(slices.Concat(a, b), 2, 10), o)
		if err != nil {
			t.Fatal(err)
		}
		h, err := out.LastHidden.Float32s()
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		for pos := range 10 {
			diff := 0.0
			for i := range d {
				diff = max(diff, math.Abs(float64(h[pos*d+i]-h[(10+pos)*d+i])))
			}
			if pos < 6 && diff > causalNoise {
				t.Errorf("%+v: position %d changed by %.3g when only position 6 did", o, pos, diff)
			}
			if pos >= 6 && diff < causalChange {
				t.Errorf("%+v: position %d changed by only %.3g with position 6", o, pos, diff)
			}
		}
	}
}
