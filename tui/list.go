package tui

import (
	"fmt"
	"math"
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
	family       string // "" for all
	sortByMargin bool
	query        string
	searching    bool
}

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
		if q != "" && !matches(p, q) {
			continue
		}
		l.rows = append(l.rows, i)
	}
	if l.sortByMargin {
		margin := func(i int) float64 {
			if s, ok := scores[m.pairs[i].ID]; ok {
				return s.Margin()
			}
			return math.Inf(1)
		}
		slices.SortStableFunc(l.rows, func(a, b int) int {
			ma, mb := margin(a), margin(b)
			switch {
			case ma < mb:
				return -1
			case ma > mb:
				return 1
			}
			return 0
		})
	}
	l.cursor = max(0, min(l.cursor, len(l.rows)-1))
	if keep >= 0 {
		if at := slices.Index(l.rows, keep); at >= 0 {
			l.cursor = at
		}
	}
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
	case key.Matches(msg, k.Sort):
		l.sortByMargin = !l.sortByMargin
		m.refreshRows()
	case key.Matches(msg, k.Search):
		l.searching = true
	case key.Matches(msg, k.Back):
		if l.query != "" {
			l.query = ""
			m.refreshRows()
		}
	}
	l.cursor = max(0, l.cursor)
	return nil
}

// searchKey edits the search query; the list follows each keystroke.
func (m *Model) searchKey(msg tea.KeyPressMsg) tea.Cmd {
	l := &m.list
	switch msg.String() {
	case "enter":
		l.searching = false
	case "esc":
		l.searching, l.query = false, ""
	case "backspace":
		if r := []rune(l.query); len(r) > 0 {
			l.query = string(r[:len(r)-1])
		}
	default:
		if msg.Text != "" && ansi.StringWidth(msg.Text) > 0 && clean(msg.Text) == msg.Text {
			l.query += msg.Text
		}
	}
	m.refreshRows()
	return nil
}

// listHeight is how many pair rows the list screen shows.
func (m *Model) listHeight() int {
	h := m.h - 5 // title, header, status, hints, search or blank line
	return max(1, h)
}

func (m *Model) viewList(w, h int) []string {
	l := &m.list
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
	if l.sortByMargin {
		filters = append(filters, "by margin")
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
	cols := fmt.Sprintf("  %-*s  %-*s  %-5s %7s  %s", idW, "ID", famW, "FAMILY", "A B", "MARGIN", "SENTENCE")
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
		if l.failuresOnly || l.family != "" || l.query != "" {
			msg = "  no pairs match the filters (f, F, / change them)"
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
			margin = fmt.Sprintf("%6s", signed(s.Margin()))
			if s.Margin() < 0 {
				margin = stBad.Render(margin)
			}
		} else if m.scoring != "" || m.loading {
			marks = stDim.Render("…  … ")
		}
		cursor := "  "
		if r == l.cursor {
			cursor = stKey.Render("▶ ")
		}
		line := cursor + fit(clean(p.ID), idW) + "  " + fit(stDim.Render(clean(p.Ambiguity)), famW) + "  " + marks + " " + margin + "  "
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
	if l.searching {
		out = append(out, stKey.Render("/")+clean(l.query)+"█"+stDim.Render("   enter keep · esc clear"))
	} else {
		out = append(out, "")
	}
	return out[:h]
}

func tick(ok bool) string {
	if ok {
		return stOK.Render("✓")
	}
	return stBad.Render("✗")
}
