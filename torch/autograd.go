package torch

import (
	"errors"
	"fmt"
	"runtime"
)

var (
	opSetRequiresGrad = newOp("set_requires_grad")
	opRetainGrad      = newOp("retain_grad")
	opBackward        = newOp("backward")
	opGrad            = newOp("grad")
	opAutogradGrad    = newOp("autograd_grad")
	opSetGradEnabled  = newOp("set_grad_enabled")
	opIsGradEnabled   = newOp("is_grad_enabled")
	opResetGradAcc    = newOp("reset_grad_accumulators")
)

// SetRequiresGrad makes autograd track (or stop tracking) the leaf t.
func (t *Tensor) SetRequiresGrad(on bool) error {
	return mutate(opSetRequiresGrad, t, nil, []int64{b2i(on)}, nil)
}

// RequiresGrad reports whether autograd tracks t; false when t is poisoned.
func (t *Tensor) RequiresGrad() bool {
	m, err := t.fetchMeta()
	return err == nil && m.requiresGrad
}

// IsLeaf reports whether t is a leaf of the autograd graph (created by the
// user rather than by an op on tracked tensors).
func (t *Tensor) IsLeaf() (bool, error) {
	if err := t.check("is_leaf"); err != nil {
		return false, err
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, t.h.ptr)
	if _, err := c.exec(opIsLeaf); err != nil {
		return false, &OpError{Op: "is_leaf", Err: err}
	}
	return c.iout[0] != 0, nil
}

// RetainGrad keeps the gradient of the non-leaf t after Backward, so Grad
// can read it (the explainer's attention probabilities).
func (t *Tensor) RetainGrad() error { return mutate(opRetainGrad, t, nil, nil, nil) }

// Backward accumulates the gradients of t into the leaves' Grad. seed is
// dL/dt; nil means ones, which needs a one-element t. The graph is freed.
func (t *Tensor) Backward(seed *Tensor) error {
	return mutate(opBackward, t, []*Tensor{seed}, []int64{0}, nil)
}

// BackwardRetainGraph is Backward keeping the graph for another pass.
func (t *Tensor) BackwardRetainGraph(seed *Tensor) error {
	return mutate(opBackward, t, []*Tensor{seed}, []int64{1}, nil)
}

// ResetGradAccumulators makes the next graph built over the leaves ts
// accumulate their gradients through nodes of its own instead of those of
// graphs still alive (an earlier step's loss held somewhere keeps its graph).
// A CUDA graph's capture needs it: libtorch (2.11 at least) runs such a node
// on the stream it was made on, and one of the default stream's breaks the
// capture of a backward on a side stream ("operation would make the legacy
// stream depend on a capturing blocking stream"). Graphs built before keep
// their nodes, and accumulate into the same Grad.
func ResetGradAccumulators(ts []*Tensor) error {
	if len(ts) == 0 {
		return nil
	}
	return mutate(opResetGradAcc, ts[0], ts[1:], nil, nil)
}

// Grad returns t's accumulated gradient; poisoned when t has none.
func (t *Tensor) Grad() *Tensor { return unary(opGrad, t, nil, nil) }

// Grad computes the gradients of outputs with respect to inputs, like
// torch.autograd.grad, without touching any Grad. gradOutputs holds dL/d
// output for each output (nil or a nil entry means ones, for one-element
// outputs). Every input must take part in the outputs. The results belong to
// the scope of the first of outputs and inputs that is not sealed.
func Grad(outputs, inputs, gradOutputs []*Tensor, createGraph bool) ([]*Tensor, error) {
	if len(outputs) == 0 || len(inputs) == 0 {
		return nil, &OpError{Op: "autograd_grad", Err: errors.New("need at least one output and one input")}
	}
	if gradOutputs != nil && len(gradOutputs) != len(outputs) {
		return nil, &OpError{Op: "autograd_grad", Err: fmt.Errorf("%d grad outputs for %d outputs", len(gradOutputs), len(outputs))}
	}
	all := append(append([]*Tensor{}, outputs...), inputs...)
	c, dst, bad := prep(opAutogradGrad, all...)
	if bad != nil {
		return nil, bad.err
	}
	for _, g := range gradOutputs {
		if bad := c.optional(opAutogradGrad, dst, g); bad != nil {
			return nil, bad.err
		}
	}
	c.ints = append(c.ints, int64(len(outputs)), int64(len(inputs)), b2i(createGraph))
	return c.results(opAutogradGrad, dst, len(inputs))
}

// GradEnabled reports whether autograd records ops on this OS thread.
func GradEnabled() (bool, error) {
	var on int64
	err := callInts(opIsGradEnabled, nil, &on)
	return on != 0, err
}

// NoGrad runs f with autograd recording off, as torch.no_grad. Grad mode
// belongs to the OS thread in libtorch, so NoGrad locks the goroutine to its
// thread while f runs (a Worker's goroutine is locked already); f must make
// its torch calls from the calling goroutine.
func NoGrad(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var prev int64
	if err := callInts(opSetGradEnabled, []int64{0}, &prev); err != nil {
		return err
	}
	defer callInts(opSetGradEnabled, []int64{prev})
	return f()
}
