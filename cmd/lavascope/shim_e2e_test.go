package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// TestPlantedShimNotLoaded builds the binary with a recorded source tree
// and runs its doctor from a folder whose build/ (and whose parent's build/)
// holds a planted shim: a symbolic link to the real one, so that loading it
// would succeed and doctor would name it. It must never be taken; the
// source tree's build/ is, while the binary lives in that tree.
func TestPlantedShimNotLoaded(t *testing.T) {
	torchtest.Require(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary")
	}
	real, err := filepath.Abs(torch.LibPath())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	src := filepath.Join(root, "src")
	work := filepath.Join(root, "work")
	for _, d := range []string{filepath.Join(src, "build"), filepath.Join(work, "sub", "build"), filepath.Join(work, "build"), filepath.Join(root, "elsewhere")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(work, "build", torch.LibName), filepath.Join(work, "sub", "build", torch.LibName), filepath.Join(src, "build", torch.LibName)} {
		if err := os.Symlink(real, p); err != nil {
			t.Fatal(err)
		}
	}
	inTree := filepath.Join(src, "lavascope")
	build := exec.Command(goTool, "build", "-ldflags", "-X github.com/lavascope/lavascope/torch.sourceDir="+src, "-o", inTree, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	moved := filepath.Join(root, "elsewhere", "lavascope")
	b, err := os.ReadFile(inTree)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(moved, b, 0o755); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, torch.EnvLib+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, "XDG_CONFIG_HOME="+t.TempDir())
	doctor := func(bin string, extra ...string) string {
		cmd := exec.Command(bin, "doctor", "--device", "cpu")
		cmd.Dir = filepath.Join(work, "sub")
		cmd.Env = append(env, extra...)
		out, _ := cmd.CombinedOutput()
		if strings.Contains(string(out), work) {
			t.Errorf("%s looked at the working directory's build/:\n%s", bin, out)
		}
		return string(out)
	}
	for _, tc := range []struct {
		name, bin string
		extra     []string
		want      []string
	}{
		{"moved out of its tree", moved, nil, []string{"FAIL  libtorch shim", "not found (beside the executable"}},
		{"named by the environment", moved, []string{torch.EnvLib + "=" + real}, []string{"ok    libtorch shim  " + real, "named by the torch_lib setting"}},
		{"living in its tree", inTree, nil, []string{"ok    libtorch shim  " + filepath.Join(src, "build", torch.LibName), "the source tree this executable was built from"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := doctor(tc.bin, tc.extra...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("doctor lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
