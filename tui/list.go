package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/loader"
)

// listState is the pair list: its filters, order and cursor.
type listState struct {
	rows         []int // indices into Model.pairs, filtered and sorted
	cursor       int   // index into rows
	offset       int   // first row shown
	failuresOnly bool
	flippedOnly  bool
	family       string // "" for all
	sortBy       sortKey
	desc         bool
	query        string
	searching    bool
	// jumping is true while the jump prompt takes an id.
	jumping bool
	jump    string
}

// sortKey is what the list is ordered by; s cycles through them.
type sortKey int

const (
	sortDataset sortKey = iota
	sortMargin          // the pair's smallest margin
	sortMarginA
	sortMarginB
	sortPointing // share of the readings whose top patch hits a box
	sortMass     // mean share of image relevance inside the boxes
	sortID
	sortFamily
	sortKeys
)

var sortNames = [sortKeys]string{"dataset order", "margin", "margin A", "margin B", "pointing game", "box mass", "id", "family"}

// refreshRows recomputes the rows after a filter, the order or the scores
// changed, keeping the cursor on the same pair where it can.
func (m *Model) refreshRows() {
	l := &m.list
	keep := -1
	if l.cursor >= 0 && l.cursor < len(l.rows) {
		keep = l.rows[l.cursor]
	}
	scores := m.scores[m.ckpt()]
	q := strings.ToLower(l.query)
	l.rows = l.rows[:0]
	for i := range m.pairs {
		p := &m.pairs[i]
		if l.family != "" && p.Ambiguity != l.family {
			continue
		}
		if l.failuresOnly {
			s, ok := scores[p.ID]
			if !ok || !s.Failed() {
				continue
			}
		}
		if l.flippedOnly && m.ft.flipped[p.ID] == 0 {
			continue
		}
		if q != "" && !matches(p, q) {
			continue
		}
		l.rows = append(l.rows, i)
	}
	if l.sortBy != sortDataset || l.desc {
		m.sortRows(scores)
	}
	l.cursor = max(0, min(l.cursor, len(l.rows)-1))
	if keep >= 0 {
		if at := slices.Index(l.rows, keep); at >= 0 {
			l.cursor = at
		}
	}
}

// sortRows orders the rows by the list's key, pairs without a value
// (unscored, unexplained, without boxes) last in either direction, ties
// in dataset order.
func (m *Model) sortRows(scores map[string]Score) {
	l := &m.list
	value := func(i int) (float64, bool) {
		p := &m.pairs[i]
		s, scored := scores[p.ID]
		switch l.sortBy {
		case sortMargin:
			return s.Margin(), scored
		case sortMarginA, sortMarginB:
			j := int(l.sortBy - sortMarginA)
			if !scored || j >= len(s.Margins) {
				return 0, false
			}
			return s.Margins[j], true
		case sortPointing, sortMass:
			pg, ok := m.pairPointing(p.ID)
			if l.sortBy == sortPointing {
				return pg.hits, ok
			}
			return pg.mass, ok
		}
		return float64(i), true
	}
	text := func(i int) string {
		if l.sortBy == sortFamily {
			return m.pairs[i].Ambiguity
		}
		return m.pairs[i].ID
	}
	sign := 1
	if l.desc {
		sign = -1
	}
	slices.SortStableFunc(l.rows, func(a, b int) int {
		if l.sortBy == sortID || l.sortBy == sortFamily {
			return sign * strings.Compare(text(a), text(b))
		}
		va, oka := value(a)
		vb, okb := value(b)
		switch {
		case oka != okb:
			if oka {
				return -1
			}
			return 1
		case !oka:
			return 0
		}
		return sign * cmp.Compare(va, vb)
	})
}

// editLine applies a key to a one-line input: backspace deletes the last
// character, a printable key appends; it reports whether it was either.
func editLine(s *string, msg tea.KeyPressMsg) bool {
	if msg.String() == "backspace" {
		if r := []rune(*s); len(r) > 0 {
			*s = string(r[:len(r)-1])
		}
		return true
	}
	if msg.Text != "" && ansi.StringWidth(msg.Text) > 0 && clean(msg.Text) == msg.Text {
		*s += msg.Text
		return true
	}
	return false
}

// matches reports whether the pair's id, sentence, family or a gloss holds
// q, which is lower case.
func matches(p *loader.Pair, q string) bool {
	fields := []string{p.ID, p.Sentence, p.Ambiguity}
	for _, r := range p.Readings {
		fields = append(fields, r.Gloss)
	}
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// moveTo puts the cursor on the pair with the id, when it is listed.
func (l *listState) moveTo(m *Model, id string) {
	if i, ok := m.byID[id]; ok {
		if at := slices.Index(l.rows, i); at >= 0 {
			l.cursor = at
		}
	}
}

func (m *Model) listKey(msg tea.KeyPressMsg) tea.Cmd {
	k, l := m.keys, &m.list
	page := max(1, m.listHeight()-1)
	switch {
	case key.Matches(msg, k.Up):
		l.cursor = max(0, l.cursor-1)
	case key.Matches(msg, k.Down):
		l.cursor = min(len(l.rows)-1, l.cursor+1)
	case key.Matches(msg, k.PageUp):
		l.cursor = max(0, l.cursor-page)
	case key.Matches(msg, k.PageDown):
		l.cursor = min(len(l.rows)-1, l.cursor+page)
	case key.Matches(msg, k.Home):
		l.cursor = 0
	case key.Matches(msg, k.End):
		l.cursor = len(l.rows) - 1
	case key.Matches(msg, k.Open):
		if len(l.rows) > 0 {
			return m.openPair(l.rows[l.cursor])
		}
	case key.Matches(msg, k.Failures):
		l.failuresOnly = !l.failuresOnly
		m.refreshRows()
	case key.Matches(msg, k.Family):
		fams := append([]string{""}, m.families...)
		l.family = next(fams, l.family)
		m.refreshRows()
	case key.Matches(msg, k.Flipped):
		if m.ft.flipped == nil {
			m.setFlash(false, "no flips yet: fine-tune first (T), then x lists the pairs that flipped")
			return nil
		}
		l.flippedOnly = !l.flippedOnly
		m.refreshRows()
	case key.Matches(msg, k.Sort):
		l.sortBy = (l.sortBy + 1) % sortKeys
		m.refreshRows()
	case key.Matches(msg, k.Reverse):
		l.desc = !l.desc
		m.refreshRows()
	case key.Matches(msg, k.Search):
		l.searching = true
	case key.Matches(msg, k.Jump):
		l.jumping, l.jump = true, ""
	case key.Matches(msg, k.Back):
		if l.query != "" {
			l.query = ""
			m.refreshRows()
		}
	}
	l.cursor = max(0, l.cursor)
	return nil
}

// jumpKey edits the jump prompt; enter moves the cursor to the pair whose id
// is typed (or starts with it), clearing the filters that hide it.
func (m *Model) jumpKey(msg tea.KeyPressMsg) tea.Cmd {
	l := &m.list
	switch msg.String() {
	case "esc":
		l.jumping = false
	case "enter":
		l.jumping = false
		i, ok := m.findID(strings.TrimSpace(l.jump))
		if !ok {
			m.setFlash(true, "no pair id is or starts with %q", clean(l.jump))
			return nil
		}
		if !slices.Contains(l.rows, i) {
			l.failuresOnly, l.flippedOnly, l.family, l.query = false, false, "", ""
			m.refreshRows()
			m.setFlash(false, "filters cleared to show %s", clean(m.pairs[i].ID))
		}
		l.moveTo(m, m.pairs[i].ID)
	default:
		editLine(&l.jump, msg)
	}
	return nil
}

// findID is the pair whose id is s, else the first in dataset order whose
// id starts with s, ignoring case.
func (m *Model) findID(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	if i, ok := m.byID[s]; ok {
		return i, true
	}
	low := strings.ToLower(s)
	for i, p := range m.pairs {
		if strings.HasPrefix(strings.ToLower(p.ID), low) {
			return i, true
		}
	}
	return 0, false
}

// searchKey edits the search query; the list follows each keystroke.
func (m *Model) searchKey(msg tea.KeyPressMsg) tea.Cmd {
	l := &m.list
	switch msg.String() {
	case "enter":
		l.searching = false
	case "esc":
		l.searching, l.query = false, ""
	default:
		editLine(&l.query, msg)
	}
	m.refreshRows()
	return nil
}

// listHeight is how many pair rows the list screen shows.
func (m *Model) listHeight() int {
	h := m.h - 5 // title, header, status, hints, search or blank line
	return max(1, h)
}

func (l *listState) view(m *Model, w, h int) []string {
	out := make([]string, 0, h)
	scores := m.scores[m.ckpt()]

	failed := 0
	for _, s := range scores {
		if s.Failed() {
			failed++
		}
	}
	split := m.opt.Split
	if split == "" {
		split = "all splits"
	}
	title := stBold.Render(" lavascope") + stDim.Render(fmt.Sprintf(" · %s (%s) · %d pairs", clean(m.opt.DataName), clean(split), len(m.pairs)))
	if len(scores) > 0 {
		title += stDim.Render(" · ") + stBad.Render(fmt.Sprintf("%d", failed)) + stDim.Render(" with a failure")
	}
	var filters []string
	if l.failuresOnly {
		filters = append(filters, "failures only")
	}
	if l.family != "" {
		filters = append(filters, "family "+clean(l.family))
	}
	if l.flippedOnly {
		filters = append(filters, "flipped only")
	}
	if l.sortBy != sortDataset || l.desc {
		dir := ""
		if l.desc {
			dir = " ↓"
		}
		filters = append(filters, "by "+sortNames[l.sortBy]+dir)
	}
	if l.query != "" {
		filters = append(filters, "/"+clean(l.query))
	}
	right := ""
	if len(filters) > 0 {
		right = stWarn.Render(strings.Join(filters, " · ")) + " "
	}
	out = append(out, fit(title, w-ansi.StringWidth(right))+right)

	idW := 8
	famW := 6
	for _, i := range l.rows {
		idW = max(idW, min(18, ansi.StringWidth(clean(m.pairs[i].ID))))
		famW = max(famW, min(18, ansi.StringWidth(clean(m.pairs[i].Ambiguity))))
	}
	valHead := "MARGIN"
	switch l.sortBy {
	case sortMarginA, sortMarginB, sortPointing, sortMass:
		valHead = [...]string{sortMarginA: "A MARG", sortMarginB: "B MARG", sortPointing: "POINT", sortMass: "MASS"}[l.sortBy]
	}
	cols := fmt.Sprintf("  %-*s  %-*s  %-5s %7s  %s", idW, "ID", famW, "FAMILY", "A B", valHead, "SENTENCE")
	out = append(out, stHead.Render(fit(cols, w)))

	rows := m.listHeight()
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+rows {
		l.offset = l.cursor - rows + 1
	}
	l.offset = max(0, min(l.offset, len(l.rows)-rows))
	if len(l.rows) == 0 {
		msg := "  no pairs"
		if l.failuresOnly || l.flippedOnly || l.family != "" || l.query != "" {
			msg = "  no pairs match the filters (f, x, F, / change them)"
		}
		out = append(out, stDim.Render(msg))
	}
	for r := l.offset; r < min(len(l.rows), l.offset+rows); r++ {
		p := &m.pairs[l.rows[r]]
		marks, margin := "·  · ", "      "
		if s, ok := scores[p.ID]; ok {
			var ms []string
			for j := range min(2, len(s.Correct)) {
				ms = append(ms, tick(s.Correct[j]))
			}
			marks = strings.Join(ms, " ") + "  "
			if len(s.Correct) > 2 {
				marks = strings.Join(ms, " ") + "+ "
			}
			v := s.Margin()
			if j := int(l.sortBy - sortMarginA); (l.sortBy == sortMarginA || l.sortBy == sortMarginB) && j < len(s.Margins) {
				v = s.Margins[j]
			}
			margin = fmt.Sprintf("%6s", signed(v))
			if v < 0 {
				margin = stBad.Render(margin)
			}
		} else if m.scoring != "" || m.loading {
			marks = stDim.Render("…  … ")
		}
		if l.sortBy == sortPointing || l.sortBy == sortMass {
			margin = "     –"
			if pg, ok := m.pairPointing(p.ID); ok {
				v := pg.mass
				if l.sortBy == sortPointing {
					v = pg.hits
				}
				margin = fmt.Sprintf("%6s", pct(v, 1))
			}
		}
		cursor := "  "
		if r == l.cursor {
			cursor = stKey.Render("▶ ")
		}
		line := cursor + fit(clean(p.ID), idW) + "  " + fit(stDim.Render(clean(p.Ambiguity)), famW) + "  " + marks + m.flipMark(p.ID) + margin + "  "
		line += clean(p.Sentence)
		line = fit(line, w)
		if r == l.cursor {
			line = stSel.Render(ansi.Strip(line))
		}
		out = append(out, line)
	}
	for len(out) < h-1 {
		out = append(out, "")
	}
	switch {
	case l.searching:
		out = append(out, stKey.Render("/")+clean(l.query)+"█"+stDim.Render("   enter keep · esc clear"))
	case l.jumping:
		out = append(out, stKey.Render(":")+clean(l.jump)+"█"+stDim.Render("   enter jumps to the pair with this id (or prefix) · esc cancels"))
	default:
		out = append(out, "")
	}
	return out[:h]
}

// flipMark is one cell after the list's ✓/✗ marks: ↑ where a reading went
// ✗→✓ with the fine-tune, ↓ where one went ✓→✗, ↕ both; blank otherwise.
func (m *Model) flipMark(id string) string {
	switch m.ft.flipped[id] {
	case flipUp:
		return stOK.Render("↑")
	case flipDown:
		return stBad.Render("↓")
	case flipUp | flipDown:
		return stWarn.Render("↕")
	}
	return " "
}

func tick(ok bool) string {
	if ok {
		return stOK.Render("✓")
	}
	return stBad.Render("✗")
}
