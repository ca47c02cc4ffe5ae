package torch

import "fmt"

var (
	opVersion         = newOp("version")
	opLive            = newOp("live")
	opCUDAAvailable   = newOp("cuda_available")
	opCUDADeviceCount = newOp("cuda_device_count")
	opCUDACompiled    = newOp("cuda_compiled")
	opCUDASync        = newOp("cuda_synchronize")
	opCUDAMemory      = newOp("cuda_memory")
	opCUDAResetPeak   = newOp("cuda_reset_peak")
	opSetNumThreads   = newOp("set_num_threads")
	opGetNumThreads   = newOp("get_num_threads")
	opManualSeed      = newOp("manual_seed")
)

// Version is the libtorch version the shim was built against ("1.13.0"),
// empty before Load.
func Version() string {
	c := getCall()
	defer putCall(c)
	s, err := c.exec(opVersion)
	if err != nil {
		return ""
	}
	return s
}

func flag(o *opcode) bool {
	var v int64
	return callInts(o, nil, &v) == nil && v != 0
}

// CUDAAvailable reports whether the loaded libtorch has CUDA and sees a GPU.
func CUDAAvailable() bool { return flag(opCUDAAvailable) }

// CUDACompiled reports whether the shim was built with CUDA memory
// statistics (a CUDA libtorch and its cuda_runtime_api.h).
func CUDACompiled() bool { return flag(opCUDACompiled) }

// CUDADeviceCount is the number of GPUs libtorch sees (0 without CUDA).
func CUDADeviceCount() int {
	var n int64
	if callInts(opCUDADeviceCount, nil, &n) != nil {
		return 0
	}
	return int(n)
}

// CUDASynchronize waits for all work queued on CUDA device dev; for timing.
func CUDASynchronize(dev int) error {
	if err := hostAccess(opCUDASync.name); err != nil {
		return err
	}
	return callInts(opCUDASync, []int64{int64(dev)})
}

// CUDAMemStats describes one GPU's memory: what libtorch's caching allocator
// holds and what the driver reports.
type CUDAMemStats struct {
	Name          string
	Allocated     int64 // bytes in live tensors
	PeakAllocated int64 // most bytes in live tensors since the last reset
	Reserved      int64 // bytes the caching allocator holds
	Free, Total   int64 // the device's free and total memory
}

// CUDAMemory returns device dev's memory statistics. It fails with a clear
// error on a shim built without CUDA.
func CUDAMemory(dev int) (CUDAMemStats, error) {
	c := getCall()
	defer putCall(c)
	c.ints = append(c.ints, int64(dev))
	name, err := c.exec(opCUDAMemory)
	if err != nil {
		return CUDAMemStats{}, fmt.Errorf("torch: cuda memory of cuda:%d: %w", dev, err)
	}
	r := c.iout
	return CUDAMemStats{Name: name, Allocated: r[0], PeakAllocated: r[1], Reserved: r[2], Free: r[3], Total: r[4]}, nil
}

// CUDAResetPeakMemory starts a new peak for CUDAMemory's PeakAllocated.
func CUDAResetPeakMemory(dev int) error { return callInts(opCUDAResetPeak, []int64{int64(dev)}) }

// SetNumThreads sets the size of libtorch's CPU thread pool. With OpenMP
// (most libtorch builds) the size belongs to each OS thread: set it, and
// read it with NumThreads, on the Worker that runs the work.
func SetNumThreads(n int) error { return callInts(opSetNumThreads, []int64{int64(n)}) }

// NumThreads is the size of libtorch's CPU thread pool for the calling
// thread; 0 before Load.
func NumThreads() int {
	var n int64
	if callInts(opGetNumThreads, nil, &n) != nil {
		return 0
	}
	return int(n)
}

// ManualSeed seeds libtorch's CPU and CUDA generators.
func ManualSeed(seed uint64) error { return callInts(opManualSeed, []int64{int64(seed)}) }

// LiveTensors is the number of tensors alive in the shim, for leak tests;
// -1 before Load.
func LiveTensors() int64 {
	var n int64
	if callInts(opLive, nil, &n) != nil {
		return -1
	}
	return n
}
