package analysis

import (
	"slices"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/report"
)

// TestSummarize: families by name, accuracy and means over the rows that
// have each value, and histograms on bins shared by all families.
func TestSummarize(t *testing.T) {
	c := func(u float64, site bool) *report.Contrast {
		k := &report.Contrast{Unique: u, Shared: 1 - u, Noun: &report.Focus{Mass: u / 2}}
		if site {
			k.Site = &report.Focus{Mass: 0.5}
		}
		return k
	}
	rows := []Row{
		{Pair: "pp-1", Reading: 0, Family: "pp-attachment", Correct: true, Margin: 2.5, Contrast: c(0.1, true),
			Metrics: &explain.Metrics{Margin: 2.5, Pointing: &explain.Pointing{Hit: true}}},
		{Pair: "pp-1", Reading: 1, Family: "pp-attachment", Correct: false, Margin: -1.25, Contrast: c(0.3, true),
			Metrics: &explain.Metrics{Margin: -1.25, Pointing: &explain.Pointing{}}},
		{Pair: "adj-1", Reading: 0, Family: "adjective-scope", Correct: true, Margin: 0.5, Contrast: c(1, false)},
		{Pair: "x", Reading: 0, Family: Unnamed, Correct: true, Margin: 0},
	}
	s := Summarize(rows)
	var names []string
	for _, f := range s.Families {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"adjective-scope", "pp-attachment", Unnamed}) {
		t.Fatalf("families %v", names)
	}
	pp, all := s.Families[1], s.All
	if pp.Pairs != 1 || pp.Readings != 2 || pp.Correct != 1 || pp.Accuracy != 0.5 || !near(pp.MeanMargin, 0.625) {
		t.Errorf("pp: %+v", pp)
	}
	if !near(pp.Unique.Mean, 0.2) || pp.Unique.N != 2 || !near(pp.Shared.Mean, 0.8) || !near(pp.Noun.Mean, 0.1) || pp.Site.N != 2 {
		t.Errorf("pp masses: unique %+v shared %+v noun %+v site %+v", pp.Unique, pp.Shared, pp.Noun, pp.Site)
	}
	if pp.Faithfulness.Pointed != 2 || pp.Faithfulness.PointingAccuracy != 0.5 {
		t.Errorf("pp pointing: %+v", pp.Faithfulness)
	}
	if all.Readings != 4 || all.Pairs != 3 || all.Correct != 3 || all.Unique.N != 3 || all.Site.N != 2 || !near(all.Site.Mean, 0.5) {
		t.Errorf("all: %+v", all)
	}
	// Margins from -1.25 to 2.5 round out to [-2, 3]: ten bins of 0.5.
	want := []float64{-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3}
	for _, f := range append(s.Families, all) {
		if !slices.Equal(f.MarginHist.Edges, want) {
			t.Fatalf("%s margin edges %v, want %v", f.Name, f.MarginHist.Edges, want)
		}
	}
	if got := all.MarginHist.Counts; !slices.Equal(got, []int{0, 1, 0, 0, 1, 1, 0, 0, 0, 1}) {
		t.Errorf("margin counts %v", got)
	}
	// 1 falls in the last bin, its upper edge.
	if got := all.UniqueHist.Counts; !slices.Equal(got, []int{0, 1, 0, 1, 0, 0, 0, 0, 0, 1}) {
		t.Errorf("unique counts %v", got)
	}
	if e := Summarize(nil); e.All.Readings != 0 || len(e.Families) != 0 || len(e.All.MarginHist.Counts) != Bins {
		t.Errorf("empty: %+v", e)
	}
}

// TestRowOf: the margin is against the next reading, and an unnamed
// family is Unnamed.
func TestRowOf(t *testing.T) {
	r := &report.Reading{Pair: "p", Reading: 1, Logits: []float64{1, 3.5}, Correct: true, Analysis: &report.Analysis{Contrast: &report.Contrast{Unique: 0.2}}}
	row := RowOf(r)
	if row.Family != Unnamed || row.Margin != 2.5 || !row.Correct || row.Contrast.Unique != 0.2 {
		t.Errorf("%+v", row)
	}
}
