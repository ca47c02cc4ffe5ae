package tui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/trees"
)

// Probing in the pair view: a reading's tree edited in place (E) and scored
// against the pair's images beside the original, and the ranking of a
// reading's alternative structures (R). Both ask the engine's Prober for
// one batch of trees per request, queued by the scheduler like the
// explanations and run off the UI goroutine under the model's context.

// probeKey names one request: trees of a pair, joined by newlines, under a
// checkpoint; or, with cf set, the pair and that counterfactual of it
// (counterfactual.go).
type probeKey struct {
	ckpt, pair, trees string
	cf                Variant
}

// probed is a request's answer: logits[t][image].
type probed struct {
	logits [][]float64
	err    error
}

// wantProbe queues k unless it is answered, queued or running.
func (s *scheduler) wantProbe(k probeKey) {
	if _, done := s.probes[k]; done || (s.probing != nil && *s.probing == k) || slices.Contains(s.probeQueue, k) {
		return
	}
	s.probeQueue = append(s.probeQueue, k)
}

// nextProbe takes the oldest queued request and marks it running; none
// while one runs.
func (s *scheduler) nextProbe() (probeKey, bool) {
	if s.engine == nil || s.probing != nil || len(s.probeQueue) == 0 {
		return probeKey{}, false
	}
	k := s.probeQueue[0]
	s.probeQueue = s.probeQueue[1:]
	s.probing = &k
	return k, true
}

// probedDone records the running request's answer; a cancelled one is
// forgotten, so that asking again runs it again.
func (s *scheduler) probedDone(k probeKey, logits [][]float64, err error) {
	s.probing = nil
	if errors.Is(err, context.Canceled) {
		return
	}
	s.probes[k] = &probed{logits: logits, err: err}
}

type probedMsg struct {
	key    probeKey
	logits [][]float64
	err    error
}

// prober is the shown engine's Prober; nil with why when it has none.
func (m *Model) prober() (Prober, string) {
	if m.engine == nil {
		return nil, "the model is not loaded yet"
	}
	p, ok := m.engine.(Prober)
	if !ok {
		return nil, "this engine cannot score trees the dataset does not hold"
	}
	return p, ""
}

// probeNext starts the next queued request.
func (m *Model) probeNext() tea.Cmd {
	pr, _ := m.prober()
	cf, _ := m.counterfactual()
	if pr == nil && cf == nil {
		return nil
	}
	k, ok := m.nextProbe()
	if !ok {
		return nil
	}
	ctx := m.ctx
	if k.cf != (Variant{}) || pr == nil {
		return func() tea.Msg { return askVariant(ctx, cf, k) }
	}
	return func() tea.Msg {
		logits, err := pr.ScoreTrees(ctx, k.pair, strings.Split(k.trees, "\n"))
		return probedMsg{key: k, logits: logits, err: err}
	}
}

func (m *Model) onProbed(msg probedMsg) tea.Cmd {
	m.probedDone(msg.key, msg.logits, msg.err)
	if msg.err != nil && !errors.Is(msg.err, context.Canceled) {
		m.setFlash(true, "scoring trees of %s failed: %v", clean(msg.key.pair), msg.err)
	}
	return m.probeNext()
}

// ask queues the request for ts of pair id and starts it when nothing runs.
func (m *Model) ask(id string, ts []string) (probeKey, tea.Cmd) {
	k := probeKey{ckpt: m.ckpt(), pair: id, trees: strings.Join(ts, "\n")}
	m.wantProbe(k)
	return k, m.probeNext()
}

// treeEdit is one accepted edit: reading's tree replaced by tree
// (trees.Format).
type treeEdit struct {
	reading int
	tree    string
}

// currentTrees are pair i's trees with its live edits applied.
func (m *Model) currentTrees(i int) []string {
	p := &m.pairs[i]
	ts := make([]string, len(p.Readings))
	for r := range p.Readings {
		ts[r] = p.Readings[r].Tree
	}
	for _, e := range m.edits[p.ID] {
		ts[e.reading] = e.tree
	}
	return ts
}

// panelKind is what the panel under the pair's header shows.
type panelKind int

const (
	panelNone panelKind = iota
	panelEditor
	panelEdited
	panelRanking
)

// probePanel replaces the pair view's columns with the tree editor, an
// edited pair's logits beside the original's, or a reading's ranking.
type probePanel struct {
	kind    panelKind
	reading int
	// The editor's line, its cursor (a rune index) and its parse error.
	text   []rune
	cursor int
	err    error
	// back is the panel esc returns to from the editor.
	back   panelKind
	scroll int
	// cf is the counterfactual shown (counterfactual.go).
	cf cfState
}

// panelKey handles the pair view's probing keys; ok is false for the
// others.
func (m *Model) panelKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	pn := &m.panel
	if pn.kind == panelEditor {
		return pn.editKey(m, msg), true
	}
	if cmd, ok := m.cfKey(msg); ok {
		return cmd, true
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Edit):
		if _, why := m.prober(); why != "" {
			m.setFlash(false, "E: %s", why)
			return nil, true
		}
		pn.open(m, pn.reading)
	case key.Matches(msg, k.Rank):
		pr, why := m.prober()
		if pr == nil {
			m.setFlash(false, "R: %s", why)
			return nil, true
		}
		switch {
		case pn.kind != panelRanking:
			pn.kind, pn.scroll = panelRanking, 0
		case pn.reading+1 < min(2, len(m.pairs[m.cur].Readings)):
			pn.reading++
		default:
			pn.kind, pn.reading = panelNone, 0
			return nil, true
		}
		return m.askRanking(), true
	case key.Matches(msg, k.Undo):
		id := m.pairs[m.cur].ID
		es := m.edits[id]
		if len(es) == 0 {
			m.setFlash(false, "no edit of this pair to undo")
			return nil, true
		}
		last := es[len(es)-1]
		m.edits[id] = es[:len(es)-1]
		m.setFlash(false, "undid the edit of reading %s", letter(last.reading))
		if len(es) == 1 {
			delete(m.edits, id)
			if pn.kind == panelEdited {
				pn.kind = panelNone
			}
			return nil, true
		}
		return tea.Batch(m.askEdited(), m.explainNext()), true
	case pn.kind == panelNone:
		return nil, false
	case key.Matches(msg, k.Back):
		pn.kind = panelNone
	case msg.String() == "tab":
		pn.reading = (pn.reading + 1) % min(2, len(m.pairs[m.cur].Readings))
		if pn.kind == panelRanking {
			return m.askRanking(), true
		}
	case key.Matches(msg, k.Down):
		pn.scroll++
	case key.Matches(msg, k.Up):
		pn.scroll = max(0, pn.scroll-1)
	default:
		return nil, false
	}
	return nil, true
}

// open starts the editor on reading r's current tree.
func (pn *probePanel) open(m *Model, r int) {
	if pn.kind != panelEditor {
		pn.back = pn.kind
	}
	pn.kind, pn.reading = panelEditor, r
	pn.text = []rune(m.currentTrees(m.cur)[r])
	if t, err := trees.Parse(string(pn.text)); err == nil {
		pn.text = []rune(trees.Format(t))
	}
	pn.cursor = len(pn.text)
	pn.reparse(m)
}

// reparse parses the line and checks that it keeps the sentence's words,
// as a manifest's readings must.
func (pn *probePanel) reparse(m *Model) *trees.Node {
	t, err := trees.Parse(string(pn.text))
	pn.err = err
	if err != nil {
		return nil
	}
	p := &m.pairs[m.cur]
	orig, err := trees.Parse(p.Readings[pn.reading].Tree)
	if err == nil && !slices.Equal(t.Words(), orig.Words()) {
		pn.err = fmt.Errorf("the words must stay %q; these are %q", strings.Join(orig.Words(), " "), strings.Join(t.Words(), " "))
		return nil
	}
	return t
}

// editKey is the editor's line editing: every printable key is typed.
func (pn *probePanel) editKey(m *Model, msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "esc":
		pn.kind = pn.back
		return nil
	case "enter":
		t := pn.reparse(m)
		if t == nil {
			m.setFlash(true, "the tree does not parse: fix it or esc")
			return nil
		}
		tree := trees.Format(t)
		id := m.pairs[m.cur].ID
		if tree != m.currentTrees(m.cur)[pn.reading] {
			m.edits[id] = append(m.edits[id], treeEdit{reading: pn.reading, tree: tree})
		}
		pn.kind = panelEdited
		if len(m.edits[id]) == 0 {
			pn.kind = pn.back
			m.setFlash(false, "no change")
			return nil
		}
		return tea.Batch(m.askEdited(), m.explainNext())
	case "tab":
		pn.open(m, (pn.reading+1)%min(2, len(m.pairs[m.cur].Readings)))
		return nil
	case "left", "ctrl+b":
		pn.cursor = max(0, pn.cursor-1)
	case "right", "ctrl+f":
		pn.cursor = min(len(pn.text), pn.cursor+1)
	case "home", "ctrl+a":
		pn.cursor = 0
	case "end", "ctrl+e":
		pn.cursor = len(pn.text)
	case "ctrl+u":
		pn.text, pn.cursor = nil, 0
	case "backspace":
		if pn.cursor > 0 {
			pn.text = slices.Delete(pn.text, pn.cursor-1, pn.cursor)
			pn.cursor--
		}
	case "delete", "ctrl+d":
		if pn.cursor < len(pn.text) {
			pn.text = slices.Delete(pn.text, pn.cursor, pn.cursor+1)
		}
	default:
		if msg.Text == "" || ansi.StringWidth(msg.Text) == 0 || clean(msg.Text) != msg.Text {
			return nil
		}
		r := []rune(msg.Text)
		pn.text = slices.Insert(pn.text, pn.cursor, r...)
		pn.cursor += len(r)
	}
	pn.reparse(m)
	return nil
}

// editedTrees is the request of the open pair's edited readings: the
// original trees, then the current ones, in one batch, so that the deltas
// compare logits of one forward pass (a current tree equal to an original
// shares its row, and its delta is exactly 0).
func (m *Model) editedTrees() []string {
	p := &m.pairs[m.cur]
	var ts []string
	for r := range p.Readings {
		ts = append(ts, p.Readings[r].Tree)
	}
	return append(ts, m.currentTrees(m.cur)...)
}

func (m *Model) askEdited() tea.Cmd {
	_, cmd := m.ask(m.pairs[m.cur].ID, m.editedTrees())
	return cmd
}

// rankingTrees are the open reading's structures (trees.Candidates over
// the dataset's trees) as the engine reads them; nil when a tree does not
// parse.
func (m *Model) rankingTrees(r int) ([]trees.Candidate, []string, error) {
	pp := m.prepare(m.cur)
	for _, err := range pp.errs {
		if err != nil {
			return nil, nil, err
		}
	}
	cs, _, _ := trees.Candidates(pp.nodes, r, m.style())
	ts := make([]string, len(cs))
	for i, c := range cs {
		ts[i] = trees.Format(c.Tree)
	}
	return cs, ts, nil
}

func (m *Model) askRanking() tea.Cmd {
	_, ts, err := m.rankingTrees(m.panel.reading)
	if err != nil {
		m.setFlash(true, "cannot rank: %v", err)
		return nil
	}
	_, cmd := m.ask(m.pairs[m.cur].ID, ts)
	return cmd
}

// panelAsk asks for what the open panel shows when it is neither answered
// nor asked for under the shown engine, which a fine-tune, b or L may have
// changed since the panel opened.
func (m *Model) panelAsk() tea.Cmd {
	if m.screen != screenPair || m.engine == nil {
		return nil
	}
	if cmd := m.cfAsk(); cmd != nil {
		return cmd
	}
	if pr, _ := m.prober(); pr == nil {
		return nil
	}
	switch m.panel.kind {
	case panelEdited:
		if len(m.edits[m.pairs[m.cur].ID]) > 0 {
			return m.askEdited()
		}
	case panelRanking:
		if _, ts, err := m.rankingTrees(m.panel.reading); err == nil {
			_, cmd := m.ask(m.pairs[m.cur].ID, ts)
			return cmd
		}
	}
	return nil
}

// answer is the answer to ts of the open pair, nil while it runs.
func (m *Model) answer(ts []string) *probed {
	return m.probes[probeKey{ckpt: m.ckpt(), pair: m.pairs[m.cur].ID, trees: strings.Join(ts, "\n")}]
}

// view draws the panel in w×h cells.
func (pn *probePanel) view(m *Model, w, h int) []string {
	var out []string
	switch pn.kind {
	case panelEditor:
		out = pn.editorView(m, w)
	case panelRanking:
		out = m.rankingView(pn.reading, w)
	}
	for i := range out {
		out[i] = fit(out[i], w)
	}
	return scrolled(out, &pn.scroll, h)
}

func (pn *probePanel) editorView(m *Model, w int) []string {
	p := &m.pairs[m.cur]
	out := []string{
		stBold.Render(fmt.Sprintf(" edit reading %s", letter(pn.reading))) + stDim.Render(" · enter scores it against both images · esc cancels · tab: the other reading · ctrl+u clears"),
		stDim.Render(" sentence: ") + clean(p.Sentence),
		"",
	}
	// The line scrolls so that the cursor stays in view.
	room := max(8, w-2)
	start := max(0, pn.cursor-room+1)
	line := pn.text[start:min(len(pn.text), start+room)]
	cur := pn.cursor - start
	var b strings.Builder
	b.WriteString(" ")
	for i, r := range line {
		if i == cur {
			b.WriteString(stTarget.Render(clean(string(r))))
		} else {
			b.WriteString(clean(string(r)))
		}
	}
	if cur == len(line) {
		b.WriteString(stTarget.Render(" "))
	}
	out = append(out, b.String())
	var se *trees.SyntaxError
	switch {
	case errors.As(pn.err, &se):
		col := se.Col - 1 - start
		if col >= 0 && col < room {
			out = append(out, " "+strings.Repeat(" ", col)+stBad.Render("^"))
		} else {
			out = append(out, "")
		}
		out = append(out, stBad.Render(fit(fmt.Sprintf(" %s at column %d", se.Msg, se.Col), w)))
	case pn.err != nil:
		out = append(out, "", stBad.Render(fit(" "+clean(pn.err.Error()), w)))
	default:
		out = append(out, "", stOK.Render(" parses")+stDim.Render(fmt.Sprintf(" · %d/%d", pn.cursor, len(pn.text))))
	}
	return out
}

// editedKey is the open pair's edited explanation under the shown
// settings.
func (m *Model) editedKey() expKey { return m.expKeyOf(m.prepareEdited(m.cur)) }

// editedHeader heads the pair view of the open pair with its edits: which
// readings are edited, and each logit of the edited pair beside the
// original's, with the delta. The edited pair's score (pp.score), from
// which the columns say what each reading picks, is set here from the
// answer to editedTrees.
func (m *Model) editedHeader(pp *prepared, w int) []string {
	p := &m.pairs[m.cur]
	n := min(2, len(p.Readings))
	var edited []string
	for r := range p.Readings {
		if pp.pair.Readings[r].Tree != p.Readings[r].Tree {
			edited = append(edited, letter(r))
		}
	}
	left := []string{
		stBold.Render(" "+clean(p.ID)) + stWarn.Render(" · edited "+strings.Join(edited, ", ")) + stDim.Render(fmt.Sprintf(" · %s · u undoes · esc: the original", plural(len(m.edits[p.ID]), "edit"))),
		" " + stBold.Render("“"+clean(p.Sentence)+"”"),
		" " + stDim.Render(clean(pp.summary)),
	}
	var table []string
	a := m.answer(m.editedTrees())
	pp.score = nil
	switch {
	case a == nil:
		table = []string{m.spin.View() + stDim.Render(" scoring the edit…")}
	case a.err != nil:
		table = []string{stBad.Render("scoring failed (!)")}
	default:
		nr := len(p.Readings)
		orig, now := a.logits[:nr], a.logits[nr:]
		logits := make([][]float64, nr)
		for i := range nr {
			logits[i] = make([]float64, nr)
			for j := range nr {
				logits[i][j] = now[j][i]
			}
		}
		if s, err := NewScore(p.ID, logits); err == nil {
			pp.score = &s
		}
		table = wasNowTable(orig, now, n)
	}
	return besideTable(left, table, w)
}

// rankingView lists reading r's structures by their margin for its image,
// with each image's rank: which structure the model sees in each image.
func (m *Model) rankingView(r, w int) []string {
	p := &m.pairs[m.cur]
	out := []string{stBold.Render(fmt.Sprintf(" reading %s: its structures", letter(r))) + stDim.Render(" · one re-attachment away · R: next reading · tab · esc")}
	cs, ts, err := m.rankingTrees(r)
	if err != nil {
		return append(out, stBad.Render(fit(" "+clean(err.Error()), w)))
	}
	a := m.answer(ts)
	switch {
	case a == nil:
		return append(out, m.spin.View()+stDim.Render(fmt.Sprintf(" scoring %s in one batch…", plural(len(ts), "structure"))))
	case a.err != nil:
		return append(out, stBad.Render(fit(" "+clean(a.err.Error()), w)))
	}
	n := min(2, len(p.Readings))
	type row struct {
		c      trees.Candidate
		logits []float64
		margin float64
	}
	rows := make([]row, len(cs))
	for i, c := range cs {
		l := a.logits[i]
		other := math.Inf(-1)
		for k, v := range l {
			if k != r {
				other = max(other, v)
			}
		}
		rows[i] = row{c: c, logits: l, margin: l[r] - other}
	}
	rank := func(i, k int) int {
		n := 1
		for _, o := range rows {
			if o.logits[k] > rows[i].logits[k] {
				n++
			}
		}
		return n
	}
	ranks := make([][]int, len(rows))
	for i := range rows {
		for k := range n {
			ranks[i] = append(ranks[i], rank(i, k))
		}
	}
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int {
		switch {
		case rows[x].margin > rows[y].margin:
			return -1
		case rows[x].margin < rows[y].margin:
			return 1
		}
		return 0
	})
	head := fmt.Sprintf(" %3s", "#")
	for k := range n {
		head += fmt.Sprintf("  %8s %4s", "image "+letter(k), "rank")
	}
	out = append(out, stDim.Render(head+fmt.Sprintf("  %7s  %s", "margin", "structure")))
	words := m.prepare(m.cur).nodes[r].Words()
	for pos, i := range order {
		rw := rows[i]
		line := fmt.Sprintf(" %3d", pos+1)
		for k := range n {
			line += fmt.Sprintf("  %8.3f %4d", rw.logits[k], ranks[i][k])
		}
		what := "alternative"
		switch {
		case rw.c.Reading == r:
			what = "★ reading " + letter(r) + " (gold)"
		case rw.c.Reading >= 0:
			what = "◆ reading " + letter(rw.c.Reading)
		}
		if rw.c.Move != nil {
			what += ": " + rw.c.Move.Describe(words)
		}
		line += fmt.Sprintf("  %+7.3f  ", rw.margin)
		out = append(out, fit(line+clean(what), w))
	}
	return append(out, stDim.Render(fit(fmt.Sprintf(" margin: logit for image %s minus the other image's · rank 1: what the model sees best in that image", letter(r)), w)))
}
