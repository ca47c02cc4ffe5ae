package torch_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// fdInput is one input of a gradient check: its values and shape.
type fdInput struct {
	data  []float64
	shape []int64
}

func (in fdInput) on(s *torch.Scope, dev torch.Device) *torch.Tensor {
	return s.FromFloat64(in.data, in.shape...).ToDevice(dev)
}

func randInput(r *rand.Rand, shape ...int64) fdInput {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	d := make([]float64, n)
	for i := range d {
		d[i] = r.NormFloat64()
	}
	return fdInput{data: d, shape: shape}
}

// gradCheck compares autograd's gradient of a random projection of f's
// output, with respect to each input, against central finite differences.
// Everything is float64 so the comparison can be tight.
func gradCheck(t *testing.T, dev torch.Device, inputs []fdInput, f func(xs []*torch.Tensor) *torch.Tensor) {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 11))
	var proj []float64
	var projShape []int64

	// eval returns the projected output for the given input values.
	eval := func(s *torch.Scope, vals [][]float64, grad bool) (*torch.Tensor, []*torch.Tensor) {
		xs := make([]*torch.Tensor, len(inputs))
		for i, in := range inputs {
			xs[i] = s.FromFloat64(vals[i], in.shape...).ToDevice(dev)
			if grad {
				if err := xs[i].SetRequiresGrad(true); err != nil {
					t.Fatal(err)
				}
			}
		}
		out := f(xs)
		if proj == nil {
			projShape = out.Shape()
			if projShape == nil {
				t.Fatalf("forward failed: %v", out.Err())
			}
			n := int64(1)
			for _, d := range projShape {
				n *= d
			}
			proj = make([]float64, n)
			for i := range proj {
				proj[i] = r.NormFloat64()
			}
		}
		w := s.FromFloat64(proj, projShape...).ToDevice(dev)
		return out.Mul(w).SumAll(), xs
	}

	vals := make([][]float64, len(inputs))
	for i, in := range inputs {
		vals[i] = append([]float64{}, in.data...)
	}
	s := torch.NewScope()
	defer s.Close()
	loss, xs := eval(s, vals, true)
	if err := loss.Backward(nil); err != nil {
		t.Fatal(err)
	}
	const eps = 1e-6
	for i := range inputs {
		got, err := xs[i].Grad().Float64s()
		if err != nil {
			t.Fatalf("input %d: %v", i, err)
		}
		for j := range vals[i] {
			at := func(delta float64) float64 {
				fs := torch.NewScope()
				defer fs.Close()
				old := vals[i][j]
				vals[i][j] = old + delta
				defer func() { vals[i][j] = old }()
				var v float64
				err := torch.NoGrad(func() error {
					l, _ := eval(fs, vals, false)
					var err error
					v, err = l.Item()
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			num := (at(eps) - at(-eps)) / (2 * eps)
			if math.Abs(got[j]-num) > 1e-6+1e-5*math.Abs(num) {
				t.Errorf("input %d element %d: autograd %.9g, finite differences %.9g", i, j, got[j], num)
			}
		}
	}
}

func TestGradients(t *testing.T) {
	dev := torchtest.Device(t)
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name   string
		inputs []fdInput
		f      func(xs []*torch.Tensor) *torch.Tensor
	}{
		{"layer_norm", []fdInput{randInput(r, 2, 5), randInput(r, 5), randInput(r, 5)},
			func(xs []*torch.Tensor) *torch.Tensor { return xs[0].LayerNorm([]int64{5}, xs[1], xs[2], 1e-5) }},
		{"softmax", []fdInput{randInput(r, 3, 4)},
			func(xs []*torch.Tensor) *torch.Tensor { return xs[0].Softmax(-1) }},
		{"log_softmax", []fdInput{randInput(r, 3, 4)},
			func(xs []*torch.Tensor) *torch.Tensor { return xs[0].LogSoftmax(0) }},
		{"gelu", []fdInput{randInput(r, 7)},
			func(xs []*torch.Tensor) *torch.Tensor { return xs[0].Gelu() }},
		{"gelu_tanh", []fdInput{randInput(r, 7)},
			func(xs []*torch.Tensor) *torch.Tensor { return xs[0].GeluTanh() }},
		{"quick_gelu", []fdInput{randInput(r, 7)},
			func(xs []*torch.Tensor) *torch.Tensor { return xs[0].QuickGelu() }},
		{"conv2d", []fdInput{randInput(r, 1, 2, 5, 5), randInput(r, 3, 2, 3, 3), randInput(r, 3)},
			func(xs []*torch.Tensor) *torch.Tensor {
				return xs[0].Conv2d(xs[1], xs[2], torch.ConvOptions{Stride: [2]int64{2, 2}, Padding: [2]int64{1, 1}})
			}},
		{"cross_entropy", []fdInput{randInput(r, 4, 3)},
			func(xs []*torch.Tensor) *torch.Tensor {
				return xs[0].CrossEntropy(xs[0].Scope().FromInt64([]int64{0, 2, 1, 2}, 4).ToDevice(xs[0].Device()))
			}},
		{"normalize", []fdInput{randInput(r, 2, 3)},
			func(xs []*torch.Tensor) *torch.Tensor { return xs[0].Normalize(2, -1, 1e-12) }},
		{"interpolate_bilinear", []fdInput{randInput(r, 1, 1, 2, 3)},
			func(xs []*torch.Tensor) *torch.Tensor { return xs[0].InterpolateBilinear(4, 5, false) }},
		{"embedding", []fdInput{randInput(r, 4, 3)},
			func(xs []*torch.Tensor) *torch.Tensor {
				return torch.Embedding(xs[0], xs[0].Scope().FromInt64([]int64{3, 0, 3}, 3).ToDevice(xs[0].Device()))
			}},
		{"attention_block", []fdInput{randInput(r, 1, 3, 4), randInput(r, 4, 4), randInput(r, 4, 4), randInput(r, 8, 4)},
			func(xs []*torch.Tensor) *torch.Tensor { return attentionBlock(xs[0], xs[1], xs[2], xs[3]) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { gradCheck(t, dev, tc.inputs, tc.f) })
	}
}

// attentionBlock is a pre-norm transformer layer (two heads, causal mask,
// QuickGELU MLP), with wq, wo and w1 as inputs and the other weights fixed.
func attentionBlock(x, wq, wo, w1 *torch.Tensor) *torch.Tensor {
	s := x.Scope()
	dev := x.Device()
	fixed := func(seed uint64, shape ...int64) *torch.Tensor {
		return randInput(rand.New(rand.NewPCG(seed, 0)), shape...).on(s, dev)
	}
	const b, n, d, h = 1, 3, 4, 2
	wk, wv, w2 := fixed(1, d, d), fixed(2, d, d), fixed(3, d, 2*d)
	heads := func(t *torch.Tensor) *torch.Tensor { return t.Reshape(b, n, h, d/h).Transpose(1, 2) }
	y := x.LayerNorm([]int64{d}, nil, nil, 1e-5)
	q, k, v := heads(y.Linear(wq, nil)), heads(y.Linear(wk, nil)), heads(y.Linear(wv, nil))
	mask := s.Ones([]int64{n, n}, torch.Options{DType: torch.Bool, Device: dev}).Tril(0)
	scores := q.Matmul(k.Transpose(-2, -1)).MulScalar(1/math.Sqrt(d/h)).MaskedFill(mask.EqScalar(0), math.Inf(-1))
	attn := scores.Softmax(-1).Matmul(v).Transpose(1, 2).Reshape(b, n, d)
	x = x.Add(attn.Linear(wo, nil))
	m := x.LayerNorm([]int64{d}, nil, nil, 1e-5).Linear(w1, nil).QuickGelu().Linear(w2, nil)
	return x.Add(m)
}

func TestGradientsFusedAttention(t *testing.T) {
	dev := torchtest.Device(t)
	r := rand.New(rand.NewPCG(3, 4))
	in := []fdInput{randInput(r, 1, 2, 3, 4), randInput(r, 1, 2, 3, 4), randInput(r, 1, 2, 3, 4)}
	gradCheck(t, dev, in, func(xs []*torch.Tensor) *torch.Tensor {
		return torch.ScaledDotProductAttention(xs[0], xs[1], xs[2], nil, true)
	})
}

func TestBackwardSeedAndGrad(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	x := e.f32([]float64{1, 2}, 2)
	if err := x.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	if !x.RequiresGrad() {
		t.Fatal("RequiresGrad false after SetRequiresGrad(true)")
	}
	y := x.MulScalar(2)
	if err := y.Backward(e.f32([]float64{1, 3}, 2)); err != nil {
		t.Fatal(err)
	}
	g, err := x.Grad().Float64s()
	if err != nil || !near(g, []float64{2, 6}, 0) {
		t.Errorf("grad with seed = %v, %v; want [2 6]", g, err)
	}
	// Without a seed, a vector output is refused with a clear message.
	if err := x.MulScalar(2).Backward(nil); err == nil {
		t.Error("Backward(nil) of a vector: no error")
	}
	// A tensor that never took part in backward has no gradient.
	z := e.f32([]float64{1}, 1)
	if err := z.Grad().Err(); err == nil {
		t.Error("Grad of a tensor without gradient: no error")
	}
}

// TestResetGradAccumulators: a graph built before the reset and one built
// after accumulate into the same Grad; a tensor that is not a leaf is
// refused.
func TestResetGradAccumulators(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	w := e.f32([]float64{1, -2}, 2)
	if err := w.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	before := w.MulScalar(2).SumAll()
	if err := torch.ResetGradAccumulators([]*torch.Tensor{w}); err != nil {
		t.Fatal(err)
	}
	after := w.MulScalar(3).SumAll()
	for i, y := range []*torch.Tensor{after, before} {
		if err := y.Backward(nil); err != nil {
			t.Fatal(err)
		}
		want := []float64{3, 5}[i]
		if g, err := w.Grad().Float64s(); err != nil || !near(g, []float64{want, want}, 0) {
			t.Errorf("grad after %d backward passes = %v, %v; want %g", i+1, g, err, want)
		}
	}
	if err := torch.ResetGradAccumulators([]*torch.Tensor{w, before}); err == nil || !strings.Contains(err.Error(), "not a leaf") {
		t.Errorf("a tensor that is not a leaf: %v, want an error saying so", err)
	}
}

// The explainer keeps each layer's attention probabilities and reads all of
// their gradients after one backward pass; RetainGrad must give what
// autograd.grad gives.
func TestRetainGradMatchesAutogradGrad(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	if err := torch.ManualSeed(5); err != nil {
		t.Fatal(err)
	}
	o := torch.Options{Device: dev}
	x := s.Randn([]int64{2, 4, 8}, o)
	w1, w2 := s.Randn([]int64{8, 8}, o), s.Randn([]int64{8, 8}, o)
	if err := x.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	layer := func(x, w *torch.Tensor) (*torch.Tensor, *torch.Tensor) {
		p := x.Linear(w, nil).Matmul(x.Transpose(1, 2)).Softmax(-1)
		return p.Matmul(x), p
	}
	h1, p1 := layer(x, w1)
	h2, p2 := layer(h1, w2)
	out := h2.SumAll()
	want, err := torch.Grad([]*torch.Tensor{out}, []*torch.Tensor{p1, p2}, nil, false)
	if err != nil {
		t.Fatal(err)
	}

	h1, p1 = layer(x, w1)
	h2, p2 = layer(h1, w2)
	for _, p := range []*torch.Tensor{p1, p2} {
		if err := p.RetainGrad(); err != nil {
			t.Fatal(err)
		}
	}
	if err := h2.SumAll().Backward(nil); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*torch.Tensor{p1, p2} {
		got, err := p.Grad().Float64s()
		if err != nil {
			t.Fatal(err)
		}
		w, err := want[i].Float64s()
		if err != nil {
			t.Fatal(err)
		}
		if !near(got, w, 1e-5) {
			t.Errorf("layer %d: retained grad differs from autograd.grad", i+1)
		}
	}
}

func TestAutogradGradValues(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	x := e.leaf(t, []float64{1, -2, 3}, 3)
	y := x.Pow(2)
	gs, err := torch.Grad([]*torch.Tensor{y}, []*torch.Tensor{x}, []*torch.Tensor{e.f32([]float64{1, 1, 2}, 3)}, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gs[0].Float64s()
	if err != nil || !near(got, []float64{2, -4, 12}, 1e-6) {
		t.Errorf("grad = %v, %v; want [2 -4 12]", got, err)
	}
	// autograd.grad leaves .grad alone.
	if x.Grad().Err() == nil {
		t.Error("torch.Grad filled x.Grad")
	}
	// An input that does not take part is an error, not a silent zero.
	unused := e.leaf(t, []float64{1}, 1)
	if _, err := torch.Grad([]*torch.Tensor{x.Pow(2).SumAll()}, []*torch.Tensor{unused}, nil, false); err == nil {
		t.Error("gradient for an unused input: no error")
	}
}

func TestNoGrad(t *testing.T) {
	dev := torchtest.Device(t)
	w := torch.NewWorker()
	defer w.Close()
	// Grad mode is per thread: check it on the worker's one thread.
	err := w.Do(func() error {
		s := torch.NewScope()
		defer s.Close()
		x := env{s: s, dev: dev}.f32([]float64{1}, 1)
		if err := x.SetRequiresGrad(true); err != nil {
			return err
		}
		var inside *torch.Tensor
		var enabled bool
		err := torch.NoGrad(func() error {
			inside = x.MulScalar(2)
			var err error
			enabled, err = torch.GradEnabled()
			return err
		})
		if err != nil {
			return err
		}
		if enabled || inside.RequiresGrad() {
			return fmt.Errorf("inside NoGrad: grad enabled %v, result requires grad %v", enabled, inside.RequiresGrad())
		}
		if on, err := torch.GradEnabled(); err != nil || !on {
			return fmt.Errorf("after NoGrad: grad enabled %v (%v)", on, err)
		}
		if !x.MulScalar(2).RequiresGrad() {
			return fmt.Errorf("after NoGrad, results no longer require grad")
		}
		return s.Err()
	})
	if err != nil {
		t.Error(err)
	}
}
