package tui_test

import (
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/tui/graphics"
)

// BenchmarkKeyToFrame measures what a key press costs the UI goroutine in
// the pair view at 160×48 once explanations and images are cached: Update
// (which renders the frame) and View. The target is 50 ms.
func BenchmarkKeyToFrame(b *testing.B) {
	for _, bc := range []struct {
		name string
		mode graphics.Mode
		keys []string // pressed in turn, each cycle visiting cached states
	}{
		{"next_pair/blocks", graphics.Blocks, []string{"n"}},
		{"next_pair/sixel", graphics.Sixel, []string{"n"}},
		{"method/blocks", graphics.Blocks, []string{"m"}},
		{"list_down/blocks", graphics.Blocks, []string{"esc", "j", "enter"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHarness(b, options{w: 160, h: 48, mode: bc.mode})
			h.keys("enter")
			// Visit every state the loop will see, so that all is cached.
			for range 12 {
				h.keys(bc.keys...)
			}
			msgs := make([]tea.KeyPressMsg, len(bc.keys))
			for i, k := range bc.keys {
				msgs[i] = keyMsg(k)
			}
			for i := 0; b.Loop(); i++ {
				m, _ := h.m.Update(msgs[i%len(msgs)])
				h.m = m
				_ = m.View()
			}
		})
	}
}
