package torch_test

import (
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

func TestCUDAMemory(t *testing.T) {
	dev := torchtest.Device(t)
	if !dev.IsCUDA() {
		if _, err := torch.CUDAMemory(0); err == nil {
			t.Error("CUDAMemory without CUDA: no error")
		}
		if err := torch.CUDASynchronize(0); err == nil {
			t.Error("CUDASynchronize without CUDA: no error")
		}
		t.Skip("LAVASCOPE_TEST_DEVICE is not cuda")
	}
	if n := torch.CUDADeviceCount(); n < 1 {
		t.Fatalf("CUDADeviceCount = %d", n)
	}
	if !torch.CUDACompiled() {
		t.Fatal("the shim was built without CUDA memory statistics (cuda_runtime_api.h not found by build-torch.sh)")
	}
	if err := torch.CUDAResetPeakMemory(dev.Index); err != nil {
		t.Fatal(err)
	}
	before, err := torch.CUDAMemory(dev.Index)
	if err != nil {
		t.Fatal(err)
	}
	s := torchtest.Scope(t)
	x := s.Zeros([]int64{16 << 20}, torch.Options{Device: dev}) // 64 MiB
	if err := torch.CUDASynchronize(dev.Index); err != nil {
		t.Fatal(err)
	}
	during, err := torch.CUDAMemory(dev.Index)
	if err != nil {
		t.Fatal(err)
	}
	if d := during.Allocated - before.Allocated; d < 64<<20 {
		t.Errorf("allocated grew by %d bytes for a 64 MiB tensor", d)
	}
	x.Free()
	after, err := torch.CUDAMemory(dev.Index)
	if err != nil {
		t.Fatal(err)
	}
	if after.Allocated != before.Allocated || after.PeakAllocated < during.Allocated {
		t.Errorf("after Free: allocated %d (before %d), peak %d (during %d)", after.Allocated, before.Allocated, after.PeakAllocated, during.Allocated)
	}
	if after.Total <= 0 || after.Free <= 0 || after.Free > after.Total || strings.TrimSpace(after.Name) == "" {
		t.Errorf("device info %+v", after)
	}
	t.Logf("%s: %.1f GiB total", after.Name, float64(after.Total)/(1<<30))
}

func TestParseDevice(t *testing.T) {
	torchtest.Require(t)
	for _, tc := range []struct {
		in   string
		want torch.Device
		ok   bool
	}{
		{"cpu", torch.CPU, true},
		{"cuda:x", torch.CPU, false},
		{"gpu", torch.CPU, false},
		{"cuda:-1", torch.CPU, false},
	} {
		got, err := torch.ParseDevice(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseDevice(%q) = %v, %v", tc.in, got, err)
		}
	}
	auto, err := torch.ParseDevice("auto")
	if err != nil || auto.IsCUDA() != torch.CUDAAvailable() {
		t.Errorf("auto = %v, %v with CUDA available %v", auto, err, torch.CUDAAvailable())
	}
	_, err = torch.ParseDevice("cuda:99")
	wantErr(t, "cuda:99", err, "cuda:99")
}
