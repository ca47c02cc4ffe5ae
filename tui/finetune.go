package tui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// fineTune is the fine-tune panel: a form, the progress of a run, and the
// pairs that flipped once it is done.
type fineTune struct {
	back  screen // where esc leaves the panel for
	focus int
	// text holds the form's text fields: steps, lr, batch pairs.
	text   [3]string
	input  string
	freeze bool
	// precision is the training step's (FineTunePrecisions).
	precision string
	err       string

	running  bool
	opts     FineTuneOptions
	cancel   context.CancelFunc
	progress chan FineTuneProgress
	done     chan ftDoneMsg
	last     FineTuneProgress
	losses   []float64

	// After a run: the checkpoints before and after, and the readings
	// whose correctness changed, once the new checkpoint is scored.
	from, to       string
	awaitingScores string
	flips          []flip
	flipCursor     int
	// afterName is the run checkpoint shown as "after" (last, best), run
	// the engine FineTune returned, and runEngines those opened by name.
	afterName  string
	run        Engine
	runEngines map[string]Engine
	// flipped marks the pairs of flips by direction; nil until a run's
	// flips are known.
	flipped map[string]flipDir
	outcome string
	// doneHead and doneTail say how a finished run went, before and after
	// "now showing" and the new checkpoint, whose path the panel elides in
	// the middle to keep them on one line.
	doneHead, doneTail string
}

// flipDir is the direction of a pair's flips, a set: a pair can have a
// reading fixed and another broken.
type flipDir uint8

const (
	flipUp   flipDir = 1 << iota // ✗→✓
	flipDown                     // ✓→✗
)

// flip is a reading whose correctness changed with a fine-tune.
type flip struct {
	pair    string
	reading int
	nowOK   bool
}

type (
	ftProgressMsg FineTuneProgress
	ftDoneMsg     struct {
		eng Engine
		err error
		// rest are the reports still queued when the run ended.
		rest []FineTuneProgress
	}
)

// Form fields, in focus order.
const (
	ftSteps = iota
	ftLR
	ftBatch
	ftInput
	ftFreeze
	ftPrecision
	ftFields
)

var ftLabels = [ftFields]string{"steps", "learning rate", "batch pairs", "input", "freeze vision", "precision"}

func newFineTune() fineTune {
	return fineTune{
		text:      [3]string{"200", "1e-5", "2"},
		input:     "tree",
		precision: "fp32",
	}
}

// precisions are the precisions the form offers on the shown engine's
// device: tf32 only where it has an effect, on CUDA.
func (m *Model) precisions() []string {
	var out []string
	for _, p := range FineTunePrecisions {
		if p != "tf32" || strings.HasPrefix(m.info.Device, "cuda") {
			out = append(out, p)
		}
	}
	return out
}

// form reads the form into options.
func (f *fineTune) form() (FineTuneOptions, error) {
	steps, err := strconv.Atoi(strings.TrimSpace(f.text[ftSteps]))
	if err != nil {
		return FineTuneOptions{}, fmt.Errorf("steps: %q is not a whole number", f.text[ftSteps])
	}
	lr, err := strconv.ParseFloat(strings.TrimSpace(f.text[ftLR]), 64)
	if err != nil {
		return FineTuneOptions{}, fmt.Errorf("learning rate: %q is not a number", f.text[ftLR])
	}
	batch, err := strconv.Atoi(strings.TrimSpace(f.text[ftBatch]))
	if err != nil {
		return FineTuneOptions{}, fmt.Errorf("batch pairs: %q is not a whole number", f.text[ftBatch])
	}
	o := FineTuneOptions{Steps: steps, LR: lr, BatchPairs: batch, Input: f.input, FreezeVision: f.freeze, Precision: f.precision}
	return o, o.Validate()
}

// edited reports whether the form differs from the one a fresh panel shows,
// so that q asks before throwing the edits away.
func (f *fineTune) edited() bool {
	d := newFineTune()
	return f.text != d.text || f.input != d.input || f.freeze != d.freeze || f.precision != d.precision
}

// typing reports whether a text field has the focus: every printable key
// then goes into it, and no hotkey fires.
func (f *fineTune) typing() bool {
	return !f.running && f.focus >= ftSteps && f.focus <= ftBatch && f.focus < ftFields
}

func (f *fineTune) update(m *Model, msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	s := msg.String()
	if f.typing() && (msg.Text != "" || s == "backspace") {
		t := f.text[f.focus]
		if editLine(&t, msg) {
			if len([]rune(t)) <= 12 {
				f.text[f.focus] = t
			}
			f.err = ""
			return nil
		}
	}
	switch {
	case s == "esc" || s == "T":
		m.screen = f.back
		return nil
	case s == "q":
		return m.askQuit()
	case s == "?":
		m.help.back, m.screen = screenFineTune, screenHelp
		return nil
	case s == "c" && f.running:
		f.cancel()
		return nil
	case s == "tab" || s == "shift+tab":
		d := 1
		if s == "shift+tab" {
			d = ftFields - 1
		}
		f.focus = (f.focus + d) % ftFields
		return nil
	case s == "enter":
		if len(f.flips) > 0 && f.focus == ftFields {
			fl := f.flips[f.flipCursor]
			return m.openPair(m.byID[fl.pair])
		}
		return f.start(m)
	case key.Matches(msg, k.Toggle, k.RunCkpt):
		cmd, _ := m.globalKey(msg)
		return cmd
	case s == "up" || s == "k" || s == "down" || s == "j":
		if len(f.flips) == 0 {
			d := 1
			if s == "up" || s == "k" {
				d = ftFields - 1
			}
			f.focus = (f.focus + d) % ftFields
			return nil
		}
		f.focus = ftFields
		if s == "up" || s == "k" {
			f.flipCursor = max(0, f.flipCursor-1)
		} else {
			f.flipCursor = min(len(f.flips)-1, f.flipCursor+1)
		}
		return nil
	}
	if f.running {
		return nil
	}
	switch f.focus {
	case ftInput:
		if s == "space" || s == "left" || s == "right" || s == "h" || s == "l" {
			if f.input == "tree" {
				f.input = "text"
			} else {
				f.input = "tree"
			}
		}
	case ftFreeze:
		if s == "space" || s == "left" || s == "right" || s == "h" || s == "l" {
			f.freeze = !f.freeze
		}
	case ftPrecision:
		ps := m.precisions()
		i := slices.Index(ps, f.precision)
		switch s {
		case "space", "right", "l":
			f.precision = ps[(i+1)%len(ps)]
		case "left", "h":
			f.precision = ps[(i+len(ps)-1)%len(ps)]
		}
	}
	f.err = ""
	return nil
}

// start begins a run on the shown engine.
func (f *fineTune) start(m *Model) tea.Cmd {
	if f.running {
		return nil
	}
	if m.engine == nil {
		f.err = "the model has not loaded yet"
		return nil
	}
	opts, err := f.form()
	if err != nil {
		f.err = err.Error()
		return nil
	}
	ctx, cancel := context.WithCancel(m.ctx)
	f.running, f.opts, f.cancel = true, opts, cancel
	f.last, f.losses, f.flips, f.outcome, f.err = FineTuneProgress{Steps: opts.Steps}, nil, nil, "", ""
	f.doneHead, f.doneTail = "", ""
	f.from, f.to = m.ckpt(), ""
	f.progress, f.done = make(chan FineTuneProgress, 64), make(chan ftDoneMsg, 1)
	eng, ch, done := m.engine, f.progress, f.done
	go func() {
		e, err := eng.FineTune(ctx, opts, ch)
		done <- ftDoneMsg{eng: e, err: err}
	}()
	return f.wait()
}

// wait delivers the run's next report or its end.
func (f *fineTune) wait() tea.Cmd {
	ch, done := f.progress, f.done
	return func() tea.Msg {
		select {
		case p := <-ch:
			return ftProgressMsg(p)
		case d := <-done:
			// Reports sent just before the end may still be queued.
			for {
				select {
				case p := <-ch:
					d.rest = append(d.rest, p)
				default:
					return d
				}
			}
		}
	}
}

func (m *Model) onFineTune(msg tea.Msg) tea.Cmd {
	f := &m.ft
	switch msg := msg.(type) {
	case ftProgressMsg:
		f.record(FineTuneProgress(msg))
		return f.wait()
	case ftDoneMsg:
		for _, p := range msg.rest {
			f.record(p)
		}
		f.running, f.cancel = false, nil
		switch {
		case errors.Is(msg.err, context.Canceled):
			f.outcome = fmt.Sprintf("cancelled at step %d of %d; the model is unchanged", f.last.Step, f.opts.Steps)
			return nil
		case msg.err != nil:
			f.outcome = "failed: " + msg.err.Error()
			m.setMessage("the fine-tune failed", msg.err.Error())
			m.setFlash(true, "fine-tune failed (! shows why): %v", msg.err)
			return nil
		}
		before := m.engine
		m.engines = append(m.engines, msg.eng)
		m.before, m.after, m.showingBefore = before, msg.eng, false
		f.run, f.afterName, f.runEngines = msg.eng, "", map[string]Engine{}
		if rc, ok := msg.eng.(RunCheckpoints); ok {
			own, _ := rc.RunCheckpoints()
			f.afterName = own
			f.runEngines[own] = msg.eng
		}
		m.setEngine(msg.eng)
		f.to = m.ckpt()
		f.awaitingScores = f.to
		f.doneHead, f.doneTail = "done", "scoring the split to find the flips"
		m.setFlash(false, "fine-tune done: switched to %s", f.to)
		return m.scoreNext()
	}
	return nil
}

func (f *fineTune) record(p FineTuneProgress) {
	if p.Step > f.last.Step {
		f.losses = append(f.losses, p.Loss)
	}
	f.last = p
}

// computeFlips lists the readings whose correctness differs between the
// checkpoints before and after the run.
func (f *fineTune) computeFlips(m *Model) {
	f.awaitingScores = ""
	before, after := m.scores[f.from], m.scores[f.to]
	f.flips = f.flips[:0]
	f.flipped = map[string]flipDir{}
	up, down := 0, 0
	for _, p := range m.pairs {
		b, ok1 := before[p.ID]
		a, ok2 := after[p.ID]
		if !ok1 || !ok2 {
			continue
		}
		for j := range min(len(a.Correct), len(b.Correct)) {
			if a.Correct[j] != b.Correct[j] {
				f.flips = append(f.flips, flip{pair: p.ID, reading: j, nowOK: a.Correct[j]})
				if a.Correct[j] {
					up++
					f.flipped[p.ID] |= flipUp
				} else {
					down++
					f.flipped[p.ID] |= flipDown
				}
			}
		}
	}
	f.flipCursor = 0
	if len(f.flips) > 0 {
		// The list of flips takes the keys, not the steps field.
		f.focus = ftFields
	}
	// The x filter and the marks follow the new flips.
	m.refreshRows()
	f.doneHead = fmt.Sprintf("%s flipped (%d ✗→✓, %d ✓→✗)", plural(up+down, "reading"), up, down)
	f.doneTail = "x in the list shows their pairs"
}

// doneLine is how the run went in w cells: the head, then the new
// checkpoint elided in the middle to what the line leaves it, then the
// tail where it fits.
func (f *fineTune) doneLine(w int) string {
	head := " " + clean(f.doneHead) + " · now showing "
	to := clean(f.to)
	tail := " · " + clean(f.doneTail)
	room := w - ansi.StringWidth(head)
	if ansi.StringWidth(to)+ansi.StringWidth(tail) > room {
		tail = ""
	}
	return fit(head+elideMiddle(to, max(8, room-ansi.StringWidth(tail)))+tail, w)
}

func (f *fineTune) view(m *Model, w, h int) []string {
	out := []string{stBold.Render(" fine-tune") + stDim.Render(fmt.Sprintf(" · from %s on the train split of %s, evaluated on val", clean(m.ckpt()), clean(m.opt.DataName))), ""}
	switch {
	case f.running:
		out[0] = stBold.Render(" fine-tune") + stDim.Render(fmt.Sprintf(" · from %s", clean(f.from)))
	case f.to != "":
		out[0] = stBold.Render(" fine-tune") + stDim.Render(fmt.Sprintf(" · %s → %s", clean(f.from), clean(f.to)))
	}
	for i := range ftFields {
		var val string
		switch i {
		case ftSteps, ftLR, ftBatch:
			val = clean(f.text[i])
			if f.focus == i && !f.running {
				val += "█"
			}
			val = "[" + fit(val, 12) + "]"
		case ftInput:
			val = "< " + f.input + " >"
		case ftPrecision:
			val = "< " + f.precision + " >"
		case ftFreeze:
			val = "[ ]"
			if f.freeze {
				val = "[x]"
			}
		}
		label := fit(ftLabels[i], 14)
		if f.focus == i && !f.running {
			out = append(out, stKey.Render(" ▶ ")+stBold.Render(label)+" "+val)
		} else {
			out = append(out, "   "+label+" "+val)
		}
	}
	if f.err != "" {
		out = append(out, "", stBad.Render(" "+clean(f.err)))
	}
	out = append(out, "")
	if f.running || f.last.Step > 0 {
		frac := float64(f.last.Step) / float64(max(1, f.opts.Steps))
		out = append(out, fmt.Sprintf(" %s %d/%d", bar(frac, max(10, min(60, w-30))), f.last.Step, f.opts.Steps))
		line := fmt.Sprintf(" loss %.4f", f.last.Loss)
		if f.last.ValStep > 0 {
			line += fmt.Sprintf(" · val accuracy %.2f%% (step %d)", f.last.ValAccuracy, f.last.ValStep)
		}
		if f.last.ItemsPerSec > 0 {
			line += fmt.Sprintf(" · %.1f items/s", f.last.ItemsPerSec)
		}
		out = append(out, line)
		out = append(out, " loss "+stKey.Render(sparkline(f.losses, max(10, min(60, w-8)))))
	}
	if f.outcome != "" {
		out = append(out, "", " "+clean(f.outcome))
	}
	if f.doneHead != "" {
		out = append(out, "", f.doneLine(w))
	}
	if len(f.flips) > 0 {
		out = append(out, "")
		rows := max(1, h-len(out))
		start := max(0, min(f.flipCursor-rows/2, len(f.flips)-rows))
		for i := start; i < min(len(f.flips), start+rows); i++ {
			fl := f.flips[i]
			mark := tick(false) + "→" + tick(true)
			if !fl.nowOK {
				mark = tick(true) + "→" + tick(false)
			}
			sentence := ""
			if pi, ok := m.byID[fl.pair]; ok {
				sentence = clean(m.pairs[pi].Sentence)
			}
			line := fmt.Sprintf("   %s  %s reading %s  ", mark, clean(fl.pair), letter(fl.reading)) + stDim.Render(sentence)
			if i == f.flipCursor && f.focus == ftFields {
				line = stSel.Render(fit(" ▶"+strings.TrimPrefix(ansi.Strip(line), "  "), w))
			}
			out = append(out, line)
		}
	}
	for len(out) < h {
		out = append(out, "")
	}
	return out[:h]
}

func (f *fineTune) hints(m *Model, w int) string {
	k := m.keys
	var bs []key.Binding
	switch {
	case f.running:
		bs = []key.Binding{hint("c", "cancel"), hint("esc", "back (the run goes on)"), k.Quit}
	case len(f.flips) > 0:
		bs = []key.Binding{hint("j/k", "flipped pairs"), hint("enter", "open pair"), k.Toggle, k.RunCkpt, hint("tab", "form"), hint("esc", "back"), k.Quit}
	default:
		bs = []key.Binding{hint("tab", "next field"), hint("space", "toggle"), hint("enter", "start"), hint("esc", "back"), k.Quit}
	}
	return hints(bs, w)
}

// bar draws a progress bar of w cells, frac of it full.
func bar(frac float64, w int) string {
	full := int(math.Round(max(0, min(1, frac)) * float64(w)))
	return stKey.Render(strings.Repeat("█", full)) + stRule.Render(strings.Repeat("░", w-full))
}

// sparkline draws vs as block heights between their min and max, in at
// most w cells: longer runs are averaged over w equal stretches, so that
// the whole run shows.
func sparkline(vs []float64, w int) string {
	if len(vs) == 0 || w <= 0 {
		return ""
	}
	if len(vs) > w {
		avg := make([]float64, w)
		for i := range w {
			lo, hi := i*len(vs)/w, (i+1)*len(vs)/w
			for _, v := range vs[lo:hi] {
				avg[i] += v
			}
			avg[i] /= float64(hi - lo)
		}
		vs = avg
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	const ticks = "▁▂▃▄▅▆▇█"
	r := []rune(ticks)
	var b strings.Builder
	for _, v := range vs {
		i := 0
		if hi > lo {
			i = int((v - lo) / (hi - lo) * float64(len(r)-1))
		}
		b.WriteRune(r[i])
	}
	return b.String()
}

type runCkptMsg struct {
	name string
	eng  Engine
	err  error
}

// nextRunCheckpoint shows the fine-tune run's next checkpoint (last, best)
// as the model after, opening it the first time.
func (m *Model) nextRunCheckpoint() tea.Cmd {
	f := &m.ft
	rc, ok := f.run.(RunCheckpoints)
	if f.run == nil {
		m.setFlash(false, "no fine-tune run yet: T opens the panel")
		return nil
	}
	var names []string
	if ok {
		_, names = rc.RunCheckpoints()
	}
	if len(names) < 2 {
		m.setFlash(false, "the fine-tune left one checkpoint only (best needs evaluations on a val split)")
		return nil
	}
	name := next(names, f.afterName)
	if e := f.runEngines[name]; e != nil {
		return m.showAfter(name, e)
	}
	m.setFlash(false, "opening the run's %s checkpoint…", name)
	ctx := m.ctx
	return func() tea.Msg {
		e, err := rc.OpenRunCheckpoint(ctx, name)
		if err == nil && ctx.Err() != nil {
			return runCkptMsg{name: name, err: errors.Join(ctx.Err(), e.Close())}
		}
		return runCkptMsg{name: name, eng: e, err: err}
	}
}

func (m *Model) onRunCheckpoint(msg runCkptMsg) tea.Cmd {
	if msg.err != nil {
		if !errors.Is(msg.err, context.Canceled) {
			m.setMessage("the run's "+msg.name+" checkpoint did not open", msg.err.Error())
			m.setFlash(true, "opening %s failed (! shows why): %v", msg.name, msg.err)
		}
		return nil
	}
	m.engines = append(m.engines, msg.eng)
	m.ft.runEngines[msg.name] = msg.eng
	return m.showAfter(msg.name, msg.eng)
}

// showAfter makes e, the run's checkpoint name, the model after the
// fine-tune, shows it, and finds the flips against it once it is scored.
func (m *Model) showAfter(name string, e Engine) tea.Cmd {
	f := &m.ft
	m.after, m.showingBefore, f.afterName = e, false, name
	m.setEngine(e)
	f.to = m.ckpt()
	f.awaitingScores = f.to
	m.setFlash(false, "after = the run's %s checkpoint, %s", name, clean(f.to))
	if m.allScored(f.to) {
		f.computeFlips(m)
	}
	return m.scoreNext()
}
