package torch_test

import (
	"math"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// setGrad gives p the gradient g by back-propagating sum(p·g).
func setGrad(t *testing.T, e env, p *torch.Tensor, g []float64) {
	t.Helper()
	if err := p.Mul(e.f32(g, p.Shape()...)).SumAll().Backward(nil); err != nil {
		t.Fatal(err)
	}
}

func TestAdamWStepClosedForm(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	p0 := []float64{1, -2, 0.5, 3}
	g := []float64{0.1, -0.3, 2, 0}
	o := torch.AdamWOptions{LR: 0.01, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2}
	p := e.leaf(t, p0, 4)
	opt, err := torch.NewAdamW([]*torch.Tensor{p}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	setGrad(t, e, p, g)
	if err := opt.Step(); err != nil {
		t.Fatal(err)
	}
	got, err := p.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	// After one step the bias-corrected moments are g and g², so the update
	// is p(1 - lr·wd) - lr·g/(|g| + eps).
	want := make([]float64, len(p0))
	for i := range p0 {
		m := (1 - o.Beta1) * g[i] / (1 - o.Beta1)
		v := (1 - o.Beta2) * g[i] * g[i] / (1 - o.Beta2)
		want[i] = p0[i]*(1-o.LR*o.WeightDecay) - o.LR*m/(math.Sqrt(v)+o.Eps)
	}
	if !near(got, want, 1e-6) {
		t.Errorf("after one step %v, want %v", got, want)
	}

	// A new learning rate applies to the next step; check it through the
	// second step's closed form.
	if err := opt.SetLR(0.1); err != nil {
		t.Fatal(err)
	}
	if lr, err := opt.LR(); err != nil || lr != 0.1 {
		t.Fatalf("LR = %v, %v", lr, err)
	}
	if err := opt.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	if p.Grad().Err() == nil {
		t.Error("ZeroGrad left a gradient (want none)")
	}
	setGrad(t, e, p, g)
	if err := opt.Step(); err != nil {
		t.Fatal(err)
	}
	got2, err := p.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		m := (1-o.Beta1)*g[i]*o.Beta1 + (1-o.Beta1)*g[i]
		v := (1-o.Beta2)*g[i]*g[i]*o.Beta2 + (1-o.Beta2)*g[i]*g[i]
		mh := m / (1 - o.Beta1*o.Beta1)
		vh := v / (1 - o.Beta2*o.Beta2)
		want[i] = want[i]*(1-0.1*o.WeightDecay) - 0.1*mh/(math.Sqrt(vh)+o.Eps)
	}
	if !near(got2, want, 1e-5) {
		t.Errorf("after the second step %v, want %v", got2, want)
	}
}

func TestAdamWStateResumesExactly(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	o := torch.DefaultAdamW()
	o.AMSGrad = true
	newParams := func() []*torch.Tensor {
		return []*torch.Tensor{e.leaf(t, []float64{1, 2, 3}, 3), e.leaf(t, []float64{-1, 0.5}, 2)}
	}
	step := func(opt *torch.AdamW, ps []*torch.Tensor) {
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		// A loss whose gradient depends on the parameters: sum(p³).
		loss := ps[0].Pow(3).SumAll().Add(ps[1].Pow(3).SumAll())
		if err := loss.Backward(nil); err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(); err != nil {
			t.Fatal(err)
		}
	}
	// Three steps straight through.
	a := newParams()
	optA, err := torch.NewAdamW(a, o)
	if err != nil {
		t.Fatal(err)
	}
	defer optA.Close()
	for range 3 {
		step(optA, a)
	}
	// One step, save, a new optimizer loads the state, two more steps.
	b := newParams()
	optB, err := torch.NewAdamW(b, o)
	if err != nil {
		t.Fatal(err)
	}
	step(optB, b)
	st, err := optB.State(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 8 {
		t.Errorf("state has %d entries, want 8 (step, exp_avg, exp_avg_sq, max_exp_avg_sq for 2 params)", len(st))
	}
	if v, err := st["step.1"].Item(); err != nil || v != 1 {
		t.Errorf("step.1 = %v, %v", v, err)
	}
	optB.Close()
	optC, err := torch.NewAdamW(b, o)
	if err != nil {
		t.Fatal(err)
	}
	defer optC.Close()
	if err := optC.LoadState(st); err != nil {
		t.Fatal(err)
	}
	step(optC, b)
	step(optC, b)
	for i := range a {
		va, _ := a[i].Float64s()
		vb, err := b[i].Float64s()
		if err != nil {
			t.Fatal(err)
		}
		// Exact: the same ops on the same values in one process.
		if !near(va, vb, 0) {
			t.Errorf("param %d: straight %v, resumed %v", i, va, vb)
		}
	}
	if err := optC.LoadState(map[string]*torch.Tensor{"exp_avg.9": st["exp_avg.0"]}); err == nil {
		t.Error("LoadState with a parameter index out of range: no error")
	}
	if err := optC.LoadState(map[string]*torch.Tensor{"momentum.0": st["exp_avg.0"]}); err == nil {
		t.Error("LoadState with an unknown key: no error")
	}
	if err := optA.Close(); err != nil {
		t.Fatal(err)
	}
	if err := optA.Step(); err == nil {
		t.Error("Step after Close: no error")
	}
}

// gradsNorm5 returns two parameters whose gradients, [3 0] and [4], have
// the joint norm 5.
func gradsNorm5(t *testing.T, e env) (p, q *torch.Tensor) {
	t.Helper()
	p, q = e.leaf(t, []float64{0, 0}, 2), e.leaf(t, []float64{0}, 1)
	setGrad(t, e, p, []float64{3, 0})
	setGrad(t, e, q, []float64{4})
	return p, q
}

func TestClipGradNorm(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	p, q := gradsNorm5(t, e)
	norm, err := torch.ClipGradNorm([]*torch.Tensor{p, q}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(norm-5) > 1e-6 {
		t.Errorf("norm %v, want 5", norm)
	}
	gp, _ := p.Grad().Float64s()
	gq, _ := q.Grad().Float64s()
	if !near(append(gp, gq...), []float64{0.6, 0, 0.8}, 1e-5) {
		t.Errorf("clipped grads %v %v, want [0.6 0] [0.8]", gp, gq)
	}
	// Below the limit nothing changes.
	if _, err := torch.ClipGradNorm([]*torch.Tensor{p, q}, 10); err != nil {
		t.Fatal(err)
	}
	gp2, _ := p.Grad().Float64s()
	if !near(gp2, gp, 1e-6) {
		t.Errorf("grads changed below the limit: %v → %v", gp, gp2)
	}
}

// adamwRef is AdamW in float64, one parameter at a time, as
// torch.optim.AdamW computes it: the reference for the multi-tensor update.
type adamwRef struct {
	o             torch.AdamWOptions
	step          []int
	m, v, vmax, p [][]float64
}

func (r *adamwRef) update(i int, g []float64) {
	o := r.o
	r.step[i]++
	if r.m[i] == nil {
		r.m[i] = make([]float64, len(g))
		r.v[i] = make([]float64, len(g))
		r.vmax[i] = make([]float64, len(g))
	}
	bc1 := 1 - math.Pow(o.Beta1, float64(r.step[i]))
	bc2 := 1 - math.Pow(o.Beta2, float64(r.step[i]))
	for k := range g {
		r.p[i][k] *= 1 - o.LR*o.WeightDecay
		r.m[i][k] = o.Beta1*r.m[i][k] + (1-o.Beta1)*g[k]
		r.v[i][k] = o.Beta2*r.v[i][k] + (1-o.Beta2)*g[k]*g[k]
		v := r.v[i][k]
		if o.AMSGrad {
			r.vmax[i][k] = math.Max(r.vmax[i][k], v)
			v = r.vmax[i][k]
		}
		r.p[i][k] -= o.LR / bc1 * r.m[i][k] / (math.Sqrt(v)/math.Sqrt(bc2) + o.Eps)
	}
}

// TestAdamWManyParams runs the multi-tensor update over parameters of
// several shapes for several steps, one of them skipping a step (no
// gradient), against the float64 reference.
func TestAdamWManyParams(t *testing.T) {
	dev := torchtest.Device(t)
	for _, ams := range []bool{false, true} {
		t.Run(map[bool]string{false: "adam", true: "amsgrad"}[ams], func(t *testing.T) {
			s := torchtest.Scope(t)
			e := env{s: s, dev: dev}
			o := torch.AdamWOptions{LR: 0.05, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2, AMSGrad: ams, Impl: torch.AdamWForeach}
			init := [][]float64{{1, -2, 0.5}, {0.3, 0.1, -0.7, 2}, {4}}
			shapes := [][]int64{{3}, {2, 2}, {1}}
			ref := &adamwRef{o: o, step: make([]int, 3), m: make([][]float64, 3), v: make([][]float64, 3), vmax: make([][]float64, 3)}
			var ps []*torch.Tensor
			for i, v := range init {
				p := e.leaf(t, v, shapes[i]...)
				ps = append(ps, p)
				ref.p = append(ref.p, append([]float64(nil), v...))
			}
			opt, err := torch.NewAdamW(ps, o)
			if err != nil {
				t.Fatal(err)
			}
			defer opt.Close()
			if opt.Impl() != torch.AdamWForeach {
				t.Errorf("Impl() = %q, want foreach", opt.Impl())
			}
			for step := range 4 {
				if err := opt.ZeroGrad(); err != nil {
					t.Fatal(err)
				}
				for i, p := range ps {
					if i == 2 && step == 1 {
						continue // no gradient: the parameter skips this step
					}
					g := make([]float64, len(init[i]))
					for k := range g {
						g[k] = math.Sin(float64(1+step*7+i*3+k)) * float64(i+1)
					}
					setGrad(t, e, p, g)
					ref.update(i, g)
				}
				if err := opt.Step(); err != nil {
					t.Fatal(err)
				}
			}
			for i, p := range ps {
				got, err := p.Float64s()
				if err != nil {
					t.Fatal(err)
				}
				if !near(got, ref.p[i], 2e-6) {
					t.Errorf("param %d after 4 steps: %v, want %v", i, got, ref.p[i])
				}
			}
			st, err := opt.State(s)
			if err != nil {
				t.Fatal(err)
			}
			if v, err := st["step.2"].Item(); err != nil || v != 3 {
				t.Errorf("step.2 = %v, %v; want 3 (it skipped one of 4 steps)", v, err)
			}
		})
	}
}

// fusedAvailable reports whether libtorch has the fused AdamW on dev: on
// CUDA from 2.0, on the CPU from 2.4.
func fusedAvailable(t *testing.T, dev torch.Device) bool {
	if dev.IsCUDA() {
		return torchtest.AtLeast(t, 2, 0)
	}
	return torchtest.AtLeast(t, 2, 4)
}

// TestAdamWImpl checks which implementation each choice gets on this
// device (auto: fused wherever libtorch has it), and where libtorch has the fused
// kernel that it agrees with the multi-tensor update.
func TestAdamWImpl(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	fusable := fusedAvailable(t, dev)
	newParams := func() []*torch.Tensor {
		return []*torch.Tensor{e.leaf(t, []float64{1, -2, 0.5, 3}, 2, 2), e.leaf(t, []float64{0.25}, 1)}
	}
	o := torch.DefaultAdamW()
	auto, err := torch.NewAdamW(newParams(), o)
	if err != nil {
		t.Fatal(err)
	}
	want := torch.AdamWForeach
	if fusable {
		want = torch.AdamWFused
	}
	if auto.Impl() != want {
		t.Errorf("auto on %s with libtorch %s: %q, want %q", dev, torch.Version(), auto.Impl(), want)
	}
	auto.Close()
	if got, err := torch.AutoAdamWImpl(dev); err != nil || got != want {
		t.Errorf("AutoAdamWImpl(%s) with libtorch %s: %q, %v; want %q", dev, torch.Version(), got, err, want)
	}
	o.Impl = torch.AdamWFused
	fused, err := torch.NewAdamW(newParams(), o)
	if !fusable {
		if err == nil || !strings.Contains(err.Error(), "CUDA") {
			t.Errorf("fused on %s with libtorch %s: err %v, want a refusal naming CUDA", dev, torch.Version(), err)
		}
		if fused != nil {
			fused.Close()
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer fused.Close()
	o.Impl = torch.AdamWForeach
	a, b := newParams(), newParams()
	foreach, err := torch.NewAdamW(a, o)
	if err != nil {
		t.Fatal(err)
	}
	defer foreach.Close()
	fused.Close()
	o.Impl = torch.AdamWFused
	if fused, err = torch.NewAdamW(b, o); err != nil {
		t.Fatal(err)
	}
	for step := range 5 {
		for k, ps := range [][]*torch.Tensor{a, b} {
			opt := []*torch.AdamW{foreach, fused}[k]
			if err := opt.ZeroGrad(); err != nil {
				t.Fatal(err)
			}
			setGrad(t, e, ps[0], []float64{0.1 * float64(step+1), -0.3, 2, 0.01})
			setGrad(t, e, ps[1], []float64{-1})
			if err := opt.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range a {
		va, _ := a[i].Float64s()
		vb, err := b[i].Float64s()
		if err != nil {
			t.Fatal(err)
		}
		if !near(va, vb, 1e-6) {
			t.Errorf("param %d after 5 steps: foreach %v, fused %v", i, va, vb)
		}
	}
}

func TestParseAdamWImpl(t *testing.T) {
	for in, want := range map[string]torch.AdamWImpl{"": torch.AdamWAuto, "auto": torch.AdamWAuto, "foreach": torch.AdamWForeach, "fused": torch.AdamWFused} {
		if got, err := torch.ParseAdamWImpl(in); err != nil || got != want {
			t.Errorf("ParseAdamWImpl(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := torch.ParseAdamWImpl("sgd"); err == nil {
		t.Error("ParseAdamWImpl(sgd): no error")
	}
}

// TestClipGradNormIn clips on the device as ClipGradNorm does on the host.
func TestClipGradNormIn(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	for _, maxNorm := range []float64{1, 10, math.Inf(1)} {
		p, q := gradsNorm5(t, e)
		norm, err := torch.ClipGradNormIn(s, []*torch.Tensor{p, q}, maxNorm).Item()
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(norm-5) > 1e-6 {
			t.Errorf("max %g: norm %v, want 5", maxNorm, norm)
		}
		scale := min(1, maxNorm/(5+1e-6))
		gp, _ := p.Grad().Float64s()
		gq, _ := q.Grad().Float64s()
		if !near(append(gp, gq...), []float64{3 * scale, 0, 4 * scale}, 1e-5) {
			t.Errorf("max %g: clipped grads %v %v, want ×%g", maxNorm, gp, gq, scale)
		}
	}
	if err := torch.ClipGradNormIn(s, nil, 1).Err(); err == nil {
		t.Error("no parameters: no error")
	}
}

// TestAdamWStepLR: where the shim has it (the fused AdamW of libtorch ≥
// 2.4), a step with the learning rate in a tensor equals an ordinary step
// at that rate; elsewhere it says what it needs.
func TestAdamWStepLR(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	o := torch.DefaultAdamW()
	if fusedAvailable(t, dev) {
		o.Impl = torch.AdamWFused
	}
	newParam := func() *torch.Tensor { return e.leaf(t, []float64{1, -2, 0.5}, 3) }
	a, b := newParam(), newParam()
	optA, err := torch.NewAdamW([]*torch.Tensor{a}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer optA.Close()
	optB, err := torch.NewAdamW([]*torch.Tensor{b}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer optB.Close()
	lr := s.Full([]int64{}, 0.05, torch.Options{Device: dev})
	for step := range 3 {
		for k, p := range []*torch.Tensor{a, b} {
			opt := []*torch.AdamW{optA, optB}[k]
			if err := opt.ZeroGrad(); err != nil {
				t.Fatal(err)
			}
			setGrad(t, e, p, []float64{0.1, float64(step) - 1, 2})
		}
		if err := optA.SetLR(0.05); err != nil {
			t.Fatal(err)
		}
		if err := optA.Step(); err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			// The state comes from an ordinary step.
			if err := optB.SetLR(0.05); err != nil {
				t.Fatal(err)
			}
			if err := optB.Step(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		err := optB.StepLR(lr)
		if optB.Impl() != torch.AdamWFused || !torch.TensorLRCompiled() {
			if err == nil {
				t.Fatalf("StepLR with %s AdamW on %s (libtorch %s): no error", optB.Impl(), dev, torch.Version())
			}
			t.Logf("StepLR here: %v", err)
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	va, _ := a.Float64s()
	vb, err := b.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	if !near(va, vb, 1e-6) {
		t.Errorf("after 3 steps: Step %v, StepLR %v", va, vb)
	}
	st, err := optB.State(s)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := st["step.0"].Item(); err != nil || v != 3 {
		t.Errorf("step count after StepLR steps: %v, %v; want 3", v, err)
	}
}

// TestAdamWLoadStateShape: a state of the wrong shape fails inside the
// shim with a message naming the parameter, and leaves the optimizer
// usable (its handle is not taken for a tensor).
func TestAdamWLoadStateShape(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	p := e.leaf(t, []float64{1, 2}, 2)
	opt, err := torch.NewAdamW([]*torch.Tensor{p}, torch.DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	bad := map[string]*torch.Tensor{
		"step.0": s.Scalar(1, torch.Options{DType: torch.Int64}), "exp_avg.0": e.f32([]float64{0, 0, 0}, 3), "exp_avg_sq.0": e.f32([]float64{0, 0}, 2),
	}
	err = opt.LoadState(bad)
	if err == nil || !strings.Contains(err.Error(), "state of parameter 0 is f32[3]") {
		t.Fatalf("LoadState with a state of the wrong shape: %v", err)
	}
	setGrad(t, e, p, []float64{1, 1})
	if err := opt.Step(); err != nil {
		t.Errorf("Step after the refused state: %v", err)
	}
}
