package torch

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	opAdamWNew       = newOp("adamw_new")
	opAdamWFree      = newOp("adamw_free")
	opAdamWStep      = newOp("adamw_step")
	opAdamWZeroGrad  = newOp("adamw_zero_grad")
	opAdamWSetLR     = newOp("adamw_set_lr")
	opAdamWLR        = newOp("adamw_lr")
	opAdamWState     = newOp("adamw_state")
	opAdamWLoadState = newOp("adamw_load_state")
	opClipGradNorm   = newOp("clip_grad_norm")
	opClipGradNormT  = newOp("clip_grad_norm_device")
	opAdamWStepLR    = newOp("adamw_step_lr")
	opStepLRCompiled = newOp("adamw_step_lr_compiled")
)

// TensorLRCompiled reports whether the shim has AdamW.StepLR, the fused
// step with the learning rate in a tensor that a graphed training step
// needs (libtorch 2.4 or later).
func TensorLRCompiled() bool { return flag(opStepLRCompiled) }

// AdamWOptions are the hyper-parameters of AdamW, used as given (a zero Eps
// is a zero eps); DefaultAdamW has torch's defaults.
type AdamWOptions struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	AMSGrad                            bool
	// Impl picks the kernels; the zero value is AdamWAuto.
	Impl AdamWImpl
}

// AdamWImpl is how an AdamW step is computed: the update is the same, the
// number of kernels and the rounding differ.
type AdamWImpl string

const (
	// AdamWAuto is AdamWFused where libtorch has it for the parameters
	// (every parameter on one device, of one dtype; libtorch 2 or later on
	// CUDA, 2.4 or later on the CPU), else AdamWForeach.
	AdamWAuto AdamWImpl = ""
	// AdamWForeach updates every parameter with multi-tensor ops, a few
	// kernels per step on CUDA, line by line as PyTorch's per-tensor update
	// (torch.optim.AdamW with foreach=False, and torch::optim::AdamW)
	// computes it; on the CPU with the same per-tensor kernels, one
	// parameter at a time (the same values, the parameter in cache).
	AdamWForeach AdamWImpl = "foreach"
	// AdamWFused is PyTorch's fused kernel (torch.optim.AdamW(fused=True)):
	// one kernel per step, computing in float32 with its own order, so
	// results differ from AdamWForeach in the last bits. libtorch has it on
	// CUDA from 2.0 and on the CPU from 2.4; NewAdamW refuses it elsewhere.
	AdamWFused AdamWImpl = "fused"
)

// ParseAdamWImpl reads auto, foreach or fused.
func ParseAdamWImpl(s string) (AdamWImpl, error) {
	switch s {
	case "auto", "":
		return AdamWAuto, nil
	case "foreach":
		return AdamWForeach, nil
	case "fused":
		return AdamWFused, nil
	}
	return "", fmt.Errorf("AdamW implementation %q: want auto, foreach or fused", s)
}

func (i AdamWImpl) code() int64 {
	switch i {
	case AdamWForeach:
		return 1
	case AdamWFused:
		return 2
	}
	return 0
}

// DefaultAdamW returns torch.optim.AdamW's defaults: lr 1e-3, betas (0.9,
// 0.999), eps 1e-8, weight decay 1e-2.
func DefaultAdamW() AdamWOptions {
	return AdamWOptions{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}
}

// AdamW is PyTorch's AdamW over a fixed list of parameters (decoupled
// weight decay, bias correction, eps added after the square root), computed
// over the whole list at once (see AdamWImpl).
type AdamW struct {
	h      uintptr
	params []*Tensor
	impl   AdamWImpl
}

// NewAdamW makes an optimizer for params (leaf tensors that require grad).
func NewAdamW(params []*Tensor, o AdamWOptions) (*AdamW, error) {
	if len(params) == 0 {
		return nil, &OpError{Op: "adamw_new", Err: errors.New("no parameters")}
	}
	c := getCall()
	defer putCall(c)
	for i, p := range params {
		if err := p.check("adamw_new"); err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i, err)
		}
		c.in = append(c.in, p.h.ptr)
	}
	c.dbls = append(c.dbls, o.LR, o.Beta1, o.Beta2, o.Eps, o.WeightDecay)
	switch o.Impl {
	case AdamWAuto, AdamWForeach, AdamWFused:
	default:
		return nil, &OpError{Op: "adamw_new", Err: fmt.Errorf("unknown implementation %q", o.Impl)}
	}
	c.ints = append(c.ints, b2i(o.AMSGrad), o.Impl.code())
	c.wantOut(1)
	impl, err := c.exec(opAdamWNew)
	if err != nil {
		return nil, &OpError{Op: "adamw_new", Err: err}
	}
	return &AdamW{h: c.out[0], params: append([]*Tensor{}, params...), impl: AdamWImpl(impl)}, nil
}

// Impl is the implementation the optimizer uses: AdamWForeach or
// AdamWFused, never AdamWAuto.
func (a *AdamW) Impl() AdamWImpl { return a.impl }

// do calls o on the optimizer, then the tensors in, with dbls.
func (a *AdamW) do(o *opcode, in []*Tensor, dbls ...float64) (*call, error) {
	if a == nil || a.h == 0 {
		return nil, &OpError{Op: o.name, Err: errors.New("optimizer is closed")}
	}
	for i, p := range a.params {
		if err := p.check(o.name); err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i, err)
		}
	}
	for _, t := range in {
		if err := t.check(o.name); err != nil {
			return nil, err
		}
	}
	c := getCall()
	c.in = append(c.in, a.h)
	for _, t := range in {
		c.in = append(c.in, t.h.ptr)
	}
	c.dbls = append(c.dbls, dbls...)
	if _, err := c.exec(o); err != nil {
		putCall(c)
		return nil, &OpError{Op: o.name, Err: err}
	}
	return c, nil
}

// Step applies one update from the parameters' gradients (parameters
// without a gradient are skipped, as in torch).
func (a *AdamW) Step() error {
	c, err := a.do(opAdamWStep, nil)
	if err == nil {
		putCall(c)
	}
	return err
}

// StepLR is Step with the learning rate read from lr, a float32 scalar on
// the parameters' device, instead of the one SetLR gave: the step a CUDA
// graph can capture (the learning rate changes between replays by filling
// lr; nothing is read back). It needs the fused implementation, a shim
// against libtorch 2.4 or later (TensorLRCompiled), and the optimizer's
// state made by an ordinary Step first.
func (a *AdamW) StepLR(lr *Tensor) error {
	c, err := a.do(opAdamWStepLR, []*Tensor{lr})
	if err == nil {
		putCall(c)
	}
	return err
}

// ZeroGrad sets every parameter's gradient to none (PyTorch 2's default).
func (a *AdamW) ZeroGrad() error {
	c, err := a.do(opAdamWZeroGrad, nil)
	if err == nil {
		putCall(c)
	}
	return err
}

// SetLR sets the learning rate of the next steps (for a schedule).
func (a *AdamW) SetLR(lr float64) error {
	c, err := a.do(opAdamWSetLR, nil, lr)
	if err == nil {
		putCall(c)
	}
	return err
}

// LR is the current learning rate.
func (a *AdamW) LR() (float64, error) {
	c, err := a.do(opAdamWLR, nil)
	if err != nil {
		return 0, err
	}
	defer putCall(c)
	return c.dout[0], nil
}

// State returns copies of the optimizer's state as tensors of s, keyed
// "step.I" (int64 scalar), "exp_avg.I", "exp_avg_sq.I" and, with AMSGrad,
// "max_exp_avg_sq.I", where I is the parameter's index; parameters that
// never stepped have no entries. LoadState takes the same map back, so
// training resumes exactly.
func (a *AdamW) State(s *Scope) (map[string]*Tensor, error) {
	if err := s.ready(); err != nil {
		return nil, &OpError{Op: "adamw_state", Err: err}
	}
	if a == nil || a.h == 0 {
		return nil, &OpError{Op: "adamw_state", Err: errors.New("optimizer is closed")}
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, a.h)
	c.wantOut(3 * len(a.params))
	c.wantIOut(2 * len(a.params))
	if _, err := c.exec(opAdamWState); err != nil {
		return nil, &OpError{Op: "adamw_state", Err: err}
	}
	out := map[string]*Tensor{}
	k := 0
	names := []string{"exp_avg.", "exp_avg_sq.", "max_exp_avg_sq."}
	for i := range a.params {
		step, n := c.iout[2*i], int(c.iout[2*i+1])
		is := strconv.Itoa(i)
		for j := range n {
			out[names[j]+is] = s.adopt(c.out[k])
			k++
		}
		if step >= 0 {
			out["step."+is] = s.Scalar(float64(step), Options{DType: Int64})
		}
	}
	for _, t := range out {
		if err := t.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LoadState replaces the optimizer's state with st, as State returns it.
// Keys it does not know are an error, so a state of another model is not
// half-loaded.
func (a *AdamW) LoadState(st map[string]*Tensor) error {
	if a == nil || a.h == 0 {
		return &OpError{Op: "adamw_load_state", Err: errors.New("optimizer is closed")}
	}
	n := len(a.params)
	steps := make([]int64, n)
	ins := make([]*Tensor, 3*n)
	for i := range steps {
		steps[i] = -1
	}
	for k, t := range st {
		name, idx, ok := strings.Cut(k, ".")
		i, err := strconv.Atoi(idx)
		if !ok || err != nil || i < 0 || i >= n {
			return &OpError{Op: "adamw_load_state", Err: fmt.Errorf("key %q: want NAME.I with I below %d", k, n)}
		}
		switch name {
		case "step":
			v, err := t.Item()
			if err != nil {
				return fmt.Errorf("adamw_load_state: %s: %w", k, err)
			}
			steps[i] = int64(v)
		case "exp_avg":
			ins[3*i] = t
		case "exp_avg_sq":
			ins[3*i+1] = t
		case "max_exp_avg_sq":
			ins[3*i+2] = t
		default:
			return &OpError{Op: "adamw_load_state", Err: fmt.Errorf("unknown key %q", k)}
		}
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, a.h)
	for i := range n {
		if steps[i] >= 0 && (ins[3*i] == nil || ins[3*i+1] == nil) {
			return &OpError{Op: "adamw_load_state", Err: fmt.Errorf("parameter %d has a step but no exp_avg or exp_avg_sq", i)}
		}
		for _, t := range ins[3*i : 3*i+3] {
			if t == nil {
				c.in = append(c.in, 0)
				continue
			}
			if err := t.check("adamw_load_state"); err != nil {
				return err
			}
			c.in = append(c.in, t.h.ptr)
		}
	}
	c.ints = append(c.ints, steps...)
	if _, err := c.exec(opAdamWLoadState); err != nil {
		return &OpError{Op: "adamw_load_state", Err: err}
	}
	return nil
}

// Close frees the optimizer (not its parameters).
func (a *AdamW) Close() error {
	if a == nil || a.h == 0 {
		return nil
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, a.h)
	a.h = 0
	if _, err := c.exec(opAdamWFree); err != nil {
		return &OpError{Op: "adamw_free", Err: err}
	}
	return nil
}

// ClipGradNorm scales the gradients of params so that their joint 2-norm is
// at most maxNorm, as torch.nn.utils.clip_grad_norm_, and returns the norm
// before clipping.
func ClipGradNorm(params []*Tensor, maxNorm float64) (float64, error) {
	c := getCall()
	defer putCall(c)
	for i, p := range params {
		if err := p.check("clip_grad_norm"); err != nil {
			return 0, fmt.Errorf("parameter %d: %w", i, err)
		}
		c.in = append(c.in, p.h.ptr)
	}
	c.dbls = append(c.dbls, maxNorm)
	if _, err := c.exec(opClipGradNorm); err != nil {
		return 0, &OpError{Op: "clip_grad_norm", Err: err}
	}
	return c.dout[0], nil
}

// ClipGradNormIn is ClipGradNorm with nothing read back to the host: the
// scaling factor is computed and applied on the device, and the norm
// before clipping is returned as a scalar tensor of s, which a CUDA graph
// can capture. maxNorm +Inf only measures.
func ClipGradNormIn(s *Scope, params []*Tensor, maxNorm float64) *Tensor {
	if err := s.ready(); err != nil {
		return dstPoison(nil, params, &OpError{Op: opClipGradNormT.name, Err: err})
	}
	c := getCall()
	for i, p := range params {
		if err := p.check(opClipGradNormT.name); err != nil {
			putCall(c)
			return s.poison(fmt.Errorf("parameter %d: %w", i, err))
		}
		c.in = append(c.in, p.h.ptr)
	}
	c.dbls = append(c.dbls, maxNorm)
	return c.result(opClipGradNormT, s)
}
