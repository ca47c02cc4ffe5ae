package analysis

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"image"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/internal/termtext"
)

// The files WriteReport writes, in its folder.
const (
	ReportFile   = "report.md"
	FamiliesFile = "families.csv"
	MarginChart  = "margin.png"
	UniqueChart  = "unique.png"
)

// Top is how many readings the report lists where the unique tokens carry
// most.
const Top = 10

// Run describes the run a report is about, for its heading.
type Run struct {
	Checkpoint, Data, Split string
	Method, StartLayer      string
	// Report names the file of a reading's own report, relative to the
	// folder; nil lists no links.
	Report func(Row) string
	// Files are other files of the folder to list (readings.csv, ...).
	Files []string
}

// WriteReport writes report.md, families.csv and the two charts of s,
// aggregated from rows, into dir.
func WriteReport(dir string, run Run, rows []Row, s Summary) error {
	charts := []struct {
		file, title, x string
		hist           func(Family) Histogram
	}{
		{MarginChart, "Margin (own logit - twin's) per family", "margin", func(f Family) Histogram { return f.MarginHist }},
		{UniqueChart, "Share of relevance on the tokens the twin lacks, per family", "unique-token mass", func(f Family) Histogram { return f.UniqueHist }},
	}
	for _, c := range charts {
		img := Chart(c.title, c.x, s, c.hist)
		if err := explain.WritePNG(filepath.Join(dir, c.file), image.Image(img)); err != nil {
			return err
		}
	}
	if err := writeCSV(filepath.Join(dir, FamiliesFile), familyRecords(s)); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ReportFile), func(w io.Writer) error {
		_, err := io.WriteString(w, markdown(run, rows, s))
		return err
	})
}

func writeCSV(path string, rows [][]string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return csv.NewWriter(w).WriteAll(rows)
	})
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// familyRecords are families.csv: a header, each family, then all.
func familyRecords(s Summary) [][]string {
	out := [][]string{{"family", "pairs", "readings", "correct", "accuracy", "mean_margin",
		"unique_mass", "shared_mass", "unique_chance", "contrasted", "site_mass", "sited", "noun_mass", "nouned",
		"pointing_accuracy", "pointing_chance", "evidence_mass", "pointed", "auc_positive", "auc_negative", "perturbed"}}
	// Token deletion's columns follow the ks of all readings; a family
	// whose readings used none leaves them blank.
	ks := s.All.Faithfulness.Ks
	for _, side := range []string{"top", "bottom"} {
		for _, k := range ks {
			out[0] = append(out[0], fmt.Sprintf("%s%d_delta", side, k))
		}
	}
	for _, f := range append(append([]Family(nil), s.Families...), s.All) {
		fs := f.Faithfulness
		deltas := make([]string, 2*len(ks))
		if slices.Equal(fs.Ks, ks) && fs.TextDeleted > 0 {
			for i := range ks {
				deltas[i], deltas[len(ks)+i] = num(fs.TopDelta[i]), num(fs.BottomDelta[i])
			}
		}
		out = append(out, append([]string{termtext.Sanitize(f.Name), strconv.Itoa(f.Pairs), strconv.Itoa(f.Readings), strconv.Itoa(f.Correct),
			num(f.Accuracy), num(f.MeanMargin), num(f.Unique.Mean), num(f.Shared.Mean), num(f.Chance.Mean), strconv.Itoa(f.Unique.N),
			num(f.Site.Mean), strconv.Itoa(f.Site.N), num(f.Noun.Mean), strconv.Itoa(f.Noun.N),
			num(fs.PointingAccuracy), num(fs.PointingChance), num(fs.Mass), strconv.Itoa(fs.Pointed),
			num(fs.AUCPositive), num(fs.AUCNegative), strconv.Itoa(fs.Perturbed)}, deltas...))
	}
	return out
}

// md makes dataset text safe in a Markdown table cell: no terminal
// controls, no line breaks, and Markdown's punctuation escaped so that a
// pair id cannot open a link, an HTML tag or a new cell.
func md(s string) string {
	s = termtext.Sanitize(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '|', '#', '!', '&', '~':
			b.WriteByte('\\')
		case '\n', '\r':
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

// code is dataset text as a code span in a table cell, so that brackets
// read as the model read them; text with a backtick is escaped instead.
func code(s string) string {
	s = termtext.Sanitize(s)
	if s == "" || strings.ContainsAny(s, "`\n\r") {
		return md(s)
	}
	// GitHub's tables split cells at | even inside code spans.
	return "`" + strings.ReplaceAll(s, "|", "\\|") + "`"
}

// mean is m as a table cell: its value, or a dash over no readings.
func mean(m Mean) string {
	if m.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", m.Mean)
}

// withChance is a mass beside what relevance spread evenly would give.
func withChance(m, chance Mean) string {
	if m.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f (%.3f)", m.Mean, chance.Mean)
}

func markdown(run Run, rows []Row, s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# lavascope report\n\n")
	fmt.Fprintf(&b, "Checkpoint %s, data %s (%s split): %d pairs, %d readings. Relevance: %s", md(run.Checkpoint), md(run.Data), md(run.Split), s.All.Pairs, s.All.Readings, md(run.Method))
	if run.StartLayer != "" && run.StartLayer != "-" {
		fmt.Fprintf(&b, ", start layer %s", md(run.StartLayer))
	}
	b.WriteString(", each reading's own logit.\n\n")
	b.WriteString("## Per family\n\n")
	b.WriteString("| family | pairs | readings | accuracy | mean margin | unique (uniform) | shared | site | noun | pointing (chance) | AUC most / least relevant first |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	line := func(name string, f Family) {
		fs := f.Faithfulness
		point, auc := "–", "–"
		if fs.Pointed > 0 {
			point = fmt.Sprintf("%.3f (%.3f)", fs.PointingAccuracy, fs.PointingChance)
		}
		if fs.Perturbed > 0 {
			auc = fmt.Sprintf("%.3f / %.3f", fs.AUCPositive, fs.AUCNegative)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f%% | %+.3f | %s | %s | %s | %s | %s | %s |\n", name, f.Pairs, f.Readings, 100*f.Accuracy,
			f.MeanMargin, withChance(f.Unique, f.Chance), mean(f.Shared), mean(f.Site), mean(f.Noun), point, auc)
	}
	for _, f := range s.Families {
		line(md(f.Name), f)
	}
	line("**all**", s.All)
	b.WriteString(`
Accuracy: the reading's own image has the strictly highest logit. Margin: its own logit
minus its twin's. Unique, shared: the share of the reading's token relevance on the tokens
its twin's linearization lacks, and on the rest; uniform: the unique share of relevance
spread evenly over the tokens (their share by count). Site: on the attachment site (its brackets
and its head word) in that reading; noun: on the ambiguous noun (both as package analysis
defines them; a dash where no reading has one). Pointing: the top patch of the own image
lies in an evidence box (chance: a random patch does). AUC: the margin's area as patches
are removed, most relevant first (low is faithful) and least relevant first.

`)
	ranked := make([]Row, 0, len(rows))
	for _, r := range rows {
		if r.Contrast != nil {
			ranked = append(ranked, r)
		}
	}
	slices.SortStableFunc(ranked, func(x, y Row) int { return cmp.Compare(y.Contrast.Unique, x.Contrast.Unique) })
	ranked = ranked[:min(Top, len(ranked))]
	if len(ranked) > 0 {
		fmt.Fprintf(&b, "## Where the tokens the twin lacks carry most\n\nThe %d readings with the highest unique-token mass.\n\n", len(ranked))
		b.WriteString("| pair | reading | family | outcome | unique | tokens the twin lacks | noun | sentence |\n")
		b.WriteString("| --- | ---: | --- | --- | ---: | --- | ---: | --- |\n")
		for _, r := range ranked {
			pair := md(r.Pair)
			if run.Report != nil {
				// "./" keeps a colon in the name from reading as a scheme.
				pair = fmt.Sprintf("[%s](./%s)", pair, (&url.URL{Path: run.Report(r)}).EscapedPath())
			}
			outcome := "wrong"
			if r.Correct {
				outcome = "right"
			}
			noun := "–"
			if n := r.Contrast.Noun; n != nil {
				noun = fmt.Sprintf("%s %.3f", md(n.HeadWord), n.Mass)
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %.3f | %s | %s | %s |\n", pair, r.Reading, md(r.Family), outcome,
				r.Contrast.Unique, code(strings.Join(r.UniqueTokens, " ")), noun, md(r.Sentence))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Charts\n\n")
	fmt.Fprintf(&b, "![margin per family](%s)\n\n![unique-token mass per family](%s)\n\n", MarginChart, UniqueChart)
	b.WriteString("## Files\n\n")
	for _, f := range append([]string{FamiliesFile + " (the table above)"}, run.Files...) {
		fmt.Fprintf(&b, "- %s\n", md(f))
	}
	return b.String()
}

// WriteText prints s as a table for the terminal: a row per family and
// one for all readings, family names sanitised.
func WriteText(w io.Writer, s Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "family\tpairs\treadings\taccuracy\tmargin\tunique\tuniform\tsite\tnoun\tpointing\t")
	for _, f := range append(append([]Family(nil), s.Families...), s.All) {
		point := "–"
		if fs := f.Faithfulness; fs.Pointed > 0 {
			point = fmt.Sprintf("%.3f", fs.PointingAccuracy)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%+.3f\t%s\t%s\t%s\t%s\t%s\t\n", termtext.Sanitize(f.Name), f.Pairs, f.Readings,
			100*f.Accuracy, f.MeanMargin, mean(f.Unique), mean(f.Chance), mean(f.Site), mean(f.Noun), point)
	}
	return tw.Flush()
}
