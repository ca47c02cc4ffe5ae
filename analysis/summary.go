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
	Pair    string
	Reading int
	// Family is the pair's ambiguity family, Unnamed when it has none.
	Family  string
	Correct bool
	// Margin is the reading's own logit minus its twin's.
	Margin float64
	// Contrast is nil when the reading was analysed without its twin.
	Contrast *report.Contrast
	// Metrics are nil when they were not computed.
	Metrics *explain.Metrics
}

// RowOf is r as a row: its family, outcome, margin (own logit minus the
// twin's, the next reading's as report.TargetTwin pairs them), contrast
// and metrics.
func RowOf(r *report.Reading) Row {
	row := Row{Pair: r.Pair, Reading: r.Reading, Family: r.Ambiguity, Correct: r.Correct, Metrics: r.Metrics}
	if row.Family == "" {
		row.Family = Unnamed
	}
	if n := len(r.Logits); r.Reading >= 0 && r.Reading < n {
		row.Margin = r.Logits[r.Reading] - r.Logits[(r.Reading+1)%n]
	}
	if r.Analysis != nil {
		row.Contrast = r.Analysis.Contrast
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

// Bins is how many bins Summarize's histograms have.
const Bins = 10

func newHistogram(lo, hi float64) Histogram {
	h := Histogram{Edges: make([]float64, Bins+1), Counts: make([]int, Bins)}
	for i := range h.Edges {
		h.Edges[i] = lo + (hi-lo)*float64(i)/Bins
	}
	return h
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
	// Unique, Shared, Site and Noun average the contrast's masses over
	// the readings that have them.
	Unique Mean `json:"unique"`
	Shared Mean `json:"shared"`
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

// Summarize aggregates rows per family and over all of them. The margin
// histograms span the rows' margins rounded out to whole logits (at least
// one logit wide), the Unique histograms [0, 1].
func Summarize(rows []Row) Summary {
	lo, hi := 0.0, 0.0
	for i, r := range rows {
		if i == 0 || r.Margin < lo {
			lo = r.Margin
		}
		if i == 0 || r.Margin > hi {
			hi = r.Margin
		}
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	byName := map[string][]Row{}
	for _, r := range rows {
		byName[r.Family] = append(byName[r.Family], r)
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	s := Summary{All: family("all", rows, lo, hi)}
	for _, n := range names {
		s.Families = append(s.Families, family(n, byName[n], lo, hi))
	}
	return s
}

func family(name string, rows []Row, lo, hi float64) Family {
	f := Family{Name: name, Readings: len(rows), MarginHist: newHistogram(lo, hi), UniqueHist: newHistogram(0, 1)}
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
	for _, m := range []*Mean{&f.Unique, &f.Shared, &f.Site, &f.Noun} {
		m.done()
	}
	f.Faithfulness = explain.Summarize(ms)
	return f
}
