package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// viewCompare is the pair view with the model before and after a fine-tune
// side by side: both logits tables in the header and, per reading, both
// heatmaps with their notes, before on the left. The trees give way to the
// second image; B goes back to them.
func (m *Model) viewCompare(w, h int) []string {
	pp := m.prepare(m.cur)
	p := pp.pair
	ckpts := [2]string{m.before.Info().Checkpoint, m.after.Info().Checkpoint}
	var exps [2]*explained
	var tables [2][]string
	for i, ck := range ckpts {
		k := m.currentKey(p.ID)
		k.ckpt = ck
		if e := m.exps[k]; e != nil && (e.err != nil || e.exp != nil) {
			exps[i] = e
		}
		tables[i] = m.logitsTableOf(ck, [2]string{"before", "after"}[i], p.ID, exps[i])
	}
	tw := 0
	for _, t := range tables {
		for _, l := range t {
			tw = max(tw, ansi.StringWidth(l))
		}
	}
	pos := slices.Index(m.list.rows, m.cur)
	left := []string{
		stBold.Render(" "+clean(p.ID)) + stDim.Render(fmt.Sprintf(" · %s · %d/%d · before → after", clean(p.Ambiguity), pos+1, len(m.list.rows))),
		" " + stBold.Render("“"+clean(p.Sentence)+"”"),
		" " + stDim.Render(elideMiddle(clean(ckpts[0]), 30)+" → "+elideMiddle(clean(ckpts[1]), 30)),
	}
	lw := max(0, w-2*tw-6)
	var out []string
	for i := range 3 {
		row := ""
		if lw > 0 {
			row = fit(left[i], lw) + "  "
		}
		for _, t := range tables {
			cell := ""
			if i < len(t) {
				cell = t[i]
			}
			row += fit(cell, tw) + "  "
		}
		out = append(out, row)
	}
	out = append(out, stRule.Render(strings.Repeat("─", w)))

	colW := (w - colSep) / 2
	colH := h - headerRows
	imgCols := max(4, (colW-2)/2)
	imgRows := max(2, min(maxImgRows, colH-2-6, (imgCols+1)/2))
	var cols []*block
	for j := range 2 {
		col := newBlock(colW, colH)
		if j < len(p.Readings) {
			head := stBold.Render(letter(j)) + " "
			for i, ck := range ckpts {
				if i > 0 {
					head += stDim.Render(" → ")
				}
				if s, ok := m.scores[ck][p.ID]; ok && j < len(s.Correct) {
					head += tick(s.Correct[j]) + stDim.Render(" "+signed(s.Margins[j]))
				} else {
					head += stDim.Render("scoring…")
				}
			}
			col.set(0, head)
			col.set(1, stGloss.Render("“"+clean(p.Readings[j].Gloss)+"”"))
			var sides []*block
			for i := range 2 {
				b := newBlock(imgCols, colH-2)
				k := m.currentKey(p.ID)
				k.ckpt = ckpts[i]
				x := j*(colW+colSep) + i*(imgCols+2)
				m.fillImageBox(b, pp, j, exps[i], imageSlot{x: x, y: headerRows + 2, col: 2 + 2*j + i, cols: imgCols, rows: imgRows, exp: k})
				var rel *readingRel
				if e := exps[i]; e != nil && e.err == nil && j < len(e.readings) {
					rel = &e.readings[j]
				}
				for r, l := range m.imageNotes(pp, j, exps[i], rel, imgCols, colH-2-imgRows) {
					b.set(imgRows+r, l)
				}
				sides = append(sides, b)
			}
			for r, l := range hjoin("  ", sides...) {
				col.lines[2+r] = l
			}
		}
		cols = append(cols, col)
	}
	out = append(out, hjoin(" "+stRule.Render("│")+" ", cols...)...)
	for len(out) < h {
		out = append(out, "")
	}
	return out[:h]
}
