package torchengine

import (
	"context"
	"fmt"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/pipeline"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/tui"
)

// Metrics implements tui.Faithfulness with pipeline.Measure, the code
// `lavascope explain --metrics` runs: each reading's own logit explained
// under req's method and start layer, then its image perturbed and its
// tokens deleted in order of that relevance. The pointing game is left out:
// the explorer plays it on the explanations it shows.
func (e *TorchEngine) Metrics(ctx context.Context, req tui.ExplainRequest) ([]*explain.Metrics, error) {
	method, start, textStart, err := e.method(req)
	if err != nil {
		return nil, err
	}
	p, _, in, rows, cols, err := e.inputs(req)
	if err != nil {
		return nil, err
	}
	n := len(p.Readings)
	targets := make([]explain.Target, n)
	for j := range n {
		for _, c := range report.TargetOwn.Cells(j, n) {
			targets[j] = append(targets[j], explain.Cell{Image: cols[c[0]], Text: rows[c[1]]})
		}
	}
	out := make([]*explain.Metrics, n)
	err = e.rt.do(ctx, func() error {
		if e.closed {
			return errEngineClosed
		}
		s := torch.NewScope()
		defer s.Close()
		size := int64(e.imageSize)
		px := s.FromFloat32(in.Pixels(), int64(in.Images()), 3, size, size).ToDevice(e.rt.dev)
		tx := s.FromInt64(in.IDs(), int64(in.Texts()), int64(in.Width())).ToDevice(e.rt.dev)
		res, err := explain.Explain(e.m, px, tx, targets, explain.Options{Method: method, Start: start, TextStart: &textStart})
		if err != nil {
			return err
		}
		for j := range n {
			// Between readings the context is checked, so that a cancelled
			// request frees the worker after one reading at most.
			if err := ctx.Err(); err != nil {
				return err
			}
			mi := pipeline.MeasureInput{Own: cols[j], Twin: cols[(j+1)%n], Row: rows[j], Result: &res[j], Prep: e.prep}
			if out[j], err = pipeline.Measure(e.m, px, tx, mi); err != nil {
				return fmt.Errorf("reading %d: %w", j, err)
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("measure pair %s: %w", p.ID, err)
	}
	return out, nil
}
