package model

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tokenizer"
)

// quickOptions are the settings of the run tests: a few steps of the small
// model, evaluated every other step.
func quickOptions(out string, steps int) TrainOptions {
	o := DefaultTrainOptions()
	o.BatchPairs, o.Steps, o.Warmup, o.EvalEvery = 2, steps, 2, 2
	o.AdamW.LR = 1e-3
	o.Out = out
	return o
}

func paramValues(tb testing.TB, m *CLIP) map[string][]float32 {
	tb.Helper()
	out := map[string][]float32{}
	for _, p := range m.Params() {
		v, err := p.Tensor.Float32s()
		if err != nil {
			tb.Fatal(err)
		}
		out[p.Name] = v
	}
	return out
}

type logRecord struct {
	Event    string  `json:"event"`
	Step     int     `json:"step"`
	Loss     float64 `json:"loss"`
	Accuracy float64 `json:"accuracy"`
}

func readRunLog(tb testing.TB, dir string) []logRecord {
	tb.Helper()
	f, err := os.Open(filepath.Join(dir, runLogFile))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []logRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// TestResumeEquivalence: N steps straight and N/2 steps, stop, resume from
// last/, N/2 more (same seed) end with the same weights and the same log.
func TestResumeEquivalence(t *testing.T) {
	train, val, _ := synthSplits(t, 60, 5)
	const n = 8
	straight := t.TempDir()
	m1, tok := smallCLIP(t, train, 1)
	if _, err := Train(context.Background(), m1, tok, train, val, quickOptions(straight, n)); err != nil {
		t.Fatal(err)
	}

	sliced := t.TempDir()
	m2, tok2 := smallCLIP(t, train, 1)
	o := quickOptions(sliced, n)
	o.StopAfter = n / 2
	res, err := Train(context.Background(), m2, tok2, train, val, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || res.Step != n/2 {
		t.Fatalf("first half: stopped %v at step %d, want stopped at %d", res.Stopped, res.Step, n/2)
	}
	m3, tok3 := loadLast(t, sliced)
	o = quickOptions(sliced, n)
	o.Resume = true
	if res, err = Train(context.Background(), m3, tok3, train, val, o); err != nil {
		t.Fatal(err)
	}
	if res.Stopped || res.Step != n {
		t.Fatalf("second half: stopped %v at step %d, want the end at %d", res.Stopped, res.Step, n)
	}

	a, b := paramValues(t, m1), paramValues(t, m3)
	worst := 0.0
	for name, va := range a {
		for i := range va {
			worst = max(worst, math.Abs(float64(va[i]-b[name][i])))
		}
	}
	t.Logf("largest parameter difference after %d steps: %g", n, worst)
	if worst > 1e-6 {
		t.Errorf("resumed run differs from the straight one by %g", worst)
	}
	la, lb := readRunLog(t, straight), readRunLog(t, sliced)
	if len(la) != len(lb) {
		t.Fatalf("logs of %d and %d records", len(la), len(lb))
	}
	for i := range la {
		if la[i].Event != lb[i].Event || la[i].Step != lb[i].Step || math.Abs(la[i].Loss-lb[i].Loss) > 1e-5 || la[i].Accuracy != lb[i].Accuracy {
			t.Errorf("log record %d: %+v straight, %+v resumed", i, la[i], lb[i])
		}
	}
	sa, err := ReadTrainState(filepath.Join(straight, BestDir))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ReadTrainState(filepath.Join(sliced, BestDir))
	if err != nil {
		t.Fatal(err)
	}
	if sa.BestStep != sb.BestStep || sa.BestValue != sb.BestValue {
		t.Errorf("best: step %d (%g) straight, step %d (%g) resumed", sa.BestStep, sa.BestValue, sb.BestStep, sb.BestValue)
	}
}

// TestRunFolder checks what a run leaves: two loadable Hugging Face
// checkpoints, the state, the optimizer, the log, and refusals to mix runs.
func TestRunFolder(t *testing.T) {
	train, val, _ := synthSplits(t, 40, 6)
	out := t.TempDir()
	m, tok := smallCLIP(t, train, 2)
	const steps = 4
	if _, err := Train(context.Background(), m, tok, train, val, quickOptions(out, steps)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{BestDir, LastDir} {
		dir := filepath.Join(out, d)
		for _, f := range []string{"config.json", "model.safetensors", "vocab.json", "merges.txt", "preprocessor_config.json", trainStateFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s: %v", d, err)
			}
		}
		_, err := os.Stat(filepath.Join(dir, optimizerFile))
		if hasOpt := err == nil; hasOpt != (d == LastDir) {
			t.Errorf("%s: optimizer state present %v", d, hasOpt)
		}
		back, err := Load(dir, Options{})
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		back.Close()
		// Save recorded the tokenizer, which then passes its own check.
		if _, ok := back.Config().Extra[TokenizerKey]; !ok {
			t.Errorf("%s: config.json has no %s", d, TokenizerKey)
		}
		if _, err := CheckpointTokenizer(dir); err != nil {
			t.Errorf("%s: %v", d, err)
		}
		p, err := loader.LoadPreprocessConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		if h, w, _ := p.Size(); h != 64 || w != 64 {
			t.Errorf("%s: preprocessing makes %dx%d images, want 64x64", d, w, h)
		}
	}
	st, err := ReadTrainState(filepath.Join(out, LastDir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != steps || !st.Complete || st.LastEval == nil || st.LastEval.Readings != 2*val.Len() {
		t.Errorf("last state: step %d, complete %v, last eval %+v", st.Step, st.Complete, st.LastEval)
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("left a temporary folder %s", e.Name())
		}
	}
	var trainSteps []int
	for _, r := range readRunLog(t, out) {
		if r.Event == "train" {
			trainSteps = append(trainSteps, r.Step)
		}
	}
	if len(trainSteps) != steps || trainSteps[0] != 1 || trainSteps[steps-1] != steps {
		t.Errorf("log has train steps %v", trainSteps)
	}

	// A new run into the same folder, resuming a finished run, and
	// resuming with other settings are refused.
	o := quickOptions(out, steps)
	if _, err := Train(context.Background(), m, tok, train, val, o); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("second run into %s: %v", out, err)
	}
	o.Resume = true
	if _, err := Train(context.Background(), m, tok, train, val, o); err == nil || !strings.Contains(err.Error(), "complete") {
		t.Errorf("resuming a finished run: %v", err)
	}
	half := t.TempDir()
	o = quickOptions(half, steps)
	o.StopAfter = 2
	if _, err := Train(context.Background(), m, tok, train, val, o); err != nil {
		t.Fatal(err)
	}
	o = quickOptions(half, steps)
	o.Resume, o.AdamW.LR = true, 5e-4
	if _, err := Train(context.Background(), m, tok, train, val, o); err == nil || !strings.Contains(err.Error(), "lr") {
		t.Errorf("resuming with another lr: %v", err)
	}
	o.AdamW.LR = 1e-3
	if _, err := Train(context.Background(), m, tok, val, val, o); err == nil || !strings.Contains(err.Error(), "training split") {
		t.Errorf("resuming on other data: %v", err)
	}
	state := filepath.Join(half, LastDir, trainStateFile)
	if err := os.WriteFile(state, []byte(`{"format": "lavascope-train/1", "step": `), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(context.Background(), m, tok, train, val, o); err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("resuming from a damaged state: %v", err)
	}
}

// TestTrainInterrupt: cancelling the context mid-run writes a resumable
// last/ at the step reached and leaves best/ as the last evaluation made it.
func TestTrainInterrupt(t *testing.T) {
	train, val, _ := synthSplits(t, 60, 7)
	out := t.TempDir()
	m, tok := smallCLIP(t, train, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := make(chan Progress)
	o := quickOptions(out, 50)
	o.Progress = progress
	var bestAt []byte
	go func() {
		for p := range progress {
			if p.Step == 2 {
				bestAt, _ = os.ReadFile(filepath.Join(out, BestDir, "model.safetensors"))
			}
			if p.Step == 3 {
				cancel()
			}
		}
	}()
	res, err := Train(ctx, m, tok, train, val, o)
	close(progress)
	if !errors.Is(err, context.Canceled) || res == nil || !res.Interrupted {
		t.Fatalf("Train: %v, result %+v; want context.Canceled and Interrupted", err, res)
	}
	st, err := ReadTrainState(filepath.Join(out, LastDir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != res.Step || st.Step < 3 || st.Step >= 50 || st.Complete {
		t.Errorf("last/ at step %d (run stopped at %d), complete %v", st.Step, res.Step, st.Complete)
	}
	best, err := ReadTrainState(filepath.Join(out, BestDir))
	if err != nil {
		t.Fatal(err)
	}
	if best.BestStep != 2 {
		t.Errorf("best/ from step %d, want the evaluation at step 2", best.BestStep)
	}
	if now, _ := os.ReadFile(filepath.Join(out, BestDir, "model.safetensors")); string(now) != string(bestAt) {
		t.Error("best/ changed after the evaluation that chose it")
	}
	if _, err := Load(filepath.Join(out, LastDir), Options{}); err != nil {
		t.Errorf("last/ does not load: %v", err)
	}
}

// loadLast opens the model and tokenizer of run's last/ checkpoint on the
// test device; the model is closed when the test ends.
func loadLast(t *testing.T, run string) (*CLIP, *tokenizer.Tokenizer) {
	t.Helper()
	last := filepath.Join(run, LastDir)
	m, err := Load(last, Options{Device: torchtest.Device(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := tokenizer.Load(last)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}
