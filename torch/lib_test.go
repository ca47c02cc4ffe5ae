package torch_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebitengine/purego"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// TestOpenMPWaitPolicy runs this test binary again, with and without a
// wait policy of the user's, and asks libtorch's OpenMP runtime (libgomp's
// omp_display_env, verbose) which policy it read when the shim loaded.
func TestOpenMPWaitPolicy(t *testing.T) {
	if os.Getenv("TORCH_TEST_WAIT_POLICY") == "1" {
		waitPolicyChild()
		return
	}
	torchtest.Require(t)
	for _, tc := range []struct {
		name, user, want string
	}{
		// libgomp shows an unset policy as PASSIVE too, but spins
		// 300000 times before sleeping; passive threads sleep at once.
		{"unset", "", "GOMP_SPINCOUNT = '0'"},
		{"set by the user", "active", "OMP_WAIT_POLICY = 'ACTIVE'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestOpenMPWaitPolicy$")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "OMP_WAIT_POLICY=") {
					env = append(env, kv)
				}
			}
			env = append(env, "TORCH_TEST_WAIT_POLICY=1", torch.EnvLib+"="+torch.LibPath())
			if tc.user != "" {
				env = append(env, "OMP_WAIT_POLICY="+tc.user)
			}
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "no libgomp") {
				t.Skipf("this libtorch's OpenMP runtime is not libgomp:\n%s", out)
			}
			if strings.Contains(string(out), "no omp_display_env") {
				t.Skipf("this libtorch's libgomp cannot show its settings:\n%s", out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("OpenMP runtime did not read %q:\n%s", tc.want, out)
			}
		})
	}
}

func waitPolicyChild() {
	if err := torch.Load(""); err != nil {
		println("FAIL: load:", err.Error())
		os.Exit(1)
	}
	// libtorch loaded libgomp (if it uses it): opening it again finds it.
	h, err := purego.Dlopen("libgomp.so.1", purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		println("no libgomp:", err.Error())
		return
	}
	// PyTorch's wheels bring a libgomp of their own, without it.
	sym, err := purego.Dlsym(h, "omp_display_env")
	if err != nil {
		println("no omp_display_env:", err.Error())
		return
	}
	var displayEnv func(verbose int32)
	purego.RegisterFunc(&displayEnv, sym)
	displayEnv(1)
}

// TestCandidates checks where Load may look: never the working directory or
// a parent's build/, and the recorded source tree only while the executable
// lives in it.
func TestCandidates(t *testing.T) {
	paths := func(cs []torch.Candidate) []string {
		var p []string
		for _, c := range cs {
			p = append(p, c.Path)
		}
		return p
	}
	lib := "/" + torch.LibName
	for _, tc := range []struct {
		name, env, exe, src string
		want                []string
	}{
		{"nothing known", "", "", "/src", nil},
		{"env only", "/x/lib.so", "", "", []string{"/x/lib.so"}},
		{"beside the executable", "", "/opt/ls/lavascope", "", []string{"/opt/ls" + lib}},
		{"built and living in the tree", "/e.so", "/src/lavascope", "/src", []string{"/e.so", "/src" + lib, "/src/build" + lib}},
		{"in the tree's build/: one candidate", "", "/src/build/lavascope", "/src", []string{"/src/build" + lib}},
		{"moved out of the tree", "", "/usr/local/bin/lavascope", "/src", []string{"/usr/local/bin" + lib}},
		{"a sibling with the tree's name as prefix", "", "/src2/lavascope", "/src", []string{"/src2" + lib}},
		{"relative source dir ignored", "", "/src/lavascope", "src", []string{"/src" + lib}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := paths(torch.Candidates(tc.env, tc.exe, tc.src))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("Candidates(%q, %q, %q) = %q, want %q", tc.env, tc.exe, tc.src, got, tc.want)
			}
		})
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range torch.Candidates("", filepath.Join(t.TempDir(), "lavascope"), "") {
		for d := wd; ; d = filepath.Dir(d) {
			if c.Path == filepath.Join(d, "build", torch.LibName) {
				t.Errorf("candidate %s is under the working directory %s", c.Path, wd)
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
}
