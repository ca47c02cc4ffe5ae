package explore

import (
	"context"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tui"
	"github.com/lavascope/lavascope/tui/enginetest"
	"github.com/lavascope/lavascope/tui/graphics"
)

// BenchmarkExploreStartup measures start-up to the first frame on the demo
// data: generating the test split, building the explorer, and rendering
// its first frame at 160×48. The model loads in the background after that
// frame, so its time is not part of it; neither is asking the terminal
// about graphics (graphics.QueryTimeout bounds that wait, 150 ms locally).
// The target is 1 s.
func BenchmarkExploreStartup(b *testing.B) {
	for b.Loop() {
		data, err := loadData("demo", "test", loader.Options{})
		if err != nil {
			b.Fatal(err)
		}
		m, err := tui.New(tui.Options{
			Data: data.shown, Split: "test", DataName: "demo",
			Open: func(context.Context) (tui.Engine, error) {
				return enginetest.New(data.shown, enginetest.Options{}), nil
			},
			Graphics: graphics.Blocks,
		})
		if err != nil {
			b.Fatal(err)
		}
		m.Init()
		next, _ := m.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
		if !strings.Contains(next.View().Content, "101 pairs") {
			b.Fatal("the first frame does not list the pairs")
		}
		m.Close()
	}
}
