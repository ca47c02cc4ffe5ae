package torch

import "fmt"

// The shim's ops and their argument conventions (see csrc/shim.cpp; the
// composite ops are in csrc/fused.cpp, optim.cpp and graphs.cpp).
var (
	opAdd         = newOp("add")
	opSub         = newOp("sub")
	opMul         = newOp("mul")
	opDiv         = newOp("div")
	opAddScalar   = newOp("add_scalar")
	opSubScalar   = newOp("sub_scalar")
	opMulScalar   = newOp("mul_scalar")
	opDivScalar   = newOp("div_scalar")
	opNeg         = newOp("neg")
	opPowScalar   = newOp("pow_scalar")
	opPow         = newOp("pow")
	opExp         = newOp("exp")
	opLog         = newOp("log")
	opSqrt        = newOp("sqrt")
	opRsqrt       = newOp("rsqrt")
	opAbs         = newOp("abs")
	opSigmoid     = newOp("sigmoid")
	opTanh        = newOp("tanh")
	opRelu        = newOp("relu")
	opGelu        = newOp("gelu")
	opQuickGelu   = newOp("quick_gelu")
	opMatmul      = newOp("matmul")
	opBMM         = newOp("bmm")
	opLinear      = newOp("linear")
	opReshape     = newOp("reshape")
	opView        = newOp("view")
	opPermute     = newOp("permute")
	opTranspose   = newOp("transpose")
	opT           = newOp("t")
	opExpand      = newOp("expand")
	opRepeat      = newOp("repeat")
	opUnsqueeze   = newOp("unsqueeze")
	opSqueeze     = newOp("squeeze")
	opFlatten     = newOp("flatten")
	opNarrow      = newOp("narrow")
	opSlice       = newOp("slice")
	opSelect      = newOp("select")
	opIndexSelect = newOp("index_select")
	opGather      = newOp("gather")
	opScatter     = newOp("scatter")
	opScatterVal  = newOp("scatter_value")
	opOneHot      = newOp("one_hot")
	opCat         = newOp("cat")
	opStack       = newOp("stack")
	opEmbedding   = newOp("embedding")
	opConv2d      = newOp("conv2d")
	opLayerNorm   = newOp("layer_norm")
	opSoftmax     = newOp("softmax")
	opLogSoftmax  = newOp("log_softmax")
	opCrossEnt    = newOp("cross_entropy")
	opInterp      = newOp("interpolate_bilinear")
	opSDPA        = newOp("sdpa")
	opSDPAPlain   = newOp("sdpa_plain")
	opSum         = newOp("sum")
	opSumAll      = newOp("sum_all")
	opMean        = newOp("mean")
	opMeanAll     = newOp("mean_all")
	opMax         = newOp("max")
	opMin         = newOp("min")
	opMaxAll      = newOp("max_all")
	opMinAll      = newOp("min_all")
	opArgMax      = newOp("argmax")
	opNorm        = newOp("norm")
	opNormalize   = newOp("normalize")
	opEq          = newOp("eq")
	opGt          = newOp("gt")
	opLt          = newOp("lt")
	opEqScalar    = newOp("eq_scalar")
	opGtScalar    = newOp("gt_scalar")
	opLtScalar    = newOp("lt_scalar")
	opClamp       = newOp("clamp")
	opClampMin    = newOp("clamp_min")
	opTriu        = newOp("triu")
	opTril        = newOp("tril")
	opMaskedFill  = newOp("masked_fill")
	opWhere       = newOp("where")
	opCopy        = newOp("copy_")
	opFill        = newOp("fill_")
	opNormal      = newOp("normal_")
	opUniform     = newOp("uniform_")
)

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Add returns t + u, broadcasting.
func (t *Tensor) Add(u *Tensor) *Tensor { return binary(opAdd, t, u, nil, nil) }

// Sub returns t - u, broadcasting.
func (t *Tensor) Sub(u *Tensor) *Tensor { return binary(opSub, t, u, nil, nil) }

// Mul returns t * u elementwise, broadcasting.
func (t *Tensor) Mul(u *Tensor) *Tensor { return binary(opMul, t, u, nil, nil) }

// Div returns t / u elementwise, broadcasting (true division).
func (t *Tensor) Div(u *Tensor) *Tensor { return binary(opDiv, t, u, nil, nil) }

// AddScalar returns t + v. An integral v keeps an integer tensor integral.
func (t *Tensor) AddScalar(v float64) *Tensor { return unary(opAddScalar, t, nil, []float64{v}) }

// SubScalar returns t - v.
func (t *Tensor) SubScalar(v float64) *Tensor { return unary(opSubScalar, t, nil, []float64{v}) }

// MulScalar returns t * v.
func (t *Tensor) MulScalar(v float64) *Tensor { return unary(opMulScalar, t, nil, []float64{v}) }

// DivScalar returns t / v (true division).
func (t *Tensor) DivScalar(v float64) *Tensor { return unary(opDivScalar, t, nil, []float64{v}) }

// Neg returns -t.
func (t *Tensor) Neg() *Tensor { return unary(opNeg, t, nil, nil) }

// Pow returns t raised to e elementwise.
func (t *Tensor) Pow(e float64) *Tensor { return unary(opPowScalar, t, nil, []float64{e}) }

// PowT returns t raised to u elementwise, broadcasting.
func (t *Tensor) PowT(u *Tensor) *Tensor { return binary(opPow, t, u, nil, nil) }

// Exp returns eᵗ.
func (t *Tensor) Exp() *Tensor { return unary(opExp, t, nil, nil) }

// Log returns the natural logarithm of t.
func (t *Tensor) Log() *Tensor { return unary(opLog, t, nil, nil) }

// Sqrt returns √t.
func (t *Tensor) Sqrt() *Tensor { return unary(opSqrt, t, nil, nil) }

// Rsqrt returns 1/√t.
func (t *Tensor) Rsqrt() *Tensor { return unary(opRsqrt, t, nil, nil) }

// Abs returns |t|.
func (t *Tensor) Abs() *Tensor { return unary(opAbs, t, nil, nil) }

// Sigmoid returns 1/(1+e⁻ᵗ).
func (t *Tensor) Sigmoid() *Tensor { return unary(opSigmoid, t, nil, nil) }

// Tanh returns tanh(t).
func (t *Tensor) Tanh() *Tensor { return unary(opTanh, t, nil, nil) }

// Relu returns max(t, 0).
func (t *Tensor) Relu() *Tensor { return unary(opRelu, t, nil, nil) }

// Gelu returns the exact GELU, t·Φ(t).
func (t *Tensor) Gelu() *Tensor { return unary(opGelu, t, []int64{0}, nil) }

// GeluTanh returns GELU with the tanh approximation (gelu_new, gelu_pytorch_tanh).
func (t *Tensor) GeluTanh() *Tensor { return unary(opGelu, t, []int64{1}, nil) }

// QuickGelu returns t·σ(1.702t), the activation of OpenAI's CLIP, in one call.
func (t *Tensor) QuickGelu() *Tensor { return unary(opQuickGelu, t, nil, nil) }

// Matmul is the matrix product with torch.matmul's broadcasting rules.
func (t *Tensor) Matmul(u *Tensor) *Tensor { return binary(opMatmul, t, u, nil, nil) }

// BMM is the batched matrix product of [b,n,m] and [b,m,p].
func (t *Tensor) BMM(u *Tensor) *Tensor { return binary(opBMM, t, u, nil, nil) }

// Linear returns t·wᵀ + b; b may be nil.
func (t *Tensor) Linear(w, b *Tensor) *Tensor {
	c, dst, bad := prep(opLinear, t, w)
	if bad != nil {
		return bad
	}
	if bad := c.optional(opLinear, dst, b); bad != nil {
		return bad
	}
	return c.result(opLinear, dst)
}

// Reshape returns t with the given shape (one dimension may be -1), a view
// when possible.
func (t *Tensor) Reshape(shape ...int64) *Tensor { return unary(opReshape, t, shape, nil) }

// View returns a view of t with the given shape; t must be laid out for it.
func (t *Tensor) View(shape ...int64) *Tensor { return unary(opView, t, shape, nil) }

// Permute reorders t's dimensions.
func (t *Tensor) Permute(dims ...int64) *Tensor { return unary(opPermute, t, dims, nil) }

// Transpose swaps dimensions d0 and d1.
func (t *Tensor) Transpose(d0, d1 int64) *Tensor { return unary(opTranspose, t, []int64{d0, d1}, nil) }

// T transposes a matrix (at most two dimensions).
func (t *Tensor) T() *Tensor { return unary(opT, t, nil, nil) }

// Expand broadcasts t to shape without copying (-1 keeps a dimension).
func (t *Tensor) Expand(shape ...int64) *Tensor { return unary(opExpand, t, shape, nil) }

// Repeat tiles t reps times along each dimension.
func (t *Tensor) Repeat(reps ...int64) *Tensor { return unary(opRepeat, t, reps, nil) }

// Unsqueeze inserts a dimension of size one at d.
func (t *Tensor) Unsqueeze(d int64) *Tensor { return unary(opUnsqueeze, t, []int64{d}, nil) }

// Squeeze removes dimension d if its size is one.
func (t *Tensor) Squeeze(d int64) *Tensor { return unary(opSqueeze, t, []int64{d}, nil) }

// Flatten merges dimensions start..end (inclusive) into one.
func (t *Tensor) Flatten(start, end int64) *Tensor {
	return unary(opFlatten, t, []int64{start, end}, nil)
}

// Narrow returns length elements of dimension dim from start, as a view.
func (t *Tensor) Narrow(dim, start, length int64) *Tensor {
	return unary(opNarrow, t, []int64{dim, start, length}, nil)
}

// Slice returns elements start, start+step, ... below end of dimension dim,
// as t[..., start:end:step] would; end is clamped to the size.
func (t *Tensor) Slice(dim, start, end, step int64) *Tensor {
	return unary(opSlice, t, []int64{dim, start, end, step}, nil)
}

// Select returns index i of dimension dim, removing that dimension.
func (t *Tensor) Select(dim, i int64) *Tensor { return unary(opSelect, t, []int64{dim, i}, nil) }

// IndexSelect picks the entries idx (int64, one-dimensional) of dimension dim.
func (t *Tensor) IndexSelect(dim int64, idx *Tensor) *Tensor {
	return binary(opIndexSelect, t, idx, []int64{dim}, nil)
}

// Gather returns out[i][j] = t[idx[i][j]][j] (for dim 0), as torch.gather.
func (t *Tensor) Gather(dim int64, idx *Tensor) *Tensor {
	return binary(opGather, t, idx, []int64{dim}, nil)
}

// Scatter returns a copy of t with src's values written at idx along dim.
func (t *Tensor) Scatter(dim int64, idx, src *Tensor) *Tensor {
	c, dst, bad := prep(opScatter, t, idx, src)
	if bad != nil {
		return bad
	}
	c.ints = append(c.ints, dim)
	return c.result(opScatter, dst)
}

// ScatterValue returns a copy of t with v written at idx along dim.
func (t *Tensor) ScatterValue(dim int64, idx *Tensor, v float64) *Tensor {
	return binary(opScatterVal, t, idx, []int64{dim}, []float64{v})
}

// OneHot returns the int64 one-hot encoding of class indices t, with n
// classes (-1 = one more than the largest index).
func (t *Tensor) OneHot(n int64) *Tensor { return unary(opOneHot, t, []int64{n}, nil) }

// Cat concatenates ts along dim. The result belongs to the first tensor's
// scope that is not sealed.
func Cat(ts []*Tensor, dim int64) *Tensor { return listOp(opCat, ts, dim) }

// Stack stacks ts along a new dimension dim.
func Stack(ts []*Tensor, dim int64) *Tensor { return listOp(opStack, ts, dim) }

func listOp(o *opcode, ts []*Tensor, dim int64) *Tensor {
	if len(ts) == 0 {
		return &Tensor{err: &OpError{Op: o.name, Err: fmt.Errorf("no tensors")}}
	}
	c, dst, bad := prep(o, ts...)
	if bad != nil {
		return bad
	}
	c.ints = append(c.ints, dim)
	return c.result(o, dst)
}

// Embedding looks up rows of the table w [n, d] for the int64 ids.
func Embedding(w, ids *Tensor) *Tensor { return binary(opEmbedding, w, ids, nil, nil) }

// ConvOptions are the geometry of Conv2d; zero fields mean stride 1,
// padding 0, dilation 1 and one group.
type ConvOptions struct {
	Stride, Padding, Dilation [2]int64
	Groups                    int64
}

// Conv2d is the 2-D convolution of t [n,c,h,w] with w [o,c/groups,kh,kw]
// and bias b (nil for none).
func (t *Tensor) Conv2d(w, b *Tensor, o ConvOptions) *Tensor {
	c, dst, bad := prep(opConv2d, t, w)
	if bad != nil {
		return bad
	}
	if bad := c.optional(opConv2d, dst, b); bad != nil {
		return bad
	}
	one := func(v int64) int64 {
		if v == 0 {
			return 1
		}
		return v
	}
	c.ints = append(c.ints, one(o.Stride[0]), one(o.Stride[1]), o.Padding[0], o.Padding[1],
		one(o.Dilation[0]), one(o.Dilation[1]), one(o.Groups))
	return c.result(opConv2d, dst)
}

// LayerNorm normalizes over the trailing dimensions shape, then scales by w
// and shifts by b (either may be nil).
func (t *Tensor) LayerNorm(shape []int64, w, b *Tensor, eps float64) *Tensor {
	c, dst, bad := prep(opLayerNorm, t)
	if bad != nil {
		return bad
	}
	if bad := c.optional(opLayerNorm, dst, w); bad != nil {
		return bad
	}
	if bad := c.optional(opLayerNorm, dst, b); bad != nil {
		return bad
	}
	c.ints = append(c.ints, shape...)
	c.dbls = append(c.dbls, eps)
	return c.result(opLayerNorm, dst)
}

// Softmax along dim.
func (t *Tensor) Softmax(dim int64) *Tensor { return unary(opSoftmax, t, []int64{dim}, nil) }

// LogSoftmax along dim.
func (t *Tensor) LogSoftmax(dim int64) *Tensor { return unary(opLogSoftmax, t, []int64{dim}, nil) }

// CrossEntropy is the mean cross-entropy of logits t [n,c] against class
// indices targets [n] (int64), as F.cross_entropy.
func (t *Tensor) CrossEntropy(targets *Tensor) *Tensor {
	return binary(opCrossEnt, t, targets, nil, nil)
}

// InterpolateBilinear resizes t [n,c,h,w] to [n,c,height,width].
func (t *Tensor) InterpolateBilinear(height, width int64, alignCorners bool) *Tensor {
	return unary(opInterp, t, []int64{height, width, b2i(alignCorners)}, nil)
}

// ScaledDotProductAttention is softmax(q·kᵀ/√d + mask)·v over the last two
// dimensions, as F.scaled_dot_product_attention: libtorch's fused kernel on
// libtorch ≥ 2, the plain computation on 1.13. mask may be nil, bool (true =
// attend) or additive; causal adds the causal mask.
func ScaledDotProductAttention(q, k, v, mask *Tensor, causal bool) *Tensor {
	return attention(opSDPA, q, k, v, mask, causal)
}

// AttentionPlain computes what ScaledDotProductAttention does without the
// fused kernel, on every libtorch: the reference for tests.
func AttentionPlain(q, k, v, mask *Tensor, causal bool) *Tensor {
	return attention(opSDPAPlain, q, k, v, mask, causal)
}

func attention(o *opcode, q, k, v, mask *Tensor, causal bool) *Tensor {
	c, dst, bad := prep(o, q, k, v)
	if bad != nil {
		return bad
	}
	if bad := c.optional(o, dst, mask); bad != nil {
		return bad
	}
	c.ints = append(c.ints, b2i(causal))
	return c.result(o, dst)
}

// Sum over dims.
func (t *Tensor) Sum(dims []int64, keepdim bool) *Tensor { return reduce(opSum, t, dims, keepdim) }

// SumAll is the sum of all elements (zero-dimensional).
func (t *Tensor) SumAll() *Tensor { return unary(opSumAll, t, nil, nil) }

// Mean over dims.
func (t *Tensor) Mean(dims []int64, keepdim bool) *Tensor { return reduce(opMean, t, dims, keepdim) }

// MeanAll is the mean of all elements (zero-dimensional).
func (t *Tensor) MeanAll() *Tensor { return unary(opMeanAll, t, nil, nil) }

func reduce(o *opcode, t *Tensor, dims []int64, keepdim bool) *Tensor {
	c, dst, bad := prep(o, t)
	if bad != nil {
		return bad
	}
	c.ints = append(c.ints, b2i(keepdim))
	c.ints = append(c.ints, dims...)
	return c.result(o, dst)
}

// Max is the largest value along dim.
func (t *Tensor) Max(dim int64, keepdim bool) *Tensor {
	return unary(opMax, t, []int64{dim, b2i(keepdim)}, nil)
}

// Min is the smallest value along dim.
func (t *Tensor) Min(dim int64, keepdim bool) *Tensor {
	return unary(opMin, t, []int64{dim, b2i(keepdim)}, nil)
}

// MaxAll is the largest element (zero-dimensional).
func (t *Tensor) MaxAll() *Tensor { return unary(opMaxAll, t, nil, nil) }

// MinAll is the smallest element (zero-dimensional).
func (t *Tensor) MinAll() *Tensor { return unary(opMinAll, t, nil, nil) }

// ArgMax is the index (int64) of the largest value along dim.
func (t *Tensor) ArgMax(dim int64, keepdim bool) *Tensor {
	return unary(opArgMax, t, []int64{dim, b2i(keepdim)}, nil)
}

// Norm is the p-norm over dims (all elements when dims is empty).
func (t *Tensor) Norm(p float64, dims []int64, keepdim bool) *Tensor {
	c, dst, bad := prep(opNorm, t)
	if bad != nil {
		return bad
	}
	c.dbls = append(c.dbls, p)
	if len(dims) > 0 {
		c.ints = append(c.ints, b2i(keepdim))
		c.ints = append(c.ints, dims...)
	}
	return c.result(opNorm, dst)
}

// Normalize divides t by its p-norm along dim, at least eps (F.normalize).
func (t *Tensor) Normalize(p float64, dim int64, eps float64) *Tensor {
	return unary(opNormalize, t, []int64{dim}, []float64{p, eps})
}

// Eq is t == u elementwise (bool).
func (t *Tensor) Eq(u *Tensor) *Tensor { return binary(opEq, t, u, nil, nil) }

// Gt is t > u elementwise (bool).
func (t *Tensor) Gt(u *Tensor) *Tensor { return binary(opGt, t, u, nil, nil) }

// Lt is t < u elementwise (bool).
func (t *Tensor) Lt(u *Tensor) *Tensor { return binary(opLt, t, u, nil, nil) }

// EqScalar is t == v elementwise (bool).
func (t *Tensor) EqScalar(v float64) *Tensor { return unary(opEqScalar, t, nil, []float64{v}) }

// GtScalar is t > v elementwise (bool).
func (t *Tensor) GtScalar(v float64) *Tensor { return unary(opGtScalar, t, nil, []float64{v}) }

// LtScalar is t < v elementwise (bool).
func (t *Tensor) LtScalar(v float64) *Tensor { return unary(opLtScalar, t, nil, []float64{v}) }

// Clamp limits t to [lo, hi].
func (t *Tensor) Clamp(lo, hi float64) *Tensor { return unary(opClamp, t, nil, []float64{lo, hi}) }

// ClampMin limits t to at least lo.
func (t *Tensor) ClampMin(lo float64) *Tensor { return unary(opClampMin, t, nil, []float64{lo}) }

// Triu keeps the elements on and above the k-th diagonal.
func (t *Tensor) Triu(k int64) *Tensor { return unary(opTriu, t, []int64{k}, nil) }

// Tril keeps the elements on and below the k-th diagonal.
func (t *Tensor) Tril(k int64) *Tensor { return unary(opTril, t, []int64{k}, nil) }

// MaskedFill returns t with v where the bool mask (broadcast) is true.
func (t *Tensor) MaskedFill(mask *Tensor, v float64) *Tensor {
	return binary(opMaskedFill, t, mask, nil, []float64{v})
}

// Where picks a where cond is true and b elsewhere, broadcasting. The result
// belongs to the first of cond, a, b whose scope is not sealed.
func Where(cond, a, b *Tensor) *Tensor {
	c, dst, bad := prep(opWhere, cond, a, b)
	if bad != nil {
		return bad
	}
	return c.result(opWhere, dst)
}

// Copy_ copies src (broadcast is refused: shapes must match) into t in
// place, converting dtype and device, without recording a gradient: the way
// to load weights into existing parameters.
func (t *Tensor) Copy_(src *Tensor) error { return mutate(opCopy, t, []*Tensor{src}, nil, nil) }

// Fill_ sets every element of t to v, without recording a gradient.
func (t *Tensor) Fill_(v float64) error { return mutate(opFill, t, nil, nil, []float64{v}) }

// Zero_ sets every element of t to zero, without recording a gradient.
func (t *Tensor) Zero_() error { return mutate(opFill, t, nil, nil, []float64{0}) }

// Normal_ fills t with samples of N(mean, std²), without recording a gradient.
func (t *Tensor) Normal_(mean, std float64) error {
	return mutate(opNormal, t, nil, nil, []float64{mean, std})
}

// Uniform_ fills t with samples of U[lo, hi), without recording a gradient.
func (t *Tensor) Uniform_(lo, hi float64) error {
	return mutate(opUniform, t, nil, nil, []float64{lo, hi})
}
