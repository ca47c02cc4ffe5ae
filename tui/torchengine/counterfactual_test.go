package torchengine

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/tui"
)

// TestTorchEngineScoreVariants: the pair as it is scores as Score does
// (1e-5 relative: another batch shape may sum in another order); a swap
// swaps the columns of one forward pass to the bit; a mask of the
// evidence changes the masked image's column only; dropping reading A's
// phrase leaves reading B's row alone; a cancelled request says so.
func TestTorchEngineScoreVariants(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	ctx := context.Background()
	var p *loader.Pair
	for i := range f.ds.Pairs {
		q := &f.ds.Pairs[i]
		for _, b := range q.Readings[0].Boxes {
			if b.Role == loader.RoleEvidence {
				p = q
			}
		}
	}
	if p == nil {
		t.Fatal("the fixture has no pair with an evidence box on image A")
	}
	vs := []tui.Variant{{Swap: true}, {Fill: "grey"}, {DropReading: 0, DropLabel: "NP", DropStart: 0, DropEnd: 1}}
	got, err := e.ScoreVariants(ctx, p.ID, vs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d results for 3 variants", len(got))
	}
	s, err := e.Score(ctx, []string{p.ID})
	if err != nil {
		t.Fatal(err)
	}
	orig := got[0]
	for tr := range 2 {
		for k := range 2 {
			if want := s[0].Logits[k][tr]; math.Abs(orig[tr][k]-want) > 1e-5*max(1, math.Abs(want)) {
				t.Errorf("text %d image %d: %v, Score %v", tr, k, orig[tr][k], want)
			}
			if got[1][tr][k] != orig[tr][1-k] {
				t.Errorf("swap: text %d image %d: %v, want %v", tr, k, got[1][tr][k], orig[tr][1-k])
			}
		}
		if got[2][tr][0] == orig[tr][0] {
			t.Errorf("masking image A's evidence left text %d's logit at %v", tr, orig[tr][0])
		}
		if got[3][1][tr] != orig[1][tr] {
			t.Errorf("dropping A's phrase changed text B × image %d: %v → %v", tr, orig[1][tr], got[3][1][tr])
		}
	}
	if got[3][0][0] == orig[0][0] {
		t.Error("dropping A's first NP changed nothing")
	}
	if _, err := e.ScoreVariants(ctx, p.ID, []tui.Variant{{DropLabel: "PP", DropStart: 0, DropEnd: 1}}); err == nil {
		t.Error("a phrase the tree lacks: no error")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.ScoreVariants(done, p.ID, vs); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled request: %v", err)
	}
}

// TestTorchEngineExplainVariant: on the demo checkpoint, filling reading
// A's evidence box with grey moves relevance out of the box (the share of
// A's image map inside each box changes by more than 1%); the pair as it
// is explains the same (1e-5 relative to the map's largest value) alone
// and in one batch beside its variant, whose masked image the batch adds;
// swapped images explain as the twin target does; the plain sentence and
// a dropped phrase explain fewer tokens.
func TestTorchEngineExplainVariant(t *testing.T) {
	e, _ := demoEngine(t)
	var p *loader.Pair
	for i := range e.opt.Data.Pairs {
		q := &e.opt.Data.Pairs[i]
		if q.Ambiguity == synth.PPAttachment && len(q.Readings[0].BoxesWithRole(loader.RoleEvidence)) > 0 {
			p = q
			break
		}
	}
	if p == nil {
		t.Fatal("the demo split has no PP pair with an evidence box on image A")
	}
	ctx := context.Background()
	plain := tui.ExplainRequest{PairID: p.ID, Method: explain.Chefer, StartLayer: explain.AllLayers, Target: tui.TargetOwn}
	grey := plain
	grey.Variant = tui.Variant{Fill: "grey"}
	both, err := e.ExplainMany(ctx, []tui.ExplainRequest{plain, grey})
	if err != nil {
		t.Fatal(err)
	}
	one, err := e.Explain(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if both[1].Request != grey || both[1].Readings[0].Image != 0 {
		t.Fatalf("the variant answered %+v over image %d", both[1].Request, both[1].Readings[0].Image)
	}
	for j, rr := range one.Readings {
		got, want := both[0].Readings[j].Patches.V, rr.Patches.V
		scale := 0.0
		for _, v := range want {
			scale = max(scale, math.Abs(float64(v)))
		}
		for k := range want {
			if d := math.Abs(float64(got[k] - want[k])); d > 1e-5*scale {
				t.Fatalf("reading %d patch %d: %g beside its variant, %g alone", j, k, got[k], want[k])
			}
		}
	}
	// Under a swap, reading A's own target is its text against image B:
	// the pair as it is under the twin target.
	swap := plain
	swap.Variant = tui.Variant{Swap: true}
	twin := plain
	twin.Target = tui.TargetTwin
	sw, err := e.ExplainMany(ctx, []tui.ExplainRequest{swap, twin})
	if err != nil {
		t.Fatal(err)
	}
	for j := range sw[0].Readings {
		g, w := sw[0].Readings[j], sw[1].Readings[j]
		if g.Image != w.Image || g.Image != 1-j {
			t.Fatalf("swap: reading %d lies over image %d, twin over %d", j, g.Image, w.Image)
		}
		scale := 0.0
		for _, v := range w.Patches.V {
			scale = max(scale, math.Abs(float64(v)))
		}
		for k := range w.Patches.V {
			if d := math.Abs(float64(g.Patches.V[k] - w.Patches.V[k])); d > 1e-5*scale {
				t.Fatalf("swap: reading %d patch %d: %g, twin target %g", j, k, g.Patches.V[k], w.Patches.V[k])
			}
		}
	}
	for _, v := range []tui.Variant{{Neutral: true}, {DropReading: 0, DropLabel: "NP", DropStart: 0, DropEnd: 1}} {
		req := plain
		req.Variant = v
		exp, err := e.Explain(ctx, req)
		if err != nil {
			t.Fatalf("%+v: %v", v, err)
		}
		if len(exp.Readings[0].Tokens) >= len(one.Readings[0].Tokens) {
			t.Errorf("%+v: reading A reads %d tokens, as it is %d", v, len(exp.Readings[0].Tokens), len(one.Readings[0].Tokens))
		}
	}
	r := &p.Readings[0]
	size := r.Pixels.Bounds().Size()
	geo, err := explain.NewGeometry(size.X, size.Y, *e.Info().Preprocess)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range r.BoxesWithRole(loader.RoleEvidence) {
		var mass [2]float64
		for i, exp := range []*tui.Explanation{one, both[1]} {
			g := exp.Readings[0].Patches
			cover, err := geo.PatchCoverage(g.W, []loader.Box{b})
			if err != nil {
				t.Fatal(err)
			}
			pt, err := explain.PointingGame(g.V, cover)
			if err != nil {
				t.Fatal(err)
			}
			mass[i] = pt.Mass
		}
		t.Logf("pair %s reading A, box %q: %.1f%% of the image relevance → %.1f%% under grey", p.ID, b.Label, 100*mass[0], 100*mass[1])
		if math.Abs(mass[1]-mass[0]) < 0.01 {
			t.Errorf("box %q: masking it left its mass at %.3f → %.3f", b.Label, mass[0], mass[1])
		}
	}
}
