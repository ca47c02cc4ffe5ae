package tui_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"sync/atomic"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tui"
	"github.com/lavascope/lavascope/tui/enginetest"
	"github.com/lavascope/lavascope/tui/graphics"
)

// Two readings per family; the words of both trees agree.
var families = []struct {
	family, sentence string
	trees            [2]string
	glosses          [2]string
}{
	{"pp-attachment", "Danny approached the chair with a bag.",
		[2]string{
			"(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag)))) (. .))",
			"(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag))))) (. .))",
		},
		[2]string{"Danny carries the bag", "the bag is on the chair"}},
	{"adjective-scope", "Andrei moved the green chair and bag.",
		[2]string{
			"(S (NP (NNP Andrei)) (VP (VBD moved) (NP (DT the) (JJ green) (NN chair) (CC and) (NN bag))) (. .))",
			"(S (NP (NNP Andrei)) (VP (VBD moved) (NP (NP (DT the) (JJ green) (NN chair)) (CC and) (NP (NN bag)))) (. .))",
		},
		[2]string{"both are green", "only the chair is green"}},
	{"vp-attachment", "Danny saw Andrei leaving.",
		[2]string{
			"(S (NP (NNP Danny)) (VP (VBD saw) (NP (NNP Andrei)) (S (VP (VBG leaving)))) (. .))",
			"(S (NP (NNP Danny)) (VP (VBD saw) (NP (NP (NNP Andrei)) (VP (VBG leaving)))) (. .))",
		},
		[2]string{"Danny leaves", "Andrei leaves"}},
}

// testPairs makes n pairs with small drawn images: a coloured square in a
// different corner per reading, which is also its evidence box. Pair 4's id,
// sentence and gloss carry escape sequences, which must never reach the
// screen raw.
func testPairs(n int) []loader.Pair {
	const size = 64
	var pairs []loader.Pair
	for i := range n {
		f := families[i%len(families)]
		p := loader.Pair{ID: fmt.Sprintf("%s-%03d", f.family[:2], i), Sentence: f.sentence, Ambiguity: f.family, Split: loader.SplitTest}
		if i == 4 {
			p.ID = "evil\x1b[31m-004"
			p.Sentence = "Danny \x1b]0;pwned\x07saw Andrei leaving.\u202e"
		}
		for j := range 2 {
			img := image.NewRGBA(image.Rect(0, 0, size, size))
			bg := color.RGBA{uint8(40 + 20*(i%5)), uint8(60 + 30*j), 90, 255}
			draw.Draw(img, img.Rect, image.NewUniform(bg), image.Point{}, draw.Src)
			x0, y0 := 8+32*j, 8+24*((i+j)%2)
			box := image.Rect(x0, y0, x0+20, y0+20)
			draw.Draw(img, box, image.NewUniform(color.RGBA{230, 200, 40, 255}), image.Point{}, draw.Src)
			r := loader.Reading{Tree: f.trees[j], Gloss: f.glosses[j], Pixels: img,
				Image: fmt.Sprintf("images/%d-%d.png", i, j),
				Boxes: []loader.Box{{Label: "bag", Role: loader.RoleEvidence, X0: box.Min.X, Y0: box.Min.Y, X1: box.Max.X, Y1: box.Max.Y}}}
			if i == 4 && j == 0 {
				r.Gloss = "Danny leaves\x1b[2J"
			}
			p.Readings = append(p.Readings, r)
		}
		pairs = append(pairs, p)
	}
	return pairs
}

// harness runs the explorer's model without a terminal: it executes the
// model's commands in goroutines, feeds their messages back, and settles
// when no command is left running.
type harness struct {
	t       testing.TB
	m       tea.Model
	msgs    chan tea.Msg
	running atomic.Int64
	raw     []string // what tea.Raw wrote, in order
	quit    bool
	engine  *enginetest.Engine
}

type options struct {
	mode      graphics.Mode
	w, h      int
	pairs     int
	exportDir string
	colormap  string
	// openErr makes opening the engine fail.
	openErr error
	// stepDelay is the fake engine's time per fine-tune step.
	stepDelay time.Duration
	showKeys  bool
	note      string
	// noProbe hides the fake engine's tui.Prober.
	noProbe bool
	// engineName is the fake engine's checkpoint name.
	engineName string
}

// plainEngine is an engine with nothing but tui.Engine's methods.
type plainEngine struct{ tui.Engine }

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	if o.pairs == 0 {
		o.pairs = 9
	}
	if o.mode == graphics.Auto {
		o.mode = graphics.Blocks
	}
	ds := &loader.Dataset{Pairs: testPairs(o.pairs)}
	h := &harness{t: t, msgs: make(chan tea.Msg, 256)}
	h.engine = enginetest.New(ds, enginetest.Options{StepDelay: o.stepDelay, Name: o.engineName})
	var cmap *explain.Colormap
	if o.colormap != "" {
		var err error
		if cmap, err = explain.ColormapNamed(o.colormap); err != nil {
			t.Fatal(err)
		}
	}
	m, err := tui.New(tui.Options{
		Data: ds, Split: loader.SplitTest, DataName: "testdata",
		Open: func(context.Context) (tui.Engine, error) {
			if o.openErr != nil {
				return nil, o.openErr
			}
			if o.noProbe {
				return plainEngine{h.engine}, nil
			}
			return h.engine, nil
		},
		Graphics: o.mode, CellWidth: 10, CellHeight: 20,
		Colormap:   cmap,
		StartLayer: explain.LastLayer,
		ExportDir:  o.exportDir,
		ShowKeys:   o.showKeys, GraphicsNote: o.note,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	h.m = m
	h.send(tea.WindowSizeMsg{Width: o.w, Height: o.h})
	h.exec(m.Init())
	h.settle()
	return h
}

func (h *harness) exec(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	h.running.Add(1)
	go func() {
		h.msgs <- cmd()
		h.running.Add(-1)
	}()
}

func (h *harness) send(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			h.exec(c)
		}
	case spinner.TickMsg:
		// The spinner would tick for as long as work runs; its frame is
		// not what the golden views are about.
	case tea.RawMsg:
		h.raw = append(h.raw, fmt.Sprint(msg.Msg))
		h.update(msg)
	case tea.QuitMsg:
		h.quit = true
	default:
		h.update(msg)
	}
}

func (h *harness) update(msg tea.Msg) {
	m, cmd := h.m.Update(msg)
	h.m = m
	h.exec(cmd)
}

// settle delivers messages until no command is left running.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case msg := <-h.msgs:
			h.send(msg)
		case <-time.After(2 * time.Millisecond):
			if h.running.Load() == 0 && len(h.msgs) == 0 {
				return
			}
		case <-deadline:
			h.t.Fatal("the model did not settle in 20 s")
		}
	}
}

// keys sends key presses and settles after each.
func (h *harness) keys(ks ...string) {
	h.t.Helper()
	for _, k := range ks {
		h.send(keyMsg(k))
		h.settle()
	}
}

func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	case "left":
		return tea.KeyPressMsg{Code: tea.KeyLeft}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

func (h *harness) view() string { return h.m.View().Content }

// typeText types s a character at a time.
func (h *harness) typeText(s string) {
	h.t.Helper()
	for _, r := range s {
		if r == ' ' {
			h.keys("space")
		} else {
			h.keys(string(r))
		}
	}
}
