package dump_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// TestDumpTrainStep checks that dump --train-step writes the fixture's
// loss, grad.* and after_step.* (the model package's TestTrainStepMatchesHF
// checks the step itself entry by entry).
func TestDumpTrainStep(t *testing.T) {
	dev := torchtest.Device(t)
	got := filepath.Join(t.TempDir(), "step.safetensors")
	_, stderr, code := cmdtest.RunCLI(t, "", "dump", "--checkpoint", filepath.Join(hfTiny, "checkpoint"),
		"--inputs", filepath.Join(hfTiny, "inputs.safetensors"), "--out", got, "--train-step", "--device", dev.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	have := cmdtest.ReadF32s(t, got)
	want := cmdtest.ReadF32s(t, filepath.Join(hfTiny, "expected.safetensors"))
	if d := math.Abs(float64(have["loss"][0] - want["loss"][0])); !(d <= 1e-5) {
		t.Errorf("loss %v, want %v", have["loss"], want["loss"])
	}
	n := 0
	for name, w := range want {
		grad := strings.HasPrefix(name, "grad.")
		if !grad && !strings.HasPrefix(name, "after_step.") {
			continue
		}
		n++
		h := have[name]
		if len(h) != len(w) {
			t.Errorf("%s: %d values, want %d", name, len(h), len(w))
			continue
		}
		param := name[strings.IndexByte(name, '.')+1:]
		g := want["grad."+param]
		scale := 0.0
		for _, v := range w {
			scale = max(scale, math.Abs(float64(v)))
		}
		for i := range w {
			d := math.Abs(float64(h[i] - w[i]))
			switch {
			case strings.HasSuffix(param, "k_proj.bias"):
				// The exact gradient is 0 (softmax ignores a bias shared
				// by every key): noise, and an update driven by noise.
			case grad && d > 1e-4*scale:
				t.Errorf("%s[%d]: %g, want %g", name, i, h[i], w[i])
			case !grad && math.Abs(float64(g[i])) >= 1e-6 && d > 1e-4*scale:
				t.Errorf("%s[%d]: %g, want %g (gradient %g)", name, i, h[i], w[i], g[i])
			}
		}
	}
	if n != 156 {
		t.Errorf("compared %d gradient and parameter tensors, want 2×78", n)
	}
}
