package torchengine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui"
)

// torchFixture is a dataset of synthetic pairs at CLIP's image size and a
// checkpoint folder holding a random tiny CLIP (224-pixel images in
// 32-pixel patches: a 7×7 grid) with a vocabulary learned from the pairs.
type torchFixture struct {
	ds   *loader.Dataset
	dir  string
	opts Options
}

func newTorchFixture(t *testing.T) *torchFixture {
	t.Helper()
	dev := torchtest.Device(t)
	pairs, err := synth.Generate(synth.Config{Pairs: 40, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	ds := &loader.Dataset{Pairs: pairs}
	var texts []string
	for i := range ds.Pairs {
		for _, st := range []trees.Style{trees.StylePaper, trees.StyleWords} {
			ts, err := model.ReadingTexts(&ds.Pairs[i], st)
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, ts...)
		}
	}
	tok, err := tokenizer.LearnBPE(texts, 200, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.NamedConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Text.VocabSize = tok.VocabSize()
	cfg.Text.BOSTokenID, cfg.Text.EOSTokenID, cfg.Text.PadTokenID = int(tok.BOS()), int(tok.EOS()), int(tok.EOS())
	dir := filepath.Join(t.TempDir(), "ckpt")
	w := torch.NewWorker()
	defer w.Close()
	err = w.Do(func() error {
		m, err := model.Init(cfg, model.Options{}, 7)
		if err != nil {
			return err
		}
		defer m.Close()
		return m.Save(dir)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	return &torchFixture{ds: ds, dir: dir, opts: Options{
		Checkpoint: dir, Device: dev.String(), Data: ds,
		Train: model.DatasetSplit(ds, loader.SplitTrain), Val: model.DatasetSplit(ds, loader.SplitVal),
		DataName: "synthetic", RunDir: filepath.Join(t.TempDir(), "runs"),
	}}
}

func (f *torchFixture) open(t *testing.T, o Options) *TorchEngine {
	t.Helper()
	e, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func (f *torchFixture) ids() []string {
	ids := make([]string, len(f.ds.Pairs))
	for i, p := range f.ds.Pairs {
		ids[i] = p.ID
	}
	return ids
}

// directLogits runs the engine's model on one pair by itself, texts padded
// to the full context (the engine pads to the longest text of its batch),
// and returns logits[image][text].
func directLogits(t *testing.T, e *TorchEngine, p *loader.Pair) [][]float64 {
	t.Helper()
	texts, err := model.ReadingTexts(p, e.Info().Style)
	if err != nil {
		t.Fatal(err)
	}
	n := len(p.Readings)
	encs := make([]tokenizer.Encoding, n)
	var px []float32
	for r := range n {
		encs[r] = e.tok.Encode(texts[r], tokenizer.DefaultContext)
		v, err := loader.Preprocess(p.Readings[r].Pixels, loader.DefaultPreprocessConfig())
		if err != nil {
			t.Fatal(err)
		}
		px = append(px, v...)
	}
	ids, err := e.tok.Pack(encs, tokenizer.DefaultContext)
	if err != nil {
		t.Fatal(err)
	}
	var lpi []float64
	err = e.rt.w.Do(func() error {
		s := torch.NewScope()
		defer s.Close()
		out, err := e.m.Forward(s, s.FromFloat32(px, int64(n), 3, 224, 224), s.FromInt64(ids, int64(n), tokenizer.DefaultContext), model.ForwardOptions{})
		if err != nil {
			return err
		}
		lpi, err = out.LogitsPerImage.Float64s()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, n)
	for i := range n {
		out[i] = lpi[i*n : (i+1)*n]
	}
	return out
}

// TestTorchEngineTF32: the TF32 option shows in the engine's device on
// CUDA, where it is on for the process until set off, and does nothing on
// the CPU; scores come either way.
func TestTorchEngineTF32(t *testing.T) {
	f := newTorchFixture(t)
	t.Cleanup(func() {
		w := torch.NewWorker()
		defer w.Close()
		if err := w.Do(func() error { return torch.SetAllowTF32(false) }); err != nil {
			t.Error(err)
		}
	})
	o := f.opts
	o.TF32 = true
	e := f.open(t, o)
	dev := e.Info().Device
	if strings.HasSuffix(dev, ", TF32") != strings.HasPrefix(dev, "cuda") {
		t.Errorf("device %q with TF32 asked for", dev)
	}
	if _, err := e.Score(context.Background(), f.ids()[:2]); err != nil {
		t.Fatal(err)
	}
}

func TestTorchEngineScoreMatchesForward(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	e.scoreBatch = 16 // 40 pairs: three forward passes
	info := e.Info()
	if info.Checkpoint != f.dir || info.Style != trees.StylePaper || info.Layers != 2 || !strings.HasPrefix(info.Runtime, "libtorch ") || info.Device == "" {
		t.Errorf("Info() = %+v", info)
	}
	ids := f.ids()
	scores, err := e.Score(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != len(ids) {
		t.Fatalf("%d scores for %d ids", len(scores), len(ids))
	}
	for k, s := range scores {
		if s.PairID != ids[k] {
			t.Fatalf("score %d is for %s, want %s", k, s.PairID, ids[k])
		}
		want := directLogits(t, e, &f.ds.Pairs[k])
		for i := range want {
			for j := range want {
				if d := math.Abs(s.Logits[i][j] - want[i][j]); !(d <= 1e-4*max(1, math.Abs(want[i][j]))) {
					t.Errorf("pair %s: logit[%d][%d] = %v, a direct forward gives %v", s.PairID, i, j, s.Logits[i][j], want[i][j])
				}
			}
		}
		for j := range s.Picks {
			sum := 0.0
			for i := range s.Probs {
				sum += s.Probs[i][j]
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Errorf("pair %s reading %d: probabilities sum to %v", s.PairID, j, sum)
			}
		}
	}
	if _, err := e.Score(context.Background(), []string{"no-such-pair"}); err == nil || !strings.Contains(err.Error(), "no-such-pair") {
		t.Errorf("tui.Score of an unknown id: %v, want an error naming it", err)
	}
}

// TestTorchEngineTextInputTies: with text input both readings of a pair
// read the same sentence, so each image scores them exactly alike and
// every reading ties (the paper's text baseline cannot tell them apart).
func TestTorchEngineTextInputTies(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	e.info.Style = trees.StyleWords
	scores, err := e.Score(context.Background(), f.ids()[:8])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scores {
		for i := range s.Logits {
			// Exact by construction: identical texts share one row of the logits.
			if s.Logits[i][0] != s.Logits[i][1] {
				t.Errorf("pair %s: image %d scores the identical texts %v and %v", s.PairID, i, s.Logits[i][0], s.Logits[i][1])
			}
		}
	}
}

func TestTorchEngineExplain(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	p := &f.ds.Pairs[0]
	type tc struct {
		method tui.Method
		layer  string
		target tui.Target
	}
	var cases []tc
	for _, m := range explain.Methods {
		for _, tg := range tui.Targets {
			cases = append(cases, tc{m, "last", tg})
		}
	}
	cases = append(cases, tc{explain.Chefer, "all", tui.TargetOwn}, tc{explain.Chefer, "1", tui.TargetOwn})
	for _, c := range cases {
		t.Run(string(c.method)+"/"+c.layer+"/"+c.target.String(), func(t *testing.T) {
			req := tui.ExplainRequest{PairID: p.ID, Method: c.method, StartLayer: mustStartLayer(t, c.layer), Target: c.target}
			exp, err := e.Explain(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if exp.Checkpoint != e.Info().Checkpoint || exp.Request != req || exp.Elapsed <= 0 {
				t.Errorf("checkpoint %q, request %+v, elapsed %v", exp.Checkpoint, exp.Request, exp.Elapsed)
			}
			if len(exp.Readings) != len(p.Readings) {
				t.Fatalf("%d readings, want %d", len(exp.Readings), len(p.Readings))
			}
			for j, rr := range exp.Readings {
				tree, err := trees.Parse(p.Readings[j].Tree)
				if err != nil {
					t.Fatal(err)
				}
				if want := trees.Linearize(tree, e.Info().Style).Text; rr.Text != want {
					t.Fatalf("reading %d: text %q, want the linearization %q", j, rr.Text, want)
				}
				checkTiling(t, j, rr)
				img := j
				if c.target == tui.TargetTwin {
					img = 1 - j
				}
				if rr.Image != img {
					t.Errorf("reading %d: patches over image %d, want %d", j, rr.Image, img)
				}
				if want := c.target.Cells(j, len(p.Readings)); len(rr.Cells) != len(want) || rr.Cells[0] != want[0] {
					t.Errorf("reading %d: cells %v, want %v", j, rr.Cells, want)
				}
				g := rr.Patches
				if g.W != 7 || g.H != 7 || len(g.V) != 49 {
					t.Fatalf("reading %d: patch grid %d×%d with %d values, want 7×7", j, g.W, g.H, len(g.V))
				}
				var some bool
				for _, v := range g.V {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("reading %d: patch relevance %v", j, v)
					}
					some = some || v != 0
				}
				for _, tok := range rr.Tokens {
					if math.IsNaN(tok.Relevance) || math.IsInf(tok.Relevance, 0) {
						t.Fatalf("reading %d: token %q relevance %v", j, tok.Text, tok.Relevance)
					}
				}
				if !some {
					t.Errorf("reading %d: every patch has relevance 0", j)
				}
			}
		})
	}
	if _, err := e.Explain(context.Background(), tui.ExplainRequest{PairID: p.ID, Method: explain.Chefer, StartLayer: 9}); err == nil {
		t.Error("start layer 9 of a 2-layer model gave no error")
	}
}

// TestTorchEngineExplainStatic runs every kind of request through the
// engine's cache of static explainers (here without CUDA graphs, the same
// path on the CPU) and compares each with the explainer run op by op:
// more kinds than the cache holds, and targets that need two passes, which
// fall back.
func TestTorchEngineExplainStatic(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	p := &f.ds.Pairs[0]
	var reqs []tui.ExplainRequest
	for _, m := range explain.Methods {
		for _, tg := range tui.Targets {
			reqs = append(reqs, tui.ExplainRequest{PairID: p.ID, Method: m, StartLayer: explain.LastLayer, Target: tg})
		}
	}
	want := make([]*tui.Explanation, len(reqs))
	for i, req := range reqs {
		exp, err := e.Explain(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = exp
	}
	e.statics.close() // on a GPU the engine captured graphs above: the references
	e.statics = staticCache{on: true}
	for round := range 2 {
		for i, req := range reqs {
			got, err := e.Explain(context.Background(), req)
			if err != nil {
				t.Fatalf("%+v: %v", req, err)
			}
			for j := range got.Readings {
				g, w := got.Readings[j], want[i].Readings[j]
				if g.Image != w.Image || len(g.Tokens) != len(w.Tokens) || len(g.Patches.V) != len(w.Patches.V) {
					t.Fatalf("round %d %+v reading %d: image %d, %d tokens, %d patches; want %d, %d, %d", round, req, j, g.Image, len(g.Tokens), len(g.Patches.V), w.Image, len(w.Tokens), len(w.Patches.V))
				}
				for k := range g.Tokens {
					if d := math.Abs(g.Tokens[k].Relevance - w.Tokens[k].Relevance); d > 1e-4*max(1, math.Abs(w.Tokens[k].Relevance)) {
						t.Errorf("round %d %+v reading %d token %d: %g, want %g", round, req, j, k, g.Tokens[k].Relevance, w.Tokens[k].Relevance)
						break
					}
				}
				for k := range g.Patches.V {
					if d := math.Abs(float64(g.Patches.V[k] - w.Patches.V[k])); d > 1e-4*max(1, math.Abs(float64(w.Patches.V[k]))) {
						t.Errorf("round %d %+v reading %d patch %d: %g, want %g", round, req, j, k, g.Patches.V[k], w.Patches.V[k])
						break
					}
				}
			}
		}
	}
	if n := len(e.statics.entries); n != maxStatics {
		t.Errorf("%d static explainers kept, want the cap %d", n, maxStatics)
	}
	n := len(p.Readings)
	if !e.statics.failed[staticKey{images: n, texts: n, layout: "[0 1] [0 1]", method: explain.Chefer, start: explain.LastLayer, textStart: explain.LastLayer, target: tui.TargetAll}] {
		t.Error("the all-images target, which takes two passes, is not marked as falling back")
	}
}

// checkTiling checks that a reading's tokens run from the start marker to
// the end marker and cover its text in order, leaving out only spaces.
func checkTiling(t *testing.T, j int, rr tui.ReadingRelevance) {
	t.Helper()
	toks := rr.Tokens
	if len(toks) < 3 {
		t.Fatalf("reading %d: %d tokens", j, len(toks))
	}
	first, last := toks[0], toks[len(toks)-1]
	if first.Start != 0 || first.End != 0 || last.Start != len(rr.Text) || last.End != len(rr.Text) {
		t.Errorf("reading %d: markers at [%d,%d) and [%d,%d), want empty ranges at 0 and %d", j, first.Start, first.End, last.Start, last.End, len(rr.Text))
	}
	at := 0
	for k, tok := range toks[1 : len(toks)-1] {
		if tok.Start >= tok.End {
			t.Fatalf("reading %d token %d %q: empty range [%d,%d)", j, k+1, tok.Text, tok.Start, tok.End)
		}
		if gap := rr.Text[at:tok.Start]; strings.Trim(gap, " ") != "" {
			t.Fatalf("reading %d token %d %q: text %q before it is not covered", j, k+1, tok.Text, gap)
		}
		if !strings.EqualFold(tok.Text, rr.Text[tok.Start:tok.End]) {
			t.Errorf("reading %d token %d: %q spans %q", j, k+1, tok.Text, rr.Text[tok.Start:tok.End])
		}
		at = tok.End
	}
	if at != len(rr.Text) {
		t.Errorf("reading %d: tokens end at byte %d of %d", j, at, len(rr.Text))
	}
}

func TestTorchEngineFineTune(t *testing.T) {
	f := newTorchFixture(t)
	live := torch.LiveTensors()
	e, err := Open(context.Background(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	ids := f.ids()[:10]
	before, err := e.Score(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}

	progress := make(chan tui.FineTuneProgress, 64)
	var reports []tui.FineTuneProgress
	got := make(chan struct{})
	go func() {
		defer close(got)
		for p := range progress {
			reports = append(reports, p)
		}
	}()
	// The old engine answers while the run goes on.
	scored := make(chan error, 1)
	go func() {
		_, err := e.Score(context.Background(), ids)
		scored <- err
	}()
	next, err := e.FineTune(context.Background(), tui.FineTuneOptions{Steps: 3, LR: 1e-3, BatchPairs: 2, Input: "tree"}, progress)
	close(progress)
	<-got
	if err != nil {
		t.Fatal(err)
	}
	if err := <-scored; err != nil {
		t.Errorf("tui.Score during the fine-tune: %v", err)
	}
	if len(reports) != 3 {
		t.Fatalf("%d progress reports, want 3: %+v", len(reports), reports)
	}
	for k, r := range reports {
		if r.Step != k+1 || r.Steps != 3 || math.IsNaN(r.Loss) || r.Loss <= 0 || r.ItemsPerSec <= 0 || r.Elapsed <= 0 {
			t.Errorf("report %d: %+v", k, r)
		}
	}
	if last := reports[2]; last.ValStep != 3 || last.ValAccuracy < 0 || last.ValAccuracy > 100 {
		t.Errorf("last report: val step %d, accuracy %v; want an evaluation at step 3", last.ValStep, last.ValAccuracy)
	}

	ck := next.Info().Checkpoint
	if ck == e.Info().Checkpoint || next.Info().Style != trees.StylePaper {
		t.Errorf("fine-tuned engine: %+v", next.Info())
	}
	for _, name := range []string{"config.json", "model.safetensors", "vocab.json", "merges.txt", "preprocessor_config.json", "trainer_state.json"} {
		if _, err := os.Stat(filepath.Join(ck, name)); err != nil {
			t.Errorf("the fine-tuned checkpoint lacks %s: %v", name, err)
		}
	}
	after, err := next.Score(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.Score(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for k := range ids {
		for i := range before[k].Logits {
			for j := range before[k].Logits[i] {
				// Exact: the same engine runs the same kernels on the same shapes.
				if again[k].Logits[i][j] != before[k].Logits[i][j] {
					t.Fatalf("pair %s: the old engine's logits changed with the fine-tune", ids[k])
				}
				changed = changed || after[k].Logits[i][j] != before[k].Logits[i][j]
			}
		}
	}
	if !changed {
		t.Error("the fine-tuned engine scores every pair as the old one did")
	}
	if _, err := next.Explain(context.Background(), tui.ExplainRequest{PairID: ids[0], Method: explain.Chefer, StartLayer: explain.LastLayer}); err != nil {
		t.Errorf("Explain on the fine-tuned engine: %v", err)
	}

	// The saved checkpoint opens again as it was.
	o := f.opts
	o.Checkpoint = ck
	reopened, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	re, err := reopened.Score(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for k := range ids {
		for i := range re[k].Logits {
			for j := range re[k].Logits[i] {
				// Exact: float32 weights round-trip exactly, and the kernels and shapes are the same in one process.
				if re[k].Logits[i][j] != after[k].Logits[i][j] {
					t.Fatalf("pair %s: reopened %s scores %v, the fine-tuned engine %v", ids[k], ck, re[k].Logits, after[k].Logits)
				}
			}
		}
	}

	// The run's best/ opens beside its last/ (an evaluation at step 3
	// saved it), on the same worker.
	rc, ok := next.(tui.RunCheckpoints)
	if !ok {
		t.Fatal("the fine-tuned engine offers no run checkpoints")
	}
	own, names := rc.RunCheckpoints()
	if own != "last" || !slices.Contains(names, "best") || !slices.Contains(names, "last") {
		t.Fatalf("run checkpoints: own %q of %v", own, names)
	}
	if _, own := e.RunCheckpoints(); own != nil {
		t.Errorf("the engine the command opened offers run checkpoints %v", own)
	}
	best, err := rc.OpenRunCheckpoint(context.Background(), "best")
	if err != nil {
		t.Fatal(err)
	}
	if ck := best.Info().Checkpoint; filepath.Base(ck) != "best" {
		t.Errorf("best's checkpoint is %s", ck)
	}
	if _, err := best.Score(context.Background(), ids[:2]); err != nil {
		t.Errorf("Score on best: %v", err)
	}
	if _, err := rc.OpenRunCheckpoint(context.Background(), "../../etc"); err == nil {
		t.Error("a checkpoint name outside best and last opened")
	}

	// Engines close in any order; the worker stops with the last.
	for _, c := range []tui.Engine{e, reopened, best, next} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := torch.LiveTensors(); n != live {
		t.Errorf("%d tensors alive after closing every engine, %d before opening", n, live)
	}
}

func TestTorchEngineFineTuneText(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	progress := make(chan tui.FineTuneProgress, 64)
	next, err := e.FineTune(context.Background(), tui.FineTuneOptions{Steps: 1, LR: 1e-4, BatchPairs: 1, Input: "text", FreezeVision: true}, progress)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if st := next.Info().Style; st != trees.StyleWords {
		t.Errorf("text fine-tune reads style %v, want words", st)
	}
	o := f.opts
	o.Checkpoint = next.Info().Checkpoint
	reopened := f.open(t, o)
	if st := reopened.Info().Style; st != trees.StyleWords {
		t.Errorf("the text fine-tune's checkpoint reopens with style %v, want words", st)
	}
}

func TestTorchEngineCancel(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	id := f.ds.Pairs[0].ID
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Score(done, []string{id}); !errors.Is(err, context.Canceled) {
		t.Errorf("tui.Score with a cancelled context: %v", err)
	}
	if _, err := e.Explain(done, tui.ExplainRequest{PairID: id, Method: explain.Chefer}); !errors.Is(err, context.Canceled) {
		t.Errorf("Explain with a cancelled context: %v", err)
	}
	if _, err := Open(done, f.opts); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a cancelled context: %v", err)
	}

	// A call waiting behind a long one on the worker gives up when its
	// context ends.
	busy := make(chan struct{})
	release := make(chan struct{})
	go e.rt.w.Do(func() error { close(busy); <-release; return nil })
	<-busy
	ctx, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := e.Explain(ctx, tui.ExplainRequest{PairID: id, Method: explain.Chefer})
	stop()
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Explain behind a busy worker: %v, want the deadline", err)
	}

	// A fine-tune cancelled after its first step leaves nothing behind.
	ctx, stop = context.WithCancel(context.Background())
	defer stop()
	progress := make(chan tui.FineTuneProgress, 64)
	go func() {
		<-progress
		stop()
	}()
	next, err := e.FineTune(ctx, tui.FineTuneOptions{Steps: 500, LR: 1e-5, BatchPairs: 1, Input: "tree"}, progress)
	if !errors.Is(err, context.Canceled) || next != nil {
		t.Errorf("cancelled FineTune returned %v, %v; want context.Canceled and no engine", next, err)
	}
	if entries, _ := os.ReadDir(f.opts.RunDir); len(entries) != 0 {
		t.Errorf("a cancelled run left %v in %s", entries, f.opts.RunDir)
	}
	if _, err := e.Score(context.Background(), []string{id}); err != nil {
		t.Errorf("tui.Score after a cancelled fine-tune: %v", err)
	}
}

func TestOpenTorchErrors(t *testing.T) {
	f := newTorchFixture(t)
	for _, c := range []struct {
		name, checkpoint, want string
	}{
		{"missing folder", filepath.Join(t.TempDir(), "nothing"), "nothing"},
		{"no tokenizer", "../../testdata/hf-clip-tiny/checkpoint", "vocab.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := f.opts
			o.Checkpoint = c.checkpoint
			e, err := Open(context.Background(), o)
			if err == nil {
				e.Close()
				t.Fatalf("Open(%s) opened", c.checkpoint)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open(%s): %v; want it to mention %q", c.checkpoint, err, c.want)
			}
		})
	}
}

// demoEngine opens the embedded demo model over the demo's test split.
func demoEngine(b testing.TB) (*TorchEngine, []string) {
	b.Helper()
	torchtest.Require(b)
	pairs, err := synth.Generate(synth.Config{Pairs: 1000, Seed: 1, Split: loader.SplitTest})
	if err != nil {
		b.Fatal(err)
	}
	ds := &loader.Dataset{Pairs: pairs}
	ids := make([]string, len(pairs))
	for i, p := range pairs {
		ids[i] = p.ID
	}
	e, err := Open(context.Background(), Options{Checkpoint: "demo", Device: torchtest.Device(b).String(), Data: ds})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e, ids
}

// scoreChunk is how many pairs the explorer asks Score for at once (tui's
// scoreChunk).
const scoreChunk = 32

// BenchmarkTorchEngineStartup is what the explorer waits for between its
// first frame and a scored list: opening the demo model and scoring the
// 100 pairs of its test split, images preprocessed from scratch.
func BenchmarkTorchEngineStartup(b *testing.B) {
	_, ids := demoEngine(b)
	o := Options{Checkpoint: "demo", Device: torchtest.Device(b).String()}
	pairs, _ := synth.Generate(synth.Config{Pairs: 1000, Seed: 1, Split: loader.SplitTest})
	o.Data = &loader.Dataset{Pairs: pairs}
	for b.Loop() {
		e, err := Open(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		for lo := 0; lo < len(ids); lo += scoreChunk {
			if _, err := e.Score(context.Background(), ids[lo:min(lo+scoreChunk, len(ids))]); err != nil {
				b.Fatal(err)
			}
		}
		e.Close()
	}
}

// BenchmarkTorchEngineExplain is the latency of one pair's explanation
// (both readings) with the demo model, images already preprocessed.
func BenchmarkTorchEngineExplain(b *testing.B) {
	e, ids := demoEngine(b)
	for _, m := range explain.Methods {
		for _, layer := range []explain.StartLayer{explain.LastLayer, explain.AllLayers} {
			for _, tg := range []tui.Target{tui.TargetOwn, tui.TargetAll} {
				req := tui.ExplainRequest{PairID: ids[0], Method: m, StartLayer: layer, Target: tg}
				b.Run(string(m)+"/"+layer.String()+"/"+tg.String(), func(b *testing.B) {
					for b.Loop() {
						if _, err := e.Explain(context.Background(), req); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// TestTorchEngineCloseWaitsForFineTune: the explorer cancels a running
// fine-tune and closes its engines as it quits; Close returns once the run
// has stopped and removed its folder, so nothing is left behind.
func TestTorchEngineCloseWaitsForFineTune(t *testing.T) {
	f := newTorchFixture(t)
	e, err := Open(context.Background(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := make(chan tui.FineTuneProgress, 64)
	ended := make(chan error, 1)
	go func() {
		_, err := e.FineTune(ctx, tui.FineTuneOptions{Steps: 500, LR: 1e-5, BatchPairs: 1, Input: "tree"}, progress)
		ended <- err
	}()
	<-progress
	cancel()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(f.opts.RunDir); len(entries) != 0 {
		t.Errorf("Close returned while the cancelled run's folder %v remained", entries)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("FineTune: %v, want context.Canceled", err)
	}
	if _, err := e.FineTune(context.Background(), tui.FineTuneOptions{Steps: 1, LR: 1e-5, BatchPairs: 1, Input: "tree"}, progress); !errors.Is(err, errEngineClosed) {
		t.Errorf("FineTune on a closed engine: %v", err)
	}
}

// TestTorchEngineStartLayerText: the engine's StartLayerText gives the text
// encoder its own start layer: the image keeps the request's (last), the
// text gets all layers, as a request for all layers gives it.
func TestTorchEngineStartLayerText(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	o := f.opts
	all := explain.AllLayers
	o.StartLayerText = &all
	et := f.open(t, o)
	p := &f.ds.Pairs[0]
	explainWith := func(e *TorchEngine, layer explain.StartLayer) *tui.Explanation {
		exp, err := e.Explain(context.Background(), tui.ExplainRequest{PairID: p.ID, Method: explain.Chefer, StartLayer: layer, Target: tui.TargetOwn})
		if err != nil {
			t.Fatal(err)
		}
		return exp
	}
	last, everyLayer, mixed := explainWith(e, explain.LastLayer), explainWith(e, explain.AllLayers), explainWith(et, explain.LastLayer)
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*max(1, math.Abs(b)) }
	differ := false
	for j := range mixed.Readings {
		m := mixed.Readings[j]
		for k := range m.Patches.V {
			if !near(float64(m.Patches.V[k]), float64(last.Readings[j].Patches.V[k])) {
				t.Fatalf("reading %d patch %d: %g, the last layer's %g", j, k, m.Patches.V[k], last.Readings[j].Patches.V[k])
			}
		}
		for k := range m.Tokens {
			if !near(m.Tokens[k].Relevance, everyLayer.Readings[j].Tokens[k].Relevance) {
				t.Fatalf("reading %d token %d: %g, all layers' %g", j, k, m.Tokens[k].Relevance, everyLayer.Readings[j].Tokens[k].Relevance)
			}
			differ = differ || !near(m.Tokens[k].Relevance, last.Readings[j].Tokens[k].Relevance)
		}
	}
	if !differ {
		t.Error("the text's relevance of all layers equals the last layer's: the test cannot tell them apart")
	}
}

// mustStartLayer parses a start layer the test names.
func mustStartLayer(t *testing.T, s string) explain.StartLayer {
	t.Helper()
	l, err := explain.ParseStartLayer(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestTorchEngineScoreTrees: reading A's tree edited to reading B's gets
// reading B's logits. In the explorer's request (the original trees, then
// the edited ones) the two share one row of one forward pass, so they are
// equal to the bit. Against Score, the batch has the same shape (two
// texts, two images) and the same inputs, so the same kernels run; the
// comparison still allows 1e-5 relative, as a thread pool of another size
// could sum in another order.
func TestTorchEngineScoreTrees(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	ctx := context.Background()
	for _, p := range f.ds.Pairs[:3] {
		a, b := p.Readings[0].Tree, p.Readings[1].Tree
		got, err := e.ScoreTrees(ctx, p.ID, []string{a, b, b, b})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 4 || len(got[0]) != 2 {
			t.Fatalf("pair %s: %d×%d logits, want 4×2", p.ID, len(got), len(got[0]))
		}
		if !slices.Equal(got[2], got[1]) {
			t.Errorf("pair %s: edited reading A %v, reading B %v in the same batch", p.ID, got[2], got[1])
		}
		s, err := e.Score(ctx, []string{p.ID})
		if err != nil {
			t.Fatal(err)
		}
		for tr := range 2 {
			for k := range 2 {
				want := s[0].Logits[k][tr]
				if d := math.Abs(got[tr][k] - want); !(d <= 1e-5*max(1, math.Abs(want))) {
					t.Errorf("pair %s: tree %d image %d: ScoreTrees %v, Score %v", p.ID, tr, k, got[tr][k], want)
				}
			}
		}
	}
	p := f.ds.Pairs[0]
	if _, err := e.ScoreTrees(ctx, p.ID, []string{p.Readings[0].Tree, "(S (NP"}); err == nil || !strings.Contains(err.Error(), "tree 2") {
		t.Errorf("a tree that does not parse: %v, want an error naming tree 2", err)
	}
	if _, err := e.ScoreTrees(ctx, "no-such-pair", []string{p.Readings[0].Tree}); err == nil || !strings.Contains(err.Error(), "no-such-pair") {
		t.Errorf("an unknown pair: %v", err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.ScoreTrees(done, p.ID, []string{p.Readings[0].Tree}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled request: %v", err)
	}
}

// TestTorchEngineExplainEdited: a request's Trees are explained in place
// of the pair's, as the explorer's edited pairs are.
func TestTorchEngineExplainEdited(t *testing.T) {
	f := newTorchFixture(t)
	e := f.open(t, f.opts)
	p := f.ds.Pairs[0]
	b := p.Readings[1].Tree
	req := tui.ExplainRequest{PairID: p.ID, Method: explain.Chefer, StartLayer: explain.LastLayer, Target: tui.TargetOwn, Trees: b + "\n" + b}
	got, err := e.Explain(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := trees.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := trees.Linearize(tb, e.Info().Style).Text
	for j, rr := range got.Readings {
		if rr.Text != want || rr.Report == nil {
			t.Errorf("reading %d explains %q, want reading B's %q", j, rr.Text, want)
		}
	}
	req.Trees = b
	if _, err := e.Explain(context.Background(), req); err == nil {
		t.Error("one tree for two readings explained")
	}
}

// TestTorchEngineExplainManyMatchesExplain: the sweep's batched
// explanations are the single ones, on the demo model, for every method and
// target. The batch pads its texts to its longest and multiplies larger
// matrices, so BLAS sums in another order: each value is compared within
// 1e-5 of the largest magnitude of its map (float32 carries about 7 digits;
// relevance maps are sums over layers of products of such values).
func TestTorchEngineExplainManyMatchesExplain(t *testing.T) {
	e, ids := demoEngine(t)
	ids = ids[:5]
	const tol = 1e-5
	close := func(what string, got, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
		}
		scale := 0.0
		for _, v := range want {
			scale = max(scale, math.Abs(v))
		}
		for k := range got {
			if d := math.Abs(got[k] - want[k]); d > tol*scale {
				t.Fatalf("%s[%d]: %g, single %g (off by %.2g of the map's %g)", what, k, got[k], want[k], d/scale, scale)
			}
		}
	}
	for _, m := range explain.Methods {
		for _, tg := range []tui.Target{tui.TargetOwn, tui.TargetTwin, tui.TargetAll} {
			var reqs []tui.ExplainRequest
			for _, id := range ids {
				reqs = append(reqs, tui.ExplainRequest{PairID: id, Method: m, StartLayer: explain.AllLayers, Target: tg})
			}
			many, err := e.ExplainMany(context.Background(), reqs)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range reqs {
				one, err := e.Explain(context.Background(), r)
				if err != nil {
					t.Fatal(err)
				}
				got := many[i]
				if got.Request != r || len(got.Readings) != len(one.Readings) {
					t.Fatalf("%s %v: result %d answers %+v with %d readings", m, tg, i, got.Request, len(got.Readings))
				}
				for j, rr := range one.Readings {
					g := got.Readings[j]
					what := fmt.Sprintf("%s %v pair %s reading %d", m, tg, r.PairID, j)
					if g.Text != rr.Text || g.Image != rr.Image || !slices.Equal(g.Cells, rr.Cells) || len(g.Tokens) != len(rr.Tokens) {
						t.Fatalf("%s: laid out differently", what)
					}
					var gt, wt []float64
					for k := range rr.Tokens {
						gt, wt = append(gt, g.Tokens[k].Relevance), append(wt, rr.Tokens[k].Relevance)
					}
					close(what+" tokens", gt, wt)
					close(what+" patches", f64s(g.Patches.V), f64s(rr.Patches.V))
				}
			}
		}
	}
	// Requests that do not share their settings are answered one by one.
	mixed := []tui.ExplainRequest{{PairID: ids[0], Method: explain.Chefer}, {PairID: ids[1], Method: explain.Rollout}}
	got, err := e.ExplainMany(context.Background(), mixed)
	if err != nil || len(got) != 2 || got[1].Request.Method != explain.Rollout {
		t.Fatalf("mixed settings: %v, %v", got, err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.ExplainMany(done, mixed[:1]); !errors.Is(err, context.Canceled) {
		t.Errorf("ExplainMany with a cancelled context: %v", err)
	}
}

// BenchmarkTorchEngineExplainMany is the sweep's cost per pair when it
// hands the demo model chunks of 1, 2, 4, 8 and 16 pairs (Chefer, all
// layers, own target): what tui's sweepBudget is weighed against.
func BenchmarkTorchEngineExplainMany(b *testing.B) {
	e, ids := demoEngine(b)
	for _, n := range []int{1, 2, 4, 8, 16} {
		reqs := make([]tui.ExplainRequest, n)
		for i := range reqs {
			reqs[i] = tui.ExplainRequest{PairID: ids[i], Method: explain.Chefer, StartLayer: explain.AllLayers, Target: tui.TargetOwn}
		}
		b.Run(fmt.Sprintf("pairs-%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := e.ExplainMany(context.Background(), reqs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*n), "ms/pair")
		})
	}
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
