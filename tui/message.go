package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// msgState is the message screen: a text shown whole, wrapped to the
// terminal and scrolled, where the status bar has room for one line.
type msgState struct {
	title, text string
	scroll      int
	back        screen // the screen esc returns to
}

// setMessage keeps text for the message screen, which ! opens.
func (m *Model) setMessage(title, text string) {
	m.msg.title, m.msg.text, m.msg.scroll = title, text, 0
}

// showMessage opens the message screen on text.
func (m *Model) showMessage(title, text string) {
	if m.screen != screenMessage {
		m.msg.back = m.screen
	}
	m.setMessage(title, text)
	m.screen = screenMessage
}

// messageLines is the text wrapped to width w; each line of the text is
// sanitised on its own, so that its newlines stay line breaks.
func (m *Model) messageLines(w int) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimRight(m.msg.text, "\n"), "\n") {
		// An indented line (a command to copy) keeps its indent on each
		// of its wrapped parts.
		body := strings.TrimLeft(l, " ")
		indent := strings.Repeat(" ", min(len(l)-len(body), w/4))
		body = clean(strings.TrimRight(body, "\r"))
		for wl := range strings.SplitSeq(ansi.Wrap(body, max(1, w-2-len(indent)), ""), "\n") {
			out = append(out, " "+indent+wl)
		}
	}
	return out
}

// viewMessage is the title, then as much of the text as fits from the
// scroll position, with a line saying how much more there is.
func (ms *msgState) view(m *Model, w, h int) []string {
	out := []string{stBad.Render(" " + clean(ms.title)), ""}
	lines := m.messageLines(w)
	room := max(1, h-len(out)-1)
	ms.scroll = max(0, min(ms.scroll, len(lines)-room))
	end := min(len(lines), ms.scroll+room)
	out = append(out, lines[ms.scroll:end]...)
	if ms.scroll > 0 || end < len(lines) {
		out = append(out, stDim.Render(fmt.Sprintf(" lines %d–%d of %d (j/k scroll)", ms.scroll+1, end, len(lines))))
	}
	return out
}

func (ms *msgState) update(m *Model, msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	page := max(1, m.h-footerRows-4)
	switch {
	case key.Matches(msg, k.Quit):
		return m.askQuit()
	case key.Matches(msg, k.Back, k.Open, k.Message):
		m.screen = ms.back
	case scrollKey(k, msg, &ms.scroll, page):
	case key.Matches(msg, k.Home):
		ms.scroll = 0
	case key.Matches(msg, k.End):
		ms.scroll = len(m.messageLines(m.w))
	}
	return nil
}
