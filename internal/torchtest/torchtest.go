// Package torchtest is the helper every test that needs libtorch uses: it
// loads the shim once and skips the test when the shim is absent, unless
// LAVASCOPE_REQUIRE_TORCH=1 (as `make test` and CI set), which turns the skip
// into a failure so a broken build cannot pass as skipped tests.
package torchtest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/lavascope/lavascope/torch"
)

var (
	once    sync.Once
	loadErr error
)

// Require loads the shim or skips (fails, under LAVASCOPE_REQUIRE_TORCH=1)
// the test.
func Require(t testing.TB) {
	t.Helper()
	once.Do(func() { loadErr = torch.Load(libPath()) })
	if loadErr == nil {
		return
	}
	if os.Getenv("LAVASCOPE_REQUIRE_TORCH") == "1" {
		t.Fatalf("LAVASCOPE_REQUIRE_TORCH=1 but %v", loadErr)
	}
	t.Skipf("skipping: %v", loadErr)
}

// libPath is $LAVASCOPE_TORCH_LIB, or else the shim in the build/ folder of
// the repository this file was compiled in: a test binary lives in a
// temporary folder, so the shim is not beside it, and torch.Load never
// searches the working directory.
func libPath() string {
	if p := os.Getenv(torch.EnvLib); p != "" {
		return p
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "build", torch.LibName)
}

// Device is the device tests run on: the CPU, or cuda:0 when
// LAVASCOPE_TEST_DEVICE=cuda (then a machine without a GPU fails the test
// rather than quietly testing the CPU). It calls Require.
func Device(t testing.TB) torch.Device {
	t.Helper()
	Require(t)
	switch d := os.Getenv("LAVASCOPE_TEST_DEVICE"); d {
	case "", "cpu":
		return torch.CPU
	default:
		dev, err := torch.ParseDevice(d)
		if err != nil {
			t.Fatalf("LAVASCOPE_TEST_DEVICE=%s: %v", d, err)
		}
		if dev.IsCUDA() && !torch.CUDAAvailable() {
			t.Fatalf("LAVASCOPE_TEST_DEVICE=%s but libtorch %s sees no CUDA device", d, torch.Version())
		}
		return dev
	}
}

// Scope returns a new scope that is closed when the test ends.
func Scope(t testing.TB) *torch.Scope {
	t.Helper()
	s := torch.NewScope()
	t.Cleanup(func() { s.Close() })
	return s
}

// AtLeast reports whether the loaded libtorch is major.minor or later, for
// tests whose expectations follow libtorch's version. It calls Require.
func AtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	Require(t)
	var ma, mi int
	if _, err := fmt.Sscanf(torch.Version(), "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("libtorch version %q: %v", torch.Version(), err)
	}
	return ma > major || ma == major && mi >= minor
}
