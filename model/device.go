package model

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/lavascope/lavascope/torch"
)

// DeviceProblem is a failure of the compute device that the user can act
// on, as opposed to a bug or bad input.
type DeviceProblem int

const (
	// NotDeviceProblem: the error is something else.
	NotDeviceProblem DeviceProblem = iota
	// OutOfMemory: the GPU (or, on the CPU, the host) ran out of memory.
	OutOfMemory
	// NoGPU: CUDA was asked for but libtorch sees no usable GPU (no driver,
	// none visible, or a device number beyond those there are).
	NoGPU
	// GPUBusy: the GPU exists but cannot be used now (another process holds
	// it in exclusive mode, or it is being reset).
	GPUBusy
	// NoCUDABuild: CUDA was asked for but the shim was built against a
	// libtorch without CUDA.
	NoCUDABuild
)

func (p DeviceProblem) String() string {
	switch p {
	case OutOfMemory:
		return "out of memory"
	case NoGPU:
		return "no GPU"
	case GPUBusy:
		return "GPU busy"
	case NoCUDABuild:
		return "shim without CUDA"
	}
	return "not a device problem"
}

// The texts libtorch, the CUDA runtime and the shim use for each problem,
// lower-cased, in the order they are looked for: out of memory first, since
// an allocation failure on a busy card is still the allocation failure.
var deviceProblemTexts = []struct {
	p     DeviceProblem
	texts []string
}{
	{OutOfMemory, []string{
		"cuda out of memory",                         // c10::OutOfMemoryError
		"out of memory",                              // cudaErrorMemoryAllocation
		"cudaerrormemoryallocation",                  // its name instead of its text
		"cublas_status_alloc_failed",                 // cuBLAS workspace
		"cudnn_status_alloc_failed",                  // cuDNN workspace
		"defaultcpuallocator: can't allocate memory", // host
		"defaultcpuallocator: not enough memory",     // host, older libtorch
		"std::bad_alloc",                             // host, C++ allocation
	}},
	{GPUBusy, []string{
		"busy or unavailable", // cudaErrorDevicesUnavailable
		"cudaerrordevicesunavailable",
	}},
	{NoCUDABuild, []string{
		"the shim was built without cuda",  // shim
		"torch not compiled with cuda",     // libtorch
		"not linked with support for cuda", // libtorch, CPU build
	}},
	{NoGPU, []string{
		"no cuda gpus are available",
		"found no nvidia driver",
		"nvidia driver on your system is too old",
		"cuda driver version is insufficient",
		"no cuda-capable device is detected",
		"invalid device ordinal",
		"cuda devices)",                // shim: "cuda:3 does not exist (1 CUDA devices)"
		"cuda devices (cuda available", // torch.ParseDevice
		"cuda is not available",        // shim's synchronize
	}},
}

// ClassifyDeviceError says which device problem err is, from its text (the
// errors come from C++ as strings). A *DeviceError answers with its own.
func ClassifyDeviceError(err error) DeviceProblem {
	if err == nil {
		return NotDeviceProblem
	}
	var de *DeviceError
	if errors.As(err, &de) {
		return de.Problem
	}
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "illegal memory access"):
		// A kernel fault mentions memory but is a bug, not a lack of it.
		return NotDeviceProblem
	case strings.Contains(msg, "has no cuda or sees no gpu"),
		strings.Contains(msg, "from the 'cuda' backend") && !torch.CUDAAvailable():
		// The shim's device check, or an op sent to a CUDA backend that
		// is not there: which of the two problems depends on the build.
		if torch.CUDACompiled() {
			return NoGPU
		}
		return NoCUDABuild
	}
	for _, c := range deviceProblemTexts {
		for _, t := range c.texts {
			if strings.Contains(msg, t) {
				return c.p
			}
		}
	}
	return NotDeviceProblem
}

// DeviceError is a device problem with what to do about it. Its Error is
// one line, fit for a terminal or a status bar.
type DeviceError struct {
	Problem DeviceProblem
	// Device is the device asked for ("cuda:0"), or empty when unknown.
	Device string
	// Detail is a fact from the original error worth keeping in the
	// message (how much an allocation wanted), or empty.
	Detail string
	// Err is the original error.
	Err error
}

func (e *DeviceError) Error() string {
	dev := e.Device
	if dev == "" {
		dev = "the device"
	}
	detail := ""
	if e.Detail != "" {
		detail = " (" + e.Detail + ")"
	}
	switch e.Problem {
	case OutOfMemory:
		if strings.HasPrefix(dev, "cpu") {
			return "out of host memory" + detail + ": use fewer pairs or a smaller batch, or close other programs"
		}
		return dev + " ran out of memory" + detail + ": use fewer pairs or a smaller batch, --dtype bf16, " +
			"free the GPU (nvidia-smi shows who holds it), or --device cpu"
	case NoGPU:
		if e.Detail != "" {
			return "CUDA asked for (" + dev + ") but " + e.Detail + ": check nvidia-smi, the driver and CUDA_VISIBLE_DEVICES, " +
				"or use --device cpu (or auto)"
		}
		return "CUDA asked for (" + dev + ") but libtorch sees no usable GPU: check nvidia-smi, the driver and " +
			"CUDA_VISIBLE_DEVICES, or use --device cpu (or auto)"
	case GPUBusy:
		return dev + " is busy or unavailable" + detail + " (another process holds it in exclusive mode, or it is resetting): " +
			"wait, pick another with --device cuda:N, or use --device cpu"
	case NoCUDABuild:
		lib := "the libtorch shim"
		if p := torch.LibPath(); p != "" {
			lib += " " + p
		}
		if v := torch.Version(); v != "" {
			lib += " (libtorch " + v + ")"
		}
		return "CUDA asked for (" + dev + ") but " + lib + " was built without CUDA: install a CUDA PyTorch " +
			"(pip install torch) or set LIBTORCH to a CUDA libtorch, run `make torch FORCE=1`, or use --device cpu (or auto)"
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return "device error on " + dev
}

func (e *DeviceError) Unwrap() error { return e.Err }

// Short is the message cut for a status bar: the problem, the device and
// the first remedy.
func (e *DeviceError) Short() string {
	dev := e.Device
	if dev == "" {
		dev = "device"
	}
	switch e.Problem {
	case OutOfMemory:
		if strings.HasPrefix(dev, "cpu") {
			return "out of host memory: use fewer pairs"
		}
		return dev + " out of memory: fewer pairs, bf16 or --device cpu"
	case NoGPU:
		return "no usable GPU for " + dev + ": see nvidia-smi, or --device cpu"
	case GPUBusy:
		return dev + " is busy: wait, another GPU, or --device cpu"
	case NoCUDABuild:
		return "shim built without CUDA: make torch with a CUDA PyTorch, or --device cpu"
	}
	return e.Error()
}

var allocRe = regexp.MustCompile(`(?i)tried to allocate ([0-9.]+ ?[kmgt]?i?b)`)

// AsDeviceError returns err as a *DeviceError for device dev when it is a
// device problem, and err unchanged otherwise (nil stays nil).
func AsDeviceError(err error, dev torch.Device) error {
	p := ClassifyDeviceError(err)
	if p == NotDeviceProblem {
		return err
	}
	var de *DeviceError
	if errors.As(err, &de) {
		return err
	}
	de = &DeviceError{Problem: p, Device: dev.String(), Err: err}
	if p == OutOfMemory {
		if m := allocRe.FindStringSubmatch(err.Error()); m != nil {
			de.Detail = "tried to allocate " + m[1]
		}
	}
	return de
}

// ResolveDevice turns the device setting (auto, cpu, cuda, cuda:N) into a
// device, after the shim has loaded. auto is the first GPU when libtorch
// sees one, else the CPU with a notice saying why. An explicit cuda that
// cannot work is a *DeviceError (shim without CUDA, no GPU, a busy GPU),
// found by allocating one small tensor there. Call it from the goroutine
// that runs the torch calls.
func ResolveDevice(spec string) (dev torch.Device, notice string, err error) {
	switch {
	case spec == "" || spec == "auto":
		if torch.CUDAAvailable() && torch.CUDADeviceCount() > 0 {
			dev = torch.CUDA(0)
			if err := probeDevice(dev); err != nil {
				return torch.CPU, fmt.Sprintf("device auto: %s; running on the CPU", firstLine(err)), nil
			}
			return dev, "", nil
		}
		why := "libtorch sees no GPU"
		if !torch.CUDACompiled() {
			why = "the libtorch shim was built without CUDA"
		}
		return torch.CPU, "device auto: " + why + "; running on the CPU", nil
	case spec == "cpu":
		return torch.CPU, "", nil
	case spec == "cuda" || strings.HasPrefix(spec, "cuda:"):
		want := spec
		if want == "cuda" {
			want = "cuda:0"
		}
		if !torch.CUDAAvailable() {
			p := NoGPU
			if !torch.CUDACompiled() {
				p = NoCUDABuild
			}
			return torch.CPU, "", &DeviceError{Problem: p, Device: want, Err: fmt.Errorf("device %s: CUDA not available", spec)}
		}
		d, err := torch.ParseDevice(spec)
		if err != nil {
			n := torch.CUDADeviceCount()
			if strings.Contains(err.Error(), "CUDA devices") {
				return torch.CPU, "", &DeviceError{Problem: NoGPU, Device: want, Err: err,
					Detail: fmt.Sprintf("libtorch sees %d GPU(s), cuda:0 to cuda:%d", n, n-1)}
			}
			return torch.CPU, "", err
		}
		if err := probeDevice(d); err != nil {
			return torch.CPU, "", err
		}
		return d, "", nil
	}
	_, err = torch.ParseDevice(spec)
	return torch.CPU, "", err
}

// probeDevice allocates one element on dev, which makes the CUDA runtime
// create its context there: a busy or broken GPU fails here, once, with a
// clear message, not in the middle of a model.
func probeDevice(dev torch.Device) error {
	s := torch.NewScope()
	s.Zeros([]int64{1}, torch.Options{Device: dev})
	return AsDeviceError(s.Close(), dev)
}

func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}
