package model

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// training is the fixture's model made trainable, with an AdamW over all
// its parameters.
type training struct {
	m      *CLIP
	opt    *torch.AdamW
	params []*torch.Tensor
}

func startTraining(t *testing.T, dev torch.Device, impl torch.AdamWImpl) training {
	t.Helper()
	m := loadHFTiny(t, Options{Device: dev})
	if err := m.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	var ps []*torch.Tensor
	for _, p := range m.Params() {
		ps = append(ps, p.Tensor)
	}
	opt, err := torch.NewAdamW(ps, torch.AdamWOptions{LR: 1e-3, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2, Impl: impl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { opt.Close() })
	return training{m, opt, ps}
}

// TestStepGraph takes three training steps op by op on one copy of the
// fixture's model and, on another, one step op by op then two from the
// step graph; the losses and weights agree. Without CUDA graphs the step
// graph's work runs again op by op each step where the shim has the fused
// AdamW's step with the learning rate in a tensor (libtorch ≥ 2.4), which
// checks its arithmetic (the fused AdamW, the clipping on the device);
// NewStepGraph itself must say what it lacks.
func TestStepGraph(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	pixels, ids, _ := hfTinyInputs(t, s)
	lrs := []float64{1e-3, 5e-4, 2e-4}
	graph := torch.CUDAGraphsUsable(dev) == nil
	// auto is the fused AdamW wherever libtorch has it.
	a, b := startTraining(t, dev, torch.AdamWAuto), startTraining(t, dev, torch.AdamWAuto)
	var lossA []float64
	for _, lr := range lrs {
		if err := a.opt.SetLR(lr); err != nil {
			t.Fatal(err)
		}
		loss, _, err := OptimizerStep(s, a.m, a.opt, a.params, pixels, ids, StepOptions{ClipGrad: 1, ClampLogitScale: true})
		if err != nil {
			t.Fatal(err)
		}
		lossA = append(lossA, loss)
	}
	if err := b.opt.SetLR(lrs[0]); err != nil {
		t.Fatal(err)
	}
	loss0, _, err := OptimizerStep(s, b.m, b.opt, b.params, pixels, ids, StepOptions{ClipGrad: 1, ClampLogitScale: true})
	if err != nil {
		t.Fatal(err)
	}
	if !graph {
		if _, _, _, err := NewStepGraph(b.m, b.opt, b.params, pixels, ids, lrs[1], StepOptions{ClipGrad: 1, ClampLogitScale: true}); err == nil || !strings.Contains(err.Error(), "fused") && !strings.Contains(err.Error(), "CUDA") {
			t.Errorf("a step graph with %s AdamW on %s: error %v, want one naming what it needs", b.opt.Impl(), dev, err)
		}
		if b.opt.Impl() != torch.AdamWFused {
			return
		}
	}
	g, loss1, _, err := newStepGraph(b.m, b.opt, b.params, pixels, ids, lrs[1], StepOptions{ClipGrad: 1, ClampLogitScale: true}, graph)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	loss2, _, err := g.Step(pixels, ids, lrs[2])
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range []float64{loss0, loss1, loss2} {
		if math.Abs(l-lossA[i]) > 1e-5 {
			t.Errorf("step %d: loss %g from the graph, %g op by op", i+1, l, lossA[i])
		}
	}
	pa, pb := a.m.Params(), b.m.Params()
	for i := range pa {
		if d := maxDiffTensors(t, pa[i].Tensor, pb[i].Tensor); d > 1e-5 {
			t.Errorf("%s differs by %g after three steps", pa[i].Name, d)
		}
	}
}

func maxDiffTensors(t *testing.T, a, b *torch.Tensor) float64 {
	t.Helper()
	va, err := a.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	var d float64
	for i := range va {
		d = max(d, math.Abs(va[i]-vb[i]))
	}
	return d
}

// TestTrainGraphs runs a few steps with Graphs and without; on a GPU with
// CUDA graphs the weights agree, elsewhere Train refuses Graphs up front
// with the reason.
func TestTrainGraphs(t *testing.T) {
	dev := torchtest.Device(t)
	train, _, _ := synthSplits(t, 30, 7)
	run := func(graphs bool) (*CLIP, error) {
		m, tok := smallCLIP(t, train, 4)
		o := quickOptions("", 5)
		o.BatchPairs, o.EvalEvery = 2, 100
		o.Graphs = graphs
		_, err := Train(context.Background(), m, tok, train, nil, o)
		return m, err
	}
	plain, err := run(false)
	if err != nil {
		t.Fatal(err)
	}
	graphed, err := run(true)
	if GraphsUsable(dev, torch.AdamWAuto) != nil {
		if err == nil || !strings.Contains(err.Error(), "CUDA") && !strings.Contains(err.Error(), "libtorch") {
			t.Errorf("Graphs on %s (libtorch %s): error %v, want one saying what it needs", dev, torch.Version(), err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := plain.Params(), graphed.Params()
	for i := range pa {
		if d := maxDiffTensors(t, pa[i].Tensor, pb[i].Tensor); d > 1e-4 {
			t.Errorf("%s differs by %g after 5 steps with and without the graph", pa[i].Name, d)
		}
	}
}

// TestStepWorkCapturable runs the graphed step's work, with the optimizer's
// ordinary step in place of the graph's, as a Replay on this device (no
// graph): nothing in it reads from or writes to the host (the Replay
// refuses that), and each run is the step OptimizerStep takes, with the
// default clipping and clamp and with the authors' (neither).
func TestStepWorkCapturable(t *testing.T) {
	for _, so := range []StepOptions{{ClipGrad: 1, ClampLogitScale: true}, {}} {
		t.Run(fmt.Sprintf("clip %g clamp %v", so.ClipGrad, so.ClampLogitScale), func(t *testing.T) {
			stepWorkCapturable(t, so)
		})
	}
}

func stepWorkCapturable(t *testing.T, so StepOptions) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	pixels, ids, _ := hfTinyInputs(t, s)
	a, b := startTraining(t, dev, torch.AdamWForeach), startTraining(t, dev, torch.AdamWForeach)
	px, tx := pixels.To(dev, torch.Float32), ids.ToDevice(dev)
	work := stepWork(b.m, px, tx, b.params, so, func() error {
		if err := b.opt.Step(); err != nil {
			return err
		}
		return b.opt.ZeroGrad()
	})
	r, err := torch.NewReplay(dev, false, nil, work) // the first step
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for step := range 3 {
		if step > 0 {
			if err := r.Run(); err != nil {
				t.Fatal(err)
			}
		}
		loss, _, err := OptimizerStep(s, a.m, a.opt, a.params, pixels, ids, so)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Outputs()[0].Item()
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-loss) > 1e-5 {
			t.Errorf("step %d: loss %g from the work, %g from OptimizerStep", step+1, got, loss)
		}
	}
	pa, pb := a.m.Params(), b.m.Params()
	for i := range pa {
		if d := maxDiffTensors(t, pa[i].Tensor, pb[i].Tensor); d > 1e-5 {
			t.Errorf("%s differs by %g after three steps", pa[i].Name, d)
		}
	}
}
