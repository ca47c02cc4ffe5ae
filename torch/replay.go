package torch

import (
	"errors"
	"fmt"
	"runtime"
)

var (
	opGraphsCompiled    = newOp("cuda_graphs_compiled")
	opGraphNew          = newOp("cuda_graph_new")
	opGraphStream       = newOp("cuda_graph_stream")
	opGraphCaptureBegin = newOp("cuda_graph_capture_begin")
	opGraphCaptureEnd   = newOp("cuda_graph_capture_end")
	opGraphReplay       = newOp("cuda_graph_replay")
	opGraphFree         = newOp("cuda_graph_free")
)

// CUDAGraphsCompiled reports whether the shim can capture CUDA graphs: it
// was built against a CUDA libtorch 2 or later with the CUDA headers.
func CUDAGraphsCompiled() bool { return flag(opGraphsCompiled) }

// CUDAGraphsUsable says why work on dev cannot be captured in a CUDA graph
// (dev is not a GPU, or the shim has no graphs), or nil when it can.
func CUDAGraphsUsable(dev Device) error {
	switch {
	case !dev.IsCUDA():
		return fmt.Errorf("CUDA graphs need a CUDA device, not %s", dev)
	case !CUDAGraphsCompiled():
		return fmt.Errorf("CUDA graphs are off in this shim: rebuild it (`make torch`) against a CUDA libtorch 2 or later with its CUDA headers (this is libtorch %s)", Version())
	}
	return nil
}

// Replay is a piece of work of fixed shapes that runs again and again on
// new inputs: f reads tensors the caller owns (the static inputs, refilled
// with Copy_ before each Run) and returns its results, which Run copies into
// tensors of the same shapes that stay put (Outputs). While f runs, reading
// a value back (Item, Float32s, …), making a tensor from host data and
// CUDASynchronize fail on f's thread, on every device: so a test on the CPU
// proves f capturable at the binding's level.
//
// With a CUDA graph the work is captured once and each Run replays it with
// one launch: the host no longer pays for each of its hundreds of kernels.
// Capture rules apply to f: no value read back to the host, no tensor made
// from host data, no new shapes; everything else, autograd included, is
// captured as it runs. Without a graph, Run simply calls f again: the same
// results, the same code around it, on any device.
type Replay struct {
	f       func(s *Scope) ([]*Tensor, error)
	dev     Device
	h       uintptr // the graph; 0 when Run calls f
	inputs  *Scope
	outputs *Scope
	outs    []*Tensor
}

// NewReplay runs f once (the warm-up: it also gives the outputs' shapes)
// and, with graph on a CUDA device, captures it in a CUDA graph. graph on
// another device, or with a shim without CUDA graphs, is an error that says
// so. A capture that fails (f broke a capture rule) is an error too; the
// caller may then use a Replay without a graph.
//
// inputs, when not nil, is the scope of the static inputs f reads: the
// Replay owns it from this call on and frees it in Close, or here when
// NewReplay fails.
func NewReplay(dev Device, graph bool, inputs *Scope, f func(s *Scope) ([]*Tensor, error)) (*Replay, error) {
	// The side stream is current for one OS thread only: a goroutine moved
	// to another thread between capture_begin and f would launch f's
	// kernels on the default stream, which breaks the capture.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := &Replay{f: f, dev: dev, inputs: inputs, outputs: NewScope()}
	if graph {
		if err := CUDAGraphsUsable(dev); err != nil {
			return nil, errors.Join(fmt.Errorf("torch: %w", err), r.Close())
		}
		c := getCall()
		c.ints = append(c.ints, int64(dev.Index))
		c.wantOut(1)
		_, err := c.exec(opGraphNew)
		h := c.out[0]
		putCall(c)
		if err != nil {
			return nil, errors.Join(&OpError{Op: opGraphNew.name, Err: err}, r.Close())
		}
		r.h = h
		// Warm-up on the stream the capture will use: libraries (cuBLAS)
		// set up their workspaces per stream, and that must not happen
		// during capture.
		if err := r.graphOp(opGraphStream, 1); err != nil {
			return nil, errors.Join(err, r.Close())
		}
	}
	if err := r.warm(); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	if r.h == 0 {
		return r, nil
	}
	if err := r.graphOp(opGraphStream, 0); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	if err := r.capture(); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	return r, nil
}

// work runs f in s with host access refused (see guarded).
func (r *Replay) work(s *Scope) (res []*Tensor, err error) {
	err = guarded(func() error {
		res, err = r.f(s)
		return err
	})
	return res, err
}

// warm runs f once and makes the outputs from its results.
func (r *Replay) warm() error {
	s := NewScope()
	defer s.Close()
	res, err := r.work(s)
	if err != nil {
		return err
	}
	r.outs = make([]*Tensor, len(res))
	for i, t := range res {
		if err := t.Err(); err != nil {
			return fmt.Errorf("result %d: %w", i, err)
		}
		r.outs[i] = t.In(r.outputs).Clone()
	}
	return r.outputs.Err()
}

// capture records f, and the copies of its results into the outputs, in
// the graph. The tensors f makes are freed after: their memory stays with
// the graph, which reuses it on each replay.
func (r *Replay) capture() error {
	if err := r.graphOp(opGraphCaptureBegin); err != nil {
		return err
	}
	s := NewScope()
	err := r.fill(s)
	// The capture ends whatever f did, so the stream is usable again.
	if endErr := r.graphOp(opGraphCaptureEnd); endErr != nil {
		err = errors.Join(err, endErr)
	}
	return errors.Join(err, s.Close())
}

// fill runs f in s and copies its results into the outputs.
func (r *Replay) fill(s *Scope) error {
	res, err := r.work(s)
	if err != nil {
		return err
	}
	if len(res) != len(r.outs) {
		return fmt.Errorf("torch: replay: %d results, the first run gave %d", len(res), len(r.outs))
	}
	for i, t := range res {
		if err := r.outs[i].Copy_(t); err != nil {
			return fmt.Errorf("torch: replay: result %d: %w", i, err)
		}
	}
	return nil
}

// Run does the work again on the inputs' current values; Outputs then hold
// its results.
func (r *Replay) Run() error {
	if r.outputs == nil {
		return &OpError{Op: "replay", Err: errors.New("replay is closed")}
	}
	if r.h != 0 {
		return r.graphOp(opGraphReplay)
	}
	s := NewScope()
	return errors.Join(r.fill(s), s.Close())
}

// Outputs are the results of the last Run (of NewReplay's run before the
// first), in f's order. They belong to the Replay: Close frees them.
func (r *Replay) Outputs() []*Tensor { return r.outs }

// Graphed reports whether Run replays a CUDA graph.
func (r *Replay) Graphed() bool { return r.h != 0 }

// Close frees the graph, the outputs and the inputs given to NewReplay.
func (r *Replay) Close() error {
	var err error
	if r.h != 0 {
		err = r.graphOp(opGraphFree)
		r.h = 0
	}
	if r.outputs != nil {
		err = errors.Join(err, r.outputs.Close())
		r.outputs = nil
	}
	if r.inputs != nil {
		err = errors.Join(err, r.inputs.Close())
		r.inputs = nil
	}
	return err
}

func (r *Replay) graphOp(o *opcode, ints ...int64) error {
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, r.h)
	c.ints = append(c.ints, ints...)
	if _, err := c.exec(o); err != nil {
		return &OpError{Op: o.name, Err: err}
	}
	return nil
}
