package torchengine

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/lavascope/lavascope/loader"
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
