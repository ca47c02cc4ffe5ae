package torchengine

import (
	"context"
	"math"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/tui"
)

var _ tui.Faithfulness = (*TorchEngine)(nil)

// TestTorchEngineMetrics: the metrics are pipeline's, taken from the own
// logit whatever the request's target: a curve per order over the default
// fractions that starts at the reading's margin as Score gives it, and the
// token deletions of the default ks.
func TestTorchEngineMetrics(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	id := f.ids()[0]
	sc, err := e.Score(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range tui.Targets {
		ms, err := e.Metrics(context.Background(), tui.ExplainRequest{PairID: id, Method: explain.Chefer, StartLayer: explain.LastLayer, Target: tg})
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != len(sc[0].Margins) {
			t.Fatalf("%d metrics for %d readings", len(ms), len(sc[0].Margins))
		}
		for j, m := range ms {
			// Score pads texts to the batch's longest, the metrics to the
			// pair's: float32 sums in another order.
			if want := sc[0].Margins[j]; math.Abs(m.Margin-want) > 1e-3 {
				t.Errorf("target %v reading %d: margin %g, Score says %g", tg, j, m.Margin, want)
			}
			p := m.Perturbation
			if p == nil || len(p.Positive.Margins) != len(explain.DefaultFractions) || len(p.Negative.Margins) != len(explain.DefaultFractions) {
				t.Fatalf("target %v reading %d: perturbation %+v", tg, j, p)
			}
			if math.Abs(p.Negative.Margins[0]-m.Margin) > 1e-4 {
				t.Errorf("reading %d: negative curve starts at %g, margin %g", j, p.Negative.Margins[0], m.Margin)
			}
			if m.Text == nil || len(m.Text.Top) != len(explain.DefaultKs) || len(m.Text.Bottom) != len(explain.DefaultKs) {
				t.Fatalf("reading %d: token deletion %+v", j, m.Text)
			}
			if m.Pointing != nil {
				t.Errorf("reading %d: a pointing game, which the explorer plays itself", j)
			}
		}
	}
	if _, err := e.Metrics(context.Background(), tui.ExplainRequest{PairID: "nope", Method: explain.Chefer}); err == nil {
		t.Error("metrics of an unknown pair")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Metrics(ctx, tui.ExplainRequest{PairID: id, Method: explain.Chefer}); err != context.Canceled {
		t.Errorf("cancelled metrics: %v", err)
	}
}

// BenchmarkTorchEngineMetrics is the cost of one pair's faithfulness
// metrics (both readings) with the demo model, images already preprocessed.
func BenchmarkTorchEngineMetrics(b *testing.B) {
	e, ids := demoEngine(b)
	req := tui.ExplainRequest{PairID: ids[0], Method: explain.Chefer, StartLayer: explain.LastLayer, Target: tui.TargetOwn}
	for b.Loop() {
		if _, err := e.Metrics(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
