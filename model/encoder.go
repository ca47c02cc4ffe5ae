package model

import (
	"fmt"
	"math"

	"github.com/lavascope/lavascope/torch"
)

// The transformer shared by both encoders: HF's CLIPEncoder of
// CLIPEncoderLayers (pre-norm self-attention and MLP, each with a residual).

type linear struct{ w, b *torch.Tensor }

func (l linear) apply(x *torch.Tensor) *torch.Tensor { return x.Linear(l.w, l.b) }

type layerNorm struct {
	w, b *torch.Tensor
	dim  int64
	eps  float64
}

func (n layerNorm) apply(x *torch.Tensor) *torch.Tensor {
	return x.LayerNorm([]int64{n.dim}, n.w, n.b, n.eps)
}

type encoderLayer struct {
	q, k, v, out linear
	ln1, ln2     layerNorm
	fc1, fc2     linear
}

type encoder struct {
	layers []encoderLayer
	dim    int64
	heads  int64
	act    string
	eps    float64
	// fused is layers for torch.PreLNEncoder and PreLNEncoderCapture, which
	// run the whole encoder in one call instead of ~25 per layer.
	fused []torch.EncoderLayer
}

// param looks a parameter up by HF name.
type param func(name string) *torch.Tensor

func newEncoder(prefix string, layers, dim, heads int, act string, eps float64, p param) encoder {
	e := encoder{dim: int64(dim), heads: int64(heads), act: act, eps: eps}
	lin := func(name string) linear { return linear{p(name + ".weight"), p(name + ".bias")} }
	ln := func(name string) layerNorm { return layerNorm{p(name + ".weight"), p(name + ".bias"), int64(dim), eps} }
	for i := range layers {
		l := fmt.Sprintf("%s.encoder.layers.%d.", prefix, i)
		e.layers = append(e.layers, encoderLayer{
			q: lin(l + "self_attn.q_proj"), k: lin(l + "self_attn.k_proj"),
			v: lin(l + "self_attn.v_proj"), out: lin(l + "self_attn.out_proj"),
			ln1: ln(l + "layer_norm1"), ln2: ln(l + "layer_norm2"),
			fc1: lin(l + "mlp.fc1"), fc2: lin(l + "mlp.fc2"),
		})
		x := &e.layers[i]
		e.fused = append(e.fused, torch.EncoderLayer{
			LN1W: x.ln1.w, LN1B: x.ln1.b, QW: x.q.w, QB: x.q.b, KW: x.k.w, KB: x.k.b, VW: x.v.w, VB: x.v.b,
			OutW: x.out.w, OutB: x.out.b, LN2W: x.ln2.w, LN2B: x.ln2.b,
			FC1W: x.fc1.w, FC1B: x.fc1.b, FC2W: x.fc2.w, FC2B: x.fc2.b,
		})
	}
	return e
}

// attnMode is how one forward pass runs the encoders.
type attnMode struct {
	// eager runs op by op with HF's explicit attention (ForwardOptions.Eager
	// without Capture); otherwise each encoder is one fused shim call.
	eager   bool
	capture bool          // fused: keep the probabilities with their gradient
	causal  *torch.Tensor // eager: [N,N] bool, true above the diagonal (masked); nil = none
	dtype   torch.DType
}

func newAttnMode(s *torch.Scope, o ForwardOptions, mo Options, causalN int64) attnMode {
	a := attnMode{eager: o.Eager && !o.Capture, capture: o.Capture, dtype: mo.DType}
	if causalN > 0 && a.eager {
		mask := make([]bool, causalN*causalN)
		for i := range causalN {
			for j := i + 1; j < causalN; j++ {
				mask[i*causalN+j] = true
			}
		}
		a.causal = s.FromBool(mask, causalN, causalN).ToDevice(mo.Device)
	}
	return a
}

// forward runs every layer on h [B,N,D]; causal says whether the text's
// causal mask applies. It returns the last hidden state and, when capturing,
// each layer's attention probabilities.
func (e *encoder) forward(h *torch.Tensor, causal bool, a attnMode) (*torch.Tensor, []*torch.Tensor, error) {
	if !a.eager {
		// The same ATen calls as layer below, without a Go→C call per op:
		// on a GPU those calls, not the kernels, bound a forward pass.
		eo := torch.EncoderOptions{Heads: int(e.heads), Causal: causal, Act: e.act, Eps: e.eps}
		if !a.capture {
			h = torch.PreLNEncoder(h, e.fused, eo)
			return h, nil, h.Err()
		}
		h, probs := torch.PreLNEncoderCapture(h, e.fused, eo)
		return h, probs, h.Err()
	}
	for i := range e.layers {
		var err error
		if h, err = e.layer(&e.layers[i], h, causal, a); err != nil {
			return nil, nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return h, nil, nil
}

// layer is one CLIPEncoderLayer op by op: the reference the fused ops are
// tested against.
func (e *encoder) layer(l *encoderLayer, h *torch.Tensor, causal bool, a attnMode) (*torch.Tensor, error) {
	attn, err := e.attention(l, l.ln1.apply(h), causal, a)
	if err != nil {
		return nil, err
	}
	h = h.Add(attn)
	x := l.fc1.apply(l.ln2.apply(h))
	switch e.act {
	case "gelu":
		x = x.Gelu()
	default: // quick_gelu; Validate admits no other
		x = x.QuickGelu()
	}
	return h.Add(l.fc2.apply(x)), nil
}

// attention is CLIPAttention as HF's eager_attention_forward computes it:
// q, k and v projections, the scores scaled after the product, softmax in
// float32 and back to the compute dtype, the output projection.
func (e *encoder) attention(l *encoderLayer, x *torch.Tensor, causal bool, a attnMode) (*torch.Tensor, error) {
	shape := x.Shape()
	if len(shape) != 3 {
		return nil, fmt.Errorf("attention input %s: want [batch, tokens, %d]", x, e.dim)
	}
	b, n := shape[0], shape[1]
	hd := e.dim / e.heads
	split := func(t *torch.Tensor) *torch.Tensor { return t.View(b, n, e.heads, hd).Transpose(1, 2) }
	q, k, v := split(l.q.apply(x)), split(l.k.apply(x)), split(l.v.apply(x))
	scores := q.Matmul(k.Transpose(2, 3)).MulScalar(1 / math.Sqrt(float64(hd)))
	if causal {
		scores = scores.MaskedFill(a.causal, math.Inf(-1))
	}
	var probs *torch.Tensor
	if a.dtype == torch.Float32 || a.dtype == torch.Float64 {
		probs = scores.Softmax(-1)
	} else {
		probs = scores.ToDType(torch.Float32).Softmax(-1).ToDType(a.dtype)
	}
	return l.out.apply(probs.Matmul(v).Transpose(1, 2).Reshape(b, n, e.dim)), nil
}
