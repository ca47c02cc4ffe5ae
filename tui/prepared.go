package tui

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
)

// prepared is what the explorer derives from a pair's text alone: parsed
// trees, their diff and linearizations. It is built on the UI goroutine the
// first time a pair is shown (parsing is microseconds) and kept.
type prepared struct {
	pair  *loader.Pair
	nodes []*trees.Node
	errs  []error
	diff  *trees.TreeDiff
	// only[j] holds the constituents of reading j's tree that the other
	// reading's tree lacks.
	only    [2]map[*trees.Node]bool
	summary string
	lins    map[trees.Style][]*trees.Linear
	// score, for an edited pair, is its logits from the engine's Prober;
	// nil: the scheduler's score of the pair.
	score *Score
	// trees are an edited pair's trees as in expKey.trees; "" for the
	// dataset's.
	trees string
}

func (m *Model) prepare(i int) *prepared {
	return m.preparePair(&m.pairs[i], m.pairs[i].ID)
}

// prepareEdited is pair i with its live edits (Model.currentTrees).
func (m *Model) prepareEdited(i int) *prepared {
	return m.prepareTrees(i, strings.Join(m.currentTrees(i), "\n"))
}

// prepareTrees is pair i with the trees ts (as in expKey.trees), kept
// apart from the dataset's.
func (m *Model) prepareTrees(i int, ts string) *prepared {
	key := m.pairs[i].ID + "\x00" + ts
	if pp, ok := m.prepared[key]; ok {
		return pp
	}
	p, err := ExplainRequest{Trees: ts}.Edited(&m.pairs[i])
	if err != nil {
		// The trees come from currentTrees, one a reading.
		panic(err)
	}
	pp := m.preparePair(p, key)
	pp.trees = ts
	return pp
}

// preparePair prepares p, kept under key.
func (m *Model) preparePair(p *loader.Pair, key string) *prepared {
	if pp, ok := m.prepared[key]; ok {
		return pp
	}
	pp := &prepared{pair: p, nodes: make([]*trees.Node, len(p.Readings)), errs: make([]error, len(p.Readings)), lins: map[trees.Style][]*trees.Linear{}}
	for j, r := range p.Readings {
		n, err := trees.Parse(r.Tree)
		if err != nil {
			pp.errs[j] = fmt.Errorf("reading %s: %w", letter(j), err)
			continue
		}
		pp.nodes[j] = n
	}
	if len(pp.nodes) >= 2 && pp.nodes[0] != nil && pp.nodes[1] != nil {
		d, err := trees.Diff(pp.nodes[0], pp.nodes[1])
		if err != nil {
			pp.summary = "trees not comparable: " + err.Error()
		} else {
			pp.diff = d
			pp.only[0], pp.only[1] = map[*trees.Node]bool{}, map[*trees.Node]bool{}
			for _, c := range d.OnlyA {
				pp.only[0][c.Node] = true
			}
			for _, c := range d.OnlyB {
				pp.only[1][c.Node] = true
			}
			pp.summary = diffSummary(d)
		}
	}
	m.prepared[key] = pp
	return pp
}

// linear returns reading j's tree linearized in style s, nil when the tree
// did not parse.
func (pp *prepared) linear(j int, s trees.Style) *trees.Linear {
	ls, ok := pp.lins[s]
	if !ok {
		ls = make([]*trees.Linear, len(pp.nodes))
		for i, n := range pp.nodes {
			if n != nil {
				ls[i] = trees.Linearize(n, s)
			}
		}
		pp.lins[s] = ls
	}
	if j < 0 || j >= len(ls) {
		return nil
	}
	return ls[j]
}

// diffSummary says in one line where two readings part: the first moved
// constituent and its sites, or the constituents only one tree has.
func diffSummary(d *trees.TreeDiff) string {
	span := func(c trees.Constituent) string {
		return "“" + strings.Join(d.Words[c.Start:c.End], " ") + "”"
	}
	switch {
	case d.Equal():
		return "the two trees are the same"
	case len(d.Moves) > 0:
		mv := d.Moves[0]
		return fmt.Sprintf("%s %s attaches to %s in A, to %s in B", mv.Label, span(mv.Constituent), mv.SiteA.Label, mv.SiteB.Label)
	}
	list := func(cs []trees.Constituent) string {
		parts := make([]string, len(cs))
		for i, c := range cs {
			parts[i] = c.Label + " " + span(c)
		}
		return strings.Join(parts, ", ")
	}
	switch {
	case len(d.OnlyA) == 0:
		return "only B has " + list(d.OnlyB)
	case len(d.OnlyB) == 0:
		return "only A has " + list(d.OnlyA)
	}
	return "only A has " + list(d.OnlyA) + " · only B has " + list(d.OnlyB)
}

// explained is a cached explanation with what the views derive from it.
type explained struct {
	exp      *Explanation
	err      error
	readings []readingRel
	// point is each reading's pointing game, nil where its image has no
	// evidence box.
	point []*explain.Pointing
	// boxMass is each reading's share of image relevance inside each
	// evidence box of its image, in the boxes' order; nil like point.
	boxMass [][]float64
	// ana is each reading's relevance in context (package analysis); nil
	// where the engine gave no reports or they could not be analysed.
	ana []*report.Analysis
}

// readingRel is one reading's relevance, normalised for painting: values in
// [-1, 1], divided by the largest magnitude.
type readingRel struct {
	text   string
	tokens []Token
	tok    []float64
	// nodes is nil when the tokens could not be tied to the tree.
	nodes     map[*trees.Node]float64
	unmatched map[int]bool
	err       error
}

func newExplained(pp *prepared, exp *Explanation, style trees.Style) *explained {
	e := &explained{exp: exp, readings: make([]readingRel, len(exp.Readings))}
	aligns := make([]*trees.Alignment, len(exp.Readings))
	for j, rr := range exp.Readings {
		r := &e.readings[j]
		r.text, r.tokens = rr.Text, rr.Tokens
		raw := make([]float64, len(rr.Tokens))
		offs := make([][2]int, len(rr.Tokens))
		for t, tok := range rr.Tokens {
			raw[t] = tok.Relevance
			offs[t] = [2]int{tok.Start, tok.End}
		}
		r.tok = normalise(raw, func(t int) bool { return rr.Tokens[t].Start < rr.Tokens[t].End })
		lin := pp.linear(j, style)
		switch {
		case lin == nil:
			r.err = pp.errs[j]
			continue
		case lin.Text != rr.Text:
			r.err = fmt.Errorf("the engine read %q, not the tree's %s linearization", clean(rr.Text), style)
			continue
		}
		al, err := trees.Align(lin, offs)
		if err != nil {
			r.err = err
			continue
		}
		aligns[j] = al
		rel, err := al.Aggregate(raw)
		if err != nil {
			r.err = err
			continue
		}
		nodes := make([]*trees.Node, 0, len(rel.Nodes))
		vals := make([]float64, 0, len(rel.Nodes))
		for n, v := range rel.Nodes {
			nodes = append(nodes, n)
			vals = append(vals, v)
		}
		norm := normalise(vals, nil)
		r.nodes = make(map[*trees.Node]float64, len(nodes))
		for k, n := range nodes {
			r.nodes[n] = norm[k]
		}
	}
	if pp.diff != nil && len(aligns) >= 2 && aligns[0] != nil && aligns[1] != nil {
		if a, b, err := pp.diff.UnmatchedTokens(aligns[0], aligns[1]); err == nil {
			e.readings[0].unmatched, e.readings[1].unmatched = set(a), set(b)
		}
	}
	return e
}

func set(xs []int) map[int]bool {
	m := make(map[int]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// normalise divides vs by their largest magnitude among the entries keep
// accepts (all when keep is nil); the others become 0.
func normalise(vs []float64, keep func(int) bool) []float64 {
	hi := 0.0
	for i, v := range vs {
		if (keep == nil || keep(i)) && !math.IsNaN(v) {
			hi = max(hi, math.Abs(v))
		}
	}
	out := make([]float64, len(vs))
	if hi == 0 {
		return out
	}
	for i, v := range vs {
		if (keep == nil || keep(i)) && !math.IsNaN(v) {
			out[i] = v / hi
		}
	}
	return out
}

// topTokens returns the k most relevant tokens of a reading with their
// normalised relevance, most relevant first.
func (r *readingRel) topTokens(k int) []rankedToken {
	idx := make([]int, 0, len(r.tokens))
	for t, tok := range r.tokens {
		if tok.Start < tok.End {
			idx = append(idx, t)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return r.tok[idx[a]] > r.tok[idx[b]] })
	out := make([]rankedToken, 0, k)
	for _, t := range idx[:min(k, len(idx))] {
		tok := r.tokens[t]
		tok.Relevance = r.tok[t]
		out = append(out, rankedToken{tok, t})
	}
	return out
}

// rankedToken is a token with its position in the reading's text.
type rankedToken struct {
	Token
	index int
}
