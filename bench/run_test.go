package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// onTiny runs f on a tiny model on dev, from a torch worker, and checks
// that no tensor f made outlives it.
func onTiny(t *testing.T, dev torch.Device, f func(m *model.CLIP) error) {
	t.Helper()
	onWorker(t, func() error {
		m, _, err := OpenModel("tiny", model.Options{Device: dev}, 1)
		if err != nil {
			return err
		}
		defer m.Close()
		before := torch.LiveTensors()
		if err := f(m); err != nil {
			return err
		}
		if after := torch.LiveTensors(); after != before {
			t.Errorf("live tensors %d before, %d after", before, after)
		}
		return nil
	})
}

// onWorker runs f on a torch worker and fails the test with its error.
func onWorker(t *testing.T, f func() error) {
	t.Helper()
	w := torch.NewWorker()
	defer w.Close()
	if err := w.Do(f); err != nil {
		t.Fatal(err)
	}
}

// TestRunTiny runs every row once on a tiny model and checks the records,
// that the training rows leave the parameters frozen, and that no tensor
// outlives the run.
func TestRunTiny(t *testing.T) {
	dev := torchtest.Device(t)
	onTiny(t, dev, func(m *model.CLIP) error {
		o := DefaultOptions()
		o.Warmup, o.Repeat = 1, 2
		o.Base.Config = "tiny"
		var seen []string
		o.Progress = func(r Record) { seen = append(seen, r.Work) }
		works := slices.Concat(ExplainWork(2), ScoreWork(), TrainWork([]int{1, 2}))
		recs, err := Run(m, works, o)
		if err != nil {
			return err
		}
		want := []string{"explain-last", "explain-all", "explain-batch", "score", "train-2", "train-4"}
		if !slices.Equal(seen, want) {
			t.Errorf("progress saw %v, want %v", seen, want)
		}
		for i, r := range recs {
			w := works[i]
			if r.Work != w.ID || r.Impl != "lavascope" || r.Config != "tiny" || r.Items != w.Items() || r.Repeat != 2 || r.Warmup != 1 {
				t.Errorf("record %d: %+v does not describe row %+v", i, r, w)
			}
			if !(r.MinMS > 0 && r.MinMS <= r.MedianMS && r.MedianMS <= r.MaxMS && r.ItemsPerS > 0) {
				t.Errorf("%s: times min %g median %g max %g, %g items/s", r.Work, r.MinMS, r.MedianMS, r.MaxMS, r.ItemsPerS)
			}
			if r.Device != dev.String() || r.DType != "f32" || r.TreeTokens != DefaultTreeTokens {
				t.Errorf("%s: device %s dtype %s tokens %d", r.Work, r.Device, r.DType, r.TreeTokens)
			}
			wantLen := DefaultTreeTokens + 2
			if w.Kind == Explain {
				wantLen = 77
			}
			if r.TextLen != wantLen {
				t.Errorf("%s: text length %d, want %d", r.Work, r.TextLen, wantLen)
			}
			if (r.PeakMemBytes != nil) != (dev.IsCUDA() && torch.CUDACompiled()) {
				t.Errorf("%s: peak memory %v on %s", r.Work, r.PeakMemBytes, dev)
			}
			if r.BindingCalls == nil {
				t.Errorf("%s: no binding call count", r.Work)
			} else {
				t.Logf("%s: %d binding calls", r.Work, *r.BindingCalls)
			}
		}
		for _, p := range m.Params() {
			if p.Tensor.RequiresGrad() {
				t.Errorf("%s still requires grad after training", p.Name)
				break
			}
		}
		return nil
	})
}

func TestRunErrors(t *testing.T) {
	dev := torchtest.Device(t)
	onTiny(t, dev, func(m *model.CLIP) error {
		for _, c := range []struct {
			name  string
			works []Work
			edit  func(*Options)
		}{
			{"no repeat", ScoreWork(), func(o *Options) { o.Repeat = 0 }},
			{"negative warm-up", ScoreWork(), func(o *Options) { o.Warmup = -1 }},
			{"too many tokens", ScoreWork(), func(o *Options) { o.TreeTokens = 76 }},
			{"no pairs", TrainWork([]int{0}), func(*Options) {}},
			{"negative profile", ScoreWork(), func(o *Options) { o.Profile = -1 }},
			{"trace without profile", ScoreWork(), func(o *Options) { o.TraceDir = t.TempDir() }},
		} {
			o := DefaultOptions()
			c.edit(&o)
			if _, err := Run(m, c.works, o); err == nil {
				t.Errorf("%s: no error", c.name)
			}
		}
		return nil
	})
}

func TestOpenModel(t *testing.T) {
	torchtest.Require(t)
	onWorker(t, func() error {
		// A folder with a config.json and no weights: random init, noticed.
		dir := t.TempDir()
		cfg, err := model.NamedConfig("tiny")
		if err != nil {
			return err
		}
		m, err := model.Init(cfg, model.Options{}, 1)
		if err != nil {
			return err
		}
		if err := m.Save(dir); err != nil {
			return err
		}
		m.Close()
		loaded, notice, err := OpenModel(dir, model.Options{}, 1)
		if err != nil {
			return err
		}
		loaded.Close()
		if notice != "" {
			t.Errorf("a checkpoint with weights gave the notice %q", notice)
		}
		bare := t.TempDir()
		data, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(bare, "config.json"), data, 0o644); err != nil {
			return err
		}
		fresh, notice, err := OpenModel(bare, model.Options{}, 1)
		if err != nil {
			return err
		}
		fresh.Close()
		if notice == "" {
			t.Errorf("a folder without weights gave no notice")
		}
		if _, _, err := OpenModel(t.TempDir(), model.Options{}, 1); err == nil {
			t.Errorf("an empty folder: no error")
		}
		return nil
	})
}

// TestAccuracy: a model against itself differs by nothing; in bf16 it
// differs, a little.
func TestAccuracy(t *testing.T) {
	dev := torchtest.Device(t)
	onWorker(t, func() error {
		ref, _, err := OpenModel("tiny", model.Options{Device: dev}, 3)
		if err != nil {
			return err
		}
		defer ref.Close()
		same, _, err := OpenModel("tiny", model.Options{Device: dev}, 3)
		if err != nil {
			return err
		}
		defer same.Close()
		low, _, err := OpenModel("tiny", model.Options{Device: dev, DType: torch.BFloat16}, 3)
		if err != nil {
			return err
		}
		defer low.Close()
		got, err := Accuracy(ref, same, DefaultTreeTokens, 1)
		if err != nil {
			return err
		}
		if !strings.Contains(got, "logits max |Δ| 0 ") || !strings.Contains(got, "image 0, text 0") {
			t.Errorf("f32 against itself: %q", got)
		}
		got, err = Accuracy(ref, low, DefaultTreeTokens, 1)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(got, "bf16 vs f32") || strings.Contains(got, "logits max |Δ| 0 ") {
			t.Errorf("bf16: %q", got)
		}
		return nil
	})
}

// TestAccuracyOptions: TF32 only changes CUDA products, so on the CPU the
// statement says the model equals itself; the replays CUDA graphs would
// capture (run without graphs where CUDA has none) give the results op by
// op gives, within float32 rounding.
func TestAccuracyOptions(t *testing.T) {
	dev := torchtest.Device(t)
	graph := torch.CUDAGraphsUsable(dev) == nil
	onTiny(t, dev, func(m *model.CLIP) error {
		defer torch.SetAllowTF32(false)
		got, err := AccuracyOptions(m, true, false, DefaultTreeTokens, 1)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(got, "f32 with TF32 vs f32 on one pair: logits max |Δ| ") {
			t.Errorf("statement %q", got)
		}
		if !dev.IsCUDA() && (!strings.Contains(got, "logits max |Δ| 0 ") || !strings.Contains(got, "image 0, text 0")) {
			t.Errorf("TF32 on the CPU changed the results: %q", got)
		}
		if _, err := AccuracyOptions(m, false, true, DefaultTreeTokens, 1); (err == nil) != graph {
			t.Errorf("AccuracyOptions with graphs on %s: %v", dev, err)
		}
		if err := torch.SetAllowTF32(false); err != nil {
			return err
		}
		got, err = accuracyOptions(m, false, true, graph, DefaultTreeTokens, 1)
		if err != nil {
			return err
		}
		var logits, img, txt float64
		if _, err := fmt.Sscanf(got[strings.Index(got, "logits max"):], "logits max |Δ| %g", &logits); err != nil {
			t.Fatalf("statement %q: %v", got, err)
		}
		if _, err := fmt.Sscanf(got[strings.Index(got, "relevance max"):], "relevance max |Δ| image %g, text %g", &img, &txt); err != nil {
			t.Fatalf("statement %q: %v", got, err)
		}
		if !strings.HasPrefix(got, "f32 from CUDA graphs vs f32") || logits > 1e-5 || img > 1e-4 || txt > 1e-4 {
			t.Errorf("replays against op by op: %q", got)
		}
		t.Log(got)
		return nil
	})
}

// TestRunGraphs runs every row from CUDA graphs, where
// the device and the shim have them, and checks that the graphs leave no
// tensor behind.
func TestRunGraphs(t *testing.T) {
	dev := torchtest.Device(t)
	if err := torch.CUDAGraphsUsable(dev); err != nil {
		t.Skip(err)
	}
	onTiny(t, dev, func(m *model.CLIP) error {
		o := DefaultOptions()
		o.Warmup, o.Repeat, o.Graphs = 1, 3, true
		recs, err := Run(m, slices.Concat(ExplainWork(2), ScoreWork(), TrainWork([]int{1})), o)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !strings.Contains(r.Options, "CUDA graph") {
				t.Errorf("%s: options %q do not say CUDA graph", r.Work, r.Options)
			}
			t.Logf("%s: %.3f ms, %d binding calls", r.Work, r.MedianMS, *r.BindingCalls)
		}
		return nil
	})
}

// TestAccuracyMixed: bf16 autocast changes the results, by about bf16's
// rounding, and is off again afterwards.
func TestAccuracyMixed(t *testing.T) {
	dev := torchtest.Device(t)
	onTiny(t, dev, func(m *model.CLIP) error {
		if err := model.PrecisionBF16Mixed.Usable(dev, torch.Float32); err != nil {
			t.Skipf("no bf16 autocast here: %v", err)
		}
		got, err := AccuracyMixed(m, DefaultTreeTokens, 1)
		if err != nil {
			return err
		}
		var logits, top, img, txt float64
		if _, err := fmt.Sscanf(got, "bf16-mixed vs f32 on one pair: logits max |Δ| %g (largest |logit| %g); relevance max |Δ| image %g, text %g", &logits, &top, &img, &txt); err != nil {
			t.Fatalf("statement %q: %v", got, err)
		}
		t.Log(got)
		// Relevance is normalised to [0, 1]; 0.1 is far above bf16's
		// rounding through two layers and far below a wrong map.
		if logits == 0 || logits > 0.05*top || img > 0.1 || txt > 0.1 {
			t.Errorf("statement %q: want a non-zero difference within bf16's rounding", got)
		}
		s := torch.NewScope()
		defer s.Close()
		a := s.Randn([]int64{2, 2}, torch.Options{Device: dev})
		if dt := a.Matmul(a).DType(); dt != torch.Float32 {
			t.Errorf("autocast left on: a product came out %s", dt)
		}
		return nil
	})
}
