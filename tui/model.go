package tui

import (
	"context"
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui/graphics"
)

// Options configure the explorer.
type Options struct {
	// Data is the whole dataset the engine was opened on; the explorer
	// shows the pairs of Split ("" shows all).
	Data  *loader.Dataset
	Split string
	// DataName says where the data came from ("demo" or the manifest's
	// path), for the title.
	DataName string
	// Open loads the model. The explorer calls it once, in the background,
	// and shows the pairs while it runs.
	Open func(ctx context.Context) (Engine, error)
	// Graphics is how images are drawn: Sixel, Kitty, Blocks or None (Auto
	// must be resolved first, with graphics.DetectTerminal, before the
	// program owns the terminal). CellWidth and CellHeight are the cell
	// size in pixels for sixel; zero means graphics' default.
	Graphics              graphics.Mode
	CellWidth, CellHeight int
	// GraphicsNote, when set, is shown in the hint bar until the first
	// key: why the mode asked for could not be used (graphics.Multiplexed).
	GraphicsNote string
	// ShowKeys shows the last key pressed at the start of the hint bar,
	// so that a recording of the explorer shows what was typed.
	ShowKeys bool
	// Colormap is the heatmaps' colormap (explain.ColormapNamed); nil is
	// jet.
	Colormap *explain.Colormap
	// Method, StartLayer and Target are the first explanation settings,
	// parsed where they entered; zero values mean chefer, all layers
	// (explain.AllLayers) and own. The notebook's start layer is
	// explain.LastLayer.
	Method     Method
	StartLayer explain.StartLayer
	Target     Target
	// SaveEdits, when set, is the manifest that the edited pairs are
	// appended to when the explorer quits (Model.SaveEdits); Manifest is
	// the one the data came from, never written. Saved hears how many
	// pairs were written.
	SaveEdits, Manifest string
	Saved               func(n int)
	// ExportDir is where e writes PNGs and JSON; empty means
	// "lavascope-export" in the working directory.
	ExportDir string
}

type screen int

const (
	screenList screen = iota
	screenPair
	screenHelp
	screenFineTune
	screenMessage
	screenSummary
)

// Minimum terminal size the explorer lays out; below it, it says so.
const (
	minWidth  = 60
	minHeight = 16
)

// imageDelay is how long after a frame its sixel or kitty images are
// written: the renderer flushes frames on its own ticker (60 per second),
// and the images must land after the frame that blanks their cells.
const imageDelay = 50 * time.Millisecond

// scoreChunk is how many pairs one Score call gets, so that the status bar
// can show progress while a large split is scored.
const scoreChunk = 32

// common is what every screen shares: the key bindings and the terminal's
// size. Styles are the package's st* values.
type common struct {
	keys keyMap
	w, h int
}

// Model is the explorer's Bubble Tea model: the screens' states, the
// scheduler of the model side, and the images on the terminal.
type Model struct {
	common
	scheduler
	opt    Options
	ctx    context.Context
	cancel context.CancelFunc

	screen screen
	help   helpState

	pairs    []loader.Pair // the split, in dataset order
	byID     map[string]int
	prepared map[string]*prepared
	families []string

	engineErr error
	loading   bool
	// msg is the message screen's text, shown whole: an error such as a
	// pickle checkpoint's, whose conversion recipe is several lines.
	msg msgState
	// summary is the split's summary screen.
	summary summaryState
	// before is the engine a finished fine-tune started from, after its
	// result; showingBefore says which of the two is shown.
	before, after Engine
	showingBefore bool

	method Method
	layer  explain.StartLayer
	target Target
	cmap   *explain.Colormap
	mode   graphics.Mode
	modes  []graphics.Mode

	list listState
	pairState
	// edits are the pairs' live tree edits, oldest first (E, u).
	edits map[string][]treeEdit

	imgs    *imageCache
	visuals map[visualKey]*visual
	pending map[visualKey]bool

	// The sixel or kitty images on screen and the generation of the draw
	// that is waiting for its frame to be flushed.
	drawn    drawState
	drawGen  int
	wantDraw drawState
	wantSeq  string
	quitting bool
	// confirmQuit, when set, is why q asked before quitting; the next key
	// answers.
	confirmQuit string
	// lastKey is the last key pressed, for Options.ShowKeys.
	lastKey   string
	ft        fineTune
	spin      spinner.Model
	spinning  bool
	flash     string
	flashErr  bool
	frame     string
	lines     []string
	renderMem map[string][]string
	// What the last render left room for and wanted made.
	placements  []placement
	wantVisuals []visualReq
}

// New builds the explorer's model. It does no I/O: the engine is opened by
// the model's Init command.
func New(opt Options) (*Model, error) {
	if opt.Data == nil {
		return nil, errors.New("explorer: no dataset")
	}
	if opt.Open == nil {
		return nil, errors.New("explorer: no engine to open")
	}
	if opt.SaveEdits != "" {
		if err := CheckSaveEdits(opt.SaveEdits, opt.Manifest); err != nil {
			return nil, fmt.Errorf("explorer: %w", err)
		}
	}
	m := &Model{
		common: common{keys: newKeyMap(), w: 80, h: 24},
		opt:    opt, byID: map[string]int{}, prepared: map[string]*prepared{},
		visuals: map[visualKey]*visual{}, pending: map[visualKey]bool{}, imgs: newImageCache(opt.Data),
		renderMem: map[string][]string{}, loading: true, edits: map[string][]treeEdit{},
		method: opt.Method, layer: opt.StartLayer, target: opt.Target,
		pairState: pairState{boxes: true},
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.pairs = loader.FilterSplit(opt.Data.Pairs, opt.Split)
	var ids []string
	for i, p := range m.pairs {
		if _, dup := m.byID[p.ID]; dup {
			return nil, fmt.Errorf("explorer: pair id %q appears twice", p.ID)
		}
		m.byID[p.ID] = i
		ids = append(ids, p.ID)
		if p.Ambiguity != "" && !slices.Contains(m.families, p.Ambiguity) {
			m.families = append(m.families, p.Ambiguity)
		}
	}
	slices.Sort(m.families)
	m.scheduler = newScheduler(ids)
	m.scheduler.ctx = m.ctx
	if m.method == "" {
		m.method = explain.Chefer
	}
	if _, err := explain.ParseMethod(string(m.method)); err != nil {
		return nil, fmt.Errorf("explorer: %w", err)
	}
	m.cmap = opt.Colormap
	if m.cmap == nil {
		m.cmap = explain.Jet
	}
	switch opt.Graphics {
	case graphics.Sixel, graphics.Kitty, graphics.Blocks, graphics.None:
	default:
		return nil, fmt.Errorf("explorer: graphics mode %v: resolve auto before starting", opt.Graphics)
	}
	m.mode = opt.Graphics
	if opt.GraphicsNote != "" {
		m.setFlash(false, "%s", opt.GraphicsNote)
	}
	for _, md := range []graphics.Mode{opt.Graphics, graphics.Blocks, graphics.None} {
		if !slices.Contains(m.modes, md) {
			m.modes = append(m.modes, md)
		}
	}
	if m.opt.ExportDir == "" {
		m.opt.ExportDir = "lavascope-export"
	}
	m.spin = spinner.New(spinner.WithSpinner(spinner.MiniDot))
	m.ft = newFineTune()
	m.refreshRows()
	m.render()
	return m, nil
}

// Run runs the explorer on the terminal until the user quits, then closes
// every engine it opened. opts are passed to tea.NewProgram (tests give
// input and output).
func Run(ctx context.Context, opt Options, opts ...tea.ProgramOption) error {
	m, err := New(opt)
	if err != nil {
		return err
	}
	defer m.cancel()
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx)}, opts...)...)
	_, runErr := p.Run()
	var saveErr error
	if opt.SaveEdits != "" {
		n, err := m.SaveEdits(opt.SaveEdits, opt.Manifest)
		saveErr = err
		if err == nil && opt.Saved != nil {
			opt.Saved(n)
		}
	}
	return errors.Join(runErr, saveErr, m.Close())
}

// Close cancels the model's background work and closes its engines.
func (m *Model) Close() error {
	m.cancel()
	var errs []error
	for _, e := range m.engines {
		if err := e.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.engines = nil
	return errors.Join(errs...)
}

// Messages from the model's commands.
type (
	engineMsg struct {
		eng Engine
		err error
	}
	scoresMsg struct {
		ckpt   string
		scores []Score
		err    error
	}
	// explainedMsg ends an explanation job: on success, one result per
	// key of the job.
	explainedMsg struct {
		job     *explainJob
		results []explainResult
		err     error
	}
	visualMsg struct {
		key visualKey
		vis *visual
	}
	drawMsg   struct{ gen int }
	exportMsg struct {
		files []string
		err   error
	}
	quitMsg struct{}
)

// Init opens the engine in the background.
func (m *Model) Init() tea.Cmd {
	ctx, open := m.ctx, m.opt.Open
	return tea.Batch(func() tea.Msg {
		eng, err := open(ctx)
		if err == nil && ctx.Err() != nil {
			// The explorer quit while the model loaded: nobody will
			// close this engine but us.
			return engineMsg{err: errors.Join(ctx.Err(), eng.Close())}
		}
		return engineMsg{eng, err}
	}, m.startSpinner())
}

func (m *Model) startSpinner() tea.Cmd {
	if m.spinning {
		return nil
	}
	m.spinning = true
	return m.spin.Tick
}

// busy reports whether something runs in the background, which the
// spinner shows.
func (m *Model) busy() bool {
	return m.loading || m.scheduler.busy() || m.faith.running != nil || m.ft.running || len(m.pending) > 0
}

// View returns the frame Update rendered.
func (m *Model) View() tea.View {
	v := tea.NewView(m.frame)
	v.AltScreen = true
	v.WindowTitle = "lavascope"
	return v
}

// Update handles a message, renders the frame, and schedules the sixel or
// kitty images that the frame leaves room for.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	if m.quitting {
		return m, cmd
	}
	cmd = tea.Batch(cmd, m.panelAsk(), m.faithNext())
	m.render()
	return m, tea.Batch(cmd, m.requestVisuals(), m.syncImages(), m.keepSpinning())
}

func (m *Model) keepSpinning() tea.Cmd {
	if m.busy() {
		return m.startSpinner()
	}
	return nil
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		clear(m.renderMem)
		// The renderer erases the screen on resize, and sixel images with
		// it; kitty images stay until deleted or replaced.
		if m.drawn.mode == graphics.Sixel {
			m.drawn = drawState{}
		}
		m.drawn.stale = true
		m.wantSeq = ""
		return nil
	case spinner.TickMsg:
		if !m.busy() {
			m.spinning = false
			return nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return cmd
	case engineMsg:
		return m.onEngine(msg)
	case scoresMsg:
		return m.onScores(msg)
	case explainedMsg:
		return m.onExplained(msg)
	case probedMsg:
		return m.onProbed(msg)
	case faithMsg:
		return m.onFaith(msg)
	case visualMsg:
		delete(m.pending, msg.key)
		m.visuals[msg.key] = msg.vis
		m.trimVisuals()
		return nil
	case drawMsg:
		if msg.gen != m.drawGen || m.wantSeq == "" {
			return nil
		}
		m.drawn = m.wantDraw
		seq := m.wantSeq
		m.wantSeq = ""
		return tea.Raw(seq)
	case exportMsg:
		if msg.err != nil {
			m.setFlash(true, "export failed: %v", msg.err)
		} else {
			m.setFlash(false, "exported %s", strings.Join(msg.files, ", "))
		}
		return nil
	case ftProgressMsg, ftDoneMsg:
		return m.onFineTune(msg)
	case runCkptMsg:
		return m.onRunCheckpoint(msg)
	case quitMsg:
		m.quitting = true
		return tea.Quit
	case tea.KeyPressMsg:
		return m.onKey(msg)
	}
	return nil
}

func (m *Model) setFlash(isErr bool, format string, args ...any) {
	m.flash, m.flashErr = fmt.Sprintf(format, args...), isErr
}

func (m *Model) onEngine(msg engineMsg) tea.Cmd {
	m.loading = false
	if msg.err != nil {
		m.engineErr = msg.err
		m.showMessage("the model did not load", msg.err.Error())
		return nil
	}
	m.engines = append(m.engines, msg.eng)
	m.setEngine(msg.eng)
	return m.scoreNext()
}

func (m *Model) setEngine(e Engine) {
	m.scheduler.setEngine(e)
	m.refreshRows()
}

// settings are the explanation settings shown.
func (m *Model) settings() settings {
	return settings{method: m.method, layer: m.layer, target: m.target}
}

// scoreNext scores the next chunk of unscored pairs of the shown engine, and
// when all are scored starts explaining in the background.
func (m *Model) scoreNext() tea.Cmd {
	if m.engine == nil || m.scoring != "" {
		return nil
	}
	ckpt, ids := m.nextScore(scoreChunk)
	if len(ids) == 0 {
		return m.explainNext()
	}
	ctx, eng := m.ctx, m.engine
	return func() tea.Msg {
		s, err := eng.Score(ctx, ids)
		return scoresMsg{ckpt: ckpt, scores: s, err: err}
	}
}

func (m *Model) onScores(msg scoresMsg) tea.Cmd {
	if err := m.scored(msg.ckpt, msg.scores, msg.err); err != nil {
		m.setFlash(true, "scoring failed: %v", err)
		return nil
	}
	if msg.err != nil {
		return nil
	}
	m.refreshRows()
	if m.ft.awaitingScores == msg.ckpt && m.allScored(msg.ckpt) {
		m.ft.computeFlips(m)
	}
	return m.scoreNext()
}

// prep is the shown engine's preprocessing, which the boxes are mapped
// through.
func (m *Model) prep() loader.PreprocessConfig {
	if m.info.Preprocess != nil {
		return *m.info.Preprocess
	}
	return loader.DefaultPreprocessConfig()
}

func (m *Model) currentKey(pairID string) expKey { return m.keyFor(pairID, m.settings()) }

// explainResult is one explanation of a job with what is derived from it
// off the UI goroutine.
type explainResult struct {
	exp   *Explanation
	point []*explain.Pointing
	// boxMass is each reading's share of image relevance per evidence box.
	boxMass [][]float64
	ana     []*report.Analysis
}

// explainNext starts the next explanation job, if the scheduler wants one:
// what the pair view shows first, else the pairs in list order from the
// cursor, in chunks where the engine is a BatchExplainer.
func (m *Model) explainNext() tea.Cmd {
	var first []string
	rows := m.list.rows
	for i := range rows {
		first = append(first, m.pairs[rows[(m.list.cursor+i)%len(rows)]].ID)
	}
	var shown []expKey
	if m.opened && m.panel.kind == panelEdited && len(m.edits[m.pairs[m.cur].ID]) > 0 {
		shown = append(shown, m.editedKey())
	}
	if m.comparing() && m.opened {
		for _, e := range []Engine{m.before, m.after} {
			k := m.currentKey(m.pairs[m.cur].ID)
			k.ckpt = e.Info().Checkpoint
			shown = append(shown, k)
		}
	}
	if m.opened {
		// The pair as it is comes first: a counterfactual's box masses
		// are read against it.
		shown = append(shown, m.currentKey(m.pairs[m.cur].ID))
		if k := m.expKeyOf(m.prepare(m.cur)); k.cf != (Variant{}) {
			shown = append(shown, k)
		}
	}
	chunk := 1
	if _, ok := m.engine.(BatchExplainer); ok {
		chunk = sweepChunk(m.lastElapsed)
	}
	j := m.nextExplain(m.settings(), shown, first, chunk)
	if j == nil {
		return nil
	}
	eng := m.engineFor(j.keys[0].ckpt)
	imgs := m.imgs
	prep := m.prep()
	reqs := make([]ExplainRequest, len(j.keys))
	pairs := make([]*loader.Pair, len(j.keys))
	for i, k := range j.keys {
		reqs[i] = ExplainRequest{PairID: k.pair, Method: k.method, StartLayer: k.layer, Target: k.target, Trees: k.trees, Variant: k.cf}
		if at, ok := m.byID[k.pair]; ok {
			pairs[i] = &m.pairs[at]
			if k.trees != "" {
				pairs[i] = m.prepareTrees(at, k.trees).pair
			}
		}
	}
	return func() tea.Msg {
		var exps []*Explanation
		var err error
		if be, ok := eng.(BatchExplainer); ok && len(reqs) > 1 {
			exps, err = be.ExplainMany(j.ctx, reqs)
			if err == nil && len(exps) != len(reqs) {
				err = fmt.Errorf("the engine explained %d of %d pairs", len(exps), len(reqs))
			}
		} else {
			var exp *Explanation
			exp, err = eng.Explain(j.ctx, reqs[0])
			exps = []*Explanation{exp}
		}
		msg := explainedMsg{job: j, err: err}
		if err != nil {
			return msg
		}
		msg.results = make([]explainResult, len(exps))
		for i, exp := range exps {
			r := explainResult{exp: exp, ana: analyse(exp)}
			if pairs[i] != nil {
				r.point = make([]*explain.Pointing, len(exp.Readings))
				r.boxMass = make([][]float64, len(exp.Readings))
				for k, rr := range exp.Readings {
					// A reading whose boxes cannot be placed has no
					// pointing game; the heatmap is still worth showing.
					r.point[k], r.boxMass[k], _ = readingPointing(imgs, pairs[i], rr, prep)
				}
			}
			msg.results[i] = r
		}
		return msg
	}
}

func (m *Model) onExplained(msg explainedMsg) tea.Cmd {
	var es []*explained
	if msg.err == nil {
		es = make([]*explained, len(msg.job.keys))
		for n, k := range msg.job.keys {
			i, known := m.byID[k.pair]
			if !known {
				// Not a pair of the split: nothing can show it.
				continue
			}
			r := msg.results[n]
			pp := m.prepare(i)
			if k.trees != "" {
				pp = m.prepareTrees(i, k.trees)
			}
			es[n] = newExplained(pp, r.exp, m.engineStyle(k.ckpt))
			es[n].point, es[n].boxMass, es[n].ana = r.point, r.boxMass, r.ana
		}
	}
	if !m.explained(msg.job, es, msg.err) {
		return m.explainNext()
	}
	if msg.err != nil {
		m.setFlash(true, "explaining %s failed: %v", clean(msg.job.keys[0].pair), msg.err)
	} else {
		m.lastElapsed = msg.results[len(msg.results)-1].exp.Elapsed
	}
	if s := m.list.sortBy; s == sortPointing || s == sortMass {
		// The order follows the sweep as it explains pairs.
		m.refreshRows()
	}
	return m.explainNext()
}

// engineFor is the engine that owns ckpt; the shown one when none does.
func (m *Model) engineFor(ckpt string) Engine {
	for _, e := range m.engines {
		if e.Info().Checkpoint == ckpt {
			return e
		}
	}
	return m.engine
}

// comparing reports whether the pair view shows the model before and after
// a fine-tune side by side.
func (m *Model) comparing() bool { return m.compare && m.before != nil }

// engineStyle is the linearization style of the engine that owns ckpt.
func (m *Model) engineStyle(ckpt string) trees.Style {
	for _, e := range m.engines {
		if info := e.Info(); info.Checkpoint == ckpt {
			return info.Style
		}
	}
	return m.info.Style
}

func (m *Model) onKey(msg tea.KeyPressMsg) tea.Cmd {
	m.flash = ""
	m.lastKey = msg.String()
	if msg.String() == "ctrl+c" {
		return m.quit()
	}
	if m.confirmQuit != "" {
		m.confirmQuit = ""
		if msg.String() == "y" || msg.String() == "Y" {
			return m.quit()
		}
		m.setFlash(false, "not quitting")
		return nil
	}
	return m.state(m.screen).update(m, msg)
}

// globalKey handles the keys that act the same on the list and pair view.
func (m *Model) globalKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.askQuit(), true
	case key.Matches(msg, k.Help):
		m.help.back, m.screen = m.screen, screenHelp
	case key.Matches(msg, k.Message):
		if m.msg.text == "" {
			m.setFlash(false, "no message")
			return nil, true
		}
		m.msg.back, m.screen = m.screen, screenMessage
	case key.Matches(msg, k.FineTune):
		m.ft.back, m.screen = m.screen, screenFineTune
	case key.Matches(msg, k.Method):
		m.method = next(explain.Methods, m.method)
	case key.Matches(msg, k.Layer):
		if m.method != explain.Chefer {
			// The other methods read no start layer: changing it would
			// recompute the same maps under a new name.
			m.setFlash(false, "the start layer applies to chefer only (m changes the method)")
			return nil, true
		}
		m.layer = next(m.layers(), m.layer)
	case key.Matches(msg, k.Target):
		m.target = next(Targets, m.target)
	case key.Matches(msg, k.Colormap):
		names := append([]string(nil), explain.ColormapNames()...)
		cm, err := explain.ColormapNamed(next(names, m.cmap.Name()))
		if err != nil {
			// The names come from explain itself: a failure is a bug there.
			panic(err)
		}
		m.cmap = cm
		clear(m.renderMem)
	case key.Matches(msg, k.Graphics):
		m.mode = next(m.modes, m.mode)
	case key.Matches(msg, k.Summary):
		if m.screen != screenSummary {
			m.summary.back, m.screen = m.screen, screenSummary
		}
	case key.Matches(msg, k.RunCkpt):
		return m.nextRunCheckpoint(), true
	case key.Matches(msg, k.Toggle):
		if m.before == nil {
			m.setFlash(false, "no fine-tune run yet: T opens the panel")
			return nil, true
		}
		m.showingBefore = !m.showingBefore
		if m.showingBefore {
			m.setEngine(m.before)
		} else {
			m.setEngine(m.after)
		}
		return m.scoreNext(), true
	default:
		return nil, false
	}
	return m.explainNext(), true
}

// layers lists the start layers l cycles through: last, all, then the
// layers in between when the engine says how many it has.
func (m *Model) layers() []explain.StartLayer {
	ls := []explain.StartLayer{explain.LastLayer, explain.AllLayers}
	for i := 1; i < m.info.Layers-1; i++ {
		ls = append(ls, explain.StartLayer(i))
	}
	if !slices.Contains(ls, m.layer) {
		ls = append(ls, m.layer)
	}
	return ls
}

// next returns the element after cur in xs, wrapping; the first when cur is
// not in xs.
func next[T comparable](xs []T, cur T) T {
	i := slices.Index(xs, cur)
	return xs[(i+1)%len(xs)]
}

// askQuit quits on q, unless that would lose work: a running fine-tune or
// an edited fine-tune form. Then it asks, and the next key answers.
func (m *Model) askQuit() tea.Cmd {
	switch {
	case m.ft.running:
		m.confirmQuit = "a fine-tune is running and would be lost"
	case m.ft.edited() && m.ft.to == "":
		m.confirmQuit = "the fine-tune form has edits that were not run"
	default:
		return m.quit()
	}
	return nil
}

func (m *Model) quit() tea.Cmd {
	m.cancel()
	if m.ft.cancel != nil {
		m.ft.cancel()
	}
	if m.drawn.any() {
		if seq := graphics.ClearAll(m.drawn.mode); seq != "" {
			// The deletion must reach the terminal while it still shows
			// the alternate screen, so quit only after a frame has passed.
			return tea.Sequence(tea.Raw(seq), tea.Tick(imageDelay, func(time.Time) tea.Msg { return quitMsg{} }))
		}
	}
	m.quitting = true
	return tea.Quit
}

func (m *Model) openPair(i int) tea.Cmd {
	if i < 0 || i >= len(m.pairs) {
		return nil
	}
	m.cur, m.scroll, m.opened = i, 0, true
	m.screen = screenPair
	pn := &m.panel
	switch {
	case pn.kind == panelEditor, pn.kind == panelEdited && len(m.edits[m.pairs[i].ID]) == 0:
		pn.kind = panelNone
	case pn.kind == panelEdited:
		return tea.Batch(m.explainNext(), m.askEdited())
	case pn.kind == panelRanking:
		pn.reading = 0
		return tea.Batch(m.explainNext(), m.askRanking())
	}
	return m.explainNext()
}

func (p *pairState) update(m *Model, msg tea.KeyPressMsg) tea.Cmd {
	if p.panel.kind == panelEditor {
		cmd, _ := m.panelKey(msg)
		return cmd
	}
	if cmd, ok := m.globalKey(msg); ok {
		return cmd
	}
	if cmd, ok := m.panelKey(msg); ok {
		return cmd
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Back):
		// esc steps back one view at a time: out of the before/after
		// comparison first, then to the list.
		if m.compare {
			m.compare = false
			return m.explainNext()
		}
		m.screen = screenList
		m.list.moveTo(m, m.pairs[m.cur].ID)
	case key.Matches(msg, k.Next), key.Matches(msg, k.Prev):
		step := 1
		if key.Matches(msg, k.Prev) {
			step = -1
		}
		rows := m.list.rows
		if len(rows) == 0 {
			return nil
		}
		pos := slices.Index(rows, m.cur)
		if pos < 0 {
			pos = 0
		} else {
			pos = (pos + step + len(rows)) % len(rows)
		}
		m.list.cursor = pos
		return m.openPair(rows[pos])
	case key.Matches(msg, k.Down):
		m.scroll++
	case key.Matches(msg, k.Up):
		m.scroll = max(0, m.scroll-1)
	case key.Matches(msg, k.Export):
		return m.export()
	case key.Matches(msg, k.Boxes):
		m.boxes = !m.boxes
		switch {
		case m.boxes && !m.pairHasBoxes():
			m.setFlash(false, "this pair has no evidence boxes to draw")
		case m.boxes:
			m.setFlash(false, "evidence boxes on")
		default:
			m.setFlash(false, "evidence boxes off")
		}
	case key.Matches(msg, k.Raw):
		m.rawImages = !m.rawImages
	case key.Matches(msg, k.Tokens):
		m.rawTokens = !m.rawTokens
	case key.Matches(msg, k.Compare):
		if m.before == nil {
			m.setFlash(false, "nothing to compare: B shows a pair before and after a fine-tune (T)")
			return nil
		}
		m.compare = !m.compare
		return m.explainNext()
	}
	return nil
}

// pairHasBoxes reports whether an image of the open pair has evidence boxes.
func (m *Model) pairHasBoxes() bool {
	for _, r := range m.pairs[m.cur].Readings {
		if len(r.BoxesWithRole(loader.RoleEvidence)) > 0 {
			return true
		}
	}
	return false
}

// imageCache keeps decoded images, which commands read from several
// goroutines.
type imageCache struct {
	ds *loader.Dataset
	c  *syncCache[*loader.Reading, image.Image]
}

func newImageCache(ds *loader.Dataset) *imageCache {
	return &imageCache{ds: ds, c: newSyncCache[*loader.Reading, image.Image](64)}
}

func (c *imageCache) get(r *loader.Reading) (image.Image, error) {
	if img, ok := c.c.get(r); ok {
		return img, nil
	}
	img, err := c.ds.Image(r)
	if err != nil {
		return nil, err
	}
	c.c.put(r, img)
	return img, nil
}
