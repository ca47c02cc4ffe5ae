package malloc

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

func TestCheckMallocSetting(t *testing.T) {
	for _, v := range []string{"", "system", "lavascope"} {
		if err := Check(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"bogus", "System", "system "} {
		if err := Check(v); err == nil || !strings.Contains(err.Error(), Env) {
			t.Errorf("%q: %v, want an error naming %s", v, err, Env)
		}
	}
}

func TestWithMallocTunables(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    string // GLIBC_TUNABLES after, "" when left alone
	}{
		{"plain", []string{"HOME=/root"}, mallocTunables},
		{"other tunables kept", []string{"GLIBC_TUNABLES=glibc.rtld.optional_static_tls=512"}, "glibc.rtld.optional_static_tls=512:" + mallocTunables},
		{"malloc tunables set", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=4"}, ""},
		{"MALLOC_ARENA_MAX set", []string{"MALLOC_ARENA_MAX=2"}, ""},
		{"MALLOC_TRIM_THRESHOLD_ set", []string{"MALLOC_TRIM_THRESHOLD_=0"}, ""},
		{"system asked for", []string{Env + "=system"}, ""},
		{"another value is not system", []string{Env + "=lavascope"}, mallocTunables},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, ok := withMallocTunables(tc.environ)
			if tc.want == "" {
				if ok {
					t.Fatalf("changed the environment: %q", env)
				}
				return
			}
			if !ok {
				t.Fatal("left the environment alone")
			}
			var tunables []string
			for _, kv := range env {
				if v, found := strings.CutPrefix(kv, "GLIBC_TUNABLES="); found {
					tunables = append(tunables, v)
				}
			}
			if !slices.Equal(tunables, []string{tc.want}) {
				t.Errorf("GLIBC_TUNABLES %q, want [%q]", tunables, tc.want)
			}
			for _, kv := range tc.environ {
				if !strings.HasPrefix(kv, "GLIBC_TUNABLES=") && !slices.Contains(env, kv) {
					t.Errorf("lost %q", kv)
				}
			}
		})
	}
}

// TestMallocReexec builds the binary and asks its doctor how malloc is set:
// by lavascope's restart unless LAVASCOPE_MALLOC=system.
func TestMallocReexec(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("glibc's tunables")
	}
	torchtest.Require(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to build the binary")
	}
	bin := filepath.Join(t.TempDir(), "lavascope")
	build := exec.Command(goTool, "build", "-o", bin, "../../cmd/lavascope")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GLIBC_TUNABLES=") && !strings.HasPrefix(kv, Env+"=") && !strings.HasPrefix(kv, "MALLOC_") {
			base = append(base, kv)
		}
	}
	base = append(base, torch.EnvLib+"="+torch.LibPath(), "XDG_CONFIG_HOME="+t.TempDir())
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"default", "", "set by lavascope"},
		{"system", Env + "=system", "as the system sets it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "doctor", "--device", "cpu")
			cmd.Env = base
			if tc.extra != "" {
				cmd.Env = append(cmd.Env, tc.extra)
			}
			out, _ := cmd.CombinedOutput()
			var line string
			for l := range strings.Lines(string(out)) {
				if strings.Contains(l, "cpu memory") {
					line = l
				}
			}
			if !strings.Contains(line, tc.want) {
				t.Errorf("doctor's memory line %q lacks %q:\n%s", line, tc.want, out)
			}
		})
	}
}

// TestReferenceMallocTunables: scripts/reference/hf_bench.py starts itself
// with the same malloc settings, and leaves them to the user on the same
// variables, so that CPU comparisons stay like for like.
func TestReferenceMallocTunables(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "scripts", "reference", "hf_bench.py"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `MALLOC_TUNABLES = "` + mallocTunables + `"`; !strings.Contains(string(src), want) {
		t.Errorf("hf_bench.py lacks %s", want)
	}
	for _, k := range append([]string{Env}, userMallocEnv...) {
		if !strings.Contains(string(src), `"`+k+`"`) {
			t.Errorf("hf_bench.py does not look at %s", k)
		}
	}
}
