// Package torchengine is the explorer's [tui.Engine] over a CLIP model run by
// libtorch: it scores and explains pairs
// and fine-tunes with model.Train. The explorer never imports it; the
// command opens an engine and hands it to tui as a tui.Engine.
package torchengine

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pipeline"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui"
)

// Options say what Open opens.
type Options struct {
	// Checkpoint is "demo" (the embedded demo model), a Hugging Face CLIP
	// folder, a model id in the Hugging Face cache, or a torch.save file.
	Checkpoint string
	// Base holds a torch.save checkpoint's config.json and tokenizer (see
	// model.Locate).
	Base string
	// Device is auto, cpu, cuda or cuda:N; empty means auto.
	Device string
	// TorchLib is the path of the libtorch shim; empty searches where
	// torch.Load searches.
	TorchLib string
	// Threads caps libtorch's CPU threads; 0 leaves libtorch's default.
	Threads int
	// NoGraphs keeps explanations and fine-tuning steps op by op even
	// where CUDA graphs could replay them.
	NoGraphs bool
	// StartLayerText is the text encoder's start layer of Chefer's rule
	// for every explanation; nil: the request's StartLayer, as for the
	// image.
	StartLayerText *explain.StartLayer
	// TF32 lets matrix products on a CUDA device run in TF32
	// (torch.SetAllowTF32, for the whole process): faster, with logits and
	// relevance about 1e-3 from float32. No effect on the CPU.
	TF32 bool
	// Data holds the pairs that Score and Explain are asked about, by ID.
	Data *loader.Dataset
	// Train is the split FineTune trains on and Val the one it evaluates
	// on now and then; Val may be nil. Without Train, FineTune fails.
	Train, Val model.Split
	// DataName says where the data came from (a manifest or demo), for the
	// record a fine-tune run keeps.
	DataName string
	// RunDir is the folder fine-tune runs are written under; empty means
	// lavascope/finetune in the user's cache folder (or the temporary
	// folder where there is none).
	RunDir string
}

// TorchEngine is the tui.Engine over a CLIP model run by libtorch. Every torch
// call of the engine, and of the engines its fine-tunes return, runs on one
// torch.Worker, which serialises them; a call waiting for the worker still
// returns as soon as its context is done.
type TorchEngine struct {
	rt   *torchRuntime
	info tui.EngineInfo
	// loc is the checkpoint the weights came from.
	loc model.Location
	// run is the fine-tune run folder of an engine a fine-tune returned
	// (or one opened from that run), "" otherwise.
	run  string
	tok  *tokenizer.Tokenizer
	prep loader.PreprocessConfig
	// prepKey tells pixel-cache entries of different preprocessing apart.
	prepKey     string
	textContext int
	imageSize   int
	opt         Options
	byID        map[string]*loader.Pair
	scoreBatch  int

	// m and closed belong to the worker: only functions that run on it
	// read or write them.
	m       *model.CLIP
	closed  bool
	statics staticCache

	// runs counts the fine-tunes started from the engine, which Close
	// waits for: a run cancelled at quit still removes its folder.
	mu        sync.Mutex
	closing   bool
	runs      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// scoreBatchPairs is how many pairs one forward pass of Score takes.
const scoreBatchPairs = 32

// pixelCacheBytes bounds the preprocessed images kept between calls:
// about 440 images of 224×224.
const pixelCacheBytes = 256 << 20

var errEngineClosed = errors.New("the engine is closed")

// torchRuntime is what an engine shares with the engines its fine-tunes
// return: the worker, the device and the preprocessed images. The last
// engine to close stops the worker.
type torchRuntime struct {
	w      *torch.Worker
	dev    torch.Device
	pixels *pixelCache

	mu   sync.Mutex
	refs int
}

func (rt *torchRuntime) acquire() {
	rt.mu.Lock()
	rt.refs++
	rt.mu.Unlock()
}

func (rt *torchRuntime) release() {
	rt.mu.Lock()
	rt.refs--
	last := rt.refs == 0
	rt.mu.Unlock()
	if last {
		rt.w.Close()
	}
}

// do runs f on the worker. It returns ctx.Err() as soon as ctx is done,
// even while f still waits behind other calls (a fine-tune step, say); f
// is then skipped when its turn comes.
func (rt *torchRuntime) do(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		done <- rt.w.Do(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return f()
		})
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doWait runs f on the worker unless ctx is done by its turn, and waits
// for it: for calls that make something the caller must free.
func (rt *torchRuntime) doWait(ctx context.Context, f func() error) error {
	return rt.w.Do(func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return f()
	})
}

// Open loads libtorch and the checkpoint and returns an engine over
// the pairs of o.Data. A missing shim gives torch.Load's error, which
// names the command that builds it.
func Open(ctx context.Context, o Options) (*TorchEngine, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.Data == nil {
		return nil, errors.New("open engine: no dataset")
	}
	if err := torch.Load(o.TorchLib); err != nil {
		var le *torch.LoadError
		if errors.As(err, &le) {
			// The explorer shows the first line of this in its status bar:
			// the remedy goes first, the places searched after.
			return nil, fmt.Errorf("no libtorch shim: build it with `make torch` or point %s at it: %w", torch.EnvLib, err)
		}
		return nil, err
	}
	name := o.Checkpoint
	if name == "" {
		name = demo.Name
	}
	loc, err := demo.Locate(name, o.Base)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	style, err := checkpointStyle(loc.Dir)
	if err != nil {
		return nil, err
	}
	rt := &torchRuntime{w: torch.NewWorker(), pixels: newPixelCache(pixelCacheBytes), refs: 1}
	devLabel := ""
	err = rt.w.Do(func() error {
		if o.Threads > 0 {
			if err := torch.SetNumThreads(o.Threads); err != nil {
				return err
			}
		}
		// The same resolution as the CLI's: auto falls back to the CPU, and
		// the status bar says so instead of the CLI's notice.
		dev, notice, err := model.ResolveDevice(o.Device)
		if err != nil {
			return err
		}
		rt.dev, devLabel = dev, dev.String()
		if notice != "" {
			devLabel = "cpu (auto: no CUDA)"
		}
		if o.TF32 && dev.IsCUDA() {
			devLabel += ", TF32"
			return torch.SetAllowTF32(true)
		}
		return nil
	})
	if err != nil {
		rt.release()
		return nil, err
	}
	e, err := newTorchEngine(ctx, rt, o, name, loc, style, nil)
	if err != nil {
		rt.release()
		return nil, err
	}
	e.info.Device = devLabel
	return e, nil
}

// newTorchEngine makes an engine over the checkpoint at loc, loading its
// weights unless m holds them already. On error it frees m but leaves rt's
// reference to the caller.
func newTorchEngine(ctx context.Context, rt *torchRuntime, o Options, name string, loc model.Location, style trees.Style, m *model.CLIP) (*TorchEngine, error) {
	e := &TorchEngine{rt: rt, loc: loc, opt: o, scoreBatch: scoreBatchPairs, m: m, statics: newStaticCache(rt.dev, !o.NoGraphs)}
	fail := func(err error) (*TorchEngine, error) {
		if e.m != nil {
			_ = rt.w.Do(e.m.Close)
		}
		return nil, err
	}
	var err error
	if e.tok, err = model.CheckpointTokenizer(loc.Dir); err != nil {
		return fail(fmt.Errorf("checkpoint %s: %w", name, err))
	}
	if e.m == nil {
		err := rt.doWait(ctx, func() (err error) {
			e.m, err = model.LoadLocation(loc, model.Options{Device: rt.dev})
			return err
		})
		if err != nil {
			return fail(fmt.Errorf("checkpoint %s: %w", name, err))
		}
	}
	cfg := e.m.Config()
	if e.prep, err = model.PreprocessFor(e.m); err != nil {
		return fail(fmt.Errorf("checkpoint %s: %w", name, err))
	}
	e.prepKey = fmt.Sprintf("%+v", e.prep)
	e.textContext = cfg.Text.MaxPositionEmbeddings
	e.imageSize = cfg.Vision.ImageSize
	e.byID = make(map[string]*loader.Pair, len(o.Data.Pairs))
	for i := range o.Data.Pairs {
		e.byID[o.Data.Pairs[i].ID] = &o.Data.Pairs[i]
	}
	e.info = tui.EngineInfo{
		Checkpoint: name,
		Device:     rt.dev.String(),
		Runtime:    "libtorch " + torch.Version(),
		Style:      style,
		Layers:     min(cfg.Text.NumHiddenLayers, cfg.Vision.NumHiddenLayers),
		Preprocess: &e.prep,
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	return e, nil
}

// checkpointStyle is the linearization the checkpoint in dir was trained
// to read, as lavascope's trainer records it in trainer_state.json; the
// paper's for checkpoints without that record (or with another tool's
// trainer_state.json).
func checkpointStyle(dir string) (trees.Style, error) {
	st, err := model.ReadTrainState(dir)
	if err != nil {
		return trees.StylePaper, nil
	}
	style, err := trees.ParseStyle(st.Args.Style)
	if err != nil {
		style = trees.StylePaper
	}
	style, err = model.InputStyle(st.Args.Input, style)
	if err != nil {
		return 0, fmt.Errorf("%s: trainer_state.json: %w", dir, err)
	}
	return style, nil
}

// Info implements tui.Engine.
func (e *TorchEngine) Info() tui.EngineInfo { return e.info }

// Close implements Engine: it waits for the fine-tunes started from the
// engine to end (cancel them first), frees the weights and, with the last
// engine of the worker, stops the worker.
func (e *TorchEngine) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closing = true
		e.mu.Unlock()
		e.runs.Wait()
		e.closeErr = e.rt.w.Do(func() error {
			if e.closed {
				return nil
			}
			e.closed = true
			e.statics.close()
			return e.m.Close()
		})
		e.rt.release()
	})
	return e.closeErr
}

func (e *TorchEngine) pair(id string) (*loader.Pair, error) {
	p, ok := e.byID[id]
	if !ok {
		return nil, fmt.Errorf("no pair %q in the dataset", id)
	}
	if len(p.Readings) < 2 {
		return nil, fmt.Errorf("pair %s has %d readings, want at least 2", id, len(p.Readings))
	}
	return p, nil
}

// pixels returns the preprocessed image of reading r of p, from the cache
// when it was made before.
func (e *TorchEngine) pixels(p *loader.Pair, r int) ([]float32, error) {
	rd := &p.Readings[r]
	key := e.prepKey + "\x00" + e.opt.Data.ImagePath(rd)
	if px, ok := e.rt.pixels.get(key); ok {
		return px, nil
	}
	img, err := e.opt.Data.Image(rd)
	if err != nil {
		return nil, fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, r, rd.Image, err)
	}
	px, err := loader.Preprocess(img, e.prep)
	if err != nil {
		return nil, fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, r, rd.Image, err)
	}
	if want := 3 * e.imageSize * e.imageSize; len(px) != want {
		return nil, fmt.Errorf("pair %s: readings[%d].image %s: preprocessing gives %d values, the model takes 3×%d×%d", p.ID, r, rd.Image, len(px), e.imageSize, e.imageSize)
	}
	e.rt.pixels.put(key, px)
	return px, nil
}

// Score implements tui.Engine. Each forward pass takes up to 32 pairs, laid
// out by model.Inputs as evaluation lays them out: every distinct image of
// the batch against every distinct text, of which each pair reads its own
// cells.
func (e *TorchEngine) Score(ctx context.Context, ids []string) ([]tui.Score, error) {
	out := make([]tui.Score, 0, len(ids))
	for lo := 0; lo < len(ids); lo += e.scoreBatch {
		s, err := e.scoreBatchOf(ctx, ids[lo:min(lo+e.scoreBatch, len(ids))])
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

func (e *TorchEngine) scoreBatchOf(ctx context.Context, ids []string) ([]tui.Score, error) {
	type placed struct {
		id         string
		rows, cols []int
	}
	in := model.NewInputs(e.tok, e.textContext, e.pixels)
	pairs := make([]placed, len(ids))
	for k, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := e.pair(id)
		if err != nil {
			return nil, err
		}
		texts, err := model.ReadingTexts(p, e.info.Style)
		if err != nil {
			return nil, err
		}
		pl := placed{id: id}
		for r := range p.Readings {
			col, err := in.Image(p, r)
			if err != nil {
				return nil, err
			}
			pl.rows = append(pl.rows, in.Text(texts[r]))
			pl.cols = append(pl.cols, col)
		}
		pairs[k] = pl
	}
	lpt, err := e.logits(ctx, in)
	if err != nil {
		return nil, err
	}
	out := make([]tui.Score, len(pairs))
	for k, pl := range pairs {
		n := len(pl.rows)
		logits := make([][]float64, n)
		for i := range n {
			logits[i] = make([]float64, n)
			for j := range n {
				logits[i][j] = float64(lpt[pl.rows[j]*in.Images()+pl.cols[i]])
			}
		}
		if out[k], err = tui.NewScore(pl.id, logits); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// logits packs in and runs it through the model in one forward pass on
// the worker: row t of the result is text t against every image.
func (e *TorchEngine) logits(ctx context.Context, in *model.Inputs) ([]float32, error) {
	if err := in.Pack(); err != nil {
		return nil, err
	}
	var lpt []float32
	err := e.rt.do(ctx, func() (err error) {
		if e.closed {
			return errEngineClosed
		}
		lpt, err = in.Logits(e.m)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("score: %w", err)
	}
	return lpt, nil
}

// ScoreTrees implements tui.Prober: the trees and the pair's images go
// through the model in one forward pass laid out by model.Inputs, as Score
// and model.Probe lay theirs out.
func (e *TorchEngine) ScoreTrees(ctx context.Context, id string, ts []string) ([][]float64, error) {
	p, err := e.pair(id)
	if err != nil {
		return nil, err
	}
	in := model.NewInputs(e.tok, e.textContext, e.pixels)
	cols := make([]int, len(p.Readings))
	for r := range p.Readings {
		if cols[r], err = in.Image(p, r); err != nil {
			return nil, err
		}
	}
	rows := make([]int, len(ts))
	for i, src := range ts {
		t, err := trees.Parse(src)
		if err != nil {
			return nil, fmt.Errorf("pair %s: tree %d: %w", id, i+1, err)
		}
		rows[i] = in.Text(trees.Linearize(t, e.info.Style).Text)
	}
	lpt, err := e.logits(ctx, in)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(ts))
	for i, row := range rows {
		out[i] = make([]float64, len(cols))
		for k, col := range cols {
			out[i][k] = float64(lpt[row*in.Images()+col])
		}
	}
	return out, nil
}

// Explain implements tui.Engine with explain.Explain: one forward with the
// attention captured and, for the gradient methods, one backward per round
// of targets that share no image or text. On a GPU with CUDA graphs, the
// targets that fit one round are explained by a graph captured for that
// kind of request (explain.Static), replayed pair after pair.
func (e *TorchEngine) Explain(ctx context.Context, req tui.ExplainRequest) (*tui.Explanation, error) {
	out, err := e.explain(ctx, []tui.ExplainRequest{req})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// ExplainMany implements tui.BatchExplainer: the requests' pairs go through
// explain.Explain together, laid out by model.Inputs as `lavascope explain
// --batch-pairs` lays out its chunks, when they share a method, start layer
// and target; otherwise, and where CUDA graphs replay single pairs, one by
// one.
func (e *TorchEngine) ExplainMany(ctx context.Context, reqs []tui.ExplainRequest) ([]*tui.Explanation, error) {
	same := true
	for _, r := range reqs[min(1, len(reqs)):] {
		same = same && r.Method == reqs[0].Method && r.StartLayer == reqs[0].StartLayer && r.Target == reqs[0].Target
	}
	if same && !e.statics.on {
		return e.explain(ctx, reqs)
	}
	out := make([]*tui.Explanation, len(reqs))
	for i, r := range reqs {
		var err error
		if out[i], err = e.Explain(ctx, r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// placed is one request of a batch: its pair, the texts the encoder reads,
// and where its texts (rows) and images (cols) lie in the batch.
type placed struct {
	req        tui.ExplainRequest
	p          *loader.Pair
	texts      []string
	rows, cols []int
	// images[j] is the image whose patches are shown beside reading j.
	images []int
	// shown[k] is the pair's image in column k: k's own, or its twin's
	// under a swap.
	shown []int
}

// explain explains reqs, which share a method, start layer and target, in
// one call of explain.Explain (or one graph replay for a single request).
func (e *TorchEngine) explain(ctx context.Context, reqs []tui.ExplainRequest) ([]*tui.Explanation, error) {
	began := time.Now()
	if len(reqs) == 0 {
		return nil, nil
	}
	req := reqs[0]
	method, start, textStart, err := e.method(req)
	if err != nil {
		return nil, err
	}
	if req.Target < tui.TargetOwn || req.Target > tui.TargetAll {
		return nil, fmt.Errorf("unknown target %v", req.Target)
	}
	in := model.NewInputs(e.tok, e.textContext, e.pixels)
	batch := make([]placed, len(reqs))
	var targets []explain.Target
	for i, r := range reqs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pl, err := e.place(in, r)
		if err != nil {
			return nil, err
		}
		batch[i] = pl
		for j := range pl.rows {
			var t explain.Target
			for _, c := range r.Target.Cells(j, len(pl.rows)) {
				t = append(t, explain.Cell{Image: pl.cols[c[0]], Text: pl.rows[c[1]]})
			}
			targets = append(targets, t)
		}
	}
	if err := in.Pack(); err != nil {
		return nil, err
	}
	// A graph is captured for one layout of the batch: texts that read
	// alike (text input) share a row.
	layout := fmt.Sprint(batch[0].rows, batch[0].cols)
	prepared := time.Since(began)
	var (
		res  []explain.Result
		work time.Duration
	)
	err = e.rt.do(ctx, func() error {
		if e.closed {
			return errEngineClosed
		}
		t0 := time.Now()
		defer func() { work = time.Since(t0) }()
		s := torch.NewScope()
		defer s.Close()
		size := int64(e.imageSize)
		px := s.FromFloat32(in.Pixels(), int64(in.Images()), 3, size, size).ToDevice(e.rt.dev)
		tx := s.FromInt64(in.IDs(), int64(in.Texts()), int64(in.Width())).ToDevice(e.rt.dev)
		if e.statics.on && len(batch) == 1 {
			key := staticKey{images: in.Images(), texts: in.Texts(), layout: layout, method: method, start: start, textStart: textStart, target: req.Target}
			if st := e.statics.get(e.m, key, e.textContext, targets); st != nil {
				var err error
				res, err = st.Explain(px, tx)
				return err
			}
		}
		var err error
		// A cancelled call stops between the forward pass, the backward
		// pass and the relevance rule, so that the worker is free for the
		// next call within one stage.
		res, err = explain.Explain(e.m, px, tx, targets, explain.Options{Method: method, Start: start, TextStart: &textStart, Interrupt: ctx.Err})
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if len(batch) == 1 {
			return nil, fmt.Errorf("explain pair %s: %w", batch[0].p.ID, err)
		}
		return nil, fmt.Errorf("explain pairs %s to %s: %w", batch[0].p.ID, batch[len(batch)-1].p.ID, err)
	}
	settings := report.Settings{Checkpoint: e.info.Checkpoint, Method: method, Start: start, Target: req.Target}
	if e.opt.StartLayerText != nil {
		settings.TextStart = &textStart
	}
	out := make([]*tui.Explanation, len(batch))
	share := (prepared + work) / time.Duration(len(batch))
	for i := range batch {
		n := len(batch[i].rows)
		if out[i], err = e.explanation(in, &batch[i], res[:n], settings); err != nil {
			return nil, err
		}
		out[i].Elapsed = share
		res = res[n:]
	}
	return out, nil
}

// place adds r's pair to in.
func (e *TorchEngine) place(in *model.Inputs, r tui.ExplainRequest) (placed, error) {
	p, err := e.pair(r.PairID)
	if err != nil {
		return placed{}, err
	}
	if p, err = r.Edited(p); err != nil {
		return placed{}, err
	}
	pl := placed{req: r, p: p}
	if pl.texts, err = model.ReadingTexts(p, e.info.Style); err != nil {
		return placed{}, err
	}
	// The pair goes in through model.AddVariants, which lays out a
	// counterfactual as the rescoring does (ScoreVariants): with no
	// variant, its texts and images as they are.
	var vs []model.Variant
	if r.Variant != (tui.Variant{}) {
		mv, err := e.variant(p, r.Variant)
		if err != nil {
			return placed{}, fmt.Errorf("pair %s: %w", p.ID, err)
		}
		vs = []model.Variant{mv}
		if mv.Neutral {
			if pl.texts, err = model.ReadingTexts(p, trees.StyleWords); err != nil {
				return placed{}, err
			}
		}
	}
	l, err := model.AddVariants(in, p, e.variantSource(), vs)
	if err != nil {
		return placed{}, err
	}
	pl.rows, pl.cols = l.Place(len(vs))
	n := len(p.Readings)
	pl.images, pl.shown = make([]int, n), make([]int, n)
	for j := range n {
		// The patch map shown beside reading j is that of the image its
		// target scores it against: its own, except for twin.
		pl.images[j] = j
		if r.Target == tui.TargetTwin {
			pl.images[j] = (j + 1) % n
		}
		pl.shown[j] = j
		if r.Variant.Swap {
			pl.shown[j] = (j + 1) % n
		}
	}
	return pl, nil
}

// explanation builds pl's Explanation from res, its readings' results.
func (e *TorchEngine) explanation(in *model.Inputs, pl *placed, res []explain.Result, settings report.Settings) (*tui.Explanation, error) {
	p, n := pl.p, len(pl.rows)
	out := &tui.Explanation{Request: pl.req, Checkpoint: e.info.Checkpoint, Readings: make([]tui.ReadingRelevance, n)}
	for j := range n {
		tr, im := res[j].Text(pl.rows[j]), res[j].Image(pl.cols[pl.images[j]])
		if tr == nil || im == nil {
			return nil, fmt.Errorf("explain pair %s: no relevance for reading %d", p.ID, j)
		}
		enc := in.Encoding(pl.rows[j])
		toks := make([]tui.Token, len(enc.IDs))
		for k, id := range enc.IDs {
			off := enc.Offsets[k]
			toks[k] = tui.Token{Text: e.tokenText(id), Start: off[0], End: off[1], Relevance: float64(tr.Raw[k])}
		}
		grid, err := explain.NewGrid(im.Grid, im.Grid, im.Raw)
		if err != nil {
			return nil, fmt.Errorf("explain pair %s reading %d: %w", p.ID, j, err)
		}
		cells := pl.req.Target.Cells(j, n)
		// The logits are left to the explorer, which scored the pair
		// already: a forward pass per explanation would only repeat them.
		x := pipeline.Explained{Pair: p, J: j, Text: pl.texts[j], Enc: enc, Row: pl.rows[j], Cols: pl.cols, Cells: cells, Result: &res[j]}
		rr := tui.ReadingRelevance{Text: pl.texts[j], Tokens: toks, Image: pl.shown[pl.images[j]], Cells: cells, Patches: grid}
		rep, err := x.Report(e.tok, settings, e.info.Style)
		switch {
		case err == nil:
			rr.Report = &rep
		case pl.req.Variant == (tui.Variant{}):
			return nil, fmt.Errorf("explain: %w", err)
		}
		// A counterfactual's report may not tie to its tree (a dropped
		// phrase, the plain sentence): its heatmaps are still shown.
		out.Readings[j] = rr
	}
	return out, nil
}

// method is req's method and its start layers, the text's as the engine
// was opened with.
func (e *TorchEngine) method(req tui.ExplainRequest) (method explain.Method, start, textStart explain.StartLayer, err error) {
	if method, err = explain.ParseMethod(string(req.Method)); err != nil {
		return
	}
	start, textStart = req.StartLayer, req.StartLayer
	if e.opt.StartLayerText != nil {
		textStart = *e.opt.StartLayerText
	}
	return
}

// inputs lays out the pair req names (edited by its trees) alone for one
// forward pass: rows[j] is the batch row of reading j's text, cols[j] the
// column of its image.
func (e *TorchEngine) inputs(req tui.ExplainRequest) (p *loader.Pair, texts []string, in *model.Inputs, rows, cols []int, err error) {
	in = model.NewInputs(e.tok, e.textContext, e.pixels)
	pl, err := e.place(in, req)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	if err = in.Pack(); err != nil {
		return nil, nil, nil, nil, nil, err
	}
	return pl.p, pl.texts, in, pl.rows, pl.cols, nil
}

// tokenText is how a token is shown: its text as decoded (")))" rather
// than the vocabulary's ")))</w>"), or the marker's name.
func (e *TorchEngine) tokenText(id int32) string {
	if id == e.tok.BOS() || id == e.tok.EOS() {
		return e.tok.Token(id)
	}
	return e.tok.Decode([]int32{id})
}

// FineTune implements tui.Engine with model.Train on a copy of the weights,
// loaded again from the checkpoint folder. The run is written to a folder
// of its own under Options.RunDir (log.jsonl, best/ and last/, both
// Hugging Face checkpoints); the engine returned runs the final weights,
// last/, and is named by that folder's path, so that `--checkpoint` can
// open it again.
func (e *TorchEngine) FineTune(ctx context.Context, opt tui.FineTuneOptions, progress chan<- tui.FineTuneProgress) (tui.Engine, error) {
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	if e.opt.Train == nil || e.opt.Train.Len() == 0 {
		return nil, errors.New("fine-tune: the dataset has no train split")
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return nil, fmt.Errorf("fine-tune: %w", errEngineClosed)
	}
	e.runs.Add(1)
	e.mu.Unlock()
	defer e.runs.Done()
	style := e.info.Style
	if style == trees.StyleWords {
		style = trees.StylePaper
	}
	to := model.DefaultTrainOptions()
	to.Input, to.Style = opt.Input, style
	newStyle, err := model.InputStyle(opt.Input, style)
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	to.BatchPairs, to.Steps = opt.BatchPairs, opt.Steps
	if opt.FreezeVision {
		to.Freeze = model.FreezeVision
	}
	to.AdamW.LR = opt.LR
	// The default warmup (50 of 1000 steps) scaled to the run.
	to.Warmup = opt.Steps / 20
	to.Data = e.opt.DataName
	to.Command = "lavascope explore (fine-tune panel, from " + e.info.Checkpoint + ")"
	to.Worker = e.rt.w
	// Where the GPU and the shim can, every full batch replays one CUDA
	// graph; the cuda_graphs setting turns that off with the explanations'.
	to.Graphs = !e.opt.NoGraphs && model.GraphsUsable(e.rt.dev, to.AdamW.Impl) == nil
	prec, err := model.ParsePrecision(cmp.Or(opt.Precision, string(model.PrecisionFP32)))
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	if prec.Mixed() {
		// The graphed step is captured without autocast (model.Train
		// refuses the two together).
		to.Precision, to.Graphs = prec, false
	}
	// TF32 is a switch of the whole process: on for the run (explanations
	// computed meanwhile use it too), then back to the engine's setting.
	if tf32 := prec == model.PrecisionTF32 && e.rt.dev.IsCUDA(); tf32 && !e.opt.TF32 {
		if err := e.rt.doWait(ctx, func() error { return torch.SetAllowTF32(true) }); err != nil {
			return nil, fmt.Errorf("fine-tune: %w", err)
		}
		defer e.rt.w.Do(func() error { return torch.SetAllowTF32(false) })
	}

	e.rt.acquire()
	handedOver := false
	defer func() {
		if !handedOver {
			e.rt.release()
		}
	}()
	run, err := e.newRunDir()
	if err != nil {
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	to.Out = run
	var m *model.CLIP
	err = e.rt.doWait(ctx, func() (err error) {
		m, err = model.LoadLocation(e.loc, model.Options{Device: e.rt.dev})
		return err
	})
	fail := func(err error) (tui.Engine, error) {
		if m != nil {
			_ = e.rt.w.Do(m.Close)
		}
		os.RemoveAll(run)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("fine-tune: %w", err)
	}
	if err != nil {
		return fail(err)
	}

	reports := make(chan model.Progress)
	to.Progress = reports
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		for p := range reports {
			fp := tui.FineTuneProgress{Step: p.Step, Steps: p.Steps, Loss: p.Loss, ValStep: p.ValStep,
				ValAccuracy: p.ValAccuracy, ItemsPerSec: p.ItemsPerSec, Elapsed: p.Elapsed}
			select {
			case progress <- fp:
			case <-ctx.Done():
			}
		}
	}()
	_, err = model.Train(ctx, m, e.tok, e.opt.Train, e.opt.Val, to)
	close(reports)
	<-forwarded
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fail(err)
	}
	last := filepath.Join(run, model.LastDir)
	// The run is complete, so nothing can resume it: its optimizer state
	// (twice the weights) would only take disk space.
	if err := os.Remove(filepath.Join(last, "optimizer.safetensors")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	m.Source = last
	next, err := newTorchEngine(context.Background(), e.rt, e.opt, last, model.Location{Dir: last}, newStyle, m)
	m = nil // next holds it, or newTorchEngine freed it
	if err != nil {
		return fail(err)
	}
	next.info.Device = e.info.Device
	next.run = run
	handedOver = true
	if err := ctx.Err(); err != nil {
		// Cancelled just as the run completed: its folder stays (it can be
		// opened with --checkpoint), but nobody is left to take the engine.
		next.Close()
		return nil, err
	}
	return next, nil
}

// RunCheckpoints implements tui.RunCheckpoints for the engines of a
// fine-tune run: its last/ and, where validation saved one, best/.
func (e *TorchEngine) RunCheckpoints() (string, []string) {
	if e.run == "" {
		return "", nil
	}
	own := filepath.Base(e.loc.Dir)
	var all []string
	for _, d := range []string{model.LastDir, model.BestDir} {
		if fi, err := os.Stat(filepath.Join(e.run, d)); err == nil && fi.IsDir() {
			all = append(all, d)
		}
	}
	return own, all
}

// OpenRunCheckpoint implements tui.RunCheckpoints: it loads the run's
// checkpoint name on the engine's worker, as the fine-tune loads last/.
func (e *TorchEngine) OpenRunCheckpoint(ctx context.Context, name string) (tui.Engine, error) {
	if e.run == "" || (name != model.LastDir && name != model.BestDir) {
		return nil, fmt.Errorf("open run checkpoint %q: not a checkpoint of a fine-tune run", name)
	}
	dir := filepath.Join(e.run, name)
	e.rt.acquire()
	next, err := newTorchEngine(ctx, e.rt, e.opt, dir, model.Location{Dir: dir}, e.info.Style, nil)
	if err != nil {
		e.rt.release()
		return nil, fmt.Errorf("open run checkpoint %s: %w", dir, err)
	}
	next.info.Device = e.info.Device
	next.run = e.run
	return next, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// newRunDir makes an empty folder for a fine-tune run, named after the
// checkpoint it starts from and the time.
func (e *TorchEngine) newRunDir() (string, error) {
	root := e.opt.RunDir
	if root == "" {
		base, err := os.UserCacheDir()
		if err != nil || base == "" {
			base = os.TempDir()
		}
		root = filepath.Join(base, "lavascope", "finetune")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	from := e.info.Checkpoint
	if filepath.Base(from) == model.LastDir {
		from = filepath.Dir(from)
	}
	from = strings.Trim(unsafeName.ReplaceAllString(filepath.Base(from), "-"), "-.")
	if from == "" {
		from = "clip"
	}
	return os.MkdirTemp(root, from+"-"+time.Now().Format("20060102-150405")+"-")
}

// pixelCache keeps preprocessed images, the least recently used leaving
// first once they pass the budget in bytes. It is safe for concurrent use.
type pixelCache struct {
	mu     sync.Mutex
	budget int
	size   int
	order  *list.List // of *pixelEntry, most recent first
	items  map[string]*list.Element
}

type pixelEntry struct {
	key string
	px  []float32
}

func newPixelCache(budget int) *pixelCache {
	return &pixelCache{budget: budget, order: list.New(), items: map[string]*list.Element{}}
}

func (c *pixelCache) get(key string) ([]float32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*pixelEntry).px, true
}

func (c *pixelCache) put(key string, px []float32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.order.PushFront(&pixelEntry{key, px})
	c.size += 4 * len(px)
	for c.size > c.budget && c.order.Len() > 1 {
		old := c.order.Remove(c.order.Back()).(*pixelEntry)
		delete(c.items, old.key)
		c.size -= 4 * len(old.px)
	}
}

var (
	_ tui.RunCheckpoints = (*TorchEngine)(nil)
	_ tui.BatchExplainer = (*TorchEngine)(nil)
)
