package torchengine

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/tui"
)

// TestTorchEngineFineTunePrecision: the explorer's fine-tune runs the demo
// in bf16-mixed (the CPU's libtorch has bf16 autocast), and the precision
// reaches the step: the first step's loss, taken before any update, moves
// by bf16's rounding from fp32's (0.5% on this CPU), well above float32's
// differences between thread counts (about 1e-6 of it), and no more.
func TestTorchEngineFineTunePrecision(t *testing.T) {
	dev := torchtest.Device(t)
	pairs, err := synth.Generate(synth.Config{Pairs: 20, Seed: 1, Split: loader.SplitTest})
	if err != nil {
		t.Fatal(err)
	}
	train, err := demo.Split(loader.SplitTrain)
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), Options{Checkpoint: "demo", Device: dev.String(), Data: &loader.Dataset{Pairs: pairs},
		Train: train, DataName: "demo", RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	firstLoss := func(precision string) float64 {
		t.Helper()
		progress := make(chan tui.FineTuneProgress, 64)
		next, err := e.FineTune(context.Background(), tui.FineTuneOptions{Steps: 2, LR: 1e-5, BatchPairs: 1, Input: "tree", Precision: precision}, progress)
		if err != nil {
			t.Fatalf("%s: %v", precision, err)
		}
		defer next.Close()
		close(progress)
		loss := math.NaN()
		for p := range progress {
			if p.Step == 1 {
				loss = p.Loss
			}
		}
		return loss
	}
	fp32, bf16 := firstLoss("fp32"), firstLoss("bf16-mixed")
	t.Logf("first loss: fp32 %g, bf16-mixed %g", fp32, bf16)
	if d := math.Abs(fp32 - bf16); !(d > 1e-4*math.Abs(fp32) && d < 0.05*math.Abs(fp32)) {
		t.Errorf("first loss fp32 %g, bf16-mixed %g: want them apart by bf16's rounding", fp32, bf16)
	}
	progress := make(chan tui.FineTuneProgress, 64)
	if _, err := e.FineTune(context.Background(), tui.FineTuneOptions{Steps: 2, LR: 1e-5, BatchPairs: 1, Input: "tree", Precision: "fp16"}, progress); err == nil || !strings.Contains(err.Error(), "precision") {
		t.Errorf("fine-tune in fp16: %v, want an error naming the precision", err)
	}
}
