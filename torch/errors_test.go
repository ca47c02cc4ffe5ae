package torch_test

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// wantErr fails unless err is non-nil and mentions every part.
func wantErr(t *testing.T, what string, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not mention %q", what, err, p)
		}
	}
}

func TestOpErrors(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	e := env{s: s, dev: dev}
	a := e.f32(make([]float64, 6), 2, 3)
	b := e.f32(make([]float64, 20), 4, 5)
	_, err := a.Matmul(b).Float32s()
	wantErr(t, "shape mismatch", err, "matmul", "f32[2,3]", "f32[4,5]", dev.String())
	var oe *torch.OpError
	if !errors.As(err, &oe) || oe.Op != "matmul" {
		t.Errorf("shape mismatch: %T %v is not an *OpError of matmul", err, err)
	}

	d := s.FromFloat64(make([]float64, 12), 3, 4).ToDevice(dev)
	_, err = a.Matmul(d).Float32s()
	wantErr(t, "dtype mismatch", err, "matmul", "f32[2,3]", "f64[3,4]")

	_, err = a.Reshape(4, 2).Float32s()
	wantErr(t, "bad reshape", err, "reshape", "f32[2,3]")

	_, err = a.Add(nil).Float32s()
	wantErr(t, "nil operand", err, "add", "operand 2 is nil")

	_, err = a.Select(0, 5).Float32s()
	wantErr(t, "index out of range", err, "select", "f32[2,3]")
}

func TestWrongDevice(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	x := s.FromFloat32([]float32{1, 2}, 2)
	if !dev.IsCUDA() {
		// Without a GPU, asking for one is an error, not a crash.
		_, err := x.ToDevice(torch.CUDA(0)).Float32s()
		wantErr(t, "cuda on a CPU-only libtorch", err, "to", "cuda:0")
		_, err = s.Zeros([]int64{2}, torch.Options{Device: torch.CUDA(0)}).Float32s()
		wantErr(t, "zeros on cuda", err, "zeros", "cuda")
		return
	}
	y := x.ToDevice(dev)
	_, err := x.Add(y).Float32s()
	wantErr(t, "cpu + cuda", err, "add", "f32[2] cpu", "f32[2] cuda:0")
}

func TestStickyErrors(t *testing.T) {
	torchtest.Require(t)
	s := torch.NewScope()
	x := s.FromFloat32([]float32{1, 2, 3}, 3)
	bad := x.Reshape(2, 2)            // fails
	worse := bad.Exp().Add(x)         // no-ops carrying the first error
	fine := x.MulScalar(2)            // unrelated ops still work
	other := x.Matmul(x.Unsqueeze(0)) // a second failure
	_ = other
	if worse.Shape() != nil || worse.Dim() != -1 {
		t.Error("poisoned tensor reports a shape")
	}
	_, err := worse.Float32s()
	wantErr(t, "value of a poisoned tensor", err, "reshape", "f32[3]")
	if err := worse.Backward(nil); err == nil || !strings.Contains(err.Error(), "reshape") {
		t.Errorf("Backward of a poisoned tensor: %v", err)
	}
	if v, err := fine.Float32s(); err != nil || v[2] != 6 {
		t.Errorf("unrelated op: %v, %v", v, err)
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "reshape") {
		t.Errorf("scope keeps %v, want the first error (reshape)", err)
	}
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "reshape") {
		t.Errorf("Close returns %v, want the first error", err)
	}
	if !strings.Contains(worse.String(), "reshape") {
		t.Errorf("String of a poisoned tensor: %q", worse.String())
	}
}

func TestFreedTensor(t *testing.T) {
	torchtest.Require(t)
	inner := torch.NewScope()
	x := inner.FromFloat32([]float32{1, 2}, 2)
	alias := x.In(torchtest.Scope(t))
	if err := inner.Close(); err != nil {
		t.Fatal(err)
	}
	s := torchtest.Scope(t)
	y := s.FromFloat32([]float32{1, 2}, 2)
	_, err := y.Add(x).Float32s()
	wantErr(t, "freed operand", err, "add", "operand 2", "freed")
	if !errors.Is(err, torch.ErrFreed) {
		t.Errorf("%v does not wrap ErrFreed", err)
	}
	_, err = alias.Neg().Float32s()
	if !errors.Is(err, torch.ErrFreed) {
		t.Errorf("alias of a freed tensor: %v", err)
	}
	if _, err := x.Float32s(); !errors.Is(err, torch.ErrFreed) {
		t.Errorf("reading a freed tensor: %v", err)
	}
	if err := x.SetRequiresGrad(true); !errors.Is(err, torch.ErrFreed) {
		t.Errorf("SetRequiresGrad on a freed tensor: %v", err)
	}
	if x.Numel() != 0 || x.Shape() != nil {
		t.Error("freed tensor reports a shape")
	}
	x.Free() // no-op
	_, err = inner.Zeros([]int64{1}, torch.Options{}).Float32s()
	if !errors.Is(err, torch.ErrClosedScope) {
		t.Errorf("creating in a closed scope: %v", err)
	}
}

func TestSealedScope(t *testing.T) {
	torchtest.Require(t)
	params := torch.NewScope()
	defer params.Close()
	w := params.FromFloat32([]float32{1, 0, 0, 1}, 2, 2)
	params.Seal()
	s := torchtest.Scope(t)
	x := s.FromFloat32([]float32{3, 4}, 1, 2)

	if err := w.T().Err(); !errors.Is(err, torch.ErrSealed) {
		t.Errorf("op on parameters only: %v, want ErrSealed", err)
	}
	if err := params.Zeros([]int64{1}, torch.Options{}).Err(); !errors.Is(err, torch.ErrSealed) {
		t.Errorf("creating in a sealed scope: %v, want ErrSealed", err)
	}
	n := params.Len()
	y := w.Matmul(x.T()) // receiver sealed: the result goes to x's scope
	if y.Scope() != s || params.Len() != n {
		t.Errorf("result of a parameter op landed in %p, want %p", y.Scope(), s)
	}
	v, err := w.In(s).T().Matmul(x.T()).Float32s()
	if err != nil || v[0] != 3 || v[1] != 4 {
		t.Errorf("w.In(s).T()·xᵀ = %v, %v", v, err)
	}
	// In-place changes to parameters still work.
	if err := w.Copy_(s.FromFloat32([]float32{2, 0, 0, 2}, 2, 2)); err != nil {
		t.Errorf("Copy_ into a sealed scope's tensor: %v", err)
	}
}

// TestMissingShim runs this test binary again in a process where the shim
// cannot be found, so that Load and the calls before it are seen failing.
func TestMissingShim(t *testing.T) {
	if os.Getenv("TORCH_TEST_MISSING_SHIM") == "1" {
		missingShimChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMissingShim$", "-test.v")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TORCH_TEST_MISSING_SHIM=1", torch.EnvLib+"="+cmd.Dir+"/nowhere.so")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"load: torch: cannot load the libtorch shim liblavascope_torch.so",
		"nowhere.so: not found",
		"make torch",
		"before load: torch: zeros: torch: the libtorch shim is not loaded",
		"explicit: torch: cannot load",
		"garbage loads without a reason: 0",
		"ok: child done",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

func missingShimChild() {
	s := torch.NewScope()
	println("before load:", s.Zeros([]int64{1}, torch.Options{}).Err().Error())
	err := torch.Load("")
	var le *torch.LoadError
	if !errors.As(err, &le) {
		println("FAIL: not a *LoadError:", err)
		return
	}
	println("load:", err.Error())
	println("explicit:", torch.Load("/nonexistent/liblavascope_torch.so").Error())
	// A shim that does not load keeps dlopen's reason, which a second
	// call (dlerror) reads on the same thread, with other goroutines busy.
	// The issue saw 3 empty reasons in 30 loads; this machine showed none
	// in 2000 even without the thread locked, so this checks the reason
	// is kept, not that the race is gone.
	garbage := "not-a-library.so"
	if err := os.WriteFile(garbage, []byte("not an ELF file"), 0o644); err != nil {
		println("FAIL: writing", garbage, err.Error())
		return
	}
	stop := make(chan struct{})
	for range 4 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
	}
	empty := 0
	for range 30 {
		// glibc's reason names the file: the path then appears twice.
		if err := torch.Load(garbage); err == nil || !strings.Contains(err.Error(), "does not load") || strings.Count(err.Error(), garbage) < 2 {
			empty++
			println("garbage:", err.Error())
		}
	}
	close(stop)
	println("garbage loads without a reason:", empty)
	println("ok: child done")
}

func TestLoadAnotherPath(t *testing.T) {
	torchtest.Require(t)
	if err := torch.Load(""); err != nil {
		t.Errorf("second Load: %v", err)
	}
	if err := torch.Load(torch.LibPath()); err != nil {
		t.Errorf("Load of the loaded path: %v", err)
	}
	wantErr(t, "Load of another path", torch.Load(os.Args[0]), "already loaded")
}
