package tui_test

import (
	"strings"
	"testing"
	"time"
)

// screenOf names the screen a frame shows by its first line.
func screenOf(frame string) string {
	first, _, _ := strings.Cut(frame, "\n")
	switch {
	case strings.Contains(first, "lavascope keys"):
		return "help"
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
		{[]string{"enter", "T", "?", "esc"}, "finetune"},
		{[]string{"enter", "T", "?", "esc", "esc"}, "pair"},
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
	for _, keys := range [][]string{{"q"}, {"enter", "q"}, {"T", "q"}, {"?", "q"}} {
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
