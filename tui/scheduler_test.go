package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
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
		if j := s.nextExplain(st, nil, nil, 1); j != nil {
			t.Fatal("an explanation started while the split is scored")
		}
		scores, err := diagonalScores(ids)
		if err != nil {
			t.Fatal(err)
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
	shown := []expKey{s.keyFor("d", st)}
	for {
		j := s.nextExplain(st, shown, []string{"e", "b"}, 1)
		if j == nil {
			break
		}
		if again := s.nextExplain(st, shown, nil, 1); again != nil {
			t.Fatal("two explanations at once")
		}
		var err error
		if j.keys[0].pair == "b" {
			err = errors.New("boom")
		}
		if !s.explained(j, []*explained{{}}, err) {
			t.Fatal("a finished explanation was dropped")
		}
		order = append(order, j.keys[0].pair)
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
	j := s.nextExplain(st, nil, nil, 1)
	if j == nil || j.keys[0].pair != "a" {
		t.Fatalf("next under rollout: %+v", j)
	}
	if s.explained(j, nil, context.Canceled) || s.explainedCount(st) != 0 || s.busy() {
		t.Fatal("a cancelled explanation was kept")
	}
}

// scoredScheduler is a scheduler over ids with every pair scored.
func scoredScheduler(t *testing.T, ids ...string) *scheduler {
	t.Helper()
	s := newScheduler(ids)
	s.setEngine(infoEngine{ckpt: "base"})
	ckpt, todo := s.nextScore(len(ids))
	scores, err := diagonalScores(todo)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.scored(ckpt, scores, nil); err != nil {
		t.Fatal(err)
	}
	return &s
}

// TestSchedulerForegroundCancelsTheSweep: what the screen shows starts at
// once, cancelling the sweep's chunk, whose keys a later chunk takes again;
// a newer request for the open pair supersedes an older one; the sweep
// waits while the foreground runs.
func TestSchedulerForegroundCancelsTheSweep(t *testing.T) {
	s := scoredScheduler(t, "a", "b", "c", "d", "e")
	st := settings{method: explain.Chefer, layer: explain.AllLayers, target: TargetOwn}
	back := s.nextExplain(st, nil, nil, 2)
	if back == nil || !slices.Equal(pairsOf(back), []string{"a", "b"}) || back.fore {
		t.Fatalf("first chunk %+v", back)
	}
	if again := s.nextExplain(st, nil, nil, 2); again != nil {
		t.Fatalf("a second chunk %v while %v runs", pairsOf(again), pairsOf(back))
	}
	// The sweep is on b: opening it waits for that chunk.
	if j := s.nextExplain(st, []expKey{s.keyFor("b", st)}, nil, 2); j != nil || back.ctx.Err() != nil {
		t.Fatalf("opening a pair of the running chunk started %+v", j)
	}
	// Opening d cancels the chunk.
	fore := s.nextExplain(st, []expKey{s.keyFor("d", st)}, nil, 2)
	if fore == nil || !fore.fore || !slices.Equal(pairsOf(fore), []string{"d"}) {
		t.Fatalf("foreground %+v", fore)
	}
	if back.ctx.Err() == nil || s.requeued != 2 {
		t.Fatalf("the chunk was not cancelled (requeued %d)", s.requeued)
	}
	// esc to the list: d runs on, and the sweep waits for it.
	if j := s.nextExplain(st, nil, nil, 2); j != nil || fore.ctx.Err() != nil {
		t.Fatalf("leaving the pair started %+v or cancelled its explanation", j)
	}
	// m on the open pair: the rollout request supersedes the chefer one.
	ro := st
	ro.method = explain.Rollout
	newer := s.nextExplain(ro, []expKey{s.keyFor("d", ro)}, nil, 2)
	if newer == nil || fore.ctx.Err() == nil || newer.keys[0].method != explain.Rollout {
		t.Fatalf("the newer key press did not supersede the older: %+v", newer)
	}
	// The cancelled jobs end as the engine notices.
	if s.explained(back, nil, context.Canceled) || s.explained(fore, nil, context.Canceled) {
		t.Fatal("a cancelled job kept something")
	}
	if j := s.nextExplain(ro, []expKey{s.keyFor("d", ro)}, nil, 2); j != nil {
		t.Fatalf("the sweep started %v while the foreground runs", pairsOf(j))
	}
	s.explained(newer, []*explained{{}}, nil)
	// Back to chefer with the pair closed: the sweep takes a and b again.
	var swept []string
	for j := s.nextExplain(st, nil, nil, 2); j != nil; j = s.nextExplain(st, nil, nil, 2) {
		swept = append(swept, pairsOf(j)...)
		es := make([]*explained, len(j.keys))
		for i := range es {
			es[i] = &explained{}
		}
		s.explained(j, es, nil)
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(swept, want) {
		t.Fatalf("swept %v, want %v", swept, want)
	}
	if s.busy() || s.explainedCount(st) != 5 {
		t.Fatal("the sweep did not complete")
	}
}

// TestSchedulerFailedChunkGoesPairByPair: a chunk that fails keeps
// nothing; its keys are asked for alone, so that only the bad one fails.
func TestSchedulerFailedChunkGoesPairByPair(t *testing.T) {
	s := scoredScheduler(t, "a", "b", "c")
	st := settings{method: explain.Chefer, layer: explain.AllLayers, target: TargetOwn}
	j := s.nextExplain(st, nil, nil, 3)
	if s.explained(j, nil, errors.New("pair b: bad tree")) {
		t.Fatal("a failed chunk was kept")
	}
	var jobs [][]string
	for j := s.nextExplain(st, nil, nil, 3); j != nil; j = s.nextExplain(st, nil, nil, 3) {
		jobs = append(jobs, pairsOf(j))
		var err error
		if j.keys[0].pair == "b" {
			err = errors.New("bad tree")
		}
		s.explained(j, []*explained{{}}, err)
	}
	if want := [][]string{{"a"}, {"b"}, {"c"}}; !slices.EqualFunc(jobs, want, slices.Equal) {
		t.Fatalf("jobs %v, want %v", jobs, want)
	}
	if e := s.exps[s.keyFor("b", st)]; e == nil || e.err == nil || s.exps[s.keyFor("a", st)].err != nil {
		t.Fatal("the failure is not b's alone")
	}
}

func pairsOf(j *explainJob) []string {
	var ids []string
	for _, k := range j.keys {
		ids = append(ids, k.pair)
	}
	return ids
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

// blockingEngine answers every call at once, in 5 ms by its account,
// except its second explanation, the sweep's second chunk, which blocks
// until its context is cancelled: an engine busy for as long as anyone
// lets it be. It explains in chunks.
type blockingEngine struct {
	infoEngine
	mu      sync.Mutex
	calls   [][]string // the pairs of each explanation call, in order
	blocked chan struct{}
	errs    []error // each call's answer, nil while it runs
}

func (e *blockingEngine) Score(ctx context.Context, ids []string) ([]Score, error) {
	return diagonalScores(ids)
}

// diagonalScores scores every pair of ids as one whose readings both pick
// their own image.
func diagonalScores(ids []string) ([]Score, error) {
	var out []Score
	for _, id := range ids {
		sc, err := NewScore(id, [][]float64{{1, 0}, {0, 1}})
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

func (e *blockingEngine) Explain(ctx context.Context, req ExplainRequest) (*Explanation, error) {
	out, err := e.ExplainMany(ctx, []ExplainRequest{req})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

func (e *blockingEngine) ExplainMany(ctx context.Context, reqs []ExplainRequest) ([]*Explanation, error) {
	var ids []string
	for _, r := range reqs {
		ids = append(ids, r.PairID)
	}
	e.mu.Lock()
	e.calls = append(e.calls, ids)
	e.errs = append(e.errs, nil)
	call := len(e.calls) - 1
	e.mu.Unlock()
	var err error
	if call == 1 {
		close(e.blocked)
		<-ctx.Done()
		err = ctx.Err()
	}
	e.mu.Lock()
	e.errs[call] = err
	e.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]*Explanation, len(reqs))
	for i, r := range reqs {
		out[i] = &Explanation{Request: r, Checkpoint: e.ckpt, Readings: make([]ReadingRelevance, 2), Elapsed: 5 * time.Millisecond}
	}
	return out, nil
}

func (e *blockingEngine) Close() error { return nil }

func (e *blockingEngine) snapshot() ([][]string, []error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls), slices.Clone(e.errs)
}

// TestExplorerOpensAPairWhileTheSweepIsBusy drives the explorer's Model
// with an engine whose second (background) explanation never ends on its
// own: opening another pair starts that pair's explanation at once and
// cancels the sweep's chunk, whose pairs are explained again later, and the
// sweep still completes.
func TestExplorerOpensAPairWhileTheSweepIsBusy(t *testing.T) {
	const n = 7
	var pairs []loader.Pair
	tree := "(S (NP (NNP Danny)) (VP (VBD left)))"
	for i := range n {
		pairs = append(pairs, loader.Pair{ID: fmt.Sprintf("p%d", i), Sentence: "Danny left", Split: loader.SplitTest,
			Readings: []loader.Reading{{Tree: tree, Image: "a.png"}, {Tree: tree, Image: "b.png"}}})
	}
	eng := &blockingEngine{infoEngine: infoEngine{ckpt: "base"}, blocked: make(chan struct{})}
	m, err := New(Options{Data: &loader.Dataset{Pairs: pairs}, Split: loader.SplitTest, Graphics: graphics.None,
		Open: func(context.Context) (Engine, error) { return eng, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	msgs := make(chan tea.Msg, 64)
	run := func(cmd tea.Cmd) {
		if cmd != nil {
			go func() { msgs <- cmd() }()
		}
	}
	var deliver func(tea.Msg)
	deliver = func(msg tea.Msg) {
		switch msg := msg.(type) {
		case nil, spinner.TickMsg:
		case tea.BatchMsg:
			for _, c := range msg {
				run(c)
			}
		default:
			_, cmd := m.Update(msg)
			run(cmd)
		}
	}
	pump := func(what string, done func() bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for !done() {
			select {
			case msg := <-msgs:
				deliver(msg)
			case <-time.After(time.Millisecond):
			case <-deadline:
				calls, errs := eng.snapshot()
				t.Fatalf("%s: not reached; calls %v %v; status %q", what, calls, errs, m.progress())
			}
		}
	}
	deliver(tea.WindowSizeMsg{Width: 100, Height: 30})
	run(m.Init())
	pump("the sweep's second chunk", func() bool {
		select {
		case <-eng.blocked:
			return true
		default:
			return false
		}
	})
	calls, _ := eng.snapshot()
	// One pair first, while no time per pair is known to size a chunk
	// by; then as many as fit sweepBudget.
	if want := [][]string{{"p0"}, {"p1", "p2", "p3", "p4"}}; !slices.EqualFunc(calls, want, slices.Equal) {
		t.Fatalf("the sweep began with %v, want %v", calls, want)
	}
	// Down to p6 and open it.
	j := tea.KeyPressMsg{Code: 'j', Text: "j"}
	for _, k := range []tea.KeyPressMsg{j, j, j, j, j, j, {Code: tea.KeyEnter}} {
		deliver(k)
	}
	pump("p6 explained and the chunk given up", func() bool {
		_, errs := eng.snapshot()
		_, ok := m.exps[m.currentKey("p6")]
		return ok && errs[1] != nil
	})
	calls, errs := eng.snapshot()
	if !slices.Equal(calls[2], []string{"p6"}) || !errors.Is(errs[1], context.Canceled) {
		t.Fatalf("calls %v, answers %v: want the chunk cancelled, then p6 alone", calls, errs)
	}
	pump("the sweep's end", func() bool { return m.progress() == fmt.Sprintf("all %d explained", n) && !m.busy() })
	calls, _ = eng.snapshot()
	redone := 0
	for _, c := range calls[3:] {
		for _, id := range c {
			if slices.Contains(calls[1], id) {
				redone++
			}
		}
	}
	if redone != 4 {
		t.Fatalf("the cancelled chunk's pairs were asked for %d times after it: calls %v", redone, calls)
	}
	if m.requeued != 4 {
		t.Fatalf("requeued %d, want 4", m.requeued)
	}
}

func TestSweepChunkFitsTheBudget(t *testing.T) {
	for _, c := range []struct {
		perPair time.Duration
		want    int
	}{{0, 1}, {time.Millisecond, maxSweepChunk}, {sweepBudget / 2, 2}, {sweepBudget, 1}, {700 * time.Millisecond, 1}} {
		if got := sweepChunk(c.perPair); got != c.want {
			t.Errorf("sweepChunk(%v) = %d, want %d", c.perPair, got, c.want)
		}
	}
}
