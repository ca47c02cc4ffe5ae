package torch_test

import (
	"os"
	"os/exec"
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
