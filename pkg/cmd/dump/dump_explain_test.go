package dump_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

func TestDumpRelevanceParity(t *testing.T) {
	dev := torchtest.Device(t)
	got := filepath.Join(t.TempDir(), "got.safetensors")
	_, stderr, code := cmdtest.RunCLI(t, "", "dump", "--relevance", "--checkpoint", filepath.Join(hfTiny, "checkpoint"),
		"--inputs", filepath.Join(hfTiny, "inputs.safetensors"), "--out", got, "--device", dev.String())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	have := cmdtest.ReadF32s(t, got)
	want := cmdtest.ReadF32s(t, filepath.Join(hfTiny, "expected.safetensors"))
	for _, tag := range []string{"last", "all"} {
		for _, prefix := range []string{"rel_image_", "rel_text_", "rel_text_full_"} {
			n := prefix + tag
			h, w := have[n], want[n]
			if len(h) != len(w) || len(w) == 0 {
				t.Errorf("%s: %d values, want %d", n, len(h), len(w))
				continue
			}
			// Relative to each value, with values below a millionth of the
			// largest compared against that floor.
			scale := 0.0
			for _, v := range w {
				scale = max(scale, math.Abs(float64(v)))
			}
			worst := 0.0
			for i := range w {
				worst = max(worst, math.Abs(float64(h[i]-w[i]))/max(math.Abs(float64(w[i])), 1e-6*scale))
			}
			if !(worst <= 1e-4) {
				t.Errorf("%s: max relative error %.3g", n, worst)
			}
		}
	}
}

func TestDumpRelevanceNeedsPairs(t *testing.T) {
	torchtest.Require(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.safetensors")
	ids := make([]byte, 0, 2*77*8)
	for i := range 2 * 77 {
		id := int64(499)
		if i%77 == 0 {
			id = 498
		}
		for k := range 8 {
			ids = append(ids, byte(id>>(8*k)))
		}
	}
	if err := safetensors.Save(in, []safetensors.Tensor{
		safetensors.F32Tensor("pixel_values", []int64{1, 3, 224, 224}, make([]float32, 3*224*224)),
		{Name: "input_ids", DType: safetensors.I64, Shape: []int64{2, 77}, Data: ids},
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := cmdtest.RunCLI(t, "", "dump", "--relevance", "--checkpoint", filepath.Join(hfTiny, "checkpoint"),
		"--inputs", in, "--out", filepath.Join(dir, "out.safetensors"), "--device", "cpu")
	if code == 0 || !strings.Contains(stderr, "1 images and 2 texts") {
		t.Errorf("exit %d, stderr %q; want an error naming the counts", code, stderr)
	}
}
