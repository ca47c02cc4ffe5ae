package model

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// The messages below are the texts libtorch 1.13 and 2.x, the CUDA runtime
// and the shim produce, as they reach Go (wrapped in a torch.OpError).
func TestClassifyDeviceError(t *testing.T) {
	op := func(msg string) error { return &torch.OpError{Op: "matmul", Err: errors.New(msg)} }
	for _, c := range []struct {
		name string
		err  error
		want DeviceProblem
	}{
		{"nil", nil, NotDeviceProblem},
		{"shape", op("f32[2,3] cpu, f32[4,5] cpu: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"), NotDeviceProblem},
		{"torch 2 OOM", op("f32[202,12,50,50] cuda:0: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.06 GiB is free."), OutOfMemory},
		{"torch 1.13 OOM", op("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity; 14.2 GiB already allocated)"), OutOfMemory},
		{"runtime OOM", op("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"), OutOfMemory},
		{"cublas", op("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), OutOfMemory},
		{"host", op("[enforce fail at alloc_cpu.cpp:83] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)"), OutOfMemory},
		{"busy", op("CUDA error: CUDA-capable device(s) is/are busy or unavailable"), GPUBusy},
		{"busy old", op("cudaErrorDevicesUnavailable: all CUDA-capable devices are busy or unavailable"), GPUBusy},
		{"no driver", op("Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver"), NoGPU},
		{"old driver", op("The NVIDIA driver on your system is too old (found version 11040)"), NoGPU},
		{"ordinal", op("CUDA error: invalid device ordinal"), NoGPU},
		{"shim index", errors.New("torch: cuda_synchronize: cuda:3 does not exist (1 CUDA devices)"), NoGPU},
		{"parse device", errors.New(`device "cuda:2": this libtorch sees 1 CUDA devices (CUDA available: true)`), NoGPU},
		{"no cuda build", errors.New("torch: cuda memory of cuda:0: the shim was built without CUDA (rebuild with `make torch` against a CUDA libtorch)"), NoCUDABuild},
		{"not compiled", op("Torch not compiled with CUDA enabled"), NoCUDABuild},
		{"kernel fault", op("CUDA error: an illegal memory access was encountered"), NotDeviceProblem},
		{"wrapped twice", fmt.Errorf("explain-batch (202 items): %w", op("CUDA out of memory. Tried to allocate 1.50 GiB")), OutOfMemory},
		{"already classified", fmt.Errorf("bench: %w", &DeviceError{Problem: GPUBusy, Device: "cuda:1"}), GPUBusy},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ClassifyDeviceError(c.err); got != c.want {
				t.Errorf("ClassifyDeviceError(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}

func TestDeviceErrorMessages(t *testing.T) {
	oom := &torch.OpError{Op: "bmm", Err: errors.New("f32[202,12,50,64] cuda:0: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15.77 GiB")}
	err := AsDeviceError(fmt.Errorf("explain-batch: %w", oom), torch.CUDA(0))
	var de *DeviceError
	if !errors.As(err, &de) || de.Problem != OutOfMemory {
		t.Fatalf("AsDeviceError(OOM) = %v, want a *DeviceError for out of memory", err)
	}
	if !errors.Is(err, oom) {
		t.Errorf("the device error does not wrap the original")
	}
	msg := err.Error()
	for _, want := range []string{"cuda:0 ran out of memory", "tried to allocate 2.00 GiB", "fewer pairs", "--device cpu"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("message spans several lines: %q", msg)
	}
	if s := de.Short(); len([]rune(s)) > 80 || !strings.Contains(s, "cuda:0") {
		t.Errorf("Short() = %q: want at most 80 characters naming the device", s)
	}

	plain := errors.New("explain: target 3 has no cells\nmore detail")
	if got := AsDeviceError(plain, torch.CPU); got != plain {
		t.Errorf("AsDeviceError changed a non-device error: %v", got)
	}
	if AsDeviceError(nil, torch.CPU) != nil {
		t.Errorf("nil error is not kept nil")
	}

	for _, p := range []DeviceProblem{OutOfMemory, NoGPU, GPUBusy, NoCUDABuild} {
		e := &DeviceError{Problem: p, Device: "cuda:1"}
		if m := e.Error(); !strings.Contains(m, "cuda:1") || strings.Contains(m, "\n") {
			t.Errorf("%v: message %q: want one line naming cuda:1", p, m)
		}
		if s := e.Short(); len([]rune(s)) > 80 {
			t.Errorf("%v: Short %q is longer than 80 characters", p, s)
		}
	}
	host := AsDeviceError(errors.New("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8589934592 bytes"), torch.CPU)
	if m := host.Error(); !strings.Contains(m, "out of host memory") {
		t.Errorf("host OOM message %q", m)
	}
}

func TestResolveDevice(t *testing.T) {
	torchtest.Require(t)
	dev, notice, err := ResolveDevice("cpu")
	if err != nil || dev != torch.CPU || notice != "" {
		t.Errorf("cpu: %v, %q, %v", dev, notice, err)
	}
	if _, _, err := ResolveDevice("tpu"); err == nil {
		t.Errorf("tpu: no error")
	}
	dev, notice, err = ResolveDevice("auto")
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	if torch.CUDAAvailable() {
		if dev != torch.CUDA(0) || notice != "" {
			t.Errorf("auto with a GPU: %v, %q", dev, notice)
		}
		if dev, _, err := ResolveDevice("cuda"); err != nil || dev != torch.CUDA(0) {
			t.Errorf("cuda: %v, %v", dev, err)
		}
		_, _, err := ResolveDevice(fmt.Sprintf("cuda:%d", torch.CUDADeviceCount()))
		var de *DeviceError
		if !errors.As(err, &de) || de.Problem != NoGPU || !strings.Contains(err.Error(), "sees") {
			t.Errorf("a device beyond the last: %v, want a no-GPU device error saying how many there are", err)
		}
		return
	}
	if dev != torch.CPU || !strings.Contains(notice, "running on the CPU") {
		t.Errorf("auto without a GPU: %v, notice %q: want the CPU with a notice", dev, notice)
	}
	_, _, err = ResolveDevice("cuda")
	var de *DeviceError
	if !errors.As(err, &de) {
		t.Fatalf("cuda without a GPU: %v, want a *DeviceError", err)
	}
	want := NoGPU
	if !torch.CUDACompiled() {
		want = NoCUDABuild
		if !strings.Contains(err.Error(), "built without CUDA") || !strings.Contains(err.Error(), "make torch") {
			t.Errorf("message %q should say the shim lacks CUDA and how to rebuild it", err)
		}
	}
	if de.Problem != want {
		t.Errorf("cuda without a GPU: problem %v, want %v", de.Problem, want)
	}
	// The shim's own refusal, as an op on cuda reports it here.
	s := torch.NewScope()
	s.Zeros([]int64{1}, torch.Options{Device: torch.CUDA(0)})
	if got := ClassifyDeviceError(s.Close()); got != want {
		t.Errorf("a tensor on cuda without a GPU: %v, want %v", got, want)
	}
}
