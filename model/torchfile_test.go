package model

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The torch.save fixtures hold hf-clip-tiny's weights (make_fixtures.py).
var ptDir = filepath.Join("..", "testdata", "pt")

func TestTorchCheckpointMatchesSafetensors(t *testing.T) {
	base := filepath.Join(hfTinyDir, "checkpoint")
	want, err := OpenCheckpoint(base)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	for _, tc := range []struct {
		file string
		tol  float64 // float16 rounds to 11 significant bits
	}{
		{"clip-tiny.pt", 0},
		{"clip-tiny-f16.pth", 1.0 / 1024},
	} {
		t.Run(tc.file, func(t *testing.T) {
			loc, err := Locate(filepath.Join(ptDir, tc.file), base)
			if err != nil {
				t.Fatal(err)
			}
			got, err := OpenLocation(loc)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			for _, name := range want.Weights.Names() {
				w, _ := want.Weights.Tensor(name)
				g, ok := got.Weights.Tensor(name)
				if !ok || !slices.Equal(g.Shape, w.Shape) {
					t.Fatalf("%s: missing or shape %v, want %v", name, g.Shape, w.Shape)
				}
				wv, err := w.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				gv, err := g.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				for i := range wv {
					if d := math.Abs(float64(gv[i] - wv[i])); d > tc.tol*math.Max(1, math.Abs(float64(wv[i]))) {
						t.Fatalf("%s[%d] = %g, want %g", name, i, gv[i], wv[i])
					}
				}
			}
		})
	}
}

func TestLocateTorchFile(t *testing.T) {
	if _, err := Locate(filepath.Join(ptDir, "clip-tiny.pt"), ""); err == nil || !strings.Contains(err.Error(), "--base") {
		t.Errorf("no config.json beside the file: got %v, want a hint at --base", err)
	}
	// A config.json beside the file stands in for --base.
	dir := copyFixture(t)
	os.Remove(filepath.Join(dir, singleFile))
	pt := filepath.Join(dir, "K1_miru_clip_best.pt")
	copyFile(t, filepath.Join(ptDir, "clip-tiny.pt"), pt)
	ck, err := OpenCheckpoint(pt)
	if err != nil {
		t.Fatal(err)
	}
	ck.Close()
	// So does a transformers folder whose weights are a zip pytorch_model.bin.
	if err := os.Rename(pt, filepath.Join(dir, "pytorch_model.bin")); err != nil {
		t.Fatal(err)
	}
	if ck, err = OpenCheckpoint(dir); err != nil {
		t.Fatal(err)
	}
	ck.Close()
}

func TestTorchFileRefusals(t *testing.T) {
	base := filepath.Join(hfTinyDir, "checkpoint")
	marker := "/tmp/lavascope-pwned-pt"
	os.Remove(marker)
	_, err := Locate(filepath.Join(ptDir, "legacy.pt"), base)
	var pe *PickleError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "torch.save(torch.load(") {
		t.Errorf("legacy pickle: got %v, want a PickleError with the Python that converts it", err)
	}
	loc, err := Locate(filepath.Join(ptDir, "evil.pt"), base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocation(loc); err == nil || !strings.Contains(err.Error(), "posix.system") {
		t.Errorf("evil.pt: got %v, want the refusal of posix.system", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("%s exists: the pickle's command ran", marker)
	}
	loc, err = Locate(filepath.Join(ptDir, "small.pt"), base)
	if err != nil {
		t.Fatal(err)
	}
	var we *WeightsError
	if _, err := OpenLocation(loc); !errors.As(err, &we) {
		t.Errorf("small.pt against the CLIP config: got %v, want a WeightsError", err)
	}
}
