package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/explain"
)

// render draws the frame for the current state into m.frame, and records
// the images it leaves room for and the visuals it wants.
func (m *Model) render() {
	m.placements, m.wantVisuals = m.placements[:0], m.wantVisuals[:0]
	w, h := m.w, m.h
	var lines []string
	switch {
	case w < minWidth || h < minHeight:
		// The message wraps, so that it says all of itself in a narrow
		// terminal.
		msg := fmt.Sprintf("lavascope needs at least %d×%d cells; this terminal has %d×%d. q quits.", minWidth, minHeight, w, h)
		lines = strings.Split(wrapHard(msg, max(1, w)), "\n")
		lines = lines[:min(len(lines), max(1, h))]
	default:
		body := h - footerRows
		lines = m.state(m.screen).view(m, w, body)
		for i := range lines {
			lines[i] = fit(lines[i], w)
		}
		lines = append(lines, m.statusBar(w), m.hintBar(w))
	}
	m.lines = lines
	m.frame = strings.Join(lines, "\n")
}

// statusBar shows the engine, the explanation settings, the time of the
// last explanation and what runs in the background.
func (m *Model) statusBar(w int) string {
	// Items in the order they are dropped when the bar is too narrow:
	// the least useful last.
	var head, tag string // the engine, shortened first when room runs out; before/after
	var runtime, device string
	switch {
	case m.engineErr != nil:
		head = "model failed (! shows why): " + cleanLine(m.engineErr.Error())
	case m.engine == nil:
		head = "loading model"
	default:
		head = "ckpt " + clean(m.info.Checkpoint)
		if m.before != nil {
			tag = " (after)"
			if m.showingBefore {
				tag = " (before)"
			}
		}
		device, runtime = clean(m.info.Device), clean(m.info.Runtime)
	}
	// The settings are what the screen shows: they stay whole, and the
	// checkpoint (a fine-tune's is a long path) gives way to them.
	left := []string{string(m.method), m.layerText(), "target " + m.target.String()}
	if m.lastElapsed > 0 || m.explainedCount(m.settings()) > 0 {
		left = append(left, "last "+formatDuration(m.lastElapsed))
	}
	extra := []string{m.cmap.Name(), m.mode.String(), device, runtime}
	right := m.progress()
	if right != "" && m.busy() {
		right += " " + m.spin.View()
	}
	r := right + " "
	room := w - ansi.StringWidth(r) - 2
	join := func(items ...[]string) string {
		var all []string
		for _, it := range items {
			for _, s := range it {
				if s != "" {
					all = append(all, s)
				}
			}
		}
		return strings.Join(all, " · ")
	}
	l := " " + join([]string{head + tag}, left)
	for k := len(extra); k >= 0; k-- {
		l = " " + join([]string{head + tag}, left, extra[:k])
		if ansi.StringWidth(l) <= room {
			break
		}
	}
	if ansi.StringWidth(l) > room && len(left) > 3 {
		left = left[:3] // the last explanation's time goes first
		l = " " + join([]string{head + tag}, left)
	}
	if over := ansi.StringWidth(l) - room; over > 0 {
		keep := max(6, ansi.StringWidth(head)-over)
		l = " " + join([]string{elideHead(head, keep) + tag}, left)
	}
	if ansi.StringWidth(l) > room {
		// At the narrowest the settings drop their words, not their values.
		left = []string{string(m.method), strings.TrimPrefix(m.layerText(), "start "), m.target.String()}
		l = " " + join(left)
		l = " " + join([]string{elideHead(head+tag, max(6, room-ansi.StringWidth(l)-3))}, left)
	}
	bar := fit(l, room) + "  " + r
	if m.engineErr != nil {
		return stStatus.Foreground(stBad.GetForeground()).Render(fit(bar, w))
	}
	return stStatus.Render(fit(bar, w))
}

// progress says what runs in the background.
func (m *Model) progress() string {
	switch {
	case m.loading:
		return "loading model"
	case m.ft.running:
		return fmt.Sprintf("fine-tune %d/%d", m.ft.last.Step, m.ft.opts.Steps)
	case m.scoreErr != nil:
		return "scoring failed"
	case m.scoring != "":
		return fmt.Sprintf("scoring %d/%d", len(m.scores[m.scoring]), len(m.pairs))
	case m.engine != nil:
		n := m.explainedCount(m.settings())
		if n < len(m.pairs) {
			return fmt.Sprintf("explained %d/%d", n, len(m.pairs))
		}
		return fmt.Sprintf("all %d explained", len(m.pairs))
	}
	return ""
}

func formatDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return d.Round(100 * time.Millisecond).String()
}

// hintBar is one line of the keys that act on the current screen, or the
// last message.
func (m *Model) hintBar(w int) string {
	if !m.opt.ShowKeys || m.lastKey == "" {
		return m.hintLine(w)
	}
	chip := stPress.Render(fit(" "+keyName(m.lastKey)+" ", 12))
	cw := ansi.StringWidth(chip)
	if cw >= w {
		return chip
	}
	return chip + m.hintLine(w-cw)
}

// keyName is how a screencast shows a key: the named keys spelled out,
// since a bare " " or "enter" chip is easy to miss.
func keyName(k string) string {
	switch k {
	case " ", "space":
		return "␣ space"
	case "enter":
		return "⏎ enter"
	case "esc":
		return "esc"
	}
	return k
}

// hintLine is the hint bar without the key chip.
func (m *Model) hintLine(w int) string {
	if m.confirmQuit != "" {
		return stWarn.Render(fit(" quit? "+m.confirmQuit+": y quits, any other key stays", w))
	}
	if m.flash != "" {
		st := stWarn
		if m.flashErr {
			st = stBad
		}
		return st.Render(fit(" "+clean(m.flash), w))
	}
	k := m.keys
	var bs []key.Binding
	switch m.screen {
	case screenList:
		if m.list.searching {
			return stDim.Render(fit(" type to search ids, sentences, families and glosses", w))
		}
		if m.list.jumping {
			return stDim.Render(fit(" type a pair id or the start of one", w))
		}
		bs = []key.Binding{k.Open, k.Failures, k.Search, k.Jump, k.Family, k.Sort, k.Summary, k.Method, k.FineTune, k.Help, k.Quit}
	case screenPair:
		bs = []key.Binding{k.Back, hint("n/p", "next/prev"), k.Method}
		if m.method == explain.Chefer {
			bs = append(bs, k.Layer)
		}
		switch m.panel.kind {
		case panelEditor:
			return stDim.Render(fit(" type the tree · ←/→ home/end · backspace · ctrl+u clears · tab: other reading · enter scores · esc cancels", w))
		case panelEdited, panelRanking:
			bs = []key.Binding{k.Back, hint("tab", "other reading"), k.Edit, k.Rank, k.Undo, hint("n/p", "next/prev"), hint("j/k", "scroll")}
		default:
			bs = append(bs, k.Target, k.Colormap, k.Boxes, k.Raw, k.Graphics, k.Export)
			bs = append(bs, k.Edit, k.Rank, k.Mask, k.Swap, k.Drop)
		}
		bs = append(bs, k.FineTune, k.Help, k.Quit)
	case screenHelp:
		bs = []key.Binding{k.Back, hint("j/k", "scroll"), k.Quit}
	case screenSummary:
		bs = []key.Binding{k.Back, hint("j/k", "scroll"), k.Method, k.Target, k.Help, k.Quit}
		if m.faithful() != nil {
			bs = slices.Insert(bs, 2, k.Faithful)
		}
	case screenFineTune:
		return m.ft.hints(m, w)
	case screenMessage:
		bs = []key.Binding{k.Back, hint("j/k", "scroll"), k.PageDown, k.PageUp, k.Quit}
		return hints(bs, w)
	}
	if m.before != nil && m.screen != screenHelp {
		tail := []key.Binding{k.Toggle, k.Help, k.Quit}
		if m.screen == screenPair {
			tail = []key.Binding{k.Compare, k.Toggle, k.Help, k.Quit}
		}
		bs = append(bs[:len(bs)-2:len(bs)-2], tail...)
	}
	return hints(bs, w)
}

// hint is a binding shown in a hint bar only.
func hint(keys, desc string) key.Binding {
	return key.NewBinding(key.WithKeys(keys), key.WithHelp(keys, desc))
}

// hints renders bindings as "key desc" pairs, as many as fit; the last
// two (help and quit, on every screen) are kept whatever the width.
func hints(bs []key.Binding, w int) string {
	item := func(kb key.Binding) string {
		h := kb.Help()
		return stKey.Render(h.Key) + " " + stDesc.Render(h.Desc)
	}
	sep := stDim.Render(" · ")
	var tail string
	if len(bs) >= 2 {
		tail = sep + item(bs[len(bs)-2]) + sep + item(bs[len(bs)-1])
		bs = bs[:len(bs)-2]
	}
	room := w - 1 - ansi.StringWidth(tail)
	var b strings.Builder
	used := 0
	for i, kb := range bs {
		it := item(kb)
		if i > 0 {
			it = sep + it
		}
		if used+ansi.StringWidth(it) > room {
			break
		}
		b.WriteString(it)
		used += ansi.StringWidth(it)
	}
	if used == 0 {
		tail = strings.TrimPrefix(tail, sep)
	}
	return fit(" "+b.String()+tail, w)
}

// viewHelp lists every key, grouped, with what the marks on screen mean.
func (hs *helpState) view(m *Model, w, h int) []string {
	out := []string{stBold.Render(" lavascope keys"), ""}
	groups := m.keys.helpGroups()
	perRow := max(1, min(len(groups), (w-2)/24))
	colW := (w - 2) / perRow
	for start := 0; start < len(groups); start += perRow {
		row := groups[start:min(len(groups), start+perRow)]
		rows := 0
		head := " "
		for _, g := range row {
			rows = max(rows, len(g.bindings))
			head += fit(stHead.Render(g.title), colW)
		}
		out = append(out, head)
		for r := range rows {
			line := " "
			for _, g := range row {
				cell := ""
				if r < len(g.bindings) {
					hb := g.bindings[r].Help()
					cell = stKey.Render(fit(hb.Key, 7)) + " " + stDesc.Render(hb.Desc)
					if m.disabled(g.bindings[r]) {
						// Shown, so that the key can be found, but marked
						// as doing nothing here.
						cell = stDim.Render(fit(hb.Key, 7) + " " + hb.Desc)
					}
				}
				line += fit(cell, colW)
			}
			out = append(out, line)
		}
		out = append(out, "")
	}
	legend := []string{
		stHead.Render("marks"),
		tick(true) + " the reading's own image has the strictly highest logit; " + tick(false) + " it has not (a tie counts as " + tick(false) + ")",
		"margin: the reading's own logit minus the best other image's; the list's margin is the pair's smallest",
		stTarget.Render("[ ]") + " the logit cells the explanation targets; " + stOK.Render("▸") + " the image each text picks; p: softmax over the pair's images for that text",
		"trees and tokens are painted by relevance on the colormap; " + "\x1b[1;4munderlined\x1b[0m: constituents and tokens only this reading has",
		"j/k scroll the trees in the pair view; in the list, / searches ids, sentences, families and glosses, : jumps to an id",
		"after a fine-tune the list marks pairs " + stOK.Render("↑") + " a reading went ✗→✓, " + stBad.Render("↓") + " ✓→✗; x keeps them, B compares a pair before and after, L picks the run's last or best",
		"constituents: ◆ the attachment site, ↷ the re-attached phrase, underlined: the twin lacks it; unique: share of relevance on tokens the twin lacks",
		"magenta boxes: the evidence boxes of the data; 'in box': the most relevant patch lies in one; mass: share of image relevance inside them",
		"in the pair view E edits a reading's tree (enter scores it against both images beside the original, u undoes, explore --save-edits keeps the edits as new pairs); R ranks the reading's structures one re-attachment away: ★ its own tree, ◆ the other reading's",
		"dimmed keys do nothing now: l for methods other than chefer, x b B L before a fine-tune, E R with an engine that cannot score trees, u before an edit; the start layer applies to chefer only; q asks before it ends a fine-tune or drops the form's edits (ctrl+c does not ask)",
	}
	for _, l := range legend {
		for _, wl := range strings.Split(ansi.Wordwrap(l, w-3, ""), "\n") {
			out = append(out, " "+wl)
		}
	}
	return scrolled(out, &hs.scroll, h)
}

// scrolled shows h of lines from *scroll, clamped, with the last line
// saying how many more there are below when they do not fit.
func scrolled(lines []string, scroll *int, h int) []string {
	if len(lines) <= h {
		*scroll = 0
		out := append([]string(nil), lines...)
		for len(out) < h {
			out = append(out, "")
		}
		return out
	}
	room := max(1, h-1)
	*scroll = max(0, min(*scroll, len(lines)-room))
	out := append([]string(nil), lines[*scroll:*scroll+room]...)
	below := len(lines) - *scroll - room
	more := fmt.Sprintf(" lines %d–%d of %d · j/k scroll", *scroll+1, *scroll+room, len(lines))
	if below == 0 {
		more += " · end"
	}
	return append(out, stDim.Render(more))
}

// elideMiddle shortens s to w cells by cutting its middle, where a path
// says least: "ckpt /home/…/run-3/last".
func elideMiddle(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	r := []rune(s)
	if w < 3 {
		return string(r[:max(0, w)])
	}
	// The end of a path names the run and best/ or last/: it gets more.
	headN := (w - 1) / 3
	tail := w - 1 - headN
	return string(r[:headN]) + "…" + string(r[len(r)-tail:])
}

// elideHead is elideMiddle that keeps a "ckpt " prefix whole.
func elideHead(s string, w int) string {
	if rest, ok := strings.CutPrefix(s, "ckpt "); ok && w > 10 {
		return "ckpt " + elideMiddle(rest, w-5)
	}
	return elideMiddle(s, w)
}

// wrapHard wraps s, which may hold styles, at w cells, breaking words
// only when one is wider than a line.
func wrapHard(s string, w int) string { return ansi.Wrap(s, max(1, w), "") }

// disabled reports whether a key does nothing in the current state: the
// start layer for methods other than chefer, the before/after keys before
// a fine-tune.
func (m *Model) disabled(b key.Binding) bool {
	k := m.keys
	switch b.Help().Key {
	case k.Layer.Help().Key:
		return m.method != explain.Chefer
	case k.Edit.Help().Key, k.Rank.Help().Key:
		_, why := m.prober()
		return why != ""
	case k.Mask.Help().Key, k.Swap.Help().Key, k.Drop.Help().Key:
		_, why := m.counterfactual()
		return why != ""
	case k.Undo.Help().Key:
		return len(m.edits) == 0
	case k.Toggle.Help().Key, k.Compare.Help().Key, k.RunCkpt.Help().Key, k.Flipped.Help().Key:
		return m.before == nil
	}
	return false
}

// layerText is the start layer as the status bar says it: a dash for the
// methods it does not apply to, so that l is not taken to change them.
func (m *Model) layerText() string {
	if m.method != explain.Chefer {
		return "start layer –"
	}
	return "start layer " + m.layer.String()
}
