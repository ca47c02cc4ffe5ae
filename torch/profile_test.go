package torch_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

func TestProfile(t *testing.T) {
	dev := torchtest.Device(t)
	if !torch.ProfilerCompiled() {
		if err := torch.StartProfile(false); err == nil || !strings.Contains(err.Error(), "profiler is off") {
			t.Fatalf("StartProfile in a shim without the profiler: %v", err)
		}
		t.Skip("the shim has no profiler: its headers did not compile against this libtorch")
	}
	// The profiler follows the OS thread that starts it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := torch.StopProfile(); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("StopProfile before StartProfile: %v", err)
	}
	s := torchtest.Scope(t)
	a := s.Randn([]int64{64, 64}, torch.Options{Device: dev})
	if err := torch.StartProfile(dev.IsCUDA()); err != nil {
		t.Fatal(err)
	}
	if err := torch.StartProfile(dev.IsCUDA()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("StartProfile twice: %v", err)
	}
	for range 3 {
		a.Matmul(a).Relu()
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if dev.IsCUDA() {
		if err := torch.CUDASynchronize(dev.Index); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := torch.StopProfile()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	var matmulTime time.Duration
	gpu := 0
	for _, e := range evs {
		if e.GPU {
			gpu++
			continue
		}
		count[e.Name]++
		if e.Name == "aten::matmul" {
			matmulTime += e.Duration
		}
	}
	if count["aten::matmul"] != 3 || count["aten::relu"] != 3 {
		t.Errorf("host events: matmul %d, relu %d, want 3 each (all: %v)", count["aten::matmul"], count["aten::relu"], count)
	}
	// libtorch 1.13 keeps whole microseconds: a tiny op may last 0.
	if matmulTime <= 0 {
		t.Error("three 64×64 products took no time")
	}
	if dev.IsCUDA() && gpu == 0 {
		t.Error("no GPU event recorded on CUDA")
	}
	if !dev.IsCUDA() && gpu != 0 {
		t.Errorf("%d GPU events on the CPU", gpu)
	}
	// Stopped: ops run without it, and it can run again.
	a.Relu()
	if err := torch.StartProfile(false); err != nil {
		t.Fatal(err)
	}
	again, err := torch.StopProfile()
	if err != nil {
		t.Fatal(err)
	}
	if len(again) > 0 {
		t.Errorf("a profile of no work has %d events: %+v", len(again), again[0])
	}
}
