package tui

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tui/graphics"
)

// infoEngine is an Engine that only names itself: the scheduler never calls
// the engine, it only decides what the Model asks of it.
type infoEngine struct {
	Engine
	ckpt string
}

func (e infoEngine) Info() EngineInfo { return EngineInfo{Checkpoint: e.ckpt} }

func TestSchedulerScoresInChunksThenExplainsTheOpenPairFirst(t *testing.T) {
	s := newScheduler([]string{"a", "b", "c", "d", "e"})
	if _, ids := s.nextScore(2); ids != nil {
		t.Fatalf("scored %v before an engine loaded", ids)
	}
	s.setEngine(infoEngine{ckpt: "base"})
	st := settings{method: explain.Chefer, layer: explain.AllLayers, target: TargetOwn}

	var chunks [][]string
	for {
		ckpt, ids := s.nextScore(2)
		if len(ids) == 0 {
			break
		}
		if _, again := s.nextScore(2); again != nil {
			t.Fatalf("a second chunk %v while %v runs", again, ids)
		}
		if _, ok := s.nextExplain(st, nil); ok {
			t.Fatal("an explanation started while the split is scored")
		}
		var scores []Score
		for _, id := range ids {
			sc, err := NewScore(id, [][]float64{{1, 0}, {0, 1}})
			if err != nil {
				t.Fatal(err)
			}
			scores = append(scores, sc)
		}
		if err := s.scored(ckpt, scores, nil); err != nil {
			t.Fatal(err)
		}
		chunks = append(chunks, ids)
	}
	if want := [][]string{{"a", "b"}, {"c", "d"}, {"e"}}; !slices.EqualFunc(chunks, want, slices.Equal) {
		t.Fatalf("chunks %v, want %v", chunks, want)
	}
	if !s.allScored("base") {
		t.Fatal("not all scored")
	}

	// The open pair, then the list from its cursor, then the rest.
	var order []string
	for {
		k, ok := s.nextExplain(st, []string{"d", "e", "b"})
		if !ok {
			break
		}
		if _, again := s.nextExplain(st, nil); again {
			t.Fatal("two explanations at once")
		}
		var err error
		if k.pair == "b" {
			err = errors.New("boom")
		}
		if !s.explained(k, &explained{}, err) {
			t.Fatal("a finished explanation was dropped")
		}
		order = append(order, k.pair)
	}
	if want := []string{"d", "e", "b", "a", "c"}; !slices.Equal(order, want) {
		t.Fatalf("explained %v, want %v", order, want)
	}
	if got := s.exps[s.keyFor("b", st)]; got == nil || got.err == nil {
		t.Fatalf("the failed explanation is not kept as a failure: %+v", got)
	}
	if n := s.explainedCount(st); n != 5 {
		t.Fatalf("explainedCount %d, want 5", n)
	}
	// Other settings start over; a cancelled run keeps nothing.
	st.method = explain.Rollout
	k, ok := s.nextExplain(st, nil)
	if !ok || k.pair != "a" {
		t.Fatalf("next under rollout: %v %v", k, ok)
	}
	if s.explained(k, nil, context.Canceled) || s.explainedCount(st) != 0 || s.busy() {
		t.Fatal("a cancelled explanation was kept")
	}
}

func TestSchedulerKeepsScoresPerCheckpoint(t *testing.T) {
	s := newScheduler([]string{"a"})
	s.setEngine(infoEngine{ckpt: "base"})
	ckpt, ids := s.nextScore(8)
	if err := s.scored(ckpt, nil, errors.New("oom")); err == nil || s.scoreErr == nil {
		t.Fatal("a failed chunk is not reported")
	}
	ckpt, ids = s.nextScore(8)
	sc, _ := NewScore("a", [][]float64{{0, 1}, {1, 0}})
	if err := s.scored(ckpt, []Score{sc}, nil); err != nil || len(ids) != 1 {
		t.Fatal(err)
	}
	s.setEngine(infoEngine{ckpt: "tuned"})
	if s.allScored("tuned") || !s.allScored("base") {
		t.Fatal("scores leak across checkpoints")
	}
	if _, ids := s.nextScore(8); !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("the new checkpoint scores %v", ids)
	}
}

// TestStatusBarKeepsTheSettings: a fine-tune's long checkpoint path gives
// way to the method, start layer and target at 80 columns.
func TestStatusBarKeepsTheSettings(t *testing.T) {
	m, err := New(Options{Data: &loader.Dataset{}, Open: func(context.Context) (Engine, error) { return nil, nil }, Graphics: graphics.None})
	if err != nil {
		t.Fatal(err)
	}
	long := infoEngine{ckpt: "/home/researcher/.cache/lavascope/finetune/demo-2026-12-07T20-15-00-123456789/last"}
	m.setEngine(long)
	m.loading = false
	m.before, m.after = infoEngine{ckpt: "demo"}, long
	for _, w := range []int{60, 80, 120} {
		bar := ansi.Strip(m.statusBar(w))
		wants := []string{"chefer", "start layer all", "target own", "(after)", "/last"}
		if w == 60 {
			wants = []string{"chefer", "layer all", "own"}
		}
		for _, want := range wants {
			if !strings.Contains(bar, want) {
				t.Errorf("width %d: %q lacks %q", w, bar, want)
			}
		}
		if ansi.StringWidth(bar) != w {
			t.Errorf("width %d: the bar is %d cells", w, ansi.StringWidth(bar))
		}
	}
}
