package torch

import (
	"errors"
	"fmt"
)

// Fused ops: work that would take hundreds of calls through the binding,
// done in one: a stack of pre-LN transformer encoder layers, with or
// without its attention captured, and gradient-weighted attention rollout.
// On a GPU a small op costs more in the binding than on the device
// (docs/performance.md gives the cost per call), so a forward pass built of
// single ops is bound by the host; these keep the same ATen calls but cross
// into C++ once.

var (
	opPreLNEncoder        = newOp("preln_encoder")
	opPreLNEncoderCapture = newOp("preln_encoder_capture")
	opGradWeightedRollout = newOp("grad_weighted_rollout")
	opSetAllowTF32        = newOp("set_allow_tf32")
)

// EncoderLayer is the weights of one pre-LN transformer encoder layer: the
// first layer norm, the q, k, v and output projections of self-attention,
// the second layer norm, and the MLP's two linear layers. Linear weights are
// [out, in] as in PyTorch. None may be nil.
type EncoderLayer struct {
	LN1W, LN1B, QW, QB, KW, KB, VW, VB, OutW, OutB, LN2W, LN2B, FC1W, FC1B, FC2W, FC2B *Tensor
}

func (l *EncoderLayer) tensors() []*Tensor {
	return []*Tensor{l.LN1W, l.LN1B, l.QW, l.QB, l.KW, l.KB, l.VW, l.VB, l.OutW, l.OutB, l.LN2W, l.LN2B, l.FC1W, l.FC1B, l.FC2W, l.FC2B}
}

// EncoderOptions describe an encoder's layers.
type EncoderOptions struct {
	Heads  int     // attention heads; they divide the hidden size
	Causal bool    // mask each token from the tokens after it
	Act    string  // the MLP's activation: "quick_gelu" (x·σ(1.702x)) or "gelu" (exact)
	Eps    float64 // layer_norm eps
}

// PreLNEncoder runs every layer on the hidden state h [batch, tokens, dim]
// in one call: per layer h += out(SDPA(q, k, v)) of layer_norm1(h), then
// h += fc2(act(fc1(layer_norm2(h)))), with attention as
// ScaledDotProductAttention computes it (no mask, or the causal one). Under
// NoGrad it is inference; with autograd on it records the same graph as the
// separate ops would, so a backward pass through it trains the weights. A
// failure names the layer and the hidden state's shape ("torch:
// preln_encoder: layer 0, hidden state f32[1,5,8] cpu: ...").
func PreLNEncoder(h *Tensor, layers []EncoderLayer, o EncoderOptions) *Tensor {
	out, _ := runEncoder(opPreLNEncoder, h, layers, o, 0)
	return out
}

// PreLNEncoderCapture is PreLNEncoder with attention computed explicitly,
// as Hugging Face's eager attention does it (scores scaled after the product,
// the causal mask filled with -inf, softmax in float32 for lower
// precisions), returning each layer's attention probabilities [batch,
// heads, tokens, tokens], first layer first, with their gradient retained:
// after one backward pass their Grad, or Grad taken with respect to them,
// is the gradient at that layer. Where nothing upstream requires grad, the
// probabilities are leaves that do, which leaves their gradient the same.
func PreLNEncoderCapture(h *Tensor, layers []EncoderLayer, o EncoderOptions) (*Tensor, []*Tensor) {
	return runEncoder(opPreLNEncoderCapture, h, layers, o, len(layers))
}

func runEncoder(op *opcode, h *Tensor, layers []EncoderLayer, o EncoderOptions, nprobs int) (*Tensor, []*Tensor) {
	act, err := actCode(o.Act)
	switch {
	case err != nil:
	case len(layers) == 0:
		err = errors.New("no layers")
	case o.Heads < 1:
		err = fmt.Errorf("%d heads: want at least 1", o.Heads)
	}
	operands := make([]*Tensor, 0, 1+16*len(layers))
	operands = append(operands, h)
	for i := range layers {
		operands = append(operands, layers[i].tensors()...)
	}
	// A failure poisons h's result and every probability map alike.
	failed := func(bad *Tensor) (*Tensor, []*Tensor) {
		probs := make([]*Tensor, nprobs)
		for i := range probs {
			probs[i] = bad
		}
		return bad, probs
	}
	c, dst, bad := prep(op, operands...)
	if bad != nil {
		return failed(bad)
	}
	if err != nil {
		putCall(c)
		return failed(dst.poison(&OpError{Op: op.name, Err: err}))
	}
	c.ints = append(c.ints, int64(o.Heads), b2i(o.Causal), act)
	c.dbls = append(c.dbls, o.Eps)
	c.wantOut(1 + nprobs)
	// The op reports a failure as its string result (see csrc/fused.cpp),
	// so that the message is not a list of every weight.
	msg, err := c.exec(op)
	if err == nil && msg != "" {
		err = errors.New(msg)
	}
	if err == nil && c.f.nout != int64(1+nprobs) {
		for _, p := range c.out[:c.f.nout] {
			freeHandle(p)
		}
		err = fmt.Errorf("shim returned %d tensors, want %d", c.f.nout, 1+nprobs)
	}
	if err != nil {
		putCall(c)
		return failed(dst.poison(&OpError{Op: op.name, Err: err}))
	}
	out := dst.adopt(c.out[0])
	probs := make([]*Tensor, nprobs)
	for i := range probs {
		probs[i] = dst.adopt(c.out[1+i])
	}
	putCall(c)
	return out, probs
}

// GradWeightedRollout accumulates relevance over consecutive attention
// layers in one call, rolling out attention weighted by its gradient: R = I,
// then for each layer, first to last, R += mean over heads of
// max(0, ∇A ⊙ A) · R, where probs[l] [B,H,N,N] are the layer's attention
// probabilities and grads[l] their gradient (the self-attention rule of
// Chefer et al., 2021). R [B,N,N] is float32 whatever the maps' dtype,
// computed without recording autograd.
func GradWeightedRollout(probs, grads []*Tensor) *Tensor {
	if len(probs) == 0 {
		return &Tensor{err: &OpError{Op: opGradWeightedRollout.name, Err: errors.New("no attention maps")}}
	}
	operands := append(append(make([]*Tensor, 0, 2*len(probs)), probs...), grads...)
	c, dst, bad := prep(opGradWeightedRollout, operands...)
	if bad != nil {
		return bad
	}
	if len(grads) != len(probs) {
		putCall(c)
		return dst.poison(&OpError{Op: opGradWeightedRollout.name, Err: fmt.Errorf("%d gradients for %d attention maps", len(grads), len(probs))})
	}
	return c.result(opGradWeightedRollout, dst)
}

func actCode(act string) (int64, error) {
	switch act {
	case "quick_gelu":
		return 0, nil
	case "gelu":
		return 1, nil
	}
	return 0, fmt.Errorf("activation %q: want quick_gelu or gelu", act)
}

// SetAllowTF32 lets float32 matrix products (cuBLAS) and convolutions
// (cuDNN) run on TF32 tensor cores, as torch.backends.cuda.matmul.allow_tf32
// and torch.backends.cudnn.allow_tf32 do: faster on Ampere and later GPUs,
// with a 10-bit mantissa in the products. It is process-wide and changes
// nothing on the CPU.
func SetAllowTF32(on bool) error { return callInts(opSetAllowTF32, []int64{b2i(on)}) }
