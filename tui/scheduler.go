package tui

import (
	"context"
	"errors"
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
	inflight    *expKey
	lastElapsed time.Duration

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
}

// settings are the explanation settings the screen shows.
type settings struct {
	method Method
	layer  explain.StartLayer
	target Target
}

func newScheduler(ids []string) scheduler {
	return scheduler{ids: ids, scores: map[string]map[string]Score{}, exps: map[expKey]*explained{}, probes: map[probeKey]*probed{}}
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

// nextExplain picks the next explanation under st and marks it running:
// the ids of first in order (the open pair, then the list from its
// cursor), then the rest of the split. It waits while scores are computed,
// so that the list fills first.
//
// keys, which may name other checkpoints (the before and after of a
// comparison), come before all of them.
func (s *scheduler) nextExplain(st settings, first []string, keys ...expKey) (expKey, bool) {
	if s.engine == nil || s.inflight != nil || s.scoring != "" {
		return expKey{}, false
	}
	for _, k := range keys {
		if _, done := s.exps[k]; !done {
			s.inflight = &k
			return k, true
		}
	}
	for _, ids := range [][]string{first, s.ids} {
		for _, id := range ids {
			k := s.keyFor(id, st)
			if _, done := s.exps[k]; !done {
				s.inflight = &k
				return k, true
			}
		}
	}
	return expKey{}, false
}

// explained records the end of the running explanation; ok is false when
// it was cancelled and nothing is kept.
func (s *scheduler) explained(k expKey, e *explained, err error) (ok bool) {
	s.inflight = nil
	if errors.Is(err, context.Canceled) {
		return false
	}
	if err != nil {
		e = &explained{err: err}
	}
	s.exps[k] = e
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
func (s *scheduler) busy() bool { return s.scoring != "" || s.inflight != nil || s.probing != nil }
