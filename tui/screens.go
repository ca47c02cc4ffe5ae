package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// screenState is one screen of the explorer: its own state, the keys that
// reach it, and its body above the status and hint bars. What the screens
// share reaches them through the Model: the common (keys, size), the
// scheduler's scores and explanations, and the pairs.
type screenState interface {
	update(m *Model, msg tea.KeyPressMsg) tea.Cmd
	view(m *Model, w, h int) []string
}

// state is the screen s's state.
func (m *Model) state(s screen) screenState {
	switch s {
	case screenPair:
		return &m.pairState
	case screenHelp:
		return &m.help
	case screenFineTune:
		return &m.ft
	case screenMessage:
		return &m.msg
	case screenSummary:
		return &m.summary
	}
	return &m.list
}

// pairState is the pair view: the open pair and how it is shown.
type pairState struct {
	cur int // the open pair, an index into Model.pairs
	// scroll is how many tree lines the view has scrolled past.
	scroll int
	// opened reports whether a pair has been opened, so that cur is one
	// the user looked at and is explained first.
	opened bool
	// boxes outlines the evidence boxes on the images (o); rawImages
	// shows the images without their heatmaps (i); rawTokens the most
	// relevant tokens rather than constituents and words (w); compare the
	// pair before and after a fine-tune side by side (B).
	boxes, rawImages, rawTokens, compare bool
	// panel, when open, shows the tree editor, an edit's logits or a
	// reading's ranking in place of the columns (probe.go).
	panel probePanel
}

// helpState is the help screen: where esc returns to and its scroll.
type helpState struct {
	back   screen
	scroll int
}

func (hs *helpState) update(m *Model, msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	page := max(1, m.h-footerRows-1)
	switch {
	case key.Matches(msg, k.Quit):
		return m.askQuit()
	case key.Matches(msg, k.Back, k.Help, k.Open):
		m.screen = hs.back
	default:
		scrollKey(k, msg, &hs.scroll, page)
	}
	return nil
}

// scrollKey moves *scroll by a line (j/k) or a page; the view clamps it at
// the end. It reports whether msg was one of those keys.
func scrollKey(k keyMap, msg tea.KeyPressMsg, scroll *int, page int) bool {
	switch {
	case key.Matches(msg, k.Down):
		*scroll++
	case key.Matches(msg, k.Up):
		*scroll = max(0, *scroll-1)
	case key.Matches(msg, k.PageDown):
		*scroll += page
	case key.Matches(msg, k.PageUp):
		*scroll = max(0, *scroll-page)
	default:
		return false
	}
	return true
}

// update handles the list's keys: the search and jump prompts take every
// key while they are open.
func (l *listState) update(m *Model, msg tea.KeyPressMsg) tea.Cmd {
	switch {
	case l.searching:
		return m.searchKey(msg)
	case l.jumping:
		return m.jumpKey(msg)
	}
	if cmd, ok := m.globalKey(msg); ok {
		return cmd
	}
	return m.listKey(msg)
}
