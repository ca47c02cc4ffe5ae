package tui

import (
	"fmt"
	"math"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/explain"
)

// summaryState is the split's summary screen: per family, the readings,
// accuracy and mean margin of the shown checkpoint, and, as the background
// sweep explains pairs under the shown settings, the pointing game and the
// relevance mass inside the evidence boxes. It owns its scroll and the
// screen it returns to; the numbers are derived on each frame from the
// scheduler's results, so that they follow the sweep.
type summaryState struct {
	back   screen
	scroll int
}

// familyStats are one family's numbers (the "all" row is one too).
type familyStats struct {
	name                 string
	pairs, readings      int
	scored, correct      int
	margins              []float64 // per scored reading
	explained            int       // pairs explained under the settings
	pointed, hits        int       // readings with boxes; their hits
	masses               []float64 // per reading with boxes
	chance, chanceMasses float64   // sums, averaged on display
	// Relevance in context (package analysis), per analysed reading: the
	// share on tokens the twin lacks, on the attachment site and on the
	// ambiguous noun (the last two where the pair has them).
	unique, site, noun []float64
	// Faithfulness (faithful.go), per measured reading: the perturbation
	// AUCs and the margin's change as the most and least relevant tokens
	// are dropped.
	aucPos, aucNeg, dropTop, dropBottom []float64
}

func (m *Model) familyStats() []*familyStats {
	all := &familyStats{name: "all"}
	by := map[string]*familyStats{}
	var out []*familyStats
	for _, f := range m.families {
		by[f] = &familyStats{name: f}
		out = append(out, by[f])
	}
	scores := m.scores[m.ckpt()]
	st := m.settings()
	for i := range m.pairs {
		p := &m.pairs[i]
		rows := []*familyStats{all}
		if f := by[p.Ambiguity]; f != nil {
			rows = append(rows, f)
		}
		s, scored := scores[p.ID]
		e := m.exps[m.keyFor(p.ID, st)]
		for _, fs := range rows {
			m.faithStats(fs, p.ID)
			fs.pairs++
			fs.readings += len(p.Readings)
			if scored {
				for j := range s.Correct {
					fs.scored++
					if s.Correct[j] {
						fs.correct++
					}
					fs.margins = append(fs.margins, s.Margins[j])
				}
			}
			if e == nil || e.err != nil {
				continue
			}
			fs.explained++
			for _, a := range e.ana {
				if a == nil || a.Contrast == nil {
					continue
				}
				fs.unique = append(fs.unique, a.Contrast.Unique)
				if a.Contrast.Site != nil {
					fs.site = append(fs.site, a.Contrast.Site.Mass)
				}
				if a.Contrast.Noun != nil {
					fs.noun = append(fs.noun, a.Contrast.Noun.Mass)
				}
			}
			for _, pt := range e.point {
				if pt == nil {
					continue
				}
				fs.pointed++
				if pt.Hit {
					fs.hits++
				}
				fs.masses = append(fs.masses, pt.Mass)
				fs.chance += pt.Chance
				fs.chanceMasses += pt.ChanceMass
			}
		}
	}
	return append(out, all)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// pct writes a share as a percentage, "–" where there is nothing to share.
func pct(num, den float64) string {
	if den == 0 || math.IsNaN(num) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*num/den)
}

// histogram counts xs in bins equal stretches of [lo, hi], values outside
// in the end bins, as block heights over the largest count; an empty bin
// is a dot, so that it does not read as a small one.
func histogram(xs []float64, lo, hi float64, bins int) string {
	if len(xs) == 0 || bins <= 0 || !(hi > lo) {
		return ""
	}
	counts := make([]int, bins)
	top := 0
	for _, x := range xs {
		b := int((x - lo) / (hi - lo) * float64(bins))
		b = max(0, min(bins-1, b))
		counts[b]++
		top = max(top, counts[b])
	}
	ticks := []rune("▁▂▃▄▅▆▇█")
	var sb strings.Builder
	for _, c := range counts {
		if c == 0 {
			sb.WriteRune('·')
			continue
		}
		sb.WriteRune(ticks[(c*len(ticks)-1)/top])
	}
	return sb.String()
}

func (st *summaryState) view(m *Model, w, h int) []string {
	set := m.settings()
	title := stBold.Render(" summary") + stDim.Render(fmt.Sprintf(" · %s · %s · %s · %s", clean(m.opt.DataName), m.settingsText(), plural(m.explainedCount(set), "pair")+" explained of "+fmt.Sprint(len(m.pairs)), "scores of "+clean(m.ckpt())))
	if m.engine == nil {
		title = stBold.Render(" summary") + stDim.Render(" · the model has not loaded")
	}
	lines := []string{title, ""}
	stats := m.familyStats()
	famW := 6
	for _, fs := range stats {
		famW = max(famW, min(20, len(clean(fs.name))))
	}
	// The margin histograms share one range, so that families compare.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range stats[len(stats)-1].margins {
		lo, hi = min(lo, x), max(hi, x)
	}
	// The histograms take what the table leaves, and go where that is too
	// little to read.
	bins := min(24, w-famW-69)
	head := fmt.Sprintf(" %-*s %5s %8s %6s %8s %9s %8s %7s", famW, "FAMILY", "PAIRS", "READINGS", "ACC", "MARGIN", "EXPLAINED", "POINTING", "MASS")
	if bins >= 6 {
		head += "  MARGINS"
	}
	lines = append(lines, stHead.Render(fit(head, w)))
	for _, fs := range stats {
		mm := "–"
		if len(fs.margins) > 0 {
			mm = signed(mean(fs.margins))
		}
		point, mass := "–", "–"
		if fs.pointed > 0 {
			point = pct(float64(fs.hits), float64(fs.pointed))
			mass = pct(mean(fs.masses), 1)
		}
		row := fmt.Sprintf(" %-*s %5d %8d %6s %8s %9s %8s %7s  ", famW, fit(clean(fs.name), famW), fs.pairs, fs.readings,
			pct(float64(fs.correct), float64(fs.scored)), mm, fmt.Sprintf("%d/%d", fs.explained, fs.pairs), point, mass)
		if fs.name == "all" {
			row = stBold.Render(row)
		}
		if bins >= 6 {
			row += stKey.Render(histogram(fs.margins, lo, hi, bins))
		}
		lines = append(lines, row)
	}
	lines = append(lines, "")
	all := stats[len(stats)-1]
	if len(all.margins) > 0 && bins >= 6 {
		lines = append(lines, stDim.Render(fmt.Sprintf(" MARGINS: readings per bin from %s to %s (one range for all rows); ACC: readings whose own image scores highest", signed(lo), signed(hi))))
	}
	if all.pointed > 0 {
		lines = append(lines,
			stDim.Render(fmt.Sprintf(" POINTING: readings whose most relevant patch lies in an evidence box (chance %s); MASS: mean share of image relevance inside the boxes (chance %s)",
				pct(all.chance, float64(all.pointed)), pct(all.chanceMasses, float64(all.pointed)))),
			" box mass "+stKey.Render(histogram(all.masses, 0, 1, max(10, min(40, w-30))))+stDim.Render(" 0 … 100%"))
	} else {
		lines = append(lines, stDim.Render(" POINTING and MASS need evidence boxes and explanations: they fill in as the background sweep explains the split"))
	}
	if len(all.unique) > 0 {
		lines = append(lines, "", stHead.Render(fit(fmt.Sprintf(" %-*s %8s %6s %6s  %s", famW, "RELEVANCE", "UNIQUE", "SITE", "NOUN", "UNIQUE PER READING"), w)))
		for _, fs := range stats {
			share := func(xs []float64) string { return pct(mean(xs), 1) }
			row := fmt.Sprintf(" %-*s %8s %6s %6s  ", famW, fit(clean(fs.name), famW), share(fs.unique), share(fs.site), share(fs.noun))
			if fs.name == "all" {
				row = stBold.Render(row)
			}
			lines = append(lines, row+stKey.Render(histogram(fs.unique, 0, 1, max(0, min(20, w-famW-30)))))
		}
		lines = append(lines, stDim.Render(" mean shares of each reading's relevance: UNIQUE on tokens its twin lacks, SITE on the attachment site, NOUN on the ambiguous noun; the histogram runs from 0 to 100%"))
	}
	lines = append(lines, m.faithSummary(stats, famW, w)...)
	if m.before != nil {
		lines = append(lines, "", stHead.Render(" before and after the fine-tune"))
		for _, e := range []Engine{m.before, m.after} {
			ck := e.Info().Checkpoint
			sc := m.scores[ck]
			n, ok := 0, 0
			for _, s := range sc {
				for _, c := range s.Correct {
					n++
					if c {
						ok++
					}
				}
			}
			lines = append(lines, fmt.Sprintf(" %s  accuracy %s over %s", fit(clean(ck), max(10, w/2)), pct(float64(ok), float64(n)), plural(n, "reading")))
		}
	}
	var wrapped []string
	for _, l := range lines {
		wrapped = append(wrapped, wrapIndented(l, w)...)
	}
	return scrolled(wrapped, &st.scroll, h)
}

// wrapIndented wraps a line that is wider than w, its second and later
// parts indented by one space as the screen's lines are, so that a wrapped
// note does not read as a new one.
func wrapIndented(l string, w int) []string {
	if ansi.StringWidth(l) <= w {
		return []string{l}
	}
	parts := strings.Split(wrapHard(l, max(1, w-1)), "\n")
	for i := 1; i < len(parts); i++ {
		parts[i] = " " + parts[i]
	}
	return parts
}

// faithSummary is the summary's faithfulness table: per family, the
// readings measured so far and their mean perturbation AUCs and token
// deletion changes. Engines that cannot measure show none.
func (m *Model) faithSummary(stats []*familyStats, famW, w int) []string {
	if m.faithful() == nil {
		return nil
	}
	all := stats[len(stats)-1]
	pairs, _ := m.faithMeasured()
	state := "p measures the split after the explanations"
	if m.faith.sweep {
		state = fmt.Sprintf("measuring: %d of %d pairs (p stops)", pairs, len(m.pairs))
		if pairs == len(m.pairs) {
			state = fmt.Sprintf("all %d pairs measured", pairs)
		}
	}
	out := []string{""}
	if len(all.aucPos) == 0 && len(all.dropTop) == 0 {
		return append(out, stDim.Render(" FAITHFULNESS (perturbation AUC, token deletion): none measured yet; "+state+"; the pair view measures the open pair"))
	}
	ks := explain.DefaultKs
	k := ks[len(ks)-1]
	out = append(out, stDim.Render(" faithfulness of each reading's own logit: "+state))
	out = append(out, stHead.Render(fit(fmt.Sprintf(" %-*s %8s %7s %7s %8s %8s", famW, "FAITHFUL", "MEASURED", "AUC+", "AUC−", fmt.Sprintf("TOP%d Δ", k), fmt.Sprintf("BOT%d Δ", k)), w)))
	avg := func(xs []float64) string {
		if len(xs) == 0 {
			return "–"
		}
		return signed(mean(xs))
	}
	for _, fs := range stats {
		row := fmt.Sprintf(" %-*s %8s %7s %7s %8s %8s", famW, fit(clean(fs.name), famW), fmt.Sprintf("%d/%d", len(fs.aucPos), fs.readings),
			avg(fs.aucPos), avg(fs.aucNeg), avg(fs.dropTop), avg(fs.dropBottom))
		if fs.name == "all" {
			row = stBold.Render(row)
		}
		out = append(out, row)
	}
	return append(out, stDim.Render(fmt.Sprintf(" means over the readings measured; AUC+/AUC−: area under the margin as the most/least relevant patches go first (faithful: AUC+ below AUC−); TOP%d/BOT%d Δ: the margin's change without the %d most/least relevant tokens", k, k, k)))
}

// settingsText is the explanation settings as the status bar says them.
func (m *Model) settingsText() string {
	return string(m.method) + " · " + m.layerText() + " · target " + m.target.String()
}

func (st *summaryState) update(m *Model, msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.askQuit()
	case key.Matches(msg, k.Back, k.Summary):
		m.screen = st.back
		return nil
	case scrollKey(k, msg, &st.scroll, max(1, m.h-footerRows-1)):
	case key.Matches(msg, k.Faithful):
		return m.toggleFaithSweep()
	case key.Matches(msg, k.Help):
		m.help.back, m.screen = screenSummary, screenHelp
		return nil
	default:
		cmd, _ := m.globalKey(msg)
		return cmd
	}
	return nil
}
