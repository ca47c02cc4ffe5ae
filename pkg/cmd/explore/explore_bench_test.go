package explore

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/torchtest"
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

// BenchmarkExplorerSweep measures the explorer's background sweep with the
// libtorch engine on the demo's test split: from the first explanation's
// start (the split is scored by then) until the status bar says "all 101
// explained" under Chefer, then, for each other method, from the m press
// to the same words. The first pair is open throughout, as a user would
// have it. Run once per measurement:
//
//	go test -run '^$' -bench ExplorerSweep -benchtime 1x ./pkg/cmd/explore/
func BenchmarkExplorerSweep(b *testing.B) {
	dev := torchtest.Device(b)
	for b.Loop() {
		d := startExplorer(b, demo.Name, dev)
		all := fmt.Sprintf("all %d explained", len(d.ids))
		swept := func() bool { return strings.Contains(ansi.ReplaceAllString(d.view, ""), all) }
		calls, _ := d.eng.snapshot()
		t0 := calls[0].start
		var total time.Duration
		for i, m := range explain.Methods {
			if i > 0 {
				t0 = time.Now()
				d.deliver(keyPress("m"))
			}
			d.pumpUntil(swept, 10*time.Minute)
			took := time.Since(t0)
			total += took
			b.ReportMetric(took.Seconds(), string(m)+"-s")
		}
		b.ReportMetric(total.Seconds(), "all-methods-s")
		b.Logf("%d pairs × %d methods on %s: %.2f s", len(d.ids), len(explain.Methods), dev, total.Seconds())
	}
}
