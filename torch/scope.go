package torch

import (
	"errors"
	"fmt"
)

// Scope owns tensors: every tensor created in it is freed by Close. A model's
// parameters live in a long-lived scope, usually sealed after loading; each
// forward pass or training step uses a short-lived one.
//
// A Scope is not safe for concurrent use; all torch calls of one model run on
// one Worker anyway.
type Scope struct {
	handles []*handle
	dead    int // freed handles still in handles
	err     error
	sealed  bool
	closed  bool
}

// handle is one tensor in the shim; ptr is 0 once freed.
type handle struct {
	ptr   uintptr
	owner *Scope
	meta  *meta // cached by Tensor.meta
}

// Tensor is a tensor of the shim together with the scope that receives the
// results of ops on it. A Tensor whose op failed is poisoned: it carries the
// error and every op on it returns it again (see the package doc).
type Tensor struct {
	h     *handle
	scope *Scope
	err   error
}

// ErrFreed is wrapped by the error of an op given a tensor that was freed.
var ErrFreed = errors.New("tensor was freed (its scope was closed, or Free was called)")

// ErrSealed is wrapped by the error of an op whose result would belong to a
// sealed scope.
var ErrSealed = errors.New("result would belong to a sealed scope (bind the parameter to a scope with In)")

// ErrClosedScope is wrapped by the error of an op whose result would belong
// to a closed scope.
var ErrClosedScope = errors.New("result would belong to a closed scope")

// OpError is the error of a failed op: the op's name and what went wrong,
// which for errors from libtorch starts with the operands' dtypes, shapes and
// devices ("f32[2,3] cpu, f32[4,5] cpu: mat1 and mat2 shapes cannot be
// multiplied (2x3 and 4x5)").
type OpError struct {
	Op  string
	Err error
}

func (e *OpError) Error() string { return "torch: " + e.Op + ": " + e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// Seal forbids new tensors in s: an op whose operands all belong to sealed
// scopes fails instead of leaking its result into the parameters. In-place
// ops (Copy_, Normal_, ...) and autograd on s's tensors still work.
func (s *Scope) Seal() { s.sealed = true }

// Sealed reports whether Seal was called.
func (s *Scope) Sealed() bool { return s.sealed }

// Err is the first error of an op whose result belongs to s.
func (s *Scope) Err() error { return s.err }

// Len is the number of live tensors s owns.
func (s *Scope) Len() int { return len(s.handles) - s.dead }

// Close frees every tensor of s and returns s.Err(). Tensors of s used
// afterwards give ErrFreed; Close twice is a no-op.
func (s *Scope) Close() error {
	if s.closed {
		return s.err
	}
	s.closed = true
	for _, h := range s.handles {
		if h.ptr != 0 {
			freeHandle(h.ptr)
			h.ptr = 0
		}
		h.owner = nil
	}
	s.handles = nil
	s.dead = 0
	return s.err
}

func (s *Scope) fail(err error) {
	if s != nil && s.err == nil {
		s.err = err
	}
}

// adopt makes a new tensor of s from a handle the shim returned.
func (s *Scope) adopt(ptr uintptr) *Tensor {
	t := &struct {
		t Tensor
		h handle
	}{}
	t.h = handle{ptr: ptr, owner: s}
	t.t = Tensor{h: &t.h, scope: s}
	s.handles = append(s.handles, &t.h)
	return &t.t
}

// poison returns a failed tensor of s carrying err, and records err in s.
func (s *Scope) poison(err error) *Tensor {
	s.fail(err)
	return &Tensor{scope: s, err: err}
}

// ready checks that s can own a new tensor.
func (s *Scope) ready() error {
	switch {
	case s == nil:
		return errors.New("nil scope")
	case s.closed:
		return ErrClosedScope
	case s.sealed:
		return ErrSealed
	}
	return nil
}

func (s *Scope) release(h *handle) {
	for i := len(s.handles) - 1; i >= 0; i-- {
		if s.handles[i] == h {
			s.handles = append(s.handles[:i], s.handles[i+1:]...)
			return
		}
	}
}

// Free frees t now rather than when its scope closes. Aliases made with In
// are freed too. Freeing a freed or poisoned tensor does nothing.
func (t *Tensor) Free() {
	if t == nil || t.h == nil || t.h.ptr == 0 {
		return
	}
	freeHandle(t.h.ptr)
	t.h.ptr = 0
	if s := t.h.owner; s != nil {
		s.dead++
		if s.dead > 32 && s.dead > len(s.handles)/2 {
			live := s.handles[:0]
			for _, h := range s.handles {
				if h.ptr != 0 {
					live = append(live, h)
				}
			}
			clear(s.handles[len(live):])
			s.handles = live
			s.dead = 0
		}
	}
}

// In returns t with results of ops on it going to s: the way to compute with
// a parameter of a sealed scope. The tensor itself stays owned by its scope.
func (t *Tensor) In(s *Scope) *Tensor {
	if t == nil {
		return s.poison(&OpError{Op: "in", Err: errors.New("nil tensor")})
	}
	return &Tensor{h: t.h, scope: s, err: t.err}
}

// MoveTo hands ownership of t to s: t is then freed when s closes, not
// when its old scope does. Use it to keep a result of an inner scope.
func (t *Tensor) MoveTo(s *Scope) error {
	if err := t.check("move"); err != nil {
		return err
	}
	if s.closed {
		return &OpError{Op: "move", Err: ErrClosedScope}
	}
	if old := t.h.owner; old != nil {
		old.release(t.h)
	}
	t.h.owner = s
	t.scope = s
	s.handles = append(s.handles, t.h)
	return nil
}

// Err is the error that poisoned t, ErrFreed wrapped when t was freed, or nil.
func (t *Tensor) Err() error {
	if t == nil {
		return errors.New("torch: nil tensor")
	}
	if t.err != nil {
		return t.err
	}
	if t.h == nil || t.h.ptr == 0 {
		return &OpError{Op: "use", Err: ErrFreed}
	}
	return nil
}

// Scope is the scope that receives results of ops on t.
func (t *Tensor) Scope() *Scope { return t.scope }

// check returns the error that stops op from using t.
func (t *Tensor) check(op string) error {
	if t == nil {
		return &OpError{Op: op, Err: errors.New("nil tensor")}
	}
	if t.err != nil {
		return t.err
	}
	if t.h == nil || t.h.ptr == 0 {
		return &OpError{Op: op, Err: ErrFreed}
	}
	return nil
}

// prep starts op on operands (all required). It picks the scope of the
// result (the first operand's scope that is not sealed) and returns either a
// call ready for more arguments, or the poisoned result.
func prep(o *opcode, operands ...*Tensor) (*call, *Scope, *Tensor) {
	var dst *Scope
	for _, t := range operands {
		if t != nil && t.scope != nil && !t.scope.sealed {
			dst = t.scope
			break
		}
	}
	for i, t := range operands {
		if t == nil {
			return nil, nil, dstPoison(dst, operands, &OpError{Op: o.name, Err: fmt.Errorf("operand %d is nil", i+1)})
		}
		if t.err != nil {
			return nil, nil, dstPoison(dst, operands, t.err)
		}
		if t.h == nil || t.h.ptr == 0 {
			return nil, nil, dstPoison(dst, operands, &OpError{Op: o.name, Err: fmt.Errorf("operand %d: %w", i+1, ErrFreed)})
		}
	}
	if dst == nil {
		return nil, nil, dstPoison(nil, operands, &OpError{Op: o.name, Err: ErrSealed})
	}
	if dst.closed {
		return nil, nil, dstPoison(nil, operands, &OpError{Op: o.name, Err: ErrClosedScope})
	}
	c := getCall()
	for _, t := range operands {
		c.in = append(c.in, t.h.ptr)
	}
	return c, dst, nil
}

// dstPoison makes the poisoned result of an op that could not run. Without a
// usable destination scope the error still rides on the tensor, and is also
// recorded in the operands' scopes so that Err and Close report it.
func dstPoison(dst *Scope, operands []*Tensor, err error) *Tensor {
	if dst != nil && !dst.closed {
		return dst.poison(err)
	}
	for _, t := range operands {
		if t != nil && t.scope != nil {
			t.scope.fail(err)
		}
	}
	return &Tensor{err: err}
}

// optional appends an operand that may be nil (a bias).
func (c *call) optional(o *opcode, dst *Scope, t *Tensor) *Tensor {
	if t == nil {
		c.in = append(c.in, 0)
		return nil
	}
	if err := t.check(o.name); err != nil {
		putCall(c)
		return dst.poison(err)
	}
	c.in = append(c.in, t.h.ptr)
	return nil
}

// result runs the op and returns its one tensor result, owned by dst.
func (c *call) result(o *opcode, dst *Scope) *Tensor {
	c.wantOut(1)
	_, err := c.exec(o)
	if err != nil {
		putCall(c)
		return dst.poison(&OpError{Op: o.name, Err: err})
	}
	if c.f.nout != 1 {
		for _, p := range c.out[:c.f.nout] {
			freeHandle(p)
		}
		putCall(c)
		return dst.poison(&OpError{Op: o.name, Err: fmt.Errorf("shim returned %d tensors, want 1", c.f.nout)})
	}
	t := dst.adopt(c.out[0])
	putCall(c)
	return t
}

// results runs the op and returns its tensor results, owned by dst.
func (c *call) results(o *opcode, dst *Scope, max int) ([]*Tensor, error) {
	c.wantOut(max)
	_, err := c.exec(o)
	if err != nil {
		putCall(c)
		err = &OpError{Op: o.name, Err: err}
		dst.fail(err)
		return nil, err
	}
	ts := make([]*Tensor, c.f.nout)
	for i := range ts {
		ts[i] = dst.adopt(c.out[i])
	}
	putCall(c)
	return ts, nil
}

// unary runs a one-operand op with integer and float arguments.
func unary(o *opcode, t *Tensor, ints []int64, dbls []float64) *Tensor {
	c, dst, bad := prep(o, t)
	if bad != nil {
		return bad
	}
	c.ints = append(c.ints, ints...)
	c.dbls = append(c.dbls, dbls...)
	return c.result(o, dst)
}

// binary runs a two-operand op with integer and float arguments.
func binary(o *opcode, t, u *Tensor, ints []int64, dbls []float64) *Tensor {
	c, dst, bad := prep(o, t, u)
	if bad != nil {
		return bad
	}
	c.ints = append(c.ints, ints...)
	c.dbls = append(c.dbls, dbls...)
	return c.result(o, dst)
}

// mutate runs an in-place or autograd op on t and its extra operands. Its
// error goes to the caller only: it is not sticky.
func mutate(o *opcode, t *Tensor, extra []*Tensor, ints []int64, dbls []float64) error {
	if err := t.check(o.name); err != nil {
		return err
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, t.h.ptr)
	for _, u := range extra {
		if u == nil {
			c.in = append(c.in, 0)
			continue
		}
		if err := u.check(o.name); err != nil {
			return err
		}
		c.in = append(c.in, u.h.ptr)
	}
	c.ints = append(c.ints, ints...)
	c.dbls = append(c.dbls, dbls...)
	c.wantOut(1)
	if _, err := c.exec(o); err != nil {
		return &OpError{Op: o.name, Err: err}
	}
	return nil
}
