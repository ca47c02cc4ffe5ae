package torch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// replayWork is y = (x·w)² summed, and its gradient with respect to w: a
// forward and a backward pass on static inputs.
func replayWork(x, w *torch.Tensor) func(s *torch.Scope) ([]*torch.Tensor, error) {
	return func(s *torch.Scope) ([]*torch.Tensor, error) {
		y := x.In(s).Matmul(w).Pow(2).SumAll()
		g, err := torch.Grad([]*torch.Tensor{y}, []*torch.Tensor{w}, nil, false)
		if err != nil {
			return nil, err
		}
		return []*torch.Tensor{y, g[0]}, nil
	}
}

// TestReplay runs a forward and backward pass again on new input values,
// without a graph on every device and with a CUDA graph where the shim has
// them, and checks each run against the same work done directly; Close
// frees the inputs' scope it was given.
func TestReplay(t *testing.T) {
	dev := torchtest.Device(t)
	modes := []bool{false}
	if torch.CUDAGraphsUsable(dev) == nil {
		modes = append(modes, true)
	}
	for _, graph := range modes {
		t.Run(map[bool]string{false: "rerun", true: "cuda-graph"}[graph], func(t *testing.T) {
			s := torchtest.Scope(t)
			live := torch.LiveTensors()
			in := torch.NewScope()
			x := in.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3).ToDevice(dev)
			w := in.FromFloat32([]float32{0.5, -1, 2}, 3, 1).ToDevice(dev)
			if err := w.SetRequiresGrad(true); err != nil {
				t.Fatal(err)
			}
			r, err := torch.NewReplay(dev, graph, in, replayWork(x, w))
			if err != nil {
				t.Fatal(err)
			}
			if r.Graphed() != graph {
				t.Errorf("Graphed() = %v, want %v", r.Graphed(), graph)
			}
			for step, next := range [][]float32{{1, 2, 3, 4, 5, 6}, {0, 1, 0, -1, 2, 0.5}, {3, 3, 3, 3, 3, 3}} {
				if err := x.Copy_(s.FromFloat32(next, 2, 3).ToDevice(dev)); err != nil {
					t.Fatal(err)
				}
				if err := r.Run(); err != nil {
					t.Fatal(err)
				}
				want, err := replayWork(x, w)(s)
				if err != nil {
					t.Fatal(err)
				}
				for i, got := range r.Outputs() {
					if d := maxDiff(t, "output", got, want[i]); d > 1e-5 {
						t.Errorf("run %d, output %d differs from the direct work by %g", step, i, d)
					}
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := r.Run(); err == nil {
				t.Error("Run after Close: no error")
			}
			s.Close()
			if n := torch.LiveTensors(); n != live {
				t.Errorf("%d tensors alive after Close, %d before", n, live)
			}
		})
	}
}

// TestReplayBackwardAfterEagerStep captures a Backward into a leaf's Grad
// while the graph of an eager step over the leaf, made on the default
// stream, is still alive (its loss is held): ResetGradAccumulators lets the
// capture make its own accumulator on its stream. Each replay gives the
// eager step's gradient.
func TestReplayBackwardAfterEagerStep(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	x := s.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3).ToDevice(dev)
	w := s.FromFloat32([]float32{0.5, -1, 2}, 3, 1).ToDevice(dev)
	if err := w.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	// The loss stays in s, and so does its graph over w, to the end.
	if err := x.Matmul(w).Pow(2).SumAll().Backward(nil); err != nil {
		t.Fatal(err)
	}
	want := w.Grad().Clone()
	if err := w.Grad().Zero_(); err != nil {
		t.Fatal(err)
	}
	if err := torch.ResetGradAccumulators([]*torch.Tensor{w}); err != nil {
		t.Fatal(err)
	}
	graph := torch.CUDAGraphsUsable(dev) == nil
	r, err := torch.NewReplay(dev, graph, torch.NewScope(), func(sc *torch.Scope) ([]*torch.Tensor, error) {
		if err := x.In(sc).Matmul(w).Pow(2).SumAll().Backward(nil); err != nil {
			return nil, err
		}
		g := w.In(sc).Grad()
		out := g.Clone()
		return []*torch.Tensor{out}, g.Zero_()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for run := range 2 {
		if err := r.Run(); err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, "gradient", r.Outputs()[0], want); d > 1e-5 {
			t.Errorf("run %d (graph %v): the gradient differs from the eager step's by %g", run+1, graph, d)
		}
	}
}

func TestReplayErrors(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	x := s.Ones([]int64{2}, torch.Options{Device: dev})
	boom := errors.New("boom")
	live := torch.LiveTensors()
	in := torch.NewScope()
	in.Ones([]int64{2}, torch.Options{Device: dev})
	if _, err := torch.NewReplay(dev, false, in, func(*torch.Scope) ([]*torch.Tensor, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("f's error: got %v", err)
	}
	if n := torch.LiveTensors(); n != live {
		t.Errorf("%d tensors alive after a failed NewReplay, %d before: its inputs were not freed", n, live)
	}
	in = torch.NewScope()
	in.Ones([]int64{2}, torch.Options{Device: dev})
	if _, err := torch.NewReplay(torch.CPU, true, in, func(s *torch.Scope) ([]*torch.Tensor, error) { return []*torch.Tensor{x}, nil }); err == nil || !strings.Contains(err.Error(), "CUDA") {
		t.Errorf("a graph on the CPU: error %v, want one naming CUDA", err)
	}
	if n := torch.LiveTensors(); n != live {
		t.Errorf("%d tensors alive after a refused graph, %d before: its inputs were not freed", n, live)
	}
	// Reading a value back, or making a tensor from host data, would break
	// a capture: refused inside the work on every device, and the device
	// works as before.
	graph := torch.CUDAGraphsUsable(dev) == nil
	for name, f := range map[string]func(s *torch.Scope) ([]*torch.Tensor, error){
		"item": func(s *torch.Scope) ([]*torch.Tensor, error) {
			y := x.In(s).MulScalar(2)
			if _, err := y.SumAll().Item(); err != nil {
				return nil, err
			}
			return []*torch.Tensor{y}, nil
		},
		"float32s": func(s *torch.Scope) ([]*torch.Tensor, error) {
			y := x.In(s).MulScalar(2)
			if _, err := y.Float32s(); err != nil {
				return nil, err
			}
			return []*torch.Tensor{y}, nil
		},
		"from host": func(s *torch.Scope) ([]*torch.Tensor, error) {
			y := x.In(s).Add(s.FromFloat32([]float32{1, 2}, 2).ToDevice(dev))
			return []*torch.Tensor{y}, y.Err()
		},
	} {
		_, err := torch.NewReplay(dev, graph, nil, f)
		if err == nil || !strings.Contains(err.Error(), "host memory") {
			t.Errorf("%s inside the work: error %v, want one about host memory", name, err)
		}
	}
	if v, err := x.SumAll().Item(); err != nil || v != 2 {
		t.Errorf("after the refused work the device gives %v, %v; want 2", v, err)
	}
}
