package explore

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/tui"
	"github.com/lavascope/lavascope/tui/graphics"
	"github.com/lavascope/lavascope/tui/torchengine"
)

// BenchmarkExplorerLatency drives the explorer, through its public API
// only (tui.New, key presses, View), with the libtorch engine on the demo's
// test split, and measures key press → the frame that shows the heatmap of
// the new state, for n (next pair), m (method) and l (start layer), each
// timed iteration one key press. The split's background work runs as in
// the app: the explorer explains the other pairs with the current settings
// while the keys are pressed.
//
// When that frame is reached: the engine is wrapped to record every
// Explain call. After a key, the shown pair is read from the view's first
// line. If an Explain for that pair was under way when the key was pressed,
// or is the first to start after it, the frame is the View after the
// Update that received the message carrying that call's *tui.Explanation
// (Blocks graphics: the heatmap is in the view's text then). Otherwise the
// explorer had the new state's explanation already (the background sweep
// made it, or an earlier visit) and the frame is the key press's own. The
// times include what is left of a background chunk once cancelled (the
// engine stops between stages) or, where the chunk holds the shown pair,
// the rest of that chunk.
//
// Configurations: demo (the embedded model, width 64, 2 layers) and
// vit-b-32-size (the demo's tokenizer and vocabulary in a random model of
// ViT-B/32's dimensions: 12 layers a side, widths 768 and 512). Run:
//
//	go test -run '^$' -bench ExplorerLatency -benchtime 20x ./pkg/cmd/explore/
//
// It reports p50, p95 and max in milliseconds, over all presses and over
// those that waited for the engine (computed-); LAVASCOPE_LATENCY_DEBUG=1
// logs the request each press waited for.
func BenchmarkExplorerLatency(b *testing.B) {
	dev := torchtest.Device(b)
	for _, cfg := range []string{"demo", "vit-b-32-size"} {
		for _, key := range []string{"n", "m", "l"} {
			b.Run(cfg+"/"+key, func(b *testing.B) {
				ckpt := demo.Name
				if cfg != "demo" {
					ckpt = vitB32Sized(b)
				}
				d := startExplorer(b, ckpt, dev)
				var all, computed []time.Duration
				for b.Loop() {
					l, waited := d.press(key)
					all = append(all, l)
					if waited {
						computed = append(computed, l)
					}
				}
				b.StopTimer()
				b.ReportMetric(0, "ns/op") // the percentiles say it; a mean hides the waits
				for _, set := range []struct {
					name string
					lat  []time.Duration
				}{{"", all}, {"computed-", computed}} {
					p50, p95, most := percentiles(set.lat)
					b.ReportMetric(p50, set.name+"p50-ms")
					b.ReportMetric(p95, set.name+"p95-ms")
					b.ReportMetric(most, set.name+"max-ms")
				}
				p50, p95, most := percentiles(all)
				b.Logf("%s %s on %s: %d presses, %d waited for an explanation; all: p50 %.1f ms, p95 %.1f ms, max %.1f ms",
					cfg, key, dev, len(all), len(computed), p50, p95, most)
			})
		}
	}
}

// percentiles returns the median, the 95th percentile (nearest rank) and
// the maximum of lat in milliseconds; zeros for none.
func percentiles(lat []time.Duration) (p50, p95, most float64) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(lat))
	at := func(p float64) float64 {
		return float64(s[int(math.Ceil(p*float64(len(s))))-1]) / float64(time.Millisecond)
	}
	return at(0.5), at(0.95), at(1)
}

var vitB32Once struct {
	sync.Once
	dir string
	err error
}

// vitB32Sized writes, once per test binary, a checkpoint of ViT-B/32's
// dimensions with the demo's tokenizer (random weights: the timings depend
// on the shapes only) and returns its folder.
func vitB32Sized(b *testing.B) string {
	b.Helper()
	vitB32Once.Do(func() {
		vitB32Once.dir, vitB32Once.err = writeVitB32Sized()
	})
	if vitB32Once.err != nil {
		b.Fatal(vitB32Once.err)
	}
	return vitB32Once.dir
}

func writeVitB32Sized() (string, error) {
	src, err := demo.Checkpoint()
	if err != nil {
		return "", err
	}
	cfg, err := model.ReadConfig(filepath.Join(src, "config.json"))
	if err != nil {
		return "", err
	}
	vit, err := model.NamedConfig("vit-b-32")
	if err != nil {
		return "", err
	}
	// The demo's vocabulary and special ids, ViT-B/32's everything else.
	text := cfg.Text
	vit.Text.VocabSize, vit.Text.BOSTokenID, vit.Text.EOSTokenID, vit.Text.PadTokenID = text.VocabSize, text.BOSTokenID, text.EOSTokenID, text.PadTokenID
	vit.Extra = cfg.Extra
	dir, err := os.MkdirTemp("", "lavascope-vitb32-sized-")
	if err != nil {
		return "", err
	}
	w := torch.NewWorker()
	defer w.Close()
	err = w.Do(func() error {
		m, err := model.Init(vit, model.Options{}, 1)
		if err != nil {
			return err
		}
		defer m.Close()
		return m.Save(dir)
	})
	if err != nil {
		return "", err
	}
	for _, f := range []string{"vocab.json", "merges.txt", "preprocessor_config.json"} {
		if err := copyFile(filepath.Join(src, f), filepath.Join(dir, f)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// call is one Explain the explorer made.
type call struct {
	req        tui.ExplainRequest
	start, end time.Time
	exp        *tui.Explanation
	err        error
}

// timedEngine records the Explain calls of the engine it wraps.
type timedEngine struct {
	tui.Engine
	mu    sync.Mutex
	calls []*call
}

func (e *timedEngine) Explain(ctx context.Context, req tui.ExplainRequest) (*tui.Explanation, error) {
	c := &call{req: req, start: time.Now()}
	e.mu.Lock()
	e.calls = append(e.calls, c)
	e.mu.Unlock()
	exp, err := e.Engine.Explain(ctx, req)
	e.mu.Lock()
	c.end, c.exp, c.err = time.Now(), exp, err
	e.mu.Unlock()
	return exp, err
}

// ExplainMany records each request of a chunk as a call of its own, all
// with the chunk's times; the explorer's background sweep makes them.
func (e *timedEngine) ExplainMany(ctx context.Context, reqs []tui.ExplainRequest) ([]*tui.Explanation, error) {
	start := time.Now()
	cs := make([]*call, len(reqs))
	e.mu.Lock()
	for i, r := range reqs {
		cs[i] = &call{req: r, start: start}
		e.calls = append(e.calls, cs[i])
	}
	e.mu.Unlock()
	exps, err := e.Engine.(tui.BatchExplainer).ExplainMany(ctx, reqs)
	e.mu.Lock()
	for i, c := range cs {
		c.end, c.err = time.Now(), err
		if err == nil {
			c.exp = exps[i]
		}
	}
	e.mu.Unlock()
	return exps, err
}

// snapshot returns the calls so far and which of them have not returned.
func (e *timedEngine) snapshot() (all []call, running []call) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.calls {
		all = append(all, *c)
		if c.end.IsZero() {
			running = append(running, *c)
		}
	}
	return all, running
}

// driver runs the explorer as Bubble Tea's program would: every message
// through Update, every command on a goroutine of its own, a View after
// each Update.
type driver struct {
	b    testing.TB
	m    tea.Model
	msgs chan tea.Msg
	eng  *timedEngine
	ids  []string
	view string
	// delivered counts the messages given to Update.
	delivered int
	// carried are the explanations the message last given to Update
	// carried, if any.
	carried []*tui.Explanation
}

func startExplorer(b *testing.B, ckpt string, dev torch.Device) *driver {
	b.Helper()
	data, err := loadData("demo", loader.SplitTest, loader.Options{})
	if err != nil {
		b.Fatal(err)
	}
	d := &driver{b: b, msgs: make(chan tea.Msg, 1024), eng: &timedEngine{}}
	for _, p := range data.shown.Pairs {
		d.ids = append(d.ids, p.ID)
	}
	m, err := tui.New(tui.Options{
		Data: data.shown, Split: loader.SplitTest, DataName: "demo",
		Open: func(ctx context.Context) (tui.Engine, error) {
			o := torchengine.Options{Checkpoint: ckpt, Device: dev.String(), Data: data.shown, DataName: "demo"}
			if o.Train, o.Val, err = data.splits(); err != nil {
				return nil, err
			}
			e, err := torchengine.Open(ctx, o)
			if err != nil {
				return nil, err
			}
			d.eng.Engine = e
			return d.eng, nil
		},
		Graphics: graphics.Blocks,
		Method:   explain.Chefer, StartLayer: explain.AllLayers, Target: tui.TargetOwn,
	})
	if err != nil {
		b.Fatal(err)
	}
	d.m = m
	b.Cleanup(func() { m.Close() })
	d.deliver(tea.WindowSizeMsg{Width: 160, Height: 48})
	d.exec(m.Init())
	// The engine is open and the split scored once the first explanation
	// starts; then the first pair is opened and shown explained.
	d.pumpUntil(func() bool { all, _ := d.eng.snapshot(); return len(all) > 0 }, 5*time.Minute)
	d.press("enter")
	return d
}

func (d *driver) exec(cmd tea.Cmd) {
	if cmd != nil {
		go func() { d.msgs <- cmd() }()
	}
}

var cmdSlice = reflect.TypeOf([]tea.Cmd(nil))

func (d *driver) deliver(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil, tea.QuitMsg:
	case tea.BatchMsg:
		for _, c := range msg {
			d.exec(c)
		}
	case spinner.TickMsg:
		// Dropped: a spinning frame would pass for a new one.
	default:
		if v := reflect.ValueOf(msg); v.Kind() == reflect.Slice && v.Type().ConvertibleTo(cmdSlice) {
			// tea.Sequence: in order, each after the last's message.
			cmds := v.Convert(cmdSlice).Interface().([]tea.Cmd)
			go func() {
				for _, c := range cmds {
					if c != nil {
						d.msgs <- c()
					}
				}
			}()
			return
		}
		m, cmd := d.m.Update(msg)
		d.m, d.delivered = m, d.delivered+1
		d.view = m.View().Content
		d.carried = carriedExplanation(msg)
		d.exec(cmd)
	}
}

var explanationType = reflect.TypeOf((*tui.Explanation)(nil))

// carriedExplanation finds the *tui.Explanation values among msg's fields,
// in slices and structs too: the message by which an engine's results
// reach Update, whatever its type.
func carriedExplanation(msg tea.Msg) []*tui.Explanation {
	var out []*tui.Explanation
	var walk func(v reflect.Value, depth int)
	walk = func(v reflect.Value, depth int) {
		if depth > 4 {
			return
		}
		switch {
		case v.Type() == explanationType:
			if !v.IsNil() {
				out = append(out, (*tui.Explanation)(v.UnsafePointer()))
			}
		case v.Kind() == reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), depth+1)
			}
		case v.Kind() == reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), depth+1)
			}
		}
	}
	v := reflect.ValueOf(msg)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.IsValid() {
		walk(v, 0)
	}
	return out
}

// pumpUntil delivers messages until done holds.
func (d *driver) pumpUntil(done func() bool, limit time.Duration) {
	deadline := time.After(limit)
	for !done() {
		select {
		case msg := <-d.msgs:
			d.deliver(msg)
		case <-time.After(time.Millisecond):
		case <-deadline:
			d.b.Fatalf("the explorer did not get there in %s; view:\n%s", limit, d.view)
		}
	}
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;:?]*[A-Za-z]`)

// shownPair is the pair whose ID the view's first line names.
func (d *driver) shownPair() string {
	first, _, _ := strings.Cut(ansi.ReplaceAllString(d.view, ""), "\n")
	best := ""
	for _, id := range d.ids {
		if strings.Contains(first, id) && len(id) > len(best) {
			best = id
		}
	}
	if best == "" {
		d.b.Fatalf("no pair ID in the view's first line %q", first)
	}
	return best
}

// press sends key and returns the time until the frame that shows the
// new state's heatmap (see BenchmarkExplorerLatency), and whether that
// waited for the engine.
func (d *driver) press(key string) (time.Duration, bool) {
	// The explanation that made the last frame was followed by a command
	// that starts the next one in the background: let it start first, so
	// that every call starting after the key comes from the key.
	started, _ := d.eng.snapshot()
	d.untilStarted(len(started), true)
	before, running := d.eng.snapshot()
	t0 := time.Now()
	d.deliver(keyPress(key))
	keyFrame := time.Since(t0)
	shown := d.shownPair()
	var target *call
	for _, c := range running {
		if c.req.PairID == shown {
			target = &c
		}
	}
	if os.Getenv("LAVASCOPE_LATENCY_DEBUG") != "" {
		defer func() { d.b.Logf("%s: shown %s, target %+v", key, shown, target) }()
	}
	if target == nil {
		// The first Explain to start after the key is the shown pair's
		// unless the explorer had its explanation: it explains the open
		// pair before any other. Nothing starting for a second, with
		// nothing running and no message arriving, means it had it and
		// the sweep is over.
		if all := d.untilStarted(len(before), false); len(all) > len(before) {
			target = &all[len(before)]
		}
		if target == nil || target.req.PairID != shown {
			return keyFrame, false
		}
	}
	var frame time.Time
	d.pumpUntil(func() bool {
		all, _ := d.eng.snapshot()
		for _, c := range all {
			if c.start.Equal(target.start) && c.req == target.req && c.err != nil {
				d.b.Fatalf("explaining %s: %v", shown, c.err)
			}
			if c.start.Equal(target.start) && c.req == target.req && c.exp != nil && slices.Contains(d.carried, c.exp) {
				frame = time.Now()
				return true
			}
		}
		return false
	}, 10*time.Minute)
	return frame.Sub(t0), true
}

// untilStarted delivers messages until more than n Explain calls have
// started (or, with orRunning, one is running), or a second passed with
// neither a call running nor a message arriving; it returns the calls.
func (d *driver) untilStarted(n int, orRunning bool) []call {
	var all []call
	quiet, seen := time.Now(), d.delivered
	d.pumpUntil(func() bool {
		var now []call
		all, now = d.eng.snapshot()
		if len(all) > n || (orRunning && len(now) > 0) {
			return true
		}
		if len(now) > 0 || d.delivered != seen {
			quiet, seen = time.Now(), d.delivered
		}
		return time.Since(quiet) > time.Second
	}, 10*time.Minute)
	return all
}

func keyPress(k string) tea.KeyPressMsg {
	if k == "enter" {
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	}
	return tea.KeyPressMsg{Code: []rune(k)[0], Text: k}
}
