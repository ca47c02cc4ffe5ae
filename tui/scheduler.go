package tui

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/lavascope/lavascope/explain"
)

// scheduler decides what the model side computes next: the split's scores
// in chunks, then explanations, the pair the user looks at first. It holds
// the results, keyed by checkpoint, and knows nothing of the terminal: the
// Model turns the jobs it hands out into commands, and tests drive it with
// plain calls.
type scheduler struct {
	ids []string // the split's pair ids, in dataset order

	// engine is the engine shown; engines holds every engine opened, for
	// Close.
	engine  Engine
	info    EngineInfo
	engines []Engine

	scores   map[string]map[string]Score // checkpoint → pair id → score
	scoreErr error
	scoring  string // checkpoint being scored, "" when none

	exps        map[expKey]*explained
	lastElapsed time.Duration
	// ctx is the parent of every explanation's context: the Model's,
	// cancelled when it quits.
	ctx context.Context
	// fore explains what the screen shows, back the background sweep; at
	// most one of each runs, and back never starts while fore runs.
	fore, back *explainJob
	// solo holds keys whose chunk failed: each is asked for alone, so that
	// one bad pair fails by itself.
	solo map[expKey]bool
	// requeued counts the sweep's keys whose job was cancelled for a
	// foreground request and left to a later chunk.
	requeued int

	// The pair view's requests for trees (probe.go): answered, waiting and
	// running.
	probes     map[probeKey]*probed
	probeQueue []probeKey
	probing    *probeKey

	// The faithfulness metrics (faithful.go), the lowest priority.
	faith faithState
}

// expKey names one cached explanation.
type expKey struct {
	ckpt, pair string
	method     Method
	layer      explain.StartLayer
	target     Target
	// trees are the readings' trees of an edited pair, joined by newlines;
	// "" for the dataset's.
	trees string
	// cf is the counterfactual explained (the pair view's M, I, D); the
	// zero Variant for the pair as it is.
	cf Variant
}

// settings are the explanation settings the screen shows.
type settings struct {
	method Method
	layer  explain.StartLayer
	target Target
}

func newScheduler(ids []string) scheduler {
	return scheduler{ids: ids, scores: map[string]map[string]Score{}, exps: map[expKey]*explained{}, probes: map[probeKey]*probed{},
		ctx: context.Background(), solo: map[expKey]bool{}}
}

// setEngine makes e the engine whose results are shown and computed.
func (s *scheduler) setEngine(e Engine) {
	s.engine = e
	s.info = e.Info()
	if s.scores[s.info.Checkpoint] == nil {
		s.scores[s.info.Checkpoint] = map[string]Score{}
	}
}

func (s *scheduler) ckpt() string { return s.info.Checkpoint }

// keyFor is the cache key of pair id's explanation under st with the shown
// engine.
func (s *scheduler) keyFor(id string, st settings) expKey {
	return expKey{ckpt: s.ckpt(), pair: id, method: st.method, layer: st.layer, target: st.target}
}

// nextScore returns the next chunk of at most n unscored pairs of the shown
// engine and marks it running; none when nothing is left to score or a
// chunk is already running.
func (s *scheduler) nextScore(n int) (ckpt string, ids []string) {
	if s.engine == nil || s.scoring != "" {
		return "", nil
	}
	have := s.scores[s.ckpt()]
	for _, id := range s.ids {
		if _, ok := have[id]; !ok {
			ids = append(ids, id)
			if len(ids) == n {
				break
			}
		}
	}
	if len(ids) > 0 {
		s.scoring = s.ckpt()
	}
	return s.scoring, ids
}

// scored records a chunk's scores; a cancelled chunk is no error.
func (s *scheduler) scored(ckpt string, scores []Score, err error) error {
	s.scoring = ""
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		s.scoreErr = err
		return err
	}
	have := s.scores[ckpt]
	if have == nil {
		have = map[string]Score{}
		s.scores[ckpt] = have
	}
	for _, sc := range scores {
		have[sc.PairID] = sc
	}
	return nil
}

// allScored reports whether every pair of the split has a score under ckpt.
func (s *scheduler) allScored(ckpt string) bool { return len(s.scores[ckpt]) == len(s.ids) }

// explainJob is one call to the engine: one key in the foreground, a
// chunk of the split in the background, under a context of its own.
type explainJob struct {
	keys   []expKey
	fore   bool
	ctx    context.Context
	cancel context.CancelFunc
}

// sweepBudget is about how long one chunk of the background sweep may
// take, by the last explanation's time per pair: a key press that needs a
// pair of the running chunk waits for all of it. maxSweepChunk bounds it:
// BenchmarkTorchEngineExplainMany found the demo model's time per pair
// flat from 2 to 8 pairs a chunk, so larger chunks only save the explorer
// its messages, one per chunk (docs/performance.md).
const (
	sweepBudget   = 50 * time.Millisecond
	maxSweepChunk = 4
)

// sweepChunk is how many keys the next background job asks a
// BatchExplainer for, given the time per pair of the last explanation:
// one until a time is known, and one for models slower than the budget
// (a CLIP of ViT-B/32's size on a CPU takes most of a second a pair).
func sweepChunk(perPair time.Duration) int {
	if perPair <= 0 {
		return 1
	}
	return int(max(1, min(maxSweepChunk, sweepBudget/perPair)))
}

// nextExplain returns the next explanation job to start, none when the
// engine should be left as it is. shown are the keys the screen shows, in
// order (a comparison's before and after, an edited pair's trees, the open
// pair): the first not explained is the foreground request, which starts
// at once, cancelling a background job (its keys stay unexplained, so a
// later chunk takes them again) and a foreground job the screen no longer
// shows (an older key press's). Only when nothing shown is missing and no
// foreground job runs does the sweep go on: under st, the ids of first in order (the list from its
// cursor), then the rest of the split, in chunks of up to chunk keys. It
// waits while scores are computed, so that the list fills first.
func (s *scheduler) nextExplain(st settings, shown []expKey, first []string, chunk int) *explainJob {
	if s.engine == nil || s.scoring != "" || s.ctx.Err() != nil {
		return nil
	}
	var want *expKey
	for i, k := range shown {
		if _, done := s.exps[k]; !done {
			want = &shown[i]
			break
		}
	}
	if s.fore != nil {
		// A foreground job still shown, or whose pair was just left for
		// the list (where the sweep would ask for it next), runs on; one
		// that an other request replaces is cancelled.
		if want == nil || slices.Contains(shown, s.fore.keys[0]) {
			return nil
		}
		s.fore.cancel()
		s.fore = nil
	}
	if want != nil {
		if s.back != nil && slices.Contains(s.back.keys, *want) {
			// Already under way: cancelling would only start it again.
			return nil
		}
		if s.back != nil {
			s.requeued += len(s.back.keys)
			s.back.cancel()
			s.back = nil
		}
		s.fore = s.newJob([]expKey{*want}, true)
		return s.fore
	}
	if s.back != nil {
		return nil
	}
	var keys []expKey
	seen := map[string]bool{}
	for _, ids := range [][]string{first, s.ids} {
		for _, id := range ids {
			k := s.keyFor(id, st)
			if _, done := s.exps[k]; done || seen[id] {
				continue
			}
			seen[id] = true
			switch {
			case s.solo[k] && len(keys) > 0:
				continue // alone, in a later job
			case s.solo[k]:
				return s.startBack([]expKey{k})
			}
			if keys = append(keys, k); len(keys) >= max(1, chunk) {
				return s.startBack(keys)
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return s.startBack(keys)
}

func (s *scheduler) startBack(keys []expKey) *explainJob {
	s.back = s.newJob(keys, false)
	return s.back
}

func (s *scheduler) newJob(keys []expKey, fore bool) *explainJob {
	ctx, cancel := context.WithCancel(s.ctx)
	return &explainJob{keys: keys, fore: fore, ctx: ctx, cancel: cancel}
}

// explained records the end of job j: es[i] is the explanation of
// j.keys[i] when err is nil. A cancelled job keeps nothing; a chunk that
// failed keeps nothing either but has its keys asked for one by one; a
// single key that failed is kept as a failure. It returns whether
// anything was kept.
func (s *scheduler) explained(j *explainJob, es []*explained, err error) (ok bool) {
	j.cancel()
	if s.fore == j {
		s.fore = nil
	}
	if s.back == j {
		s.back = nil
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if err != nil && len(j.keys) > 1 {
		for _, k := range j.keys {
			s.solo[k] = true
		}
		return false
	}
	for i, k := range j.keys {
		if err != nil {
			s.exps[k] = &explained{err: err}
		} else {
			s.exps[k] = es[i]
		}
	}
	return true
}

// explainedCount counts the pairs explained under st with the shown engine.
func (s *scheduler) explainedCount(st settings) int {
	n := 0
	for _, id := range s.ids {
		if _, ok := s.exps[s.keyFor(id, st)]; ok {
			n++
		}
	}
	return n
}

// busy reports whether a score or an explanation is running.
func (s *scheduler) busy() bool {
	return s.scoring != "" || s.fore != nil || s.back != nil || s.probing != nil
}
