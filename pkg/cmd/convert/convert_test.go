package convert_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// The torch.save fixtures hold hf-clip-tiny's weights (see make_fixtures.py).
var ptFixtures = filepath.Join("..", "..", "..", "testdata", "pt")

// dumpOf runs lavascope dump on hf-clip-tiny's inputs and reads what it wrote.
func dumpOf(t *testing.T, dev string, ckArgs ...string) map[string][]float32 {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.safetensors")
	args := append([]string{"dump", "--inputs", filepath.Join(hfTiny, "inputs.safetensors"), "--out", out, "--device", dev}, ckArgs...)
	if _, stderr, code := cmdtest.RunCLI(t, "", args...); code != 0 {
		t.Fatalf("%v: exit %d: %s", ckArgs, code, stderr)
	}
	return cmdtest.ReadF32s(t, out)
}

var hfTiny = filepath.Join("..", "..", "..", "testdata", "hf-clip-tiny")

func maxDiff(t *testing.T, got, want map[string][]float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d outputs, want %d", len(got), len(want))
	}
	worst := 0.0
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			t.Fatalf("%s: %d values, want %d", name, len(g), len(w))
		}
		for i := range w {
			worst = max(worst, math.Abs(float64(g[i]-w[i])))
		}
	}
	return worst
}

func TestDumpTorchCheckpoint(t *testing.T) {
	dev := torchtest.Device(t).String()
	base := filepath.Join(hfTiny, "checkpoint")
	want := dumpOf(t, dev, "--checkpoint", base)

	// float32, with shared storages, a strided view and position_ids buffers.
	pt := filepath.Join(ptFixtures, "clip-tiny.pt")
	if d := maxDiff(t, dumpOf(t, dev, "--checkpoint", pt, "--base", base), want); !(d <= 1e-6) {
		t.Errorf("clip-tiny.pt: max |Δ| %g from the safetensors outputs, want ≤ 1e-6", d)
	}
	// float16 weights under "state_dict", named module.*: the weights carry
	// float16's rounding (relative 2^-11), which moves these outputs by up
	// to 7.2e-3 (measured on a 2-core Xeon, CPU; the float32 file: 0).
	f16 := filepath.Join(ptFixtures, "clip-tiny-f16.pth")
	if d := maxDiff(t, dumpOf(t, dev, "--checkpoint", f16, "--base", base), want); !(d <= 2e-2) {
		t.Errorf("clip-tiny-f16.pth: max |Δ| %g from the safetensors outputs, want ≤ 2e-2", d)
	}

	// convert writes a folder that gives the same outputs as the .pt file.
	out := filepath.Join(t.TempDir(), "converted")
	if _, stderr, code := cmdtest.RunCLI(t, "", "convert", "--checkpoint", pt, "--base", base, "--out", out); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr)
	}
	if d := maxDiff(t, dumpOf(t, dev, "--checkpoint", out), want); !(d <= 1e-6) {
		t.Errorf("converted folder: max |Δ| %g, want ≤ 1e-6", d)
	}
}

func TestTorchCheckpointRefusals(t *testing.T) {
	base := filepath.Join(hfTiny, "checkpoint")
	dir := t.TempDir()
	full, err := os.ReadFile(filepath.Join(ptFixtures, "clip-tiny.pt"))
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.pt")
	if err := os.WriteFile(truncated, full[:len(full)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	marker := "/tmp/lavascope-pwned-pt"
	os.Remove(marker)
	nonEmpty := filepath.Join(dir, "nonempty")
	os.MkdirAll(nonEmpty, 0o755)
	os.WriteFile(filepath.Join(nonEmpty, "keep.txt"), []byte("mine"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"calls a function", []string{"--checkpoint", filepath.Join(ptFixtures, "evil.pt"), "--base", base},
			[]string{"evil.pt", "refused", "posix.system", "nothing in the file is run"}},
		{"truncated", []string{"--checkpoint", truncated, "--base", base},
			[]string{"truncated.pt", "truncated"}},
		{"legacy pickle", []string{"--checkpoint", filepath.Join(ptFixtures, "legacy.pt"), "--base", base},
			[]string{"legacy.pt is a PyTorch pickle in the legacy format", "torch.save(torch.load("}},
		{"no config beside it", []string{"--checkpoint", filepath.Join(ptFixtures, "clip-tiny.pt")},
			[]string{"clip-tiny.pt holds weights only", "--base"}},
		{"not a CLIP state_dict", []string{"--checkpoint", filepath.Join(ptFixtures, "small.pt"), "--base", base},
			[]string{"small.pt does not match config.json", "missing: logit_scale"}},
		{"out not empty", []string{"--checkpoint", filepath.Join(ptFixtures, "clip-tiny.pt"), "--base", base, "--out", nonEmpty},
			[]string{"nonempty exists and is not empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"convert"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--out") {
				args = append(args, "--out", filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-")))
			}
			_, stderr, code := cmdtest.RunCLI(t, "", args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("%s exists: the pickle's command ran", marker)
	}
	if b, err := os.ReadFile(filepath.Join(nonEmpty, "keep.txt")); err != nil || string(b) != "mine" {
		t.Errorf("convert touched a non-empty --out: %q %v", b, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "out-") {
			t.Errorf("a failed convert left %s", e.Name())
		}
	}
}

func TestDumpRefusesPickleCode(t *testing.T) {
	torchtest.Require(t)
	marker := "/tmp/lavascope-pwned-pt"
	os.Remove(marker)
	out := filepath.Join(t.TempDir(), "out.safetensors")
	_, stderr, code := cmdtest.RunCLI(t, "", "dump", "--device", "cpu", "--checkpoint", filepath.Join(ptFixtures, "evil.pt"),
		"--base", filepath.Join(hfTiny, "checkpoint"), "--inputs", filepath.Join(hfTiny, "inputs.safetensors"), "--out", out)
	if code != 2 || !strings.Contains(stderr, "posix.system") {
		t.Errorf("exit %d, stderr %q; want 2 and the refusal of posix.system", code, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("%s exists: the pickle's command ran", marker)
	}
}
