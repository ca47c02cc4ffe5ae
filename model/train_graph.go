package model

import (
	"errors"
	"fmt"
	"slices"

	"github.com/lavascope/lavascope/torch"
)

// StepGraph is OptimizerStep captured in a CUDA graph, for batches of one
// shape: each Step copies a batch in, sets the learning rate and replays
// the whole step (forward, contrastive loss, backward, clipping, fused
// AdamW, zeroing the gradients, clamping the logit scale where asked) with
// one launch,
// where the step op by op launches thousands of kernels, each paid for on
// the host.
//
// It needs a CUDA device, a shim with CUDA graphs against libtorch 2.4 or
// later, and the fused AdamW (torch.AdamWFused, which AdamWAuto picks
// there). The gradients live in the graph's memory: between Steps the
// parameters have none.
type StepGraph struct {
	m *CLIP
	// px, ids and lr are the static inputs, in the scope replay owns.
	px, ids *torch.Tensor
	lr      *torch.Tensor
	replay  *torch.Replay
}

// NewStepGraph builds the graph of a step on batches shaped like pixels
// [B,C,S,S] and ids [B,N] (image i goes with text i) for opt over params,
// with what o asks besides the optimizer's step (clipping, the clamp). The
// optimizer must have taken an ordinary step (OptimizerStep) before: a
// graph cannot create AdamW's state. Building it takes one real step, the
// capture's warm-up, on pixels and ids at learning rate lr: its loss and
// gradient norm are returned.
func NewStepGraph(m *CLIP, opt *torch.AdamW, params []*torch.Tensor, pixels, ids *torch.Tensor, lr float64, o StepOptions) (g *StepGraph, loss, norm float64, err error) {
	return newStepGraph(m, opt, params, pixels, ids, lr, o, true)
}

// newStepGraph is NewStepGraph; without graph each Step runs the same work
// again op by op (a torch.Replay without a graph), which tests use to check
// the step's arithmetic where there is no CUDA.
func newStepGraph(m *CLIP, opt *torch.AdamW, params []*torch.Tensor, pixels, ids *torch.Tensor, lr float64, o StepOptions, graph bool) (g *StepGraph, loss, norm float64, err error) {
	if opt.Impl() != torch.AdamWFused {
		return nil, 0, 0, fmt.Errorf("train step graph: needs the fused AdamW, the optimizer is %s", opt.Impl())
	}
	if _, err := m.CheckIDs(ids); err != nil {
		return nil, 0, 0, fmt.Errorf("train step graph: %w", err)
	}
	g = &StepGraph{m: m}
	s := torch.NewScope()
	dev := m.Device()
	g.px = pixels.In(s).To(dev, m.DType()).Clone()
	g.ids = ids.In(s).To(dev, torch.Int64).Clone()
	g.lr = s.Full([]int64{}, lr, torch.Options{Device: dev})
	if err := s.Err(); err != nil {
		return nil, 0, 0, errors.Join(fmt.Errorf("train step graph: inputs: %w", err), s.Close())
	}
	step := stepWork(m, g.px, g.ids, params, o, func() error {
		if err := opt.StepLR(g.lr); err != nil {
			return err
		}
		return opt.ZeroGrad()
	})
	// An earlier step's graph, still alive (its loss held by the caller),
	// would lend the capture gradient accumulators of the default stream.
	if err := torch.ResetGradAccumulators(params); err != nil {
		return nil, 0, 0, errors.Join(fmt.Errorf("train step graph: %w", err), s.Close())
	}
	if g.replay, err = torch.NewReplay(dev, graph, s, step); err != nil {
		return nil, 0, 0, fmt.Errorf("train step graph: %w", err)
	}
	loss, norm, err = g.read()
	if err != nil {
		return nil, 0, 0, errors.Join(err, g.Close())
	}
	return g, loss, norm, nil
}

// stepWork is the training step on the static batch px, ids as a
// Replay's work: OptimizerStep with the gradients clipped on the device and
// update as the optimizer's step and zeroing, returning the loss and the
// norm.
func stepWork(m *CLIP, px, ids *torch.Tensor, params []*torch.Tensor, o StepOptions, update func() error) func(sc *torch.Scope) ([]*torch.Tensor, error) {
	return func(sc *torch.Scope) ([]*torch.Tensor, error) {
		out, err := m.Forward(sc, px, ids, ForwardOptions{Grad: true, CheckedIDs: true})
		if err != nil {
			return nil, err
		}
		l := ContrastiveLoss(out.LogitsPerImage, out.LogitsPerText)
		if err := l.Backward(nil); err != nil {
			return nil, fmt.Errorf("backward: %w", err)
		}
		n := torch.ClipGradNormIn(sc, params, o.maxNorm())
		if err := n.Err(); err != nil {
			return nil, err
		}
		if err := update(); err != nil {
			return nil, err
		}
		if err := o.clamp(sc, m); err != nil {
			return nil, err
		}
		return []*torch.Tensor{l.Detach(), n}, nil
	}
}

// Fits reports whether pixels and ids have the shapes of the graph's
// batches.
func (g *StepGraph) Fits(pixels, ids *torch.Tensor) bool {
	return slices.Equal(pixels.Shape(), g.px.Shape()) && slices.Equal(ids.Shape(), g.ids.Shape())
}

// Step takes one training step on pixels and ids (the shapes NewStepGraph
// was given) at learning rate lr and returns the loss and the gradient
// norm before clipping.
func (g *StepGraph) Step(pixels, ids *torch.Tensor, lr float64) (loss, norm float64, err error) {
	if g.replay == nil {
		return 0, 0, errors.New("train step graph: closed")
	}
	if _, err := g.m.CheckIDs(ids); err != nil {
		return 0, 0, fmt.Errorf("train step graph: %w", err)
	}
	if err := g.px.Copy_(pixels); err != nil {
		return 0, 0, fmt.Errorf("train step graph: pixels: %w", err)
	}
	if err := g.ids.Copy_(ids); err != nil {
		return 0, 0, fmt.Errorf("train step graph: ids: %w", err)
	}
	if err := g.lr.Fill_(lr); err != nil {
		return 0, 0, fmt.Errorf("train step graph: learning rate: %w", err)
	}
	if err := g.replay.Run(); err != nil {
		return 0, 0, fmt.Errorf("train step graph: %w", err)
	}
	return g.read()
}

func (g *StepGraph) read() (loss, norm float64, err error) {
	o := g.replay.Outputs()
	if loss, err = o[0].Item(); err != nil {
		return 0, 0, fmt.Errorf("train step graph: loss: %w", err)
	}
	if norm, err = o[1].Item(); err != nil {
		return 0, 0, fmt.Errorf("train step graph: gradient norm: %w", err)
	}
	return loss, norm, nil
}

// Close frees the graph and its inputs; the model and optimizer stay.
func (g *StepGraph) Close() error {
	if g.replay == nil {
		return nil
	}
	err := g.replay.Close()
	g.replay = nil
	return err
}
