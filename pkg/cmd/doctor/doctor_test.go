package doctor_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
	"github.com/lavascope/lavascope/torch"
)

func runDoctorCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	root := cmdtest.Root()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"doctor"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestDoctor(t *testing.T) {
	torchtest.Require(t)
	out, err := runDoctorCmd(t, "--device", "cpu", "--threads", "1")
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	// The CPU has the fused AdamW from libtorch 2.4 on.
	adamw := "optimizer      AdamW foreach on cpu, one parameter at a time"
	if torchtest.AtLeast(t, 2, 4) {
		adamw = "optimizer      AdamW fused on cpu"
	}
	// A shim built without Gloo's headers (no libgloo-dev) says so.
	dist := "distributed    gloo (CPU)"
	if gloo, _ := torch.DistBackends(); !gloo {
		dist = "distributed    off"
	}
	for _, want := range []string{"libtorch shim", "libtorch ", "cpu threads    1 (set by the threads setting)", "cuda ", dist, "device         cpu", adamw, "1024² f32 on cpu", "GFLOP/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	// The blas line names the BLAS library that this process has mapped.
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps to check the blas line against: %v", err)
	}
	blasLine := ""
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, " blas ") {
			blasLine = line
		}
	}
	for line := range strings.SplitSeq(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(filepath.Base(f[5]), "libopenblas") {
			continue
		}
		if !strings.Contains(blasLine, "OpenBLAS (libopenblas") {
			t.Errorf("%s is mapped, but the blas line says %q", f[5], blasLine)
		}
		if strings.Contains(out, "install OpenBLAS") {
			t.Errorf("doctor suggests installing OpenBLAS with %s loaded:\n%s", f[5], out)
		}
		return
	}
	t.Logf("no libopenblas mapped; blas line: %q", blasLine)
}

// TestDoctorMissingShim runs doctor in a child process (the shim is loaded
// once per process) with a torch_lib that does not exist.
func TestDoctorMissingShim(t *testing.T) {
	if os.Getenv("LAVASCOPE_DOCTOR_CHILD") == "1" {
		os.Exit(cmdtest.Run([]string{"doctor", "--torch-lib", os.Getenv("LAVASCOPE_DOCTOR_LIB")}))
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDoctorMissingShim$")
	cmd.Env = append(os.Environ(), "LAVASCOPE_DOCTOR_CHILD=1", "LAVASCOPE_DOCTOR_LIB="+dir+"/nowhere.so", "XDG_CONFIG_HOME="+dir)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("doctor without a shim: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"FAIL  libtorch shim", "nowhere.so: not found", "make torch"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "matmul") {
		t.Errorf("doctor ran torch checks without a shim:\n%s", out)
	}
}

func TestDoctorCheckpoint(t *testing.T) {
	torchtest.Require(t)
	bad := t.TempDir()
	src := "../../../testdata/hf-clip-tiny/checkpoint/"
	cfg, err := os.ReadFile(src + "config.json")
	if err != nil {
		t.Fatal(err)
	}
	weights, err := os.ReadFile(src + "model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad+"/config.json", cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad+"/model.safetensors", weights[:len(weights)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		checkpoint string
		fails      bool
		want       []string
	}{
		{checkpoint: "demo", want: []string{"ok    checkpoint     demo", "224 px in 32 px patches"}},
		{checkpoint: bad, fails: true, want: []string{"FAIL  checkpoint", "model.safetensors: truncated"}},
		{checkpoint: bad + "/missing", fails: true, want: []string{"FAIL  checkpoint", "missing"}},
	}
	for _, tc := range tests {
		out, err := runDoctorCmd(t, "--device", "cpu", "--checkpoint", tc.checkpoint)
		if (err != nil) != tc.fails {
			t.Errorf("doctor --checkpoint %s: error %v, want failure %v\n%s", tc.checkpoint, err, tc.fails, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("doctor --checkpoint %s: output lacks %q:\n%s", tc.checkpoint, w, out)
			}
		}
	}
}
