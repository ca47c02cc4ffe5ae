package model

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/tokenizer"
)

// The child ranks of TestTrainDataParallel read what to do from these.
const (
	envTrainDistDir  = "LAVASCOPE_TEST_TRAIN_DIST_DIR"
	envTrainDistMode = "LAVASCOPE_TEST_TRAIN_DIST_MODE"
)

const distSteps = 20

// distOptions are the runs of TestTrainDataParallel: 20 steps of global
// batches of 4 pairs, no val split.
func distOptions(out string) TrainOptions {
	o := quickOptions(out, distSteps)
	o.BatchPairs, o.EvalEvery = 4, 10
	return o
}

func distSplits(tb testing.TB) (Split, *CLIP, *tokenizer.Tokenizer) {
	train, _, _ := synthSplits(tb, 60, 5)
	m, tok := smallCLIP(tb, train, 1)
	return train, m, tok
}

// relDiff is the largest, over the tensors, of |a−b| / |b| (2-norms).
func relDiff(a, b map[string][]float32) (worst float64, where string) {
	for name, va := range a {
		var d, n float64
		for i, x := range va {
			y := float64(b[name][i])
			d += (float64(x) - y) * (float64(x) - y)
			n += y * y
		}
		r := math.Sqrt(d) / max(math.Sqrt(n), 1e-30)
		if len(b[name]) != len(va) {
			r = math.Inf(1)
		}
		if r > worst {
			worst, where = r, name
		}
	}
	return worst, where
}

// runRanks runs TestTrainDistChild in mode as 2 ranks and returns rank 0's
// weights.
func runRanks(t *testing.T, dir, mode string) map[string][]float32 {
	t.Helper()
	torchtest.RunRanks(t, 2, "TestTrainDistChild", 5*time.Minute, envTrainDistDir+"="+dir, envTrainDistMode+"="+mode)
	b, err := os.ReadFile(filepath.Join(dir, "params-"+mode+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string][]float32
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// startsRanks skips a test that starts training ranks where it cannot.
func startsRanks(t *testing.T) {
	t.Helper()
	if torchtest.IsRank() {
		t.Skip("a rank does not start ranks")
	}
	if testing.Short() {
		t.Skip("starts processes that train; not with -short")
	}
	torchtest.RequireGloo(t)
}

// TestTrainDataParallel: 2 ranks over Gloo end 20 steps with the weights
// of one process on the same global batches, whether they sum the
// gradients during backward (in 25 MiB or 1-byte buckets) or after it, and a run stopped with one
// world size resumes with another on the same schedule.
func TestTrainDataParallel(t *testing.T) {
	startsRanks(t)
	dir := t.TempDir()
	train, m1, tok := distSplits(t)
	if _, err := Train(context.Background(), m1, tok, train, nil, distOptions("")); err != nil {
		t.Fatal(err)
	}
	single := paramValues(t, m1)
	// The key projections' biases are left out: softmax over the keys is
	// blind to them, so their gradient is 0 in exact arithmetic and what
	// AdamW makes of its rounding noise (a step of ~lr whatever the noise's
	// size) differs with any change in the order of sums, one process to
	// the next as well. Every other tensor must agree.
	check := func(what string, got map[string][]float32) {
		t.Helper()
		kept := map[string][]float32{}
		for name, v := range got {
			if !strings.HasSuffix(name, "k_proj.bias") {
				kept[name] = v
			}
		}
		worst, where := relDiff(kept, single)
		t.Logf("%s: largest relative difference from one process: %.3g (%s)", what, worst, where)
		if worst > 1e-5 || len(got) != len(single) || len(kept) < len(got)-2 {
			t.Errorf("%s: %d tensors, %s differs from one process by %.3g relative (tolerance 1e-5)", what, len(got), where, worst)
		}
	}
	check("2 ranks", runRanks(t, dir, "plain"))
	// The reference path, which sums the gradients after backward.
	check("2 ranks, no overlap", runRanks(t, dir, "off"))
	// Buckets smaller than any parameter: one bucket each.
	check("2 ranks, 1-byte buckets", runRanks(t, dir, "tiny"))

	// 2 ranks stop at step 10; one process resumes to 20.
	runRanks(t, dir, "stop")
	m2, tok2 := loadLast(t, filepath.Join(dir, "run"))
	o := distOptions(filepath.Join(dir, "run"))
	o.Resume = true
	res, err := Train(context.Background(), m2, tok2, train, nil, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != distSteps {
		t.Fatalf("resumed run ended at step %d", res.Step)
	}
	check("2 ranks to step 10, then 1", paramValues(t, m2))

	// One process stops at step 10; 2 ranks resume to 20.
	m3, tok3 := smallCLIP(t, train, 1)
	o = distOptions(filepath.Join(dir, "run1"))
	o.StopAfter = distSteps / 2
	if _, err := Train(context.Background(), m3, tok3, train, nil, o); err != nil {
		t.Fatal(err)
	}
	check("1 process to step 10, then 2 ranks", runRanks(t, dir, "resume"))

	// Rank 1's context alone is cancelled: both ranks stop after the same
	// step, and rank 0 leaves last/ there.
	torchtest.RunRanks(t, 2, "TestTrainDistChild", 5*time.Minute, envTrainDistDir+"="+dir, envTrainDistMode+"=cancel")
	s0, err0 := os.ReadFile(filepath.Join(dir, "stop-0"))
	s1, err1 := os.ReadFile(filepath.Join(dir, "stop-1"))
	if err0 != nil || err1 != nil || string(s0) != string(s1) {
		t.Fatalf("ranks stopped after steps %q and %q (%v, %v)", s0, s1, err0, err1)
	}
	st, err := ReadTrainState(filepath.Join(dir, "runc", LastDir))
	if err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(st.Step) != string(s0) || st.Step < 3 || st.Step >= distSteps {
		t.Errorf("last/ is at step %d, the ranks stopped after %s", st.Step, s0)
	}
}

// TestTrainDataParallelFrozen: with the vision tower frozen its
// parameters get no gradient and no hook; 2 ranks neither hang nor train
// it, and end where one process does.
func TestTrainDataParallelFrozen(t *testing.T) {
	startsRanks(t)
	train, m, tok := distSplits(t)
	before := paramValues(t, m)
	o := distOptions("")
	o.Freeze = FreezeVisionModel
	if _, err := Train(context.Background(), m, tok, train, nil, o); err != nil {
		t.Fatal(err)
	}
	single := paramValues(t, m)
	got := runRanks(t, t.TempDir(), "freeze")
	worst, where := 0.0, ""
	for name, v := range got {
		if strings.HasSuffix(name, "k_proj.bias") {
			continue // see TestTrainDataParallel
		}
		if strings.HasPrefix(name, "vision_model.") && !slices.Equal(v, before[name]) {
			t.Errorf("frozen %s changed", name)
		}
		if r, _ := relDiff(map[string][]float32{name: v}, single); r > worst {
			worst, where = r, name
		}
	}
	t.Logf("largest relative difference from one process: %.3g (%s)", worst, where)
	if worst > 1e-5 || len(got) != len(single) {
		t.Errorf("%d tensors, %s differs from one process by %.3g relative (tolerance 1e-5)", len(got), where, worst)
	}
}

// TestTrainDistChild is one rank of TestTrainDataParallel and
// TestTrainDataParallelFrozen.
func TestTrainDistChild(t *testing.T) {
	g := torchtest.JoinRanks(t)
	dir, mode := os.Getenv(envTrainDistDir), os.Getenv(envTrainDistMode)
	train, m, tok := distSplits(t)
	o := distOptions("")
	var err error
	switch mode {
	case "stop":
		o = distOptions(filepath.Join(dir, "run"))
		o.StopAfter = distSteps / 2
	case "freeze":
		o.Freeze = FreezeVisionModel
	case "off":
		o.NoOverlap = true
	case "tiny":
		o.BucketBytes = 1
	case "resume":
		o = distOptions(filepath.Join(dir, "run1"))
		o.Resume = true
		if g.Rank() == 0 {
			// Rank 0 alone reads the run; the others get its state.
			last := filepath.Join(dir, "run1", LastDir)
			if m, err = Load(last, Options{Device: torchtest.Device(t)}); err != nil {
				t.Fatal(err)
			}
			if tok, err = tokenizer.Load(last); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	if mode == "cancel" {
		// Rank 1 alone is cancelled, once it reports step 3.
		o = distOptions(filepath.Join(dir, "runc"))
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		progress := make(chan Progress)
		o.Progress = progress
		go func() {
			for p := range progress {
				if p.Step == 3 && g.Rank() == 1 {
					cancel()
				}
			}
		}()
		defer close(progress)
	}
	o.Group = g
	res, err := Train(ctx, m, tok, train, nil, o)
	if mode == "cancel" {
		if !errors.Is(err, context.Canceled) || !res.Interrupted {
			t.Fatalf("rank %d: %v, interrupted %v; want both stopped", g.Rank(), err, res.Interrupted)
		}
		if err := os.WriteFile(filepath.Join(dir, "stop-"+strconv.Itoa(g.Rank())), []byte(strconv.Itoa(res.Step)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != o.StopAfter && !(o.StopAfter == 0 && res.Step == distSteps) {
		t.Errorf("rank %d ended at step %d", g.Rank(), res.Step)
	}
	if g.Rank() != 0 {
		return
	}
	b, err := json.Marshal(paramValues(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "params-"+mode+".json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckWorld(t *testing.T) {
	if err := checkWorld(4, 2, false); err != nil {
		t.Error(err)
	}
	if err := checkWorld(4, 3, false); err == nil || !strings.Contains(err.Error(), "multiple of the world size") {
		t.Errorf("4 pairs on 3 ranks: %v", err)
	}
	if err := checkWorld(4, 2, true); err == nil {
		t.Error("graphs on 2 ranks: no error")
	}
}
