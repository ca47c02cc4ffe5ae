package tui

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui/graphics"
)

// pairLayout is where the parts of the pair view go. Columns are the
// readings; in each, under a head line and the gloss, the image box sits at
// the left of the body with the tree to its right, and the linearized tree
// fills the bottom.
type pairLayout struct {
	colW             int
	colX             [2]int
	colY, colH       int
	bodyY, bodyH     int
	imgCols, imgRows int
	treeX, treeW     int
	tokH             int
}

const (
	headerRows = 4 // title, sentence, diff summary, rule
	footerRows = 2 // status bar, hint bar
	colSep     = 3 // " │ "
	// maxImgRows bounds the image at a size where a half-block image
	// still draws in a frame's time.
	maxImgRows = 48
	// maxTopTokens bounds the list of most relevant tokens under an image.
	maxTopTokens = 8
)

func (m *Model) pairLayout(pp *prepared) pairLayout {
	var l pairLayout
	l.colW = (m.w - colSep) / 2
	l.colX = [2]int{0, l.colW + colSep}
	l.colY = headerRows
	l.colH = m.h - headerRows - footerRows
	text := 0
	for j := range min(2, len(pp.nodes)) {
		if lin := pp.linear(j, m.style()); lin != nil {
			text = max(text, len(wrapWords(lin.Text, l.colW)))
		}
	}
	l.tokH = max(1, min(text, l.colH/4))
	l.bodyY = l.colY + 2
	l.bodyH = max(1, l.colH-2-1-l.tokH)
	l.imgRows = min(maxImgRows, l.bodyH)
	l.imgCols = min(2*l.imgRows, l.colW*9/20)
	l.imgRows = min(l.imgRows, (l.imgCols+1)/2)
	l.treeX = l.imgCols + 2
	l.treeW = l.colW - l.treeX
	return l
}

// style is the linearization the shown engine reads; the paper's until an
// engine is loaded.
func (m *Model) style() trees.Style {
	if m.engine == nil {
		return trees.StylePaper
	}
	return m.info.Style
}

// placement is a sixel or kitty image the frame left room for.
type placement struct {
	x, y int
	key  visualKey
	seq  string
}

func (p *pairState) view(m *Model, w, h int) []string {
	if m.comparing() {
		return m.viewCompare(w, h)
	}
	pp := m.prepare(m.cur)
	lay := m.pairLayout(pp)
	if p.panel.kind == panelEdited {
		pp = m.prepareEdited(m.cur)
		lay = m.pairLayout(pp)
	}
	exp := m.exps[m.expKeyOf(pp)]
	if exp != nil && exp.err == nil && exp.exp == nil {
		exp = nil
	}

	var out []string
	switch p.panel.kind {
	case panelNone:
		out = m.pairHeader(pp, exp, w)
		if v, _ := m.variant(); v != (Variant{}) {
			out = m.cfHeader(w)
		}
	case panelEdited:
		out = m.editedHeader(pp, w)
	default:
		out = m.pairHeader(pp, exp, w)
		out = append(out, stRule.Render(strings.Repeat("─", w)))
		return append(out, p.panel.view(m, w, h-len(out))...)
	}
	out = append(out, stRule.Render(strings.Repeat("─", w)))
	var cols []*block
	for j := range 2 {
		col := newBlock(lay.colW, lay.colH)
		if j < len(pp.pair.Readings) {
			m.fillColumn(col, pp, j, exp, lay)
		}
		cols = append(cols, col)
	}
	out = append(out, hjoin(" "+stRule.Render("│")+" ", cols...)...)
	for len(out) < h {
		out = append(out, "")
	}
	return out[:h]
}

// expKeyOf is the key of pp's explanation under the shown settings.
// While a counterfactual is shown, it is the counterfactual's: the image
// columns show its heatmaps over its images.
func (m *Model) expKeyOf(pp *prepared) expKey {
	k := m.currentKey(pp.pair.ID)
	k.trees = pp.trees
	if v, ok := m.cfShown(); ok && pp.trees == "" {
		k.cf = v
	}
	return k
}

// pairHeader is the pair's id, sentence and diff summary, with the logits
// table at the right.
func (m *Model) pairHeader(pp *prepared, exp *explained, w int) []string {
	p := pp.pair
	table := m.logitsTable(p.ID, exp)
	pos := slices.Index(m.list.rows, m.cur)
	where := fmt.Sprintf("%d/%d", pos+1, len(m.list.rows))
	if pos < 0 {
		where = "not in the filtered list"
	}
	title := stBold.Render(" "+clean(p.ID)) + stDim.Render(" · "+clean(p.Ambiguity)+" · "+where)
	if len(p.Readings) > 2 {
		title += stWarn.Render(fmt.Sprintf(" · %d readings, showing A and B", len(p.Readings)))
	}
	left := []string{title, " " + stBold.Render("“"+clean(p.Sentence)+"”"), " " + stDim.Render(clean(pp.summary))}
	return besideTable(left, table, w)
}

// logitsTable is the pair's logits and, beside each, the probability of the
// image for that reading's text; the target cells are bracketed.
func (m *Model) logitsTable(id string, exp *explained) []string {
	return m.logitsTableOf(m.ckpt(), "logit p", id, exp)
}

// logitsTableOf is the table of checkpoint ckpt's logits, captioned.
func (m *Model) logitsTableOf(ckpt, caption, id string, exp *explained) []string {
	s, ok := m.scores[ckpt][id]
	if !ok {
		switch {
		case m.engineErr != nil:
			return []string{stDim.Render("logits: no model")}
		case m.engine == nil:
			return []string{stDim.Render("logits: model loading")}
		}
		return []string{stDim.Render("logits: scoring…")}
	}
	n := min(2, len(s.Logits))
	marked := map[[2]int]bool{}
	for j := range n {
		cells := m.target.Cells(j, len(s.Logits))
		if exp != nil && exp.exp != nil && j < len(exp.exp.Readings) {
			cells = exp.exp.Readings[j].Cells
		}
		for _, c := range cells {
			marked[c] = true
		}
	}
	head := fmt.Sprintf("%-8s", caption)
	for j := range n {
		head += fmt.Sprintf("  %12s", "text "+letter(j))
	}
	out := []string{stDim.Render(head)}
	for i := range n {
		row := fmt.Sprintf("%-8s", "image "+letter(i))
		for j := range n {
			cell := fmt.Sprintf("%6.2f %s", s.Logits[i][j], prob(s.Probs[i][j]))
			switch {
			case marked[[2]int{i, j}]:
				cell = stTarget.Render("[" + cell + "]")
			default:
				cell = " " + cell + " "
			}
			if s.Picks[j] == i {
				cell = pickStyle(i == j).Render("▸") + cell
			} else {
				cell = " " + cell
			}
			row += " " + cell
		}
		out = append(out, row)
	}
	return out
}

func pickStyle(ok bool) lipgloss.Style {
	if ok {
		return stOK
	}
	return stBad
}

// prob writes a probability in four cells: .93, 1.00.
func prob(p float64) string {
	s := fmt.Sprintf("%.2f", p)
	if strings.HasPrefix(s, "0.") {
		s = s[1:]
	}
	return fmt.Sprintf("%4s", s)
}

func (m *Model) fillColumn(col *block, pp *prepared, j int, exp *explained, lay pairLayout) {
	p := pp.pair
	r := &p.Readings[j]
	head := stBold.Render(letter(j)) + "  "
	s, ok := m.scores[m.ckpt()][p.ID]
	if pp.trees != "" {
		ok = pp.score != nil
		if ok {
			s = *pp.score
		}
	}
	if ok && j < len(s.Correct) {
		pick := "a tie"
		if s.Picks[j] >= 0 {
			pick = "image " + letter(s.Picks[j])
		}
		head += tick(s.Correct[j]) + " picks " + pick + stDim.Render(fmt.Sprintf(" · margin %s · p %s", signed(s.Margins[j]), strings.TrimSpace(prob(s.Probs[j][j]))))
	} else if m.engine != nil {
		head += stDim.Render("scoring…")
	}
	col.set(0, head)
	if r.Gloss != "" {
		col.set(1, stGloss.Render("“"+clean(r.Gloss)+"”"))
	}

	var rel *readingRel
	if exp != nil && exp.err == nil && j < len(exp.readings) {
		rel = &exp.readings[j]
	}

	// Body: the image box with notes under it, and the tree.
	left := newBlock(lay.imgCols, lay.bodyH)
	m.fillImageBox(left, pp, j, exp, imageSlot{x: lay.colX[j], y: lay.bodyY, col: j, cols: lay.imgCols, rows: lay.imgRows, exp: m.expKeyOf(pp)})
	notes := m.imageNotes(pp, j, exp, rel, lay.imgCols, lay.bodyH-lay.imgRows)
	for i, l := range notes {
		left.set(lay.imgRows+i, l)
	}
	right := newBlock(lay.treeW, lay.bodyH)
	if pp.nodes[j] == nil {
		right.set(0, stBad.Render(clean(pp.errs[j].Error())))
	} else {
		lines := m.treeLines(pp, j, rel, lay.treeW)
		scroll := min(m.scroll, max(0, len(lines)-lay.bodyH))
		for i := 0; i < lay.bodyH && scroll+i < len(lines); i++ {
			right.set(i, lines[scroll+i])
		}
		if below := len(lines) - scroll - lay.bodyH; below > 0 {
			right.set(lay.bodyH-1, stDim.Render("↓ "+plural(below, "more line")+" (j/k)"))
		}
		if scroll > 0 {
			right.set(0, stDim.Render("↑ "+plural(scroll, "line")+" above (j/k)"))
		}
	}
	body := hjoin("  ", left, right)
	for i, l := range body {
		col.lines[2+i] = l
	}

	// The linearization with its tokens painted.
	y := 2 + lay.bodyH
	label := "linearized"
	if rel != nil && rel.err != nil {
		label = "tokens not tied to the tree: " + rel.err.Error()
	} else if rel != nil && len(rel.unmatched) > 0 {
		label += " · underlined: tokens the other reading lacks"
	}
	if exp != nil && j < len(exp.ana) && exp.ana[j] != nil && !m.rawTokens {
		label = m.wordsLine(exp.ana[j]) + stDim.Render(" · words in context; tokens: "+strings.TrimPrefix(clean(label), "linearized · "))
		col.set(y, label)
	} else {
		col.set(y, stDim.Render(clean(label)))
	}
	text := ""
	if lin := pp.linear(j, m.style()); lin != nil {
		text = lin.Text
	}
	if rel != nil {
		text = rel.text
	}
	lines := m.tokenLines(text, rel, lay.colW)
	for i := 0; i < lay.tokH && i < len(lines); i++ {
		l := lines[i]
		if i == lay.tokH-1 && len(lines) > lay.tokH {
			l = ansi.Truncate(l, lay.colW-1, "") + "…"
		}
		col.set(y+1+i, l)
	}
}

// imageNotes are the lines under an image: which image and target the
// heatmap shows, the colour scale, and the most relevant tokens.
func (m *Model) imageNotes(pp *prepared, j int, exp *explained, rel *readingRel, w, h int) []string {
	if h <= 0 {
		return nil
	}
	var out []string
	if exp != nil && exp.err != nil {
		out = append(out, stBad.Render("explanation failed:"), stBad.Render(clean(exp.err.Error())))
		return out
	}
	if exp == nil {
		if m.engine != nil {
			out = append(out, m.spin.View()+stDim.Render(" explaining…"))
		}
		return out
	}
	rr := exp.exp.Readings[j]
	what := fmt.Sprintf("image %s · %s target", letter(rr.Image), exp.exp.Request.Target)
	if m.rawImages {
		what = fmt.Sprintf("image %s without heatmap (i)", letter(rr.Image))
	}
	out = append(out, stDim.Render(what))
	if exp.exp.Request.Variant != (Variant{}) {
		out = append(out, m.boxMassLines(pp, j, exp)...)
	}
	if j == 0 && m.opt.GraphicsNote != "" && m.mode == graphics.Blocks {
		// The note flashes once at start; here it stays while its
		// fallback is the mode drawn.
		out = append(out, stWarn.Render(fit(clean(m.opt.GraphicsNote), w)))
	}
	if !m.rawImages {
		out = append(out, m.colorScale(w))
	}
	if j < len(exp.point) && exp.point[j] != nil && !m.rawImages {
		pt := exp.point[j]
		hit := tick(pt.Hit)
		out = append(out, hit+stDim.Render(fmt.Sprintf(" in box · mass %s (chance %s)", pct(pt.Mass, 1), pct(pt.ChanceMass, 1))))
	}
	// The faithfulness lines come last and only where the constituents
	// (or tokens) keep at least three rows: relevance in context is what
	// the pair view is for, the metrics are its footnote.
	faith := m.faithLines(exp, j)
	var ana *report.Analysis
	if j < len(exp.ana) && !m.rawTokens {
		ana = exp.ana[j]
	}
	if ana != nil && ana.Contrast != nil {
		out = append(out, contrastLine(ana.Contrast))
	}
	switch {
	case ana != nil:
		out = append(out, stDim.Render("constituents · w: tokens"))
		out = append(out, m.constituentLines(ana, w, rowsFor(h-len(out), len(faith)))...)
	case rel != nil:
		head := "most relevant tokens"
		if len(exp.ana) > 0 {
			head = "tokens, #position · w: constituents"
		}
		out = append(out, stDim.Render(head))
		nameW := min(14, w/2)
		barW := max(1, min(8, w-nameW-6))
		for _, t := range rel.topTokens(rowsFor(h-len(out), len(faith))) {
			n := max(1, int(t.Relevance*float64(barW)+0.5))
			name := clean(t.Text)
			if len(exp.ana) > 0 {
				name = fmt.Sprintf("#%d %s", t.index, name)
			}
			out = append(out, fit(name, nameW)+" "+heat(strings.Repeat(" ", n), m.heatColor(t.Relevance), false)+strings.Repeat(" ", barW-n)+stDim.Render(fmt.Sprintf(" %.2f", t.Relevance)))
		}
	}
	for _, l := range faith {
		out = append(out, fit(l, w))
	}
	return out[:min(len(out), h)]
}

// rowsFor is how many ranked constituents or tokens fit in free rows when
// extra footnote rows would follow: all that fit beside the footnotes, but
// never fewer than three for the footnotes' sake.
func rowsFor(free, extra int) int {
	n := min(maxTopTokens, max(0, free-extra))
	if n < 3 {
		n = min(maxTopTokens, max(0, free), 3)
	}
	return n
}

// contrastLine says where a reading's relevance falls against its twin:
// on the tokens the twin lacks, on the attachment site, on the ambiguous
// noun.
func contrastLine(c *report.Contrast) string {
	parts := []string{"unique " + pct(c.Unique, 1)}
	if c.Site != nil {
		parts = append(parts, "site "+pct(c.Site.Mass, 1))
	}
	if c.Noun != nil {
		parts = append(parts, "noun "+clean(c.Noun.HeadWord)+" "+pct(c.Noun.Mass, 1))
	}
	return stDim.Render(strings.Join(parts, " · "))
}

// constituentLines ranks a reading's constituents by their own relevance:
// label, the words they span, a bar scaled to the largest. ◆ marks the
// attachment site, ↷ the re-attached constituent; those the twin lacks are
// underlined.
func (m *Model) constituentLines(a *report.Analysis, w, n int) []string {
	top := 0.0
	for _, c := range a.Constituents {
		top = max(top, math.Abs(c.Relevance))
	}
	barW := max(1, min(6, w/4))
	nameW := max(4, w-barW-6)
	var out []string
	for _, c := range a.Constituents[:min(n, len(a.Constituents))] {
		v := 0.0
		if top > 0 {
			v = c.Relevance / top
		}
		mark := " "
		switch {
		case c.Site:
			mark = "◆"
		case c.Moved:
			mark = "↷"
		}
		name := fit(mark+clean(c.Label)+" "+clean(c.Words), nameW)
		if c.Only {
			name = "\x1b[4m" + name + "\x1b[24m"
		}
		k := max(1, int(math.Abs(v)*float64(barW)+0.5))
		out = append(out, name+" "+heat(strings.Repeat(" ", k), m.heatColor(v), false)+strings.Repeat(" ", barW-k)+stDim.Render(fmt.Sprintf(" %.2f", c.Relevance)))
	}
	return out
}

// wordsLine paints the sentence's words by their relevance in context
// (each word with its preterminal's brackets and tag), scaled to the
// largest.
func (m *Model) wordsLine(a *report.Analysis) string {
	top := 0.0
	for _, wc := range a.Words {
		top = max(top, math.Abs(wc.Relevance))
	}
	parts := make([]string, len(a.Words))
	for i, wc := range a.Words {
		v := 0.0
		if top > 0 {
			v = wc.Relevance / top
		}
		parts[i] = heat(clean(wc.Word), m.heatColor(v), false)
	}
	return strings.Join(parts, " ")
}

// colorScale is a one-line legend of the colormap.
func (m *Model) colorScale(w int) string {
	n := max(2, min(16, w-9))
	var b strings.Builder
	b.WriteString(stDim.Render("low "))
	lo := 0.0
	if m.cmap.Diverging() {
		lo = -1
	}
	for i := range n {
		v := lo + (1-lo)*float64(i)/float64(n-1)
		b.WriteString(heat(" ", m.heatColor(v), false))
	}
	b.WriteString(stDim.Render(" high"))
	return b.String()
}

// heatColor maps a normalised relevance in [-1, 1] to a colour: [0, 1]
// over the whole map, or [-1, 1] over a diverging one.
func (m *Model) heatColor(v float64) color.RGBA {
	x := max(v, 0)
	if m.cmap.Diverging() {
		x = 0.5 + 0.5*v
	}
	return m.cmap.At(float32(x))
}

// treeLines draws reading j's tree top-down, nodes painted by relevance and
// the constituents only this reading has underlined.
func (m *Model) treeLines(pp *prepared, j int, rel *readingRel, w int) []string {
	key := fmt.Sprintf("tree|%s|%d|%p|%s|%d", pp.pair.ID, j, rel, m.cmap.Name(), w)
	if l, ok := m.renderMem[key]; ok {
		return l
	}
	var only map[*trees.Node]bool
	if j < 2 {
		only = pp.only[j]
	}
	hook := func(s trees.Segment) (string, string) {
		switch s.Kind {
		case trees.SegGuide:
			return "\x1b[38;2;98;98;98m", "\x1b[0m"
		case trees.SegLabel, trees.SegWord:
			if rel != nil && rel.nodes != nil {
				v := rel.nodes[s.Node]
				styled := heat("\x00", m.heatColor(v), only[s.Node])
				pre, suf, _ := strings.Cut(styled, "\x00")
				return pre, suf
			}
			if only[s.Node] {
				return "\x1b[1;4m", "\x1b[0m"
			}
			if s.Kind == trees.SegLabel && !s.Node.IsLeaf() {
				return "\x1b[1m", "\x1b[0m"
			}
		}
		return "", ""
	}
	text := trees.Vertical(pp.nodes[j], w).Render(hook)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	m.remember(key, lines)
	return lines
}

func (m *Model) remember(key string, lines []string) {
	if len(m.renderMem) > 512 {
		clear(m.renderMem)
	}
	m.renderMem[key] = lines
}

// tokenLines writes text folded at spaces into lines of w cells, each token
// on the colour of its relevance.
func (m *Model) tokenLines(text string, rel *readingRel, w int) []string {
	key := fmt.Sprintf("tok|%s|%p|%s|%d", text, rel, m.cmap.Name(), w)
	if l, ok := m.renderMem[key]; ok {
		return l
	}
	var at []int
	if rel != nil {
		at = make([]int, len(text))
		for i := range at {
			at[i] = -1
		}
		for t, tok := range rel.tokens {
			for i := max(tok.Start, 0); i < min(tok.End, len(text)); i++ {
				if at[i] < 0 {
					at[i] = t
				}
			}
		}
	}
	paint := func(start, end int) string {
		if at == nil {
			return stDim.Render(clean(text[start:end]))
		}
		var b strings.Builder
		for i := start; i < end; {
			t := at[i]
			k := i + 1
			for k < end && at[k] == t {
				k++
			}
			if t < 0 {
				b.WriteString(clean(text[i:k]))
			} else {
				b.WriteString(heat(clean(text[i:k]), m.heatColor(rel.tok[t]), rel.unmatched[t]))
			}
			i = k
		}
		return b.String()
	}
	var lines []string
	for _, ln := range wrapWords(text, w) {
		var b strings.Builder
		for k, wd := range ln {
			if k > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(paint(wd[0], wd[1]))
		}
		lines = append(lines, b.String())
	}
	m.remember(key, lines)
	return lines
}

// wrapWords folds text at single spaces into lines of at most w cells,
// returning each line's words as byte ranges; a word wider than a line
// gets a line of its own.
func wrapWords(text string, w int) [][][2]int {
	var lines [][][2]int
	var cur [][2]int
	cw := 0
	for i := 0; i < len(text); {
		if text[i] == ' ' {
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] != ' ' {
			j++
		}
		ww := ansi.StringWidth(clean(text[i:j]))
		if len(cur) > 0 && cw+1+ww > w {
			lines = append(lines, cur)
			cur, cw = nil, 0
		}
		if len(cur) > 0 {
			cw++
		}
		cur = append(cur, [2]int{i, j})
		cw += ww
		i = j
	}
	if len(cur) > 0 {
		lines = append(lines, cur)
	}
	return lines
}

// fillImageBox draws reading j's image with its heatmap: half-blocks as
// text, sixel and kitty as blank cells that syncImages fills.
func (m *Model) fillImageBox(b *block, pp *prepared, j int, exp *explained, at imageSlot) {
	if m.mode == graphics.None {
		b.set(0, stDim.Render("[image]"))
		b.set(1, stDim.Render("graphics off · g"))
		return
	}
	k, vis := m.visualFor(pp, j, exp, at)
	m.wantVisuals = append(m.wantVisuals, k)
	switch {
	case vis == nil:
		b.set(0, stDim.Render("loading image…"))
	case vis.err != nil:
		b.set(0, stBad.Render("image: "))
		for i, l := range strings.SplitAfter(clean(vis.err.Error()), " ") {
			if i+1 < at.rows {
				b.set(i+1, stBad.Render(l))
			}
		}
	case m.mode == graphics.Blocks:
		for i, l := range vis.lines {
			b.set(i, l)
		}
	default:
		m.placements = append(m.placements, placement{x: at.x, y: at.y, key: vis.key, seq: vis.raw})
	}
}
