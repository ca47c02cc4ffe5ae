package demo

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
)

func TestCheckpointExtracts(t *testing.T) {
	cache := t.TempDir()
	cacheFn = func() (string, error) { return cache, nil }
	defer func() { cacheFn = os.UserCacheDir }()
	dir, err := extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "vocab.json", "merges.txt", "preprocessor_config.json", "trainer_state.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	// A second extraction reuses the complete folder; a damaged one is
	// not used.
	again, err := extract()
	if err != nil || again != dir {
		t.Errorf("second extraction: %s, %v; want %s", again, err, dir)
	}
	if err := os.Truncate(filepath.Join(dir, "model.safetensors"), 10); err != nil {
		t.Fatal(err)
	}
	if complete(dir) {
		t.Error("a truncated copy counts as complete")
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Text.VocabSize != tok.VocabSize() || cfg.Text.EOSTokenID != int(tok.EOS()) {
		t.Errorf("vocabulary %d ids, eos %d; the config says %d and %d", tok.VocabSize(), tok.EOS(), cfg.Text.VocabSize, cfg.Text.EOSTokenID)
	}
	if g := cfg.Vision.ImageSize / cfg.Vision.PatchSize; cfg.Vision.ImageSize != 224 || g != 7 {
		t.Errorf("images %d px in a %d×%d grid, want 224 px and 7×7", cfg.Vision.ImageSize, g, g)
	}
	st, err := model.ReadTrainState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Args.Input != model.InputTree || st.Data.Source != Name || st.Command == "" {
		t.Errorf("the embedded model's recipe: input %s, data %q, command %q", st.Args.Input, st.Data.Source, st.Command)
	}
}

func TestSplits(t *testing.T) {
	pairs, err := synth.Generate(synth.Demo())
	if err != nil {
		t.Fatal(err)
	}
	test, err := Split(loader.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 101 || test.Len() != len(pairs) {
		t.Fatalf("%d test pairs in memory, %d in the split; want 101", len(pairs), test.Len())
	}
	for _, i := range []int{0, 50, 100} {
		p, err := test.Pair(i)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != pairs[i].ID || p.Readings[0].Tree != pairs[i].Readings[0].Tree {
			t.Errorf("test pair %d: %s, in memory %s", i, p.ID, pairs[i].ID)
		}
	}
	ids := map[string]string{}
	for _, name := range loader.Splits {
		s, err := Split(name)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{loader.SplitTrain: TrainPairs * 8 / 10, loader.SplitVal: 101, loader.SplitTest: 101}[name]
		if s.Len() != want {
			t.Errorf("%s: %d pairs, want %d", name, s.Len(), want)
		}
		for _, i := range []int{0, s.Len() - 1} {
			p, err := s.Pair(i)
			if err != nil {
				t.Fatal(err)
			}
			if p.Split != name {
				t.Errorf("%s pair %s is in split %s", name, p.ID, p.Split)
			}
			if other, ok := ids[p.ID]; ok {
				t.Errorf("pair %s in %s and %s", p.ID, other, name)
			}
			ids[p.ID] = name
			img, err := s.Image(&p.Readings[0])
			if err != nil || img.Bounds().Dx() != synth.DefaultSize {
				t.Errorf("%s pair %s: image %v, %v", name, p.ID, img.Bounds(), err)
			}
		}
	}
	if _, err := Split("dev"); err == nil {
		t.Error("split dev: no error")
	}
}

// loadDemo loads the embedded demo model on the test device, on a worker
// that the benchmark's cleanup closes.
func loadDemo(b *testing.B) (*torch.Worker, *model.CLIP, *tokenizer.Tokenizer) {
	dev := torchtest.Device(b)
	dir, err := Checkpoint()
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	w := torch.NewWorker()
	b.Cleanup(w.Close)
	var m *model.CLIP
	if err := w.Do(func() (err error) { m, err = model.Load(dir, model.Options{Device: dev}); return err }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Do(m.Close) })
	return w, m, tok
}

// BenchmarkTrainDemo measures the CPU training throughput of the demo
// model (items/s, an item being one image and one tree) with the batch of
// its recipe, data preparation included.
func BenchmarkTrainDemo(b *testing.B) {
	w, m, tok := loadDemo(b)
	train, err := Split(loader.SplitTrain)
	if err != nil {
		b.Fatal(err)
	}
	o := model.DefaultTrainOptions()
	o.BatchPairs, o.Steps, o.Worker = 8, b.N, w
	b.ResetTimer()
	res, err := model.Train(context.Background(), m, tok, train, nil, o)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.ItemsPerSec, "items/s")
}

// BenchmarkEvalDemo measures evaluation throughput on the demo's test
// split (readings/s).
func BenchmarkEvalDemo(b *testing.B) {
	w, m, tok := loadDemo(b)
	test, err := Split(loader.SplitTest)
	if err != nil {
		b.Fatal(err)
	}
	readings := 0
	for b.Loop() {
		r, err := model.Evaluate(context.Background(), m, tok, test, model.EvalOptions{Worker: w})
		if err != nil {
			b.Fatal(err)
		}
		readings += r.Readings
	}
	b.ReportMetric(float64(readings)/b.Elapsed().Seconds(), "readings/s")
}

var _ model.Split = (*SynthSplit)(nil)

func TestLocateBase(t *testing.T) {
	dir, err := Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	pt := filepath.Join("..", "testdata", "pt", "clip-tiny.pt")
	loc, err := Locate(pt, Name)
	if err != nil || loc.Dir != dir || loc.File != pt {
		t.Errorf("Locate(%s, demo) = %+v, %v; want the demo's folder %s as its base", pt, loc, err, dir)
	}
	if loc, err := Locate(Name, "elsewhere"); err != nil || loc.Dir != dir || loc.File != "" {
		t.Errorf("Locate(demo, elsewhere) = %+v, %v; want the demo's folder", loc, err)
	}
}

// TestFind: every pair of the test split is found where it is, and ids of
// other splits, families or formats are not.
func TestFind(t *testing.T) {
	test, err := Split(loader.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	train, err := Split(loader.SplitTrain)
	if err != nil {
		t.Fatal(err)
	}
	for i := range test.Len() {
		p, err := test.Pair(i)
		if err != nil {
			t.Fatal(err)
		}
		if at, ok := test.Find(p.ID); !ok || at != i {
			t.Errorf("Find(%q) = %d, %v; want %d", p.ID, at, ok, i)
		}
		if _, ok := train.Find(p.ID); ok {
			t.Errorf("the train split finds the test pair %s", p.ID)
		}
	}
	for _, id := range []string{"", "pp", "pp-9", "pp-00010", "vp-00009", "pp-+0009", "pp--0009", "pp-99999", "xx-00009"} {
		if at, ok := test.Find(id); ok {
			t.Errorf("Find(%q) = %d, want not found", id, at)
		}
	}
}
