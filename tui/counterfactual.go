package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/trees"
)

// Counterfactuals in the pair view: M fills the images' evidence boxes
// (grey, the image's mean, blur, then off), I swaps the images, D drops a
// constituent's tokens from a reading's text (each of reading A's phrases,
// then B's, then the plain sentence, then off). The pair and the variant
// go to the engine's Counterfactual as one request, queued and run like
// the probe requests (one forward pass, off the UI goroutine, under the
// model's context), and the header shows each logit was→now with its
// delta. The variant is explained too, as a foreground explanation under
// its own key (expKey.cf): the image columns show its heatmaps over its
// images (masked, swapped) and, under each, the share of the image's
// relevance inside each evidence box, the pair's as it is → the
// variant's. The mask and the swap stay on from pair to pair; the dropped
// constituent belongs to its pair.

// fills are the fills M cycles through after off.
var fills = []string{"grey", "mean", "blur"}

// cfState is the pair view's counterfactual.
type cfState struct {
	fill string
	swap bool
	// drop is the position in dropChoices of the pair dropPair, 0 for
	// none.
	drop     int
	dropPair string
}

// dropChoice is one entry of D's cycle: a reading's phrase, or the plain
// sentence.
type dropChoice struct {
	neutral bool
	reading int
	c       trees.Constituent
	words   string
}

// dropChoices are D's cycle for pair i, after "none" at 0: every phrase
// but the root of readings A and B in pre-order, then the plain sentence.
func (m *Model) dropChoices(i int) []dropChoice {
	out := []dropChoice{{}}
	pp := m.prepare(i)
	for r := range min(2, len(pp.nodes)) {
		t := pp.nodes[r]
		if t == nil {
			continue
		}
		words := t.Words()
		// A leaf is a word with its part of speech: phrases are the inner
		// nodes. Each takes its place before its children (pre-order) and
		// learns its span after them.
		var walk func(n *trees.Node, start int) int
		walk = func(n *trees.Node, start int) int {
			if n.IsLeaf() {
				return start + len(n.Words())
			}
			at := len(out)
			if n != t {
				out = append(out, dropChoice{})
			}
			end := start
			for _, c := range n.Children {
				end = walk(c, end)
			}
			if n != t {
				out[at] = dropChoice{reading: r, c: trees.Constituent{Label: n.Label, Start: start, End: end}, words: strings.Join(words[start:end], " ")}
			}
			return end
		}
		walk(t, 0)
	}
	return append(out, dropChoice{neutral: true})
}

// variant is the counterfactual shown for the open pair; the zero Variant
// when none.
func (m *Model) variant() (Variant, dropChoice) {
	cf := &m.panel.cf
	v := Variant{Fill: cf.fill, Swap: cf.swap}
	var d dropChoice
	if cf.drop > 0 && cf.dropPair == m.pairs[m.cur].ID {
		if cs := m.dropChoices(m.cur); cf.drop < len(cs) {
			d = cs[cf.drop]
		}
		switch {
		case d.neutral:
			v.Neutral = true
		case d.c.Label != "":
			v.DropReading, v.DropLabel, v.DropStart, v.DropEnd = d.reading, d.c.Label, d.c.Start, d.c.End
		}
	}
	return v, d
}

// cfShown is the counterfactual the pair view shows and explains, when
// one is on and the engine can compute it.
func (m *Model) cfShown() (Variant, bool) {
	if m.panel.kind != panelNone {
		return Variant{}, false
	}
	v, _ := m.variant()
	if v == (Variant{}) {
		return v, false
	}
	if c, _ := m.counterfactual(); c == nil {
		return Variant{}, false
	}
	return v, true
}

// boxMassLines are reading j's shares of image relevance per evidence box
// under the counterfactual exp, each beside the pair's as it is (was→now)
// where both lie over the same image; after a swap, now alone.
func (m *Model) boxMassLines(pp *prepared, j int, exp *explained) []string {
	if j >= len(exp.boxMass) || exp.boxMass[j] == nil {
		return nil
	}
	k := m.expKeyOf(pp)
	k.cf = Variant{}
	var was []float64
	if plain := m.exps[k]; plain != nil && plain.err == nil && plain.exp != nil && j < len(plain.boxMass) &&
		plain.exp.Readings[j].Image == exp.exp.Readings[j].Image {
		was = plain.boxMass[j]
	}
	img := exp.exp.Readings[j].Image
	boxes := pp.pair.Readings[img].BoxesWithRole(loader.RoleEvidence)
	var out []string
	for i, now := range exp.boxMass[j] {
		if i >= len(boxes) {
			break
		}
		line := fmt.Sprintf("box “%s”: ", clean(boxes[i].Label))
		switch {
		case was != nil && i < len(was):
			line += pct(was[i], 1) + " → " + pct(now, 1)
		case was == nil && m.exps[k] == nil:
			line += "… → " + pct(now, 1)
		default:
			line += pct(now, 1) + " (image " + letter(img) + ")"
		}
		out = append(out, stWarn.Render(line))
	}
	return out
}

// counterfactual is the shown engine's Counterfactual; nil with why when
// it has none.
func (m *Model) counterfactual() (Counterfactual, string) {
	if m.engine == nil {
		return nil, "the model is not loaded yet"
	}
	c, ok := m.engine.(Counterfactual)
	if !ok {
		return nil, "this engine cannot score changed inputs"
	}
	return c, ""
}

// askVariant runs request k on c: the pair's logits, then the variant's,
// as rows [text] of one answer.
func askVariant(ctx context.Context, c Counterfactual, k probeKey) tea.Msg {
	if c == nil {
		return probedMsg{key: k, err: errors.New("this engine cannot score changed inputs")}
	}
	out, err := c.ScoreVariants(ctx, k.pair, []Variant{k.cf})
	if err == nil && len(out) != 2 {
		err = fmt.Errorf("the engine answered %d results for the pair and 1 variant", len(out))
	}
	if err != nil {
		return probedMsg{key: k, err: err}
	}
	return probedMsg{key: k, logits: append(out[0], out[1]...)}
}

// cfKey handles M, I, D, and esc while a counterfactual is shown; ok is
// false for the other keys.
func (m *Model) cfKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	k := m.keys
	cf := &m.panel.cf
	var name string
	switch {
	case key.Matches(msg, k.Mask):
		name = "M"
	case key.Matches(msg, k.Swap):
		name = "I"
	case key.Matches(msg, k.Drop):
		name = "D"
	case key.Matches(msg, k.Back) && m.panel.kind == panelNone:
		if v, _ := m.variant(); v != (Variant{}) {
			*cf = cfState{}
			m.setFlash(false, "back to the pair as it is")
			return nil, true
		}
		return nil, false
	default:
		return nil, false
	}
	if _, why := m.counterfactual(); why != "" {
		m.setFlash(false, "%s: %s", name, why)
		return nil, true
	}
	id := m.pairs[m.cur].ID
	switch name {
	case "M":
		i := 0
		for j, f := range fills {
			if f == cf.fill {
				i = j + 1
			}
		}
		cf.fill = ""
		if i < len(fills) {
			cf.fill = fills[i]
		}
	case "I":
		cf.swap = !cf.swap
	case "D":
		if cf.dropPair != id {
			cf.drop, cf.dropPair = 0, id
		}
		cf.drop = (cf.drop + 1) % len(m.dropChoices(m.cur))
	}
	m.panel.kind = panelNone
	v, _ := m.variant()
	if v == (Variant{}) {
		m.setFlash(false, "back to the pair as it is")
		return nil, true
	}
	// The variant is rescored (a probe) and re-explained (a foreground
	// explanation) side by side.
	return tea.Batch(m.askVariantCmd(v), m.explainNext()), true
}

func (m *Model) askVariantCmd(v Variant) tea.Cmd {
	k := probeKey{ckpt: m.ckpt(), pair: m.pairs[m.cur].ID, cf: v}
	m.wantProbe(k)
	return m.probeNext()
}

// cfAsk asks for the open pair's counterfactual when one is shown and
// neither answered nor asked for under the shown engine.
func (m *Model) cfAsk() tea.Cmd {
	if m.panel.kind != panelNone {
		return nil
	}
	v, _ := m.variant()
	if v == (Variant{}) {
		return nil
	}
	if c, _ := m.counterfactual(); c == nil {
		return nil
	}
	return m.askVariantCmd(v)
}

// describe says what v changes, for the header.
func describe(v Variant, d dropChoice, hasEvidence bool) string {
	var parts []string
	if v.Fill != "" {
		parts = append(parts, "evidence boxes "+v.Fill)
		if !hasEvidence {
			parts[len(parts)-1] = "no evidence box to fill"
		}
	}
	if v.Swap {
		parts = append(parts, "images swapped")
	}
	switch {
	case v.Neutral:
		parts = append(parts, "plain sentence read")
	case v.DropLabel != "":
		parts = append(parts, fmt.Sprintf("%s's %s “%s” dropped", letter(v.DropReading), v.DropLabel, d.words))
	}
	return strings.Join(parts, " · ")
}

// cfHeader heads the pair view while a counterfactual is shown: what it
// changes, and each logit of the pair beside the counterfactual's, with
// the delta.
func (m *Model) cfHeader(w int) []string {
	p := &m.pairs[m.cur]
	v, d := m.variant()
	hasEvidence := false
	for _, rd := range p.Readings {
		for _, b := range rd.Boxes {
			hasEvidence = hasEvidence || b.Role == loader.RoleEvidence
		}
	}
	left := []string{
		stBold.Render(" "+clean(p.ID)) + stWarn.Render(" · counterfactual") + stDim.Render(" · M/I/D change · esc: as it is"),
		" " + stBold.Render("“"+clean(p.Sentence)+"”"),
		" " + stWarn.Render(clean(describe(v, d, hasEvidence))),
	}
	var table []string
	a := m.probes[probeKey{ckpt: m.ckpt(), pair: p.ID, cf: v}]
	switch {
	case a == nil:
		table = []string{m.spin.View() + stDim.Render(" scoring the change…")}
	case a.err != nil:
		table = []string{stBad.Render("scoring failed (!)")}
	default:
		nr := len(p.Readings)
		table = wasNowTable(a.logits[:nr], a.logits[nr:], min(2, nr))
	}
	return besideTable(left, table, w)
}

// wasNowTable is the logits orig and now ([text][image]) of n readings,
// image by text, each cell was→now with its delta, changed cells marked.
func wasNowTable(orig, now [][]float64, n int) []string {
	head := fmt.Sprintf("%-8s", "was→now")
	for j := range n {
		head += fmt.Sprintf("  %17s", "text "+letter(j))
	}
	table := []string{stDim.Render(head)}
	for i := range n {
		row := fmt.Sprintf("%-8s", "image "+letter(i))
		for j := range n {
			d := now[j][i] - orig[j][i]
			cell := fmt.Sprintf("%.2f→%.2f %+.2f", orig[j][i], now[j][i], d)
			if d != 0 {
				cell = stWarn.Render(cell)
			}
			row += "  " + strings.Repeat(" ", max(0, 17-ansi.StringWidth(ansi.Strip(cell)))) + cell
		}
		table = append(table, row)
	}
	return table
}

// besideTable lays the three header lines left and table side by side in
// w cells.
func besideTable(left, table []string, w int) []string {
	tw := 0
	for _, l := range table {
		tw = max(tw, ansi.StringWidth(l))
	}
	out := make([]string, 3)
	for i := range out {
		r := ""
		if i < len(table) {
			r = table[i]
		}
		out[i] = fit(left[i], w-tw-2) + "  " + fit(r, tw)
	}
	return out
}
