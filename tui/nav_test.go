package tui_test

import (
	"errors"
	"strings"

	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// screenOf names the screen a frame shows by its first line.
func screenOf(frame string) string {
	first, _, _ := strings.Cut(frame, "\n")
	switch {
	case strings.Contains(first, "lavascope keys"):
		return "help"
	case strings.Contains(first, "summary"):
		return "summary"
	case strings.Contains(first, "fine-tune"):
		return "finetune"
	case strings.Contains(first, "pairs"):
		return "list"
	case strings.Contains(frame, "picks image"):
		return "pair"
	}
	return "?"
}

func TestNavigation(t *testing.T) {
	tests := []struct {
		keys []string
		want string
	}{
		{nil, "list"},
		{[]string{"enter"}, "pair"},
		{[]string{"enter", "esc"}, "list"},
		{[]string{"enter", "backspace"}, "list"},
		{[]string{"?"}, "help"},
		{[]string{"?", "esc"}, "list"},
		{[]string{"enter", "?", "?"}, "pair"},
		{[]string{"T"}, "finetune"},
		{[]string{"T", "esc"}, "list"},
		{[]string{"enter", "T", "esc"}, "pair"},
		{[]string{"enter", "T", "tab", "tab", "tab", "?", "esc"}, "finetune"},
		{[]string{"enter", "T", "tab", "tab", "tab", "?", "esc", "esc"}, "pair"},
		{[]string{"a"}, "summary"},
		{[]string{"enter", "a", "esc"}, "pair"},
		{[]string{":", "q"}, "list"},
		{[]string{"/", "q"}, "list"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.keys, ","), func(t *testing.T) {
			h := newHarness(t, options{w: 100, h: 30})
			h.keys(tc.keys...)
			if got := screenOf(h.view()); got != tc.want || h.quit {
				t.Errorf("screen %s (quit %v), want %s:\n%s", got, h.quit, tc.want, h.view())
			}
		})
	}
}

func TestQuit(t *testing.T) {
	for _, keys := range [][]string{{"q"}, {"enter", "q"}, {"T", "tab", "tab", "tab", "q"}, {"?", "q"}, {"a", "q"}, {"T", "9", "esc", "q", "y"}} {
		h := newHarness(t, options{w: 100, h: 30})
		h.keys(keys...)
		if !h.quit {
			t.Errorf("%v did not quit", keys)
		}
	}
}

func TestFineTuneCancel(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30, stepDelay: 20 * time.Millisecond})
	h.keys("T")
	h.send(keyMsg("enter"))
	h.send(keyMsg("c"))
	h.settle()
	if v := h.view(); !strings.Contains(v, "cancelled at step") || strings.Contains(v, "ckpt fake+ft1") {
		t.Errorf("after c the run is not cancelled:\n%s", v)
	}
}

// TestQuitAsks: q asks before it throws away an edited form or a running
// fine-tune, and a key other than y stays.
func TestQuitAsks(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30})
	h.keys("T", "9", "esc", "q")
	if h.quit || !strings.Contains(h.view(), "quit? the fine-tune form has edits") {
		t.Fatalf("q quit an edited form without asking:\n%s", h.view())
	}
	h.keys("n")
	if h.quit || strings.Contains(h.view(), "quit?") {
		t.Fatalf("n did not stay:\n%s", h.view())
	}

	h = newHarness(t, options{w: 100, h: 30, stepDelay: 20 * time.Millisecond})
	h.keys("T")
	h.send(keyMsg("enter"))
	h.send(keyMsg("esc"))
	h.send(keyMsg("q"))
	if h.quit || !strings.Contains(h.view(), "a fine-tune is running") {
		t.Fatalf("q quit during a fine-tune without asking:\n%s", h.view())
	}
	h.send(keyMsg("y"))
	h.settle()
	if !h.quit {
		t.Fatal("y did not quit")
	}
}

// TestFineTuneFieldTakesEveryKey: while a text field has the focus, keys
// that are hotkeys elsewhere are typed into it.
func TestFineTuneFieldTakesEveryKey(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30})
	h.keys("T", "backspace", "backspace", "backspace", "q", "?", "T", "b", "j")
	v := h.view()
	if h.quit || screenOf(v) != "finetune" || !strings.Contains(v, "[q?Tbj") {
		t.Fatalf("the steps field did not take the keys:\n%s", v)
	}
	h.keys("enter")
	if v := h.view(); !strings.Contains(v, `steps: "q?Tbj" is not a whole number`) {
		t.Fatalf("the bad field is not reported:\n%s", v)
	}
}

// TestJumpAndEnds: g and G go to the ends, : jumps to an id or its prefix,
// clearing a filter that hides it.
func TestJumpAndEnds(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30})
	cursorOn := func() string {
		for _, l := range strings.Split(ansi.Strip(h.view()), "\n") {
			if strings.HasPrefix(l, "▶ ") {
				return strings.Fields(l)[1]
			}
		}
		return ""
	}
	h.keys("G")
	if got := cursorOn(); got != "vp-008" {
		t.Fatalf("G: cursor on %q", got)
	}
	h.keys("g")
	if got := cursorOn(); got != "pp-000" {
		t.Fatalf("g: cursor on %q", got)
	}
	h.keys("F", ":", "v", "p", "-", "0", "0", "5", "enter")
	if got := cursorOn(); got != "vp-005" || !strings.Contains(h.view(), "filters cleared") {
		t.Fatalf(":vp-005 with a family filter: cursor on %q\n%s", got, h.view())
	}
	h.keys(":", "a", "d", "enter")
	if got := cursorOn(); got != "ad-001" {
		t.Fatalf(":ad: cursor on %q", got)
	}
	h.keys(":", "z", "z", "enter")
	if !strings.Contains(h.view(), `no pair id is or starts with "zz"`) {
		t.Fatalf(":zz says nothing:\n%s", h.view())
	}
}

// TestStartLayerOnlyForChefer: l does not claim to change the other methods.
func TestStartLayerOnlyForChefer(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36})
	h.keys("enter", "m")
	before := h.view()
	h.keys("l")
	after := h.view()
	if !strings.Contains(after, "start layer –") || !strings.Contains(after, "applies to chefer only") {
		t.Fatalf("l on rollout:\n%s", after)
	}
	strip := func(s string) string { i := strings.LastIndex(s, "\n"); return s[:i] }
	if strip(before) != strip(after) {
		t.Fatal("l on rollout changed the screen above the hint bar")
	}
}

// TestSummaryWithoutModel: the summary opens, and says so, when the model
// did not load.
func TestSummaryWithoutModel(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30, openErr: errors.New("no shim")})
	h.keys("esc", "a")
	if v := h.view(); screenOf(v) != "summary" || !strings.Contains(v, "the model has not loaded") || !strings.Contains(v, "pp-attachment") {
		t.Fatalf("summary without a model:\n%s", v)
	}
	h.keys("s", "x", ":", "enter")
	if h.quit {
		t.Fatal("keys on the summary quit")
	}
}

// TestShowKeys: with ShowKeys the hint bar starts with the last key, named
// where a bare glyph would be missed; without it, no key is shown.
func TestShowKeys(t *testing.T) {
	lastLine := func(v string) string {
		lines := strings.Split(strings.TrimRight(ansi.Strip(v), "\n"), "\n")
		return lines[len(lines)-1]
	}
	h := newHarness(t, options{w: 100, h: 30, showKeys: true})
	if l := lastLine(h.view()); strings.HasPrefix(l, " j ") {
		t.Errorf("a key shown before any was pressed: %q", l)
	}
	h.keys("j")
	if l := lastLine(h.view()); !strings.HasPrefix(l, " j ") {
		t.Errorf("after j the hint bar is %q", l)
	}
	h.keys("enter")
	if l := lastLine(h.view()); !strings.HasPrefix(l, " ⏎ enter ") || !strings.Contains(l, "next/prev") {
		t.Errorf("after enter the hint bar is %q", l)
	}
	plain := newHarness(t, options{w: 100, h: 30})
	plain.keys("j", "enter")
	if l := lastLine(plain.view()); strings.Contains(l, "⏎") {
		t.Errorf("without ShowKeys the hint bar is %q", l)
	}
}

// TestGraphicsNoteStays: the note on why sixel fell back to half-blocks
// stays on the pair view after the first key clears the flash.
func TestGraphicsNoteStays(t *testing.T) {
	const note = "sixel cannot pass through tmux here: drawing half-blocks"
	h := newHarness(t, options{w: 160, h: 48, note: note})
	if v := ansi.Strip(h.view()); !strings.Contains(v, note) {
		t.Fatalf("the note is not shown at start:\n%s", v)
	}
	h.keys("enter")
	h.settle()
	if v := ansi.Strip(h.view()); !strings.Contains(v, "sixel cannot pass through tmux") {
		t.Errorf("the note is gone from the pair view:\n%s", v)
	}
}

// TestEscLeavesCompareFirst: esc steps back one view at a time, from the
// before/after comparison to the pair view, then to the list.
func TestEscLeavesCompareFirst(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30})
	h.keys("T", "backspace", "backspace", "backspace", "2", "0", "enter", "esc", "enter", "B")
	if v := ansi.Strip(h.view()); !strings.Contains(v, "before") || !strings.Contains(v, "after") {
		t.Fatalf("B shows no comparison:\n%s", v)
	}
	h.keys("esc")
	v := ansi.Strip(h.view())
	if got := screenOf(v); got != "pair" {
		t.Fatalf("esc left the comparison for %s, want the pair view:\n%s", got, v)
	}
	if first, _, _ := strings.Cut(v, "\n"); strings.Contains(first, "before") {
		t.Errorf("the pair view still compares:\n%s", v)
	}
	h.keys("esc")
	if got := screenOf(h.view()); got != "list" {
		t.Errorf("the second esc went to %s, want the list", got)
	}
}
