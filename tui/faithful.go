package tui

import (
	"context"
	"errors"

	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/explain"
)

// Faithfulness is implemented by an engine that can measure how faithful
// its explanations are, as `lavascope explain --metrics` does: the
// explorer shows the measures of the open pair in the pair view and, over
// the split, in the summary. Engines without it show none.
type Faithfulness interface {
	// Metrics explains each reading's own logit of req's pair under req's
	// method and start layer (req.Target is not read: the measures are
	// those of the own logit) and measures it: the margin as the most and
	// the least relevant patches are removed (explain.Perturbation) and as
	// the most and the least relevant tokens are dropped
	// (explain.TextDeletion). The result is indexed like the readings;
	// Pointing may be nil, the explorer plays the pointing game itself.
	Metrics(ctx context.Context, req ExplainRequest) ([]*explain.Metrics, error)
}

// Faithfulness in the explorer: the metrics of the open pair, asked for
// once its explanation is shown, and, when the summary's p turns the sweep
// on, of every pair of the split. They are the lowest priority of the
// model side: a request starts only when no score, explanation or probe
// waits before it, and a request nobody wants any more (the pair was left,
// the settings changed) is cancelled, so that it holds the engine for one
// reading at most.

// faithKey names one pair's metrics: those of the own logit, so that the
// target is not part of it.
type faithKey struct {
	ckpt, pair string
	method     Method
	layer      explain.StartLayer
}

// faithed is a pair's metrics, per reading, or why there are none.
type faithed struct {
	ms  []*explain.Metrics
	err error
}

// faithState is the scheduler's part for the metrics.
type faithState struct {
	done    map[faithKey]*faithed
	running *faithKey
	cancel  context.CancelFunc
	// sweep is on while the split is measured (p on the summary).
	sweep bool
}

type faithMsg struct {
	key faithKey
	ms  []*explain.Metrics
	err error
}

// faithKeyFor is the key of pair id's metrics under the shown engine and
// settings.
func (m *Model) faithKeyFor(id string) faithKey {
	return faithKey{ckpt: m.ckpt(), pair: id, method: m.method, layer: m.layer}
}

// faithful is the shown engine's Faithfulness; nil when it has none.
func (m *Model) faithful() Faithfulness {
	if m.engine == nil {
		return nil
	}
	f, _ := m.engine.(Faithfulness)
	return f
}

// faithWanted reports whether k is still worth computing.
func (m *Model) faithWanted(k faithKey) bool {
	if k.ckpt != m.ckpt() || k.method != m.method || k.layer != m.layer {
		return false
	}
	return m.faith.sweep || (m.faithShown() && m.pairs[m.cur].ID == k.pair)
}

// faithShown reports whether the pair view shows the open pair's metrics:
// for the own target, whose logit they measure, and not beside the model
// before a fine-tune, which has none.
func (m *Model) faithShown() bool {
	return m.opened && m.screen == screenPair && m.panel.kind == panelNone && m.target == TargetOwn && !m.comparing()
}

// faithNext starts the next measurement when the model side has nothing
// else to do, and cancels the running one when it is no longer wanted.
func (m *Model) faithNext() tea.Cmd {
	f := m.faithful()
	if f == nil {
		return nil
	}
	if r := m.faith.running; r != nil {
		if !m.faithWanted(*r) {
			m.faith.cancel()
		}
		return nil
	}
	if m.scoring != "" || m.probing != nil {
		return nil
	}
	k, ok := m.nextFaith()
	if !ok {
		return nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.faith.running, m.faith.cancel = &k, cancel
	req := ExplainRequest{PairID: k.pair, Method: k.method, StartLayer: k.layer, Target: TargetOwn}
	return func() tea.Msg {
		ms, err := f.Metrics(ctx, req)
		return faithMsg{key: k, ms: ms, err: err}
	}
}

// nextFaith picks the next pair to measure: the open pair once its
// explanation is in, then, with the sweep on and no explanation running,
// the split in order.
func (m *Model) nextFaith() (faithKey, bool) {
	if m.faithShown() {
		id := m.pairs[m.cur].ID
		k := m.faithKeyFor(id)
		if _, explained := m.exps[m.currentKey(id)]; explained && m.faith.done[k] == nil {
			return k, true
		}
	}
	if !m.faith.sweep || m.fore != nil || m.back != nil {
		return faithKey{}, false
	}
	for _, id := range m.ids {
		if k := m.faithKeyFor(id); m.faith.done[k] == nil {
			return k, true
		}
	}
	return faithKey{}, false
}

func (m *Model) onFaith(msg faithMsg) tea.Cmd {
	m.faith.running = nil
	m.faith.cancel()
	if errors.Is(msg.err, context.Canceled) {
		return nil
	}
	if m.faith.done == nil {
		m.faith.done = map[faithKey]*faithed{}
	}
	m.faith.done[msg.key] = &faithed{ms: msg.ms, err: msg.err}
	if msg.err != nil {
		m.setFlash(true, "measuring faithfulness of %s failed: %v", clean(msg.key.pair), msg.err)
	} else if n, _ := m.faithMeasured(); m.faith.sweep && n == len(m.ids) && msg.key == m.faithKeyFor(msg.key.pair) {
		m.setFlash(false, "faithfulness measured over the split: %s", plural(n, "pair"))
	}
	return nil
}

// faithMeasured counts the pairs and readings measured under the shown
// engine and settings.
func (m *Model) faithMeasured() (pairs, readings int) {
	for _, id := range m.ids {
		if d := m.faith.done[m.faithKeyFor(id)]; d != nil && d.err == nil {
			pairs++
			readings += len(d.ms)
		}
	}
	return pairs, readings
}

// faithLines are reading j's metrics in the pair view, two short lines
// that fit under the image: the perturbation AUCs, most relevant patches
// first then least relevant first (a faithful map: the first below the
// second), and the margin's change as the most, then the least relevant
// tokens are dropped (the largest k of explain.DefaultKs). None for an
// explanation of edited trees or of a checkpoint not shown, whose metrics
// would be another's, and none where faithShown says so.
func (m *Model) faithLines(exp *explained, j int) []string {
	x := exp.exp
	// The metrics are the pair's as it is: an edited pair's or a
	// counterfactual's heatmaps are shown without them.
	if m.faithful() == nil || !m.faithShown() || x.Request.Trees != "" || x.Request.Variant != (Variant{}) || x.Checkpoint != m.ckpt() {
		return nil
	}
	k := m.faithKeyFor(x.Request.PairID)
	d := m.faith.done[k]
	switch {
	case d == nil && m.faith.running != nil && *m.faith.running == k:
		return []string{m.spin.View() + stDim.Render(" measuring…")}
	case d == nil:
		return nil
	case d.err != nil:
		return []string{stBad.Render("faithfulness: " + clean(d.err.Error()))}
	case j >= len(d.ms) || d.ms[j] == nil:
		return nil
	}
	return faithText(d.ms[j])
}

// faithText is one reading's metrics, short.
func faithText(mt *explain.Metrics) []string {
	var out []string
	if p := mt.Perturbation; p != nil {
		out = append(out, stDim.Render("AUC± ")+signed(p.Positive.AUC)+stDim.Render("/")+signed(p.Negative.AUC))
	}
	if t := mt.Text; t != nil && len(t.Top) > 0 {
		last := len(t.Top) - 1
		out = append(out, stDim.Render("tok± ")+signed(t.Top[last].Delta)+stDim.Render("/")+signed(t.Bottom[last].Delta))
	}
	return out
}

// faithStats adds pair id's metrics under the shown settings to fs.
func (m *Model) faithStats(fs *familyStats, id string) {
	d := m.faith.done[m.faithKeyFor(id)]
	if d == nil || d.err != nil {
		return
	}
	for _, mt := range d.ms {
		if mt == nil {
			continue
		}
		if p := mt.Perturbation; p != nil {
			fs.aucPos = append(fs.aucPos, p.Positive.AUC)
			fs.aucNeg = append(fs.aucNeg, p.Negative.AUC)
		}
		if t := mt.Text; t != nil && len(t.Top) > 0 {
			fs.dropTop = append(fs.dropTop, t.Top[len(t.Top)-1].Delta)
			fs.dropBottom = append(fs.dropBottom, t.Bottom[len(t.Bottom)-1].Delta)
		}
	}
}

// toggleFaithSweep turns the measuring of the split on or off (p on the
// summary).
func (m *Model) toggleFaithSweep() tea.Cmd {
	if m.faithful() == nil {
		m.setFlash(true, "this engine cannot measure faithfulness")
		return nil
	}
	m.faith.sweep = !m.faith.sweep
	if m.faith.sweep {
		m.setFlash(false, "measuring faithfulness over the split, after the explanations (p stops)")
	} else {
		m.setFlash(false, "stopped measuring faithfulness")
	}
	return m.faithNext()
}
