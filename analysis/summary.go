package analysis

import (
	"math"
	"slices"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/report"
)

// Unnamed is the family of readings whose pair names none.
const Unnamed = "unnamed"

// Row is one reading of a split as Summarize aggregates it.
type Row struct {
	Pair     string
	Reading  int
	Sentence string
	// Family is the pair's ambiguity family, Unnamed when it has none.
	Family  string
	Correct bool
	// Margin is the reading's own logit minus its twin's.
	Margin float64
	// Contrast is nil when the reading was analysed without its twin;
	// UniqueTokens are then empty, else the text of Contrast.UniqueTokens.
	Contrast     *report.Contrast
	UniqueTokens []string
	// Metrics are nil when they were not computed.
	Metrics *explain.Metrics
}

// RowOf is r as a row: its family, outcome, margin (own logit minus the
// twin's, the next reading's as report.TargetTwin pairs them), contrast
// and metrics.
func RowOf(r *report.Reading) Row {
	row := Row{Pair: r.Pair, Reading: r.Reading, Sentence: r.Sentence, Family: r.Ambiguity, Correct: r.Correct, Metrics: r.Metrics}
	if row.Family == "" {
		row.Family = Unnamed
	}
	if n := len(r.Logits); r.Reading >= 0 && r.Reading < n {
		row.Margin = r.Logits[r.Reading] - r.Logits[(r.Reading+1)%n]
	}
	if r.Analysis != nil && r.Analysis.Contrast != nil {
		row.Contrast = r.Analysis.Contrast
		for _, k := range row.Contrast.UniqueTokens {
			if k >= 0 && k < len(r.Tokens) {
				if t := r.Tokens[k]; t.Start >= 0 && t.Start <= t.End && t.End <= len(r.Text) {
					row.UniqueTokens = append(row.UniqueTokens, r.Text[t.Start:t.End])
				}
			}
		}
	}
	return row
}

// Histogram counts values in bins: bin i holds Edges[i] ≤ v < Edges[i+1],
// the last bin also its upper edge; values outside the edges are not
// counted.
type Histogram struct {
	Edges  []float64 `json:"edges"`
	Counts []int     `json:"counts"`
}

// Bins is about how many bins Summarize's histograms have: the smallest
// round bin width (1, 2, 2.5 or 5 times a power of ten) that spans the
// values in at most 1.5×Bins bins, plus one where they straddle an edge.
const Bins = 10

// newHistogram spans [lo, hi] with a round bin width, its edges multiples
// of it, so that 0 is an edge whenever it is in range.
func newHistogram(lo, hi float64) Histogram {
	if !(hi > lo) {
		hi = lo + 1
	}
	w := math.Pow(10, math.Floor(math.Log10((hi-lo)/Bins)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if (hi-lo)/(m*w) <= 1.5*Bins {
			w *= m
			break
		}
	}
	first, last := math.Floor(lo/w+1e-9), math.Ceil(hi/w-1e-9)
	last = max(last, first+1)
	h := Histogram{}
	for k := first; k <= last; k++ {
		// Rounding to the width's decimals keeps 0.30000000000000004 out.
		h.Edges = append(h.Edges, roundTo(k*w, w))
	}
	h.Counts = make([]int, len(h.Edges)-1)
	return h
}

func roundTo(v, w float64) float64 {
	d := math.Pow(10, math.Max(0, -math.Floor(math.Log10(w)))+1)
	return math.Round(v*d) / d
}

// empty is a histogram with h's edges and no counts.
func (h Histogram) empty() Histogram {
	return Histogram{Edges: slices.Clone(h.Edges), Counts: make([]int, len(h.Counts))}
}

func (h *Histogram) add(v float64) {
	lo, hi := h.Edges[0], h.Edges[len(h.Edges)-1]
	if !(v >= lo && v <= hi) {
		return
	}
	i := int(float64(len(h.Counts)) * (v - lo) / (hi - lo))
	h.Counts[min(i, len(h.Counts)-1)]++
}

// Mean is an average with the number of values it is over.
type Mean struct {
	Mean float64 `json:"mean"`
	N    int     `json:"n"`
}

func (m *Mean) add(v float64) { m.Mean += v; m.N++ }

func (m *Mean) done() {
	if m.N > 0 {
		m.Mean /= float64(m.N)
	}
}

// Family is the aggregate of a family's readings (or of all of them).
type Family struct {
	Name     string `json:"name"`
	Pairs    int    `json:"pairs"`
	Readings int    `json:"readings"`
	Correct  int    `json:"correct"`
	// Accuracy is Correct / Readings.
	Accuracy   float64 `json:"accuracy"`
	MeanMargin float64 `json:"mean_margin"`
	// Unique, Shared, Chance, Site and Noun average the contrast's masses over
	// the readings that have them.
	Unique Mean `json:"unique"`
	Shared Mean `json:"shared"`
	Chance Mean `json:"chance"`
	Site   Mean `json:"site"`
	Noun   Mean `json:"noun"`
	// Faithfulness is explain.Summarize over the readings with metrics.
	Faithfulness explain.Summary `json:"faithfulness"`
	// MarginHist and UniqueHist share their edges with every family's.
	MarginHist Histogram `json:"margin_histogram"`
	UniqueHist Histogram `json:"unique_histogram"`
}

// Summary is a split's analysis: each family, by name, and all readings.
type Summary struct {
	Families []Family `json:"families"`
	All      Family   `json:"all"`
}

// Summarize aggregates rows per family and over all of them. Every
// family's histograms share the edges of all rows': the margins' range,
// and Unique from 0 to its largest value.
func Summarize(rows []Row) Summary {
	lo, hi, top := 0.0, 0.0, 0.0
	for i, r := range rows {
		if i == 0 || r.Margin < lo {
			lo = r.Margin
		}
		if i == 0 || r.Margin > hi {
			hi = r.Margin
		}
		if r.Contrast != nil {
			top = max(top, r.Contrast.Unique)
		}
	}
	edges := [2]Histogram{newHistogram(lo, hi), newHistogram(0, top)}
	byName := map[string][]Row{}
	for _, r := range rows {
		byName[r.Family] = append(byName[r.Family], r)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	s := Summary{All: family("all", rows, edges)}
	for _, n := range names {
		s.Families = append(s.Families, family(n, byName[n], edges))
	}
	return s
}

func family(name string, rows []Row, edges [2]Histogram) Family {
	f := Family{Name: name, Readings: len(rows), MarginHist: edges[0].empty(), UniqueHist: edges[1].empty()}
	pairs := map[string]bool{}
	var ms []explain.Metrics
	for _, r := range rows {
		pairs[r.Pair] = true
		if r.Correct {
			f.Correct++
		}
		f.MeanMargin += r.Margin
		f.MarginHist.add(r.Margin)
		if c := r.Contrast; c != nil {
			f.Unique.add(c.Unique)
			f.Shared.add(c.Shared)
			f.Chance.add(c.Chance)
			f.UniqueHist.add(c.Unique)
			if c.Site != nil {
				f.Site.add(c.Site.Mass)
			}
			if c.Noun != nil {
				f.Noun.add(c.Noun.Mass)
			}
		}
		if r.Metrics != nil {
			ms = append(ms, *r.Metrics)
		}
	}
	f.Pairs = len(pairs)
	if f.Readings > 0 {
		f.Accuracy = float64(f.Correct) / float64(f.Readings)
		f.MeanMargin /= float64(f.Readings)
	}
	for _, m := range []*Mean{&f.Unique, &f.Shared, &f.Chance, &f.Site, &f.Noun} {
		m.done()
	}
	f.Faithfulness = explain.Summarize(ms)
	return f
}
