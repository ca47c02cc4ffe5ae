package torch_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

func TestParseBLAS(t *testing.T) {
	links := map[string]string{
		"/lib/x86_64-linux-gnu/libblas.so.3": "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
		"/usr/lib/libblas.so.3":              "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3",
	}
	resolve := func(p string) (string, error) {
		if r, ok := links[p]; ok {
			return r, nil
		}
		return "", errors.New("not a link")
	}
	const debianConfig = "config:\nPyTorch built with:\n  - BLAS_INFO=open\n  - LAPACK_INFO=open\n" +
		"  - Build settings: BLAS_INFO=open, BUILD_TYPE=Release, USE_OPENMP=ON\n"
	tests := []struct {
		name, info, want, builtWith string
		reference                   bool
	}{
		{"Debian with OpenBLAS", "loaded: /lib/x86_64-linux-gnu/libblas.so.3\nloaded: /lib/x86_64-linux-gnu/libopenblas.so.0\n" + debianConfig,
			"OpenBLAS (libopenblas.so.0 loaded)", "open", false},
		{"alternatives to OpenBLAS", "loaded: /lib/x86_64-linux-gnu/libblas.so.3\n" + debianConfig,
			"OpenBLAS (libblas.so.3 → /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 loaded)", "open", false},
		{"alternatives to reference BLAS", "loaded: /usr/lib/libblas.so.3\n" + debianConfig,
			"reference BLAS (libblas.so.3 → /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 loaded)", "open", true},
		{"unresolvable libblas", "loaded: /opt/libblas.so.3\nconfig:\n",
			"reference BLAS (libblas.so.3 loaded)", "", true},
		{"static MKL", "config:\n  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release\n", "MKL (built in: BLAS_INFO=mkl)", "mkl", false},
		{"MKL library", "loaded: /opt/intel/libmkl_rt.so.2\nconfig:\n", "MKL (libmkl_rt.so.2 loaded)", "", false},
		{"nothing", "config:\n", "unknown (no BLAS library loaded, no BLAS_INFO in libtorch's build settings)", "", false},
		{"garbage", "\x00\nloaded: \nconfig:", "unknown (no BLAS library loaded, no BLAS_INFO in libtorch's build settings)", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := torch.ParseBLAS(tc.info, resolve)
			if b.String() != tc.want || b.BuiltWith != tc.builtWith || b.Reference() != tc.reference {
				t.Errorf("got %q (BLAS_INFO %q, reference %v), want %q (%q, %v)", b, b.BuiltWith, b.Reference(), tc.want, tc.builtWith, tc.reference)
			}
		})
	}
}

// TestLoadedBLAS asks the real shim and checks its answer against the
// process's own map of loaded files.
func TestLoadedBLAS(t *testing.T) {
	torchtest.Require(t)
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/maps")
	}
	b, err := torch.LoadedBLAS()
	if err != nil {
		t.Fatal(err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	mapped := map[string]bool{}
	for line := range strings.SplitSeq(string(maps), "\n") {
		if f := strings.Fields(line); len(f) == 6 {
			mapped[filepath.Base(f[5])] = true
		}
	}
	for _, p := range b.Loaded {
		// maps shows the file a link points to; the loader's list the
		// name it opened.
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatalf("loaded %s: %v", p, err)
		}
		if !mapped[filepath.Base(real)] {
			t.Errorf("the shim says %s (%s) is loaded; /proc/self/maps does not list it", p, real)
		}
	}
	var openblas string
	for name := range mapped {
		if strings.HasPrefix(name, "libopenblas") {
			openblas = name
		}
	}
	t.Logf("BLAS: %v; loaded %v; BLAS_INFO=%s", b, b.Loaded, b.BuiltWith)
	if openblas != "" && b.Name != "OpenBLAS" {
		t.Errorf("/proc/self/maps lists %s, the shim's answer says %v", openblas, b)
	}
}

// FuzzParseBLAS: any answer parses without a panic into a line without
// control characters other than what the answer named as a path.
func FuzzParseBLAS(f *testing.F) {
	f.Add("loaded: /lib/libopenblas.so.0\nconfig:\n - Build settings: BLAS_INFO=open, X=1\n")
	f.Add("config:\nBLAS_INFO=")
	f.Fuzz(func(t *testing.T, info string) {
		b := torch.ParseBLAS(info, func(p string) (string, error) { return p + "/../blas/libblas.so.3", nil })
		if strings.Contains(b.String(), "\n") || strings.Contains(b.BuiltWith, "\n") {
			t.Errorf("multi-line: %q %q", b, b.BuiltWith)
		}
	})
}
