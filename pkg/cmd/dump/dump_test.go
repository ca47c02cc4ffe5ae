package dump_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

var hfTiny = filepath.Join("..", "..", "..", "testdata", "hf-clip-tiny")

func TestDumpParity(t *testing.T) {
	dev := torchtest.Device(t)
	got := filepath.Join(t.TempDir(), "got.safetensors")
	_, stderr, code := cmdtest.RunCLI(t, "", "dump", "--checkpoint", filepath.Join(hfTiny, "checkpoint"),
		"--inputs", filepath.Join(hfTiny, "inputs.safetensors"), "--out", got, "--device", dev.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	have := cmdtest.ReadF32s(t, got)
	want := cmdtest.ReadF32s(t, filepath.Join(hfTiny, "expected.safetensors"))
	names := []string{"text_embeds", "image_embeds", "text_pooled", "image_pooled",
		"text_last_hidden", "image_last_hidden", "logits_per_image", "logits_per_text"}
	if len(have) != len(names) {
		t.Errorf("dump wrote %d tensors, want %d", len(have), len(names))
	}
	for _, n := range names {
		if len(have[n]) != len(want[n]) {
			t.Errorf("%s: %d values, want %d", n, len(have[n]), len(want[n]))
			continue
		}
		worst := 0.0
		for i := range want[n] {
			worst = max(worst, math.Abs(float64(have[n][i]-want[n][i])))
		}
		if !(worst <= 1e-5) {
			t.Errorf("%s: max |Δ| %g", n, worst)
		}
	}
}

func TestDumpErrors(t *testing.T) {
	torchtest.Require(t)
	dir := t.TempDir()
	noIDs := filepath.Join(dir, "noids.safetensors")
	if err := safetensors.Save(noIDs, []safetensors.Tensor{safetensors.F32Tensor("pixel_values", []int64{1, 3, 224, 224}, make([]float32, 3*224*224))}, nil); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(hfTiny, "checkpoint")
	out := filepath.Join(dir, "out.safetensors")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no inputs", []string{"--checkpoint", ck, "--out", out}, "--inputs"},
		{"bad dtype", []string{"--checkpoint", ck, "--inputs", noIDs, "--out", out, "--dtype", "i64"}, "--dtype"},
		{"no input_ids", []string{"--checkpoint", ck, "--inputs", noIDs, "--out", out}, "noids.safetensors: want a tensor input_ids"},
		{"no checkpoint", []string{"--checkpoint", dir, "--inputs", noIDs, "--out", out}, "no config.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := cmdtest.RunCLI(t, "", append([]string{"dump", "--device", "cpu"}, tc.args...)...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed dump wrote its output")
	}
}
