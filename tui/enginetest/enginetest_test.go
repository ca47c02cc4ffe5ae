package enginetest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui"
)

func testData() *loader.Dataset {
	return &loader.Dataset{Pairs: []loader.Pair{{
		ID: "p1", Sentence: "Danny saw Andrei leaving.",
		Readings: []loader.Reading{
			{Tree: "(S (NP (NNP Danny)) (VP (VBD saw) (NP (NNP Andrei)) (S (VP (VBG leaving)))) (. .))"},
			{Tree: "(S (NP (NNP Danny)) (VP (VBD saw) (NP (NP (NNP Andrei)) (VP (VBG leaving)))) (. .))"},
		},
	}}}
}

func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	a, b := New(testData(), Options{}), New(testData(), Options{})
	sa, err := a.Score(ctx, []string{"p1"})
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := b.Score(ctx, []string{"p1"})
	if !reflect.DeepEqual(sa, sb) {
		t.Errorf("two engines score differently: %v, %v", sa, sb)
	}
	req := tui.ExplainRequest{PairID: "p1", Method: explain.Chefer, StartLayer: explain.LastLayer}
	ea, err := a.Explain(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	eb, _ := b.Explain(ctx, req)
	if !reflect.DeepEqual(ea, eb) {
		t.Error("two engines explain differently")
	}
	req.Method = explain.Rollout
	ec, _ := a.Explain(ctx, req)
	if reflect.DeepEqual(ea.Readings[0].Tokens, ec.Readings[0].Tokens) {
		t.Error("another method gives the same token relevance")
	}
}

// TestTokensAlign checks that the fake's tokens index the linearization the
// explorer aligns them with, and that tokens where the trees differ get the
// most relevance.
func TestTokensAlign(t *testing.T) {
	e := New(testData(), Options{})
	ex, err := e.Explain(context.Background(), tui.ExplainRequest{PairID: "p1", Method: explain.Chefer, StartLayer: explain.LastLayer})
	if err != nil {
		t.Fatal(err)
	}
	for j, rr := range ex.Readings {
		n, _ := trees.Parse(testData().Pairs[0].Readings[j].Tree)
		lin := trees.Linearize(n, e.Info().Style)
		if rr.Text != lin.Text {
			t.Fatalf("reading %d text %q, want %q", j, rr.Text, lin.Text)
		}
		offs := make([][2]int, len(rr.Tokens))
		for k, tok := range rr.Tokens {
			offs[k] = [2]int{tok.Start, tok.End}
			if tok.Start < tok.End && rr.Text[tok.Start:tok.End] != tok.Text {
				t.Errorf("token %d is %q but covers %q", k, tok.Text, rr.Text[tok.Start:tok.End])
			}
		}
		if _, err := trees.Align(lin, offs); err != nil {
			t.Error(err)
		}
		if rr.Patches.W != Grid || len(rr.Patches.V) != Grid*Grid {
			t.Errorf("patch grid %d×%d with %d values", rr.Patches.W, rr.Patches.H, len(rr.Patches.V))
		}
	}
}

func TestUnknownPair(t *testing.T) {
	e := New(testData(), Options{})
	if _, err := e.Score(context.Background(), []string{"nope"}); err == nil {
		t.Error("Score of an unknown pair gave no error")
	}
	if _, err := e.Explain(context.Background(), tui.ExplainRequest{PairID: "nope", Method: explain.Chefer}); err == nil {
		t.Error("Explain of an unknown pair gave no error")
	}
}

func TestFineTune(t *testing.T) {
	e := New(testData(), Options{})
	ch := make(chan tui.FineTuneProgress, 100)
	next, err := e.FineTune(context.Background(), tui.FineTuneOptions{Steps: 10, LR: 1e-5, BatchPairs: 1, Input: "tree"}, ch)
	if err != nil {
		t.Fatal(err)
	}
	if got := next.Info().Checkpoint; got != "fake+ft1" {
		t.Errorf("new checkpoint %q, want fake+ft1", got)
	}
	if len(ch) != 10 {
		t.Errorf("%d progress reports for 10 steps", len(ch))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.FineTune(ctx, tui.FineTuneOptions{Steps: 10, LR: 1e-5, BatchPairs: 1, Input: "tree"}, ch); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run returned %v", err)
	}
	if _, err := e.FineTune(context.Background(), tui.FineTuneOptions{Steps: 10, LR: -1, BatchPairs: 1, Input: "tree"}, ch); err == nil {
		t.Error("a negative learning rate started a run")
	}
}

var _ tui.Faithfulness = (*Engine)(nil)

// TestMetrics: the fake metrics are reproducible, one per reading, and
// start at the reading's margin as Score gives it.
func TestMetrics(t *testing.T) {
	e := New(testData(), Options{})
	id := "p1"
	req := tui.ExplainRequest{PairID: id, Method: explain.Chefer}
	a, err := e.Metrics(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.Metrics(context.Background(), req)
	sc, _ := e.Score(context.Background(), []string{id})
	for j, m := range a {
		if !reflect.DeepEqual(m, b[j]) {
			t.Errorf("reading %d: %+v, then %+v", j, m, b[j])
		}
		if m.Margin != sc[0].Margins[j] || m.Perturbation.Positive.Margins[0] != m.Margin {
			t.Errorf("reading %d: margin %g, curve from %g; Score says %g", j, m.Margin, m.Perturbation.Positive.Margins[0], sc[0].Margins[j])
		}
	}
	if _, err := e.Metrics(context.Background(), tui.ExplainRequest{PairID: "nope"}); err == nil {
		t.Error("metrics of an unknown pair")
	}
}
