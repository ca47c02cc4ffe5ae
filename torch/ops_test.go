package torch_test

import (
	"math"
	"slices"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// env builds test inputs on the test device.
type env struct {
	s   *torch.Scope
	dev torch.Device
}

// f32 makes a float32 tensor on the test device.
func (e env) f32(data []float64, shape ...int64) *torch.Tensor {
	return e.s.FromFloat64(data, shape...).To(e.dev, torch.Float32)
}

// leaf makes a float32 tensor on the test device that requires grad: a
// parameter.
func (e env) leaf(t testing.TB, data []float64, shape ...int64) *torch.Tensor {
	t.Helper()
	x := e.f32(data, shape...)
	if err := x.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	return x
}

// i64 makes an int64 tensor on the test device.
func (e env) i64(data []int64, shape ...int64) *torch.Tensor {
	return e.s.FromInt64(data, shape...).ToDevice(e.dev)
}

func (e env) boolean(data []bool, shape ...int64) *torch.Tensor {
	return e.s.FromBool(data, shape...).ToDevice(e.dev)
}

func (e env) opts(dt torch.DType) torch.Options { return torch.Options{DType: dt, Device: e.dev} }

func gelu(x float64) float64 { return x * 0.5 * (1 + math.Erf(x/math.Sqrt2)) }

func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

type opCase struct {
	name  string
	f     func(e env) *torch.Tensor
	want  []float64
	shape []int64
}

func opCases() []opCase {
	ln := math.Log
	sq := math.Sqrt(2.0 / 3.0)
	a := math.Exp(1/math.Sqrt2) / (math.Exp(1/math.Sqrt2) + 1)
	return []opCase{
		// arithmetic, broadcasting
		{"add", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3}, 3).Add(e.f32([]float64{10}, 1)) }, []float64{11, 12, 13}, []int64{3}},
		{"add/broadcast2d", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2, 1).Add(e.f32([]float64{10, 20}, 2)) }, []float64{11, 21, 12, 22}, []int64{2, 2}},
		{"sub", func(e env) *torch.Tensor { return e.f32([]float64{5, 7}, 2).Sub(e.f32([]float64{1, 2}, 2)) }, []float64{4, 5}, []int64{2}},
		{"mul", func(e env) *torch.Tensor { return e.f32([]float64{2, 3}, 2).Mul(e.f32([]float64{4, 5}, 2)) }, []float64{8, 15}, []int64{2}},
		{"div", func(e env) *torch.Tensor { return e.f32([]float64{1, 9}, 2).Div(e.f32([]float64{4, 3}, 2)) }, []float64{0.25, 3}, []int64{2}},
		{"add_scalar", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).AddScalar(0.5) }, []float64{1.5, 2.5}, []int64{2}},
		{"add_scalar/int", func(e env) *torch.Tensor { return e.i64([]int64{1, 2}, 2).AddScalar(3) }, []float64{4, 5}, []int64{2}},
		{"sub_scalar", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).SubScalar(1) }, []float64{0, 1}, []int64{2}},
		{"mul_scalar", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).MulScalar(-2) }, []float64{-2, -4}, []int64{2}},
		{"div_scalar", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).DivScalar(4) }, []float64{0.25, 0.5}, []int64{2}},
		{"neg", func(e env) *torch.Tensor { return e.f32([]float64{1, -2}, 2).Neg() }, []float64{-1, 2}, []int64{2}},
		{"pow", func(e env) *torch.Tensor { return e.f32([]float64{2, 3}, 2).Pow(2) }, []float64{4, 9}, []int64{2}},
		{"pow_tensor", func(e env) *torch.Tensor { return e.f32([]float64{2, 3}, 2).PowT(e.f32([]float64{3, 2}, 2)) }, []float64{8, 9}, []int64{2}},
		{"exp", func(e env) *torch.Tensor { return e.f32([]float64{0, ln(2)}, 2).Exp() }, []float64{1, 2}, []int64{2}},
		{"log", func(e env) *torch.Tensor { return e.f32([]float64{1, math.E}, 2).Log() }, []float64{0, 1}, []int64{2}},
		{"sqrt", func(e env) *torch.Tensor { return e.f32([]float64{4, 9}, 2).Sqrt() }, []float64{2, 3}, []int64{2}},
		{"rsqrt", func(e env) *torch.Tensor { return e.f32([]float64{4, 0.25}, 2).Rsqrt() }, []float64{0.5, 2}, []int64{2}},
		{"abs", func(e env) *torch.Tensor { return e.f32([]float64{-1, 2}, 2).Abs() }, []float64{1, 2}, []int64{2}},
		{"sigmoid", func(e env) *torch.Tensor { return e.f32([]float64{0, 1}, 2).Sigmoid() }, []float64{0.5, sigmoid(1)}, []int64{2}},
		{"tanh", func(e env) *torch.Tensor { return e.f32([]float64{0, 1}, 2).Tanh() }, []float64{0, math.Tanh(1)}, []int64{2}},
		{"relu", func(e env) *torch.Tensor { return e.f32([]float64{-1, 2}, 2).Relu() }, []float64{0, 2}, []int64{2}},
		{"gelu", func(e env) *torch.Tensor { return e.f32([]float64{-1, 0, 1, 2}, 4).Gelu() }, []float64{gelu(-1), 0, gelu(1), gelu(2)}, []int64{4}},
		{"gelu_tanh", func(e env) *torch.Tensor { return e.f32([]float64{-1, 0, 1, 2}, 4).GeluTanh() }, []float64{geluTanh(-1), 0, geluTanh(1), geluTanh(2)}, []int64{4}},
		{"quick_gelu", func(e env) *torch.Tensor { return e.f32([]float64{-1, 1}, 2).QuickGelu() }, []float64{-sigmoid(-1.702), sigmoid(1.702)}, []int64{2}},
		// linear algebra
		{"matmul", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2, 3, 4}, 2, 2).Matmul(e.f32([]float64{5, 6, 7, 8}, 2, 2))
		}, []float64{19, 22, 43, 50}, []int64{2, 2}},
		{"matmul/batched", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 0, 0, 1, 2, 0, 0, 2}, 2, 2, 2).Matmul(e.f32([]float64{1, 2}, 2, 1))
		}, []float64{1, 2, 2, 4}, []int64{2, 2, 1}},
		{"bmm", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2, 3, 4}, 2, 1, 2).BMM(e.f32([]float64{1, 1, 2, 2}, 2, 2, 1))
		}, []float64{3, 14}, []int64{2, 1, 1}},
		{"linear", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2}, 1, 2).Linear(e.f32([]float64{1, 0, 0, 1, 1, 1}, 3, 2), e.f32([]float64{1, 1, 1}, 3))
		}, []float64{2, 3, 4}, []int64{1, 3}},
		{"linear/nobias", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2}, 1, 2).Linear(e.f32([]float64{1, 0, 0, 1, 1, 1}, 3, 2), nil)
		}, []float64{1, 2, 3}, []int64{1, 3}},
		// shape
		{"reshape", func(e env) *torch.Tensor { return e.f32([]float64{0, 1, 2, 3, 4, 5}, 6).Reshape(2, -1) }, []float64{0, 1, 2, 3, 4, 5}, []int64{2, 3}},
		{"view", func(e env) *torch.Tensor { return e.f32([]float64{0, 1, 2, 3, 4, 5}, 6).View(3, 2) }, []float64{0, 1, 2, 3, 4, 5}, []int64{3, 2}},
		{"permute", func(e env) *torch.Tensor { return e.f32([]float64{0, 1, 2, 3, 4, 5}, 2, 3).Permute(1, 0) }, []float64{0, 3, 1, 4, 2, 5}, []int64{3, 2}},
		{"transpose", func(e env) *torch.Tensor {
			return e.f32([]float64{0, 1, 2, 3, 4, 5}, 1, 2, 3).Transpose(-1, -2).Contiguous()
		}, []float64{0, 3, 1, 4, 2, 5}, []int64{1, 3, 2}},
		{"t", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).T() }, []float64{1, 3, 2, 4}, []int64{2, 2}},
		{"expand", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 1, 2).Expand(3, -1) }, []float64{1, 2, 1, 2, 1, 2}, []int64{3, 2}},
		{"repeat", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 1, 2).Repeat(2, 2) }, []float64{1, 2, 1, 2, 1, 2, 1, 2}, []int64{2, 4}},
		{"unsqueeze", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).Unsqueeze(0) }, []float64{1, 2}, []int64{1, 2}},
		{"squeeze", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 1, 2).Squeeze(0) }, []float64{1, 2}, []int64{2}},
		{"flatten", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 1, 2, 2).Flatten(1, 2) }, []float64{1, 2, 3, 4}, []int64{1, 4}},
		{"narrow", func(e env) *torch.Tensor { return e.f32([]float64{0, 1, 2, 3}, 4).Narrow(0, 1, 2) }, []float64{1, 2}, []int64{2}},
		{"slice", func(e env) *torch.Tensor { return e.f32([]float64{0, 1, 2, 3, 4, 5}, 6).Slice(0, 0, 100, 2) }, []float64{0, 2, 4}, []int64{3}},
		{"select", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).Select(0, 1) }, []float64{3, 4}, []int64{2}},
		{"index_select", func(e env) *torch.Tensor {
			return e.f32([]float64{10, 20, 30}, 3).IndexSelect(0, e.i64([]int64{2, 0}, 2))
		}, []float64{30, 10}, []int64{2}},
		{"gather", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2, 3, 4}, 2, 2).Gather(1, e.i64([]int64{0, 0, 1, 0}, 2, 2))
		}, []float64{1, 1, 4, 3}, []int64{2, 2}},
		{"scatter", func(e env) *torch.Tensor {
			return e.f32([]float64{0, 0, 0}, 3).Scatter(0, e.i64([]int64{2}, 1), e.f32([]float64{5}, 1))
		}, []float64{0, 0, 5}, []int64{3}},
		{"scatter_value", func(e env) *torch.Tensor {
			return e.f32([]float64{0, 0, 0, 0}, 2, 2).ScatterValue(1, e.i64([]int64{1, 0}, 2, 1), 1)
		}, []float64{0, 1, 1, 0}, []int64{2, 2}},
		{"one_hot", func(e env) *torch.Tensor { return e.i64([]int64{0, 2}, 2).OneHot(3) }, []float64{1, 0, 0, 0, 0, 1}, []int64{2, 3}},
		{"cat", func(e env) *torch.Tensor {
			return torch.Cat([]*torch.Tensor{e.f32([]float64{1, 2}, 2), e.f32([]float64{3}, 1)}, 0)
		}, []float64{1, 2, 3}, []int64{3}},
		{"stack", func(e env) *torch.Tensor {
			return torch.Stack([]*torch.Tensor{e.f32([]float64{1, 2}, 2), e.f32([]float64{3, 4}, 2)}, 1)
		}, []float64{1, 3, 2, 4}, []int64{2, 2}},
		// neural network
		{"embedding", func(e env) *torch.Tensor {
			return torch.Embedding(e.f32([]float64{1, 2, 3, 4, 5, 6}, 3, 2), e.i64([]int64{2, 0}, 2))
		}, []float64{5, 6, 1, 2}, []int64{2, 2}},
		{"conv2d", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3).Conv2d(e.f32([]float64{1, 1, 1, 1}, 1, 1, 2, 2), e.f32([]float64{1}, 1), torch.ConvOptions{})
		}, []float64{13, 17, 25, 29}, []int64{1, 1, 2, 2}},
		{"conv2d/stride_padding", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3).Conv2d(e.f32([]float64{1, 1, 1, 1}, 1, 1, 2, 2), nil,
				torch.ConvOptions{Stride: [2]int64{2, 2}, Padding: [2]int64{1, 1}})
		}, []float64{1, 5, 11, 28}, []int64{1, 1, 2, 2}},
		{"layer_norm", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2, 3}, 1, 3).LayerNorm([]int64{3}, e.f32([]float64{1, 2, 3}, 3), e.f32([]float64{0, 1, 0}, 3), 0)
		}, []float64{-1 / sq, 1, 3 / sq}, []int64{1, 3}},
		{"layer_norm/noaffine", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2, 3}, 3).LayerNorm([]int64{3}, nil, nil, 0)
		}, []float64{-1 / sq, 0, 1 / sq}, []int64{3}},
		{"softmax", func(e env) *torch.Tensor { return e.f32([]float64{0, ln(2), ln(3)}, 3).Softmax(0) }, []float64{1.0 / 6, 2.0 / 6, 3.0 / 6}, []int64{3}},
		{"log_softmax", func(e env) *torch.Tensor { return e.f32([]float64{0, ln(3)}, 1, 2).LogSoftmax(-1) }, []float64{ln(0.25), ln(0.75)}, []int64{1, 2}},
		{"cross_entropy", func(e env) *torch.Tensor {
			return e.f32([]float64{0, ln(3), ln(3), 0}, 2, 2).CrossEntropy(e.i64([]int64{1, 1}, 2))
		}, []float64{(-ln(0.75) - ln(0.25)) / 2}, []int64{}},
		{"interpolate_bilinear", func(e env) *torch.Tensor {
			return e.f32([]float64{0, 1, 2, 3}, 1, 1, 2, 2).InterpolateBilinear(3, 3, true)
		}, []float64{0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3}, []int64{1, 1, 3, 3}},
		{"sdpa", func(e env) *torch.Tensor {
			return torch.ScaledDotProductAttention(e.f32([]float64{1, 0}, 1, 1, 2), e.f32([]float64{1, 0, 0, 1}, 1, 2, 2), e.f32([]float64{1, 2, 3, 4}, 1, 2, 2), nil, false)
		}, []float64{a + 3*(1-a), 2*a + 4*(1-a)}, []int64{1, 1, 2}},
		{"sdpa/mask", func(e env) *torch.Tensor {
			return torch.ScaledDotProductAttention(e.f32([]float64{1, 0}, 1, 1, 2), e.f32([]float64{1, 0, 0, 1}, 1, 2, 2), e.f32([]float64{1, 2, 3, 4}, 1, 2, 2), e.boolean([]bool{false, true}, 1, 1, 2), false)
		}, []float64{3, 4}, []int64{1, 1, 2}},
		{"sdpa/causal", func(e env) *torch.Tensor {
			return torch.ScaledDotProductAttention(e.f32([]float64{1, 0, 1, 0}, 1, 2, 2), e.f32([]float64{1, 0, 0, 1}, 1, 2, 2), e.f32([]float64{1, 2, 3, 4}, 1, 2, 2), nil, true)
		}, []float64{1, 2, a + 3*(1-a), 2*a + 4*(1-a)}, []int64{1, 2, 2}},
		// reductions
		{"sum", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).Sum([]int64{0}, false) }, []float64{4, 6}, []int64{2}},
		{"sum/keepdim", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).Sum([]int64{1}, true) }, []float64{3, 7}, []int64{2, 1}},
		{"sum_all", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).SumAll() }, []float64{10}, []int64{}},
		{"mean", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).Mean([]int64{1}, false) }, []float64{1.5, 3.5}, []int64{2}},
		{"mean_all", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).MeanAll() }, []float64{2.5}, []int64{}},
		{"max", func(e env) *torch.Tensor { return e.f32([]float64{1, 5, 3, 4}, 2, 2).Max(1, false) }, []float64{5, 4}, []int64{2}},
		{"min", func(e env) *torch.Tensor { return e.f32([]float64{1, 5, 3, 4}, 2, 2).Min(0, true) }, []float64{1, 4}, []int64{1, 2}},
		{"max_all", func(e env) *torch.Tensor { return e.f32([]float64{1, 5, 3, 4}, 2, 2).MaxAll() }, []float64{5}, []int64{}},
		{"min_all", func(e env) *torch.Tensor { return e.f32([]float64{1, 5, -3, 4}, 2, 2).MinAll() }, []float64{-3}, []int64{}},
		{"argmax", func(e env) *torch.Tensor { return e.f32([]float64{1, 5, 2, 7, 0, 1}, 2, 3).ArgMax(1, false) }, []float64{1, 0}, []int64{2}},
		{"norm", func(e env) *torch.Tensor { return e.f32([]float64{3, 4}, 2).Norm(2, nil, false) }, []float64{5}, []int64{}},
		{"norm/dims", func(e env) *torch.Tensor { return e.f32([]float64{3, 4, 1, 1}, 2, 2).Norm(1, []int64{1}, true) }, []float64{7, 2}, []int64{2, 1}},
		{"normalize", func(e env) *torch.Tensor { return e.f32([]float64{3, 4, 0, 0}, 2, 2).Normalize(2, -1, 1e-12) }, []float64{0.6, 0.8, 0, 0}, []int64{2, 2}},
		// comparison and selection
		{"eq", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).Eq(e.f32([]float64{1, 3}, 2)) }, []float64{1, 0}, []int64{2}},
		{"gt", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).Gt(e.f32([]float64{1, 1}, 2)) }, []float64{0, 1}, []int64{2}},
		{"lt", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).Lt(e.f32([]float64{2, 2}, 2)) }, []float64{1, 0}, []int64{2}},
		{"eq_scalar", func(e env) *torch.Tensor { return e.i64([]int64{1, 2}, 2).EqScalar(2) }, []float64{0, 1}, []int64{2}},
		{"gt_scalar", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).GtScalar(1.5) }, []float64{0, 1}, []int64{2}},
		{"lt_scalar", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).LtScalar(1.5) }, []float64{1, 0}, []int64{2}},
		{"clamp", func(e env) *torch.Tensor { return e.f32([]float64{-2, 0.5, 3}, 3).Clamp(-1, 1) }, []float64{-1, 0.5, 1}, []int64{3}},
		{"clamp_min", func(e env) *torch.Tensor { return e.f32([]float64{-2, 0.5}, 2).ClampMin(0) }, []float64{0, 0.5}, []int64{2}},
		{"triu", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).Triu(0) }, []float64{1, 2, 0, 4}, []int64{2, 2}},
		{"triu/k1", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).Triu(1) }, []float64{0, 2, 0, 0}, []int64{2, 2}},
		{"tril", func(e env) *torch.Tensor { return e.f32([]float64{1, 2, 3, 4}, 2, 2).Tril(0) }, []float64{1, 0, 3, 4}, []int64{2, 2}},
		{"masked_fill", func(e env) *torch.Tensor {
			return e.f32([]float64{1, 2, 3}, 3).MaskedFill(e.boolean([]bool{true, false, true}, 3), -9)
		}, []float64{-9, 2, -9}, []int64{3}},
		{"where", func(e env) *torch.Tensor {
			return torch.Where(e.boolean([]bool{true, false}, 2), e.f32([]float64{1, 2}, 2), e.f32([]float64{7}, 1))
		}, []float64{1, 7}, []int64{2}},
		// creation and conversion
		{"zeros", func(e env) *torch.Tensor { return e.s.Zeros([]int64{2}, e.opts(torch.Float32)) }, []float64{0, 0}, []int64{2}},
		{"ones", func(e env) *torch.Tensor { return e.s.Ones([]int64{1, 2}, e.opts(torch.Int64)) }, []float64{1, 1}, []int64{1, 2}},
		{"full", func(e env) *torch.Tensor { return e.s.Full([]int64{2}, 2.5, e.opts(torch.Float32)) }, []float64{2.5, 2.5}, []int64{2}},
		{"eye", func(e env) *torch.Tensor { return e.s.Eye(2, e.opts(torch.Float32)) }, []float64{1, 0, 0, 1}, []int64{2, 2}},
		{"arange", func(e env) *torch.Tensor { return e.s.Arange(0, 5, 2, e.opts(torch.Int64)) }, []float64{0, 2, 4}, []int64{3}},
		{"scalar", func(e env) *torch.Tensor { return e.s.Scalar(3, e.opts(torch.Float64)) }, []float64{3}, []int64{}},
		{"full_like", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).FullLike(7) }, []float64{7, 7}, []int64{2}},
		{"zeros_like", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).ZerosLike() }, []float64{0, 0}, []int64{2}},
		{"ones_like", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).OnesLike() }, []float64{1, 1}, []int64{2}},
		{"to_dtype/f16", func(e env) *torch.Tensor { return e.f32([]float64{1.5, -2.25}, 2).ToDType(torch.Float16) }, []float64{1.5, -2.25}, []int64{2}},
		{"to_dtype/bf16", func(e env) *torch.Tensor { return e.f32([]float64{1.5, 3}, 2).ToDType(torch.BFloat16) }, []float64{1.5, 3}, []int64{2}},
		{"to_dtype/trunc", func(e env) *torch.Tensor { return e.f32([]float64{1.7, -2.7}, 2).ToDType(torch.Int64) }, []float64{1, -2}, []int64{2}},
		{"clone", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).Clone() }, []float64{1, 2}, []int64{2}},
		{"detach", func(e env) *torch.Tensor { return e.f32([]float64{1, 2}, 2).Detach() }, []float64{1, 2}, []int64{2}},
	}
}

func TestOps(t *testing.T) {
	dev := torchtest.Device(t)
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := torch.NewScope()
			defer s.Close()
			got := tc.f(env{s: s, dev: dev})
			vals, err := got.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			if shape := got.Shape(); !slices.Equal(shape, tc.shape) {
				t.Errorf("shape %v, want %v", shape, tc.shape)
			}
			if d := got.Device(); d != dev {
				t.Errorf("device %v, want %v", d, dev)
			}
			if !near(vals, tc.want, 1e-5) {
				t.Errorf("got %v, want %v", vals, tc.want)
			}
			if err := s.Err(); err != nil {
				t.Errorf("scope error: %v", err)
			}
		})
	}
}

// near compares with a tolerance relative to the larger magnitude.
func near(got, want []float64, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
			return false
		}
	}
	return true
}

func TestResultDTypes(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	for _, tc := range []struct {
		name string
		t    *torch.Tensor
		want torch.DType
	}{
		{"argmax", e.f32([]float64{1, 2}, 2).ArgMax(0, false), torch.Int64},
		{"eq", e.f32([]float64{1, 2}, 2).EqScalar(1), torch.Bool},
		{"one_hot", e.i64([]int64{1}, 1).OneHot(2), torch.Int64},
		{"int+int", e.i64([]int64{1}, 1).AddScalar(2), torch.Int64},
		{"f16", e.f32([]float64{1}, 1).ToDType(torch.Float16), torch.Float16},
		{"bf16", e.f32([]float64{1}, 1).To(dev, torch.BFloat16), torch.BFloat16},
	} {
		if got := tc.t.DType(); got != tc.want {
			t.Errorf("%s: dtype %v, want %v (%v)", tc.name, got, tc.want, tc.t.Err())
		}
	}
}

func TestSDPAMatchesPlain(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	if err := torch.ManualSeed(1); err != nil {
		t.Fatal(err)
	}
	o := torch.Options{Device: dev}
	q, k, v := s.Randn([]int64{2, 3, 5, 8}, o), s.Randn([]int64{2, 3, 5, 8}, o), s.Randn([]int64{2, 3, 5, 8}, o)
	// Keep the diagonal so that no row is fully masked (libtorch versions
	// differ on what such a row gives).
	diag := s.Eye(5, torch.Options{DType: torch.Bool, Device: dev})
	mask := torch.Where(diag, diag, s.Randn([]int64{5, 5}, o).GtScalar(-1))
	for _, causal := range []bool{false, true} {
		for _, m := range []*torch.Tensor{nil, mask} {
			a, err := torch.ScaledDotProductAttention(q, k, v, m, causal).Float64s()
			if err != nil {
				t.Fatal(err)
			}
			b, err := torch.AttentionPlain(q, k, v, m, causal).Float64s()
			if err != nil {
				t.Fatal(err)
			}
			if !near(a, b, 1e-4) {
				t.Errorf("causal=%v mask=%v: fused and plain attention differ", causal, m != nil)
			}
		}
	}
}

func TestBytesRoundTrip(t *testing.T) {
	torchtest.Require(t)
	s := torchtest.Scope(t)
	for _, tc := range []struct {
		dt   torch.DType
		raw  []byte
		want []float64
	}{
		// little-endian encodings of 1.0 and -2.0
		{torch.Float32, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}, []float64{1, -2}},
		{torch.Float16, []byte{0x00, 0x3c, 0x00, 0xc0}, []float64{1, -2}},
		{torch.BFloat16, []byte{0x80, 0x3f, 0x00, 0xc0}, []float64{1, -2}},
		{torch.Int64, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []float64{1, -2}},
		{torch.Bool, []byte{1, 0}, []float64{1, 0}},
	} {
		x := s.FromBytes(tc.raw, tc.dt, []int64{2})
		got, err := x.Float64s()
		if err != nil {
			t.Fatalf("%v: %v", tc.dt, err)
		}
		if !near(got, tc.want, 0) || x.DType() != tc.dt {
			t.Errorf("%v: got %v (%v), want %v", tc.dt, got, x.DType(), tc.want)
		}
		raw, err := x.Bytes()
		if err != nil || !slices.Equal(raw, tc.raw) {
			t.Errorf("%v: Bytes %v, %v; want %v", tc.dt, raw, err, tc.raw)
		}
	}
	if err := s.FromBytes([]byte{1, 2, 3}, torch.Float32, []int64{1}).Err(); err == nil {
		t.Error("3 bytes for one f32: no error")
	}
}

func TestSliceReaders(t *testing.T) {
	torchtest.Require(t)
	s := torchtest.Scope(t)
	x := s.FromFloat32([]float32{1.5, -2}, 2)
	f, err := x.Float32s()
	if err != nil || !slices.Equal(f, []float32{1.5, -2}) {
		t.Errorf("Float32s = %v, %v", f, err)
	}
	i, err := x.Int64s()
	if err != nil || !slices.Equal(i, []int64{1, -2}) {
		t.Errorf("Int64s = %v, %v", i, err)
	}
	b, err := x.Bools()
	if err != nil || !slices.Equal(b, []bool{true, true}) {
		t.Errorf("Bools = %v, %v", b, err)
	}
	bs, err := s.FromBool([]bool{true, false, true}).Bools()
	if err != nil || !slices.Equal(bs, []bool{true, false, true}) {
		t.Errorf("FromBool round trip = %v, %v", bs, err)
	}
	v, err := x.Select(0, 1).Item()
	if err != nil || v != -2 {
		t.Errorf("Item = %v, %v", v, err)
	}
	if _, err := x.Item(); err == nil {
		t.Error("Item of two elements: no error")
	}
	if got := x.String(); got != "f32[2] cpu" {
		t.Errorf("String = %q", got)
	}
	if x.Dim() != 1 || x.Size(-1) != 2 || x.Numel() != 2 {
		t.Errorf("Dim %d Size %d Numel %d", x.Dim(), x.Size(-1), x.Numel())
	}
}

func TestInPlace(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	p := e.leaf(t, []float64{1, 2}, 2)
	// Copy_ into a leaf that requires grad works: it runs without autograd.
	if err := p.Copy_(s.FromFloat64([]float64{5, 6}, 2)); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Float64s(); !near(got, []float64{5, 6}, 0) {
		t.Errorf("after Copy_: %v", got)
	}
	if err := p.Copy_(e.f32([]float64{1, 2, 3}, 3)); err == nil {
		t.Error("Copy_ of another shape: no error")
	}
	if err := p.Fill_(3); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Float64s(); !near(got, []float64{3, 3}, 0) {
		t.Errorf("after Fill_: %v", got)
	}
	if err := p.Zero_(); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Float64s(); !near(got, []float64{0, 0}, 0) {
		t.Errorf("after Zero_: %v", got)
	}
	big := s.Zeros([]int64{10000}, e.opts(torch.Float32))
	if err := big.Uniform_(2, 3); err != nil {
		t.Fatal(err)
	}
	lo, _ := big.MinAll().Item()
	hi, _ := big.MaxAll().Item()
	if lo < 2 || hi >= 3 {
		t.Errorf("Uniform_(2,3) gave [%v, %v]", lo, hi)
	}
	if err := big.Normal_(10, 0.5); err != nil {
		t.Fatal(err)
	}
	mean, _ := big.MeanAll().Item()
	if math.Abs(mean-10) > 0.05 {
		t.Errorf("Normal_(10, 0.5) mean %v", mean)
	}
}

func TestManualSeedRepeats(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	draw := func() []float64 {
		if err := torch.ManualSeed(42); err != nil {
			t.Fatal(err)
		}
		v, err := s.Randn([]int64{4}, torch.Options{Device: dev}).Float64s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b := draw(), draw()
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different draws: %v %v", a, b)
	}
	r, err := s.Rand([]int64{1000}, torch.Options{Device: dev}).Float64s()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r {
		if v < 0 || v >= 1 {
			t.Fatalf("Rand gave %v", v)
		}
	}
}
