package analysis

import (
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/report"
)

// reportRows are readings of two families, one pair with hostile text in
// its id, family and sentence.
func reportRows() []Row {
	contrast := func(u float64, tokens ...string) *report.Contrast {
		return &report.Contrast{Unique: u, Shared: 1 - u, Chance: 0.05, Noun: &report.Focus{HeadWord: "bag", Mass: 0.1},
			Site: &report.Focus{Label: "VP", Words: "approached the chair with a bag", Mass: 0.2}}
	}
	m := func(margin float64, hit bool) *explain.Metrics {
		return &explain.Metrics{Margin: margin, Pointing: &explain.Pointing{Hit: hit, Chance: 0.1},
			Text:         &explain.TextDeletion{Ks: []int{1}, Top: []explain.TokenDeletion{{Delta: -margin}}, Bottom: []explain.TokenDeletion{{Delta: 0.25}}},
			Perturbation: &explain.Perturbation{Positive: explain.Curve{AUC: -1}, Negative: explain.Curve{AUC: 2}}}
	}
	return []Row{
		{Pair: "pp-1", Reading: 0, Sentence: "Danny approached the chair with a bag.", Family: "pp-attachment", Correct: true, Margin: 1.5,
			Contrast: contrast(0.04), UniqueTokens: []string{"))))"}, Metrics: m(1.5, true)},
		{Pair: "pp-1", Reading: 1, Sentence: "Danny approached the chair with a bag.", Family: "pp-attachment", Correct: false, Margin: -0.5,
			Contrast: contrast(0.09), UniqueTokens: []string{"(", "np", ")))))"}, Metrics: m(-0.5, false)},
		{Pair: "x|[a](javascript:x)", Reading: 0, Sentence: "<b>bold</b> \x1b[31mred", Family: "odd|family", Correct: true, Margin: 3,
			Contrast: contrast(0.3), UniqueTokens: []string{"a|b", "`"}},
	}
}

// TestWriteReport pins report.md and families.csv, and checks that the
// charts are PNGs with a panel per family and one for all.
func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	rows := reportRows()
	run := Run{Checkpoint: "demo", Data: "demo", Split: "test", Method: "chefer", StartLayer: "last",
		Report: func(r Row) string { return r.Pair + "-r" + strconv.Itoa(r.Reading) + ".json" }, Files: []string{"readings.csv"}}
	if err := WriteReport(dir, run, rows, Summarize(rows)); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, f := range []string{ReportFile, FamiliesFile} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString("== " + f + "\n")
		all.Write(data)
	}
	got := all.String()
	if strings.ContainsRune(got, 0x1b) || strings.Contains(got, "<b>") || regexp.MustCompile(`[^\\]\]\(javascript`).MatchString(got) {
		t.Errorf("dataset text reaches the report unescaped:\n%s", got)
	}
	golden(t, "report.golden", []byte(got))
	for _, f := range []string{MarginChart, UniqueChart} {
		fh, err := os.Open(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Two families and all: three panels.
		if b := img.Bounds(); b.Dx() != chartWidth || b.Dy() < 3*panelBars {
			t.Errorf("%s is %v", f, b)
		}
	}
}

// TestWriteText pins the terminal table; the hostile family name is
// printed escaped.
func TestWriteText(t *testing.T) {
	var b strings.Builder
	rows := reportRows()
	rows[2].Family = "odd\x1b[31m"
	if err := WriteText(&b, Summarize(rows)); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(b.String(), 0x1b) {
		t.Errorf("an escape reaches the terminal:\n%s", b.String())
	}
	golden(t, "text.golden", []byte(b.String()))
}

// TestChartBars: a bin with values has a bar of the bar colour in its
// column, the wrong side of zero another colour, an empty bin none.
func TestChartBars(t *testing.T) {
	rows := []Row{{Pair: "a", Family: "f", Margin: -1}, {Pair: "b", Family: "f", Margin: 1}, {Pair: "c", Family: "f", Margin: 1}}
	s := Summarize(rows)
	img := Chart("t", "x", s, func(f Family) Histogram { return f.MarginHist })
	h := s.All.MarginHist
	plotW := chartWidth - 2*chartMargin
	column := func(i int) map[[4]uint8]bool {
		x := chartMargin + (2*i+1)*plotW/(2*len(h.Counts))
		seen := map[[4]uint8]bool{}
		for y := range img.Bounds().Dy() {
			c := img.RGBAAt(x, y)
			seen[[4]uint8{c.R, c.G, c.B, c.A}] = true
		}
		return seen
	}
	key := func(c [4]uint8) [4]uint8 { return c }
	blue := key([4]uint8{barColor.R, barColor.G, barColor.B, barColor.A})
	orange := key([4]uint8{belowZero.R, belowZero.G, belowZero.B, belowZero.A})
	for i, c := range h.Counts {
		col := column(i)
		switch {
		case c > 0 && h.Edges[i+1] <= 0:
			if !col[orange] || col[blue] {
				t.Errorf("bin %d [%v, %v) holds %d below zero: no orange bar", i, h.Edges[i], h.Edges[i+1], c)
			}
		case c > 0:
			if !col[blue] {
				t.Errorf("bin %d [%v, %v) holds %d: no bar", i, h.Edges[i], h.Edges[i+1], c)
			}
		default:
			if col[blue] || col[orange] {
				t.Errorf("bin %d is empty but has a bar", i)
			}
		}
	}
}
