package torch

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is a tensor element type. The zero value is Float32.
type DType int8

// The element types; their numbers are shared with the shim.
const (
	Float32 DType = iota
	Float16
	BFloat16
	Float64
	Int64
	Int32
	Uint8
	Bool
)

var dtypeNames = [...]string{"f32", "f16", "bf16", "f64", "i64", "i32", "u8", "bool"}
var dtypeSizes = [...]int{4, 2, 2, 8, 8, 4, 1, 1}

func (d DType) valid() bool { return d >= 0 && int(d) < len(dtypeNames) }

// String is the short name: f32, f16, bf16, f64, i64, i32, u8, bool.
func (d DType) String() string {
	if !d.valid() {
		return "dtype(" + strconv.Itoa(int(d)) + ")"
	}
	return dtypeNames[d]
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	if !d.valid() {
		return 0
	}
	return dtypeSizes[d]
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d <= Float64 && d >= Float32 }

// ParseDType reads a dtype name as String writes it, or a safetensors name
// (F32, F16, BF16, F64, I64, I32, U8, BOOL).
func ParseDType(s string) (DType, error) {
	for i, n := range dtypeNames {
		if strings.EqualFold(s, n) {
			return DType(i), nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q (want one of %s)", s, strings.Join(dtypeNames[:], ", "))
}

// DeviceType is the kind of a Device.
type DeviceType int8

const (
	// DeviceCPU is the host.
	DeviceCPU DeviceType = iota
	// DeviceCUDA is an NVIDIA GPU.
	DeviceCUDA
	// DeviceOther is any device the shim reports that lavascope does not use
	// (meta, ...).
	DeviceOther
)

// Device is where a tensor lives. The zero value is the CPU.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{}

// CUDA returns the i-th CUDA device.
func CUDA(i int) Device { return Device{Type: DeviceCUDA, Index: i} }

// String writes cpu or cuda:N.
func (d Device) String() string {
	switch d.Type {
	case DeviceCPU:
		return "cpu"
	case DeviceCUDA:
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return "other"
}

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d.Type == DeviceCUDA }

// ParseDevice reads cpu, cuda, cuda:N or auto. auto is cuda:0 when the
// loaded libtorch sees a GPU and the CPU otherwise, so it needs Load first;
// cuda:N checks that the device exists.
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "auto":
		if !loaded.Load() {
			return CPU, fmt.Errorf("device auto: %w", ErrNotLoaded)
		}
		if CUDAAvailable() {
			return CUDA(0), nil
		}
		return CPU, nil
	case s == "cuda" || strings.HasPrefix(s, "cuda:"):
		i := 0
		if s != "cuda" {
			n, err := strconv.Atoi(s[len("cuda:"):])
			if err != nil || n < 0 {
				return CPU, fmt.Errorf("device %q: want cuda:N with N a device number", s)
			}
			i = n
		}
		if loaded.Load() {
			if n := CUDADeviceCount(); i >= n {
				return CPU, fmt.Errorf("device %q: this libtorch sees %d CUDA devices (CUDA available: %v)", s, n, CUDAAvailable())
			}
		}
		return CUDA(i), nil
	}
	return CPU, fmt.Errorf("device %q: want auto, cpu, cuda or cuda:N", s)
}

// Options are the dtype and device of a new tensor. The zero value is
// float32 on the CPU.
type Options struct {
	DType  DType
	Device Device
}

func (o Options) ints() [3]int64 {
	return [3]int64{int64(o.DType), int64(o.Device.Type), int64(o.Device.Index)}
}
