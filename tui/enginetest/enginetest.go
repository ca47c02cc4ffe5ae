// Package enginetest provides a deterministic [tui.Engine] with no model
// behind it, for the explorer's golden-view and end-to-end tests and for
// trying the explorer where libtorch is absent (`lavascope explore --engine
// fake`). Its numbers are made up from hashes of the pair ids and the
// request, shaped so that the explorer has something to show: about a
// quarter of the readings fail, tokens where the two trees differ and image
// patches over the evidence boxes get high relevance, and each fine-tune run
// flips most failures to successes and a few successes to failures.
package enginetest

import (
	"context"
	"fmt"
	"hash/fnv"
	"image"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui"
)

// Grid is the side of the fake patch grid, that of ViT-B/32 at 224 pixels.
const Grid = 7

// Layers is the depth the fake engine reports.
const Layers = 4

// Options tune the fake engine.
type Options struct {
	// Name is the checkpoint name; "fake" when empty.
	Name string
	// Delay is how long Score (per call) and Explain take, to let spinners
	// and progress show; Explain reports it as its elapsed time.
	Delay time.Duration
	// StepDelay is how long one fine-tune step takes.
	StepDelay time.Duration
}

// Engine is the fake engine. It is safe for concurrent use.
type Engine struct {
	ds    *loader.Dataset
	byID  map[string]*loader.Pair
	opt   Options
	gen   int    // fine-tune generation: 0 for the engine New returns
	run   string // the run checkpoint of a fine-tune's engine: last, best
	seed  int    // varies the scores of a run's best from its last
	mu    sync.Mutex
	sizes map[string]image.Point
	// tuned are the options of the fine-tunes run from the engine, for
	// tests that check what the explorer's form sent.
	tuned []tui.FineTuneOptions
}

// New returns a fake engine over the pairs of ds.
func New(ds *loader.Dataset, opt Options) *Engine {
	if opt.Name == "" {
		opt.Name = "fake"
	}
	e := &Engine{ds: ds, byID: map[string]*loader.Pair{}, opt: opt, sizes: map[string]image.Point{}}
	for i := range ds.Pairs {
		e.byID[ds.Pairs[i].ID] = &ds.Pairs[i]
	}
	return e
}

// Info implements tui.Engine.
func (e *Engine) Info() tui.EngineInfo {
	return tui.EngineInfo{Checkpoint: e.opt.Name, Device: "cpu", Runtime: "fake engine", Style: trees.StylePaper, Layers: Layers}
}

// Close implements tui.Engine.
func (e *Engine) Close() error { return nil }

func (e *Engine) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (e *Engine) pair(id string) (*loader.Pair, error) {
	p, ok := e.byID[id]
	if !ok {
		return nil, fmt.Errorf("fake engine: no pair %q in the dataset", id)
	}
	if len(p.Readings) < 2 {
		return nil, fmt.Errorf("fake engine: pair %q has %d readings, want at least 2", id, len(p.Readings))
	}
	return p, nil
}

// unit hashes its arguments to a number in [0, 1).
func unit(parts ...any) float64 {
	h := fnv.New64a()
	for _, p := range parts {
		fmt.Fprint(h, p, "\x00")
	}
	// FNV alone barely moves the high bits when only the last bytes differ;
	// splitmix64's finaliser spreads every input bit over the output.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}

// Score implements tui.Engine.
func (e *Engine) Score(ctx context.Context, ids []string) ([]tui.Score, error) {
	if err := e.wait(ctx, e.opt.Delay); err != nil {
		return nil, err
	}
	out := make([]tui.Score, len(ids))
	for k, id := range ids {
		p, err := e.pair(id)
		if err != nil {
			return nil, err
		}
		logits := e.logits(id, len(p.Readings))
		if out[k], err = tui.NewScore(id, logits); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// logits are the fake logits of pair id with n readings,
// logits[image][text].
func (e *Engine) logits(id string, n int) [][]float64 {
	logits := make([][]float64, n)
	for i := range logits {
		logits[i] = make([]float64, n)
	}
	for j := range n {
		own := 20 + 4*unit("own", id, j)
		margin := 3*unit("margin", id, j, e.gen+e.seed) - 0.8 + 0.6*float64(e.gen)
		for i := range n {
			switch {
			case i == j:
				logits[i][j] = own
			default:
				logits[i][j] = own - margin - 0.3*float64((i-j+n)%n-1)
			}
		}
	}
	return logits
}

// ScoreTrees implements tui.Prober: a tree that reads as a reading's tree
// gets that reading's logits, as a model would give it; any other its own
// hash.
func (e *Engine) ScoreTrees(ctx context.Context, id string, ts []string) ([][]float64, error) {
	if err := e.wait(ctx, e.opt.Delay); err != nil {
		return nil, err
	}
	p, err := e.pair(id)
	if err != nil {
		return nil, err
	}
	n := len(p.Readings)
	style := e.Info().Style
	own := map[string]int{}
	for j := n - 1; j >= 0; j-- {
		if t, err := trees.Parse(p.Readings[j].Tree); err == nil {
			own[trees.Linearize(t, style).Text] = j
		}
	}
	logits := e.logits(id, n)
	out := make([][]float64, len(ts))
	for i, src := range ts {
		t, err := trees.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("fake engine: tree %d: %w", i, err)
		}
		text := trees.Linearize(t, style).Text
		out[i] = make([]float64, n)
		for k := range n {
			if j, ok := own[text]; ok {
				out[i][k] = logits[k][j]
			} else {
				out[i][k] = 20 + 4*unit("tree", id, text, k, e.gen+e.seed)
			}
		}
	}
	return out, nil
}

// Explain implements tui.Engine.
func (e *Engine) Explain(ctx context.Context, req tui.ExplainRequest) (*tui.Explanation, error) {
	p, err := e.pair(req.PairID)
	if err != nil {
		return nil, err
	}
	if p, err = req.Edited(p); err != nil {
		return nil, fmt.Errorf("fake engine: %w", err)
	}
	if _, err := explain.ParseMethod(string(req.Method)); err != nil {
		return nil, fmt.Errorf("fake engine: %w", err)
	}
	if err := e.wait(ctx, e.opt.Delay); err != nil {
		return nil, err
	}
	n := len(p.Readings)
	nodes := make([]*trees.Node, n)
	for j, r := range p.Readings {
		if nodes[j], err = trees.Parse(r.Tree); err != nil {
			return nil, fmt.Errorf("fake engine: pair %s reading %d: %w", p.ID, j, err)
		}
	}
	diff, err := trees.Diff(nodes[0], nodes[1])
	if err != nil {
		return nil, fmt.Errorf("fake engine: pair %s: %w", p.ID, err)
	}
	seed := fmt.Sprint(req.Method, "/", req.StartLayer, "/", req.Target, "/", e.gen)
	out := &tui.Explanation{Request: req, Checkpoint: e.opt.Name, Readings: make([]tui.ReadingRelevance, n), Elapsed: e.opt.Delay}
	lins := make([]*trees.Linear, n)
	aligns := make([]*trees.Alignment, n)
	toks := make([][]tui.Token, n)
	for j := range n {
		lins[j] = trees.Linearize(nodes[j], trees.StylePaper)
		toks[j] = tokenize(lins[j].Text)
		offs := make([][2]int, len(toks[j]))
		for t, tok := range toks[j] {
			offs[t] = [2]int{tok.Start, tok.End}
		}
		if aligns[j], err = trees.Align(lins[j], offs); err != nil {
			return nil, fmt.Errorf("fake engine: pair %s reading %d: %w", p.ID, j, err)
		}
	}
	onlyA, onlyB, err := diff.UnmatchedTokens(aligns[0], aligns[1])
	if err != nil {
		return nil, fmt.Errorf("fake engine: pair %s: %w", p.ID, err)
	}
	differs := []map[int]bool{set(onlyA), set(onlyB)}
	for j := range n {
		for t := range toks[j] {
			tok := &toks[j][t]
			if tok.Start == tok.End {
				continue
			}
			v := 0.25 * unit(seed, p.ID, j, t, tok.Text)
			if j < 2 && differs[j][t] {
				v += 0.5 + 0.3*unit(seed, "diff", p.ID, j, t)
			}
			tok.Relevance = v
		}
		cells := req.Target.Cells(j, n)
		img := cells[0][0]
		if req.Target == tui.TargetAll {
			img = j
		}
		if req.Variant.Swap {
			img = (img + 1) % n
		}
		patches, err := e.patches(p, img, seed, req.Variant.Fill != "")
		if err != nil {
			return nil, err
		}
		rep, err := fakeReport(p, j, lins[j].Text, req, e.opt.Name, toks[j], img, cells, patches)
		if err != nil {
			return nil, fmt.Errorf("fake engine: pair %s reading %d: %w", p.ID, j, err)
		}
		out.Readings[j] = tui.ReadingRelevance{Text: lins[j].Text, Tokens: toks[j], Image: img, Cells: cells, Patches: patches, Report: rep}
	}
	return out, nil
}

// fakeReport is the report of a fake explanation, its normalised values
// derived as explain derives them: the token shares between the start and
// end markers, and the patches min–max scaled.
func fakeReport(p *loader.Pair, j int, text string, req tui.ExplainRequest, ckpt string, toks []tui.Token, img int, cells [][2]int, g explain.Grid) (*report.Reading, error) {
	start := req.StartLayer
	r := report.New(p, j, text, report.Settings{Checkpoint: ckpt, Method: req.Method, Start: start, Target: req.Target})
	r.Cells = cells
	sum := 0.0
	for _, t := range toks[1 : len(toks)-1] {
		sum += t.Relevance
	}
	for k, t := range toks {
		rt := report.Token{Token: t.Text, Start: t.Start, End: t.End, Relevance: float32(t.Relevance)}
		if k > 0 && k < len(toks)-1 && sum != 0 {
			rt.Normalized = float32(t.Relevance / sum)
		}
		r.Tokens = append(r.Tokens, rt)
	}
	lo, hi := slices.Min(g.V), slices.Max(g.V)
	norm := make([]float32, len(g.V))
	for i, v := range g.V {
		if hi > lo {
			norm[i] = (v - lo) / (hi - lo)
		}
	}
	r.Images = []report.Image{{Image: img, File: p.Readings[img].Image, Grid: g.W, Relevance: g.V, Normalized: norm}}
	if err := r.Finish(trees.StylePaper); err != nil {
		return nil, err
	}
	return &r, nil
}

func set(xs []int) map[int]bool {
	m := map[int]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// tokenize splits a paper-style linearization roughly as CLIP's BPE does:
// "(" apart from its label, words whole, runs of ")" in tokens of up to
// four, between start and end markers that cover no text.
func tokenize(s string) []tui.Token {
	toks := []tui.Token{{Text: "<|startoftext|>"}}
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ':
			i++
		case c == '(':
			toks = append(toks, tui.Token{Text: "(", Start: i, End: i + 1})
			i++
		case c == ')':
			j := i
			for j < len(s) && s[j] == ')' && j-i < 4 {
				j++
			}
			toks = append(toks, tui.Token{Text: s[i:j], Start: i, End: j})
			i = j
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '(' && s[j] != ')' {
				j++
			}
			toks = append(toks, tui.Token{Text: s[i:j], Start: i, End: j})
			i = j
		}
	}
	return append(toks, tui.Token{Text: "<|endoftext|>", Start: len(s), End: len(s)})
}

// patches makes a Grid×Grid map that peaks over the evidence box of image
// img, or at a hashed place when it has none.
func (e *Engine) patches(p *loader.Pair, img int, seed string, masked bool) (explain.Grid, error) {
	cx, cy := 0.2+0.6*unit(seed, p.ID, img, "x"), 0.2+0.6*unit(seed, p.ID, img, "y")
	r := &p.Readings[img]
	if boxes := r.BoxesWithRole(loader.RoleEvidence); len(boxes) > 0 {
		size, err := e.imageSize(r)
		if err != nil {
			return explain.Grid{}, fmt.Errorf("fake engine: pair %s image %d: %w", p.ID, img, err)
		}
		b := boxes[0]
		cx = (float64(b.X0+b.X1) / 2) / float64(size.X)
		cy = (float64(b.Y0+b.Y1) / 2) / float64(size.Y)
		if masked {
			// A filled box loses its relevance as a model's would: the
			// peak moves to the mirrored point of the image.
			cx, cy = 1-cx, 1-cy
		}
	}
	v := make([]float32, Grid*Grid)
	for y := range Grid {
		for x := range Grid {
			dx := (float64(x)+0.5)/Grid - cx
			dy := (float64(y)+0.5)/Grid - cy
			v[y*Grid+x] = float32(math.Exp(-(dx*dx+dy*dy)/0.02) + 0.15*unit(seed, p.ID, img, x, y))
		}
	}
	return explain.NewGrid(Grid, Grid, v)
}

func (e *Engine) imageSize(r *loader.Reading) (image.Point, error) {
	if r.Pixels != nil {
		return r.Pixels.Bounds().Size(), nil
	}
	path := e.ds.ImagePath(r)
	e.mu.Lock()
	size, ok := e.sizes[path]
	e.mu.Unlock()
	if ok {
		return size, nil
	}
	size, err := loader.ReadImageSize(path)
	if err != nil {
		return image.Point{}, err
	}
	e.mu.Lock()
	e.sizes[path] = size
	e.mu.Unlock()
	return size, nil
}

// FineTune implements tui.Engine: Steps steps of StepDelay each, a loss that
// falls, an evaluation every tenth of the run.
func (e *Engine) FineTune(ctx context.Context, opt tui.FineTuneOptions, progress chan<- tui.FineTuneProgress) (tui.Engine, error) {
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("fake engine: %w", err)
	}
	e.mu.Lock()
	e.tuned = append(e.tuned, opt)
	e.mu.Unlock()
	every := max(1, opt.Steps/10)
	var last tui.FineTuneProgress
	for step := 1; step <= opt.Steps; step++ {
		if err := e.wait(ctx, e.opt.StepDelay); err != nil {
			return nil, err
		}
		frac := float64(step) / float64(opt.Steps)
		last.Step, last.Steps = step, opt.Steps
		last.Loss = 1.4*math.Exp(-3*frac) + 0.05 + 0.08*unit("loss", e.gen, step)
		if step%every == 0 || step == opt.Steps {
			last.ValStep = step
			last.ValAccuracy = 55 + 30*frac + 4*unit("val", e.gen, step)
		}
		// Throughput and time are those the step delay stands for, so that
		// runs are reproducible.
		last.Elapsed = time.Duration(step) * e.opt.StepDelay
		if s := last.Elapsed.Seconds(); s > 0 {
			last.ItemsPerSec = float64(step*2*opt.BatchPairs) / s
		}
		select {
		case progress <- last:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	next := &Engine{ds: e.ds, byID: e.byID, opt: e.opt, gen: e.gen + 1, sizes: map[string]image.Point{}, run: "last"}
	base, _, _ := strings.Cut(e.opt.Name, "+")
	next.opt.Name = fmt.Sprintf("%s+ft%d", base, next.gen)
	return next, nil
}

// RunCheckpoints implements tui.RunCheckpoints for the engines FineTune
// returns: a run has last and best.
func (e *Engine) RunCheckpoints() (string, []string) {
	if e.run == "" {
		return "", nil
	}
	return e.run, []string{"last", "best"}
}

// OpenRunCheckpoint implements tui.RunCheckpoints: best scores as another
// generation would, so that switching to it changes what the screen shows.
func (e *Engine) OpenRunCheckpoint(ctx context.Context, name string) (tui.Engine, error) {
	if e.run == "" || (name != "last" && name != "best") {
		return nil, fmt.Errorf("fake engine: no run checkpoint %q", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	next := &Engine{ds: e.ds, byID: e.byID, opt: e.opt, gen: e.gen, sizes: map[string]image.Point{}, run: name}
	base, _, _ := strings.Cut(e.opt.Name, "/")
	next.opt.Name = base
	if name == "best" {
		next.seed = 1000
		next.opt.Name = base + "/best"
	}
	return next, nil
}

// FineTunes returns the options of the fine-tunes started from the engine,
// in order.
func (e *Engine) FineTunes() []tui.FineTuneOptions {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.tuned)
}

// Metrics implements tui.Faithfulness: curves that start at the reading's
// margin and fall, faster when the most relevant patches go first for most
// readings, and token deletions that lower the margin, more for the most
// relevant tokens for most readings. It takes Delay, like Explain.
func (e *Engine) Metrics(ctx context.Context, req tui.ExplainRequest) ([]*explain.Metrics, error) {
	p, err := e.pair(req.PairID)
	if err != nil {
		return nil, err
	}
	if err := e.wait(ctx, e.opt.Delay); err != nil {
		return nil, err
	}
	n := len(p.Readings)
	logits := e.logits(req.PairID, n)
	out := make([]*explain.Metrics, n)
	for j := range n {
		margin := math.Inf(1)
		for i := range n {
			if i != j {
				margin = min(margin, logits[j][j]-logits[i][j])
			}
		}
		seed := []any{req.PairID, j, req.Method, req.StartLayer.String(), e.gen, e.seed}
		curve := func(slope float64) explain.Curve {
			c := explain.Curve{Fractions: explain.DefaultFractions}
			for k, f := range c.Fractions {
				c.Removed = append(c.Removed, int(math.Round(f*Grid*Grid)))
				c.Margins = append(c.Margins, margin-slope*f)
				if k > 0 {
					c.AUC += (f - c.Fractions[k-1]) * (c.Margins[k] + c.Margins[k-1]) / 2
				}
			}
			return c
		}
		u := unit(append([]any{"faith"}, seed...)...)
		pos, neg := 0.5+3*u, 0.3+1.5*unit(append([]any{"faith-neg"}, seed...)...)
		mt := &explain.Metrics{Margin: margin, Perturbation: &explain.Perturbation{Positive: curve(pos), Negative: curve(neg)},
			Text: &explain.TextDeletion{Margin: margin, Ks: explain.DefaultKs}}
		for _, k := range explain.DefaultKs {
			top := -(0.2 + 0.8*unit(append([]any{"top", k}, seed...)...)) * float64(k)
			bottom := -(0.1 + 0.6*unit(append([]any{"bottom", k}, seed...)...)) * float64(k)
			mt.Text.Top = append(mt.Text.Top, explain.TokenDeletion{Margin: margin + top, Delta: top})
			mt.Text.Bottom = append(mt.Text.Bottom, explain.TokenDeletion{Margin: margin + bottom, Delta: bottom})
		}
		out[j] = mt
	}
	return out, nil
}

// ScoreVariants implements tui.Counterfactual as a model would behave: a
// masked image loses logit for every text, a changed text (dropped
// constituent, plain sentence) its own hash's share, swapped images swap
// the columns, and what a variant leaves alone keeps its logit exactly.
func (e *Engine) ScoreVariants(ctx context.Context, id string, vs []tui.Variant) ([][][]float64, error) {
	if err := e.wait(ctx, e.opt.Delay); err != nil {
		return nil, err
	}
	p, err := e.pair(id)
	if err != nil {
		return nil, err
	}
	n := len(p.Readings)
	base := e.logits(id, n) // [image][text]
	out := make([][][]float64, 0, len(vs)+1)
	for v := -1; v < len(vs); v++ {
		var x tui.Variant
		if v >= 0 {
			x = vs[v]
		}
		l := make([][]float64, n)
		for t := range n {
			l[t] = make([]float64, n)
			for k := range n {
				img := k
				if x.Swap {
					img = (k + 1) % n
				}
				l[t][k] = base[img][t]
				if x.Fill != "" && slices.ContainsFunc(p.Readings[img].Boxes, func(b loader.Box) bool { return b.Role == loader.RoleEvidence }) {
					l[t][k] -= 1 + 3*unit("mask", id, x.Fill, t, img)
				}
				if x.Neutral || (x.DropLabel != "" && x.DropReading == t) {
					l[t][k] -= 2*unit("text", id, x.Neutral, x.DropLabel, x.DropStart, t, img) - 0.5
				}
			}
		}
		out = append(out, l)
	}
	return out, nil
}
