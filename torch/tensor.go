package torch

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
)

var (
	opABI          = newOp("abi")
	opMeta         = newOp("meta")
	opItem         = newOp("item")
	opIsLeaf       = newOp("is_leaf")
	opZeros        = newOp("zeros")
	opOnes         = newOp("ones")
	opFull         = newOp("full")
	opRandn        = newOp("randn")
	opRand         = newOp("rand")
	opEye          = newOp("eye")
	opArange       = newOp("arange")
	opScalarTensor = newOp("scalar_tensor")
	opZerosLike    = newOp("zeros_like")
	opOnesLike     = newOp("ones_like")
	opFullLike     = newOp("full_like")
	opTo           = newOp("to")
	opToDType      = newOp("to_dtype")
	opClone        = newOp("clone")
	opDetach       = newOp("detach")
	opContiguous   = newOp("contiguous")
)

// create runs a creation op whose result belongs to s.
func (s *Scope) create(o *opcode, opts Options, ints []int64, dbls []float64) *Tensor {
	if err := s.ready(); err != nil {
		if s == nil {
			return &Tensor{err: &OpError{Op: o.name, Err: err}}
		}
		return s.poison(&OpError{Op: o.name, Err: err})
	}
	c := getCall()
	oi := opts.ints()
	c.ints = append(c.ints, oi[:]...)
	c.ints = append(c.ints, ints...)
	c.dbls = append(c.dbls, dbls...)
	return c.result(o, s)
}

// Zeros returns a tensor of zeros.
func (s *Scope) Zeros(shape []int64, o Options) *Tensor { return s.create(opZeros, o, shape, nil) }

// Ones returns a tensor of ones.
func (s *Scope) Ones(shape []int64, o Options) *Tensor { return s.create(opOnes, o, shape, nil) }

// Full returns a tensor filled with v.
func (s *Scope) Full(shape []int64, v float64, o Options) *Tensor {
	return s.create(opFull, o, shape, []float64{v})
}

// Randn returns samples of the standard normal distribution.
func (s *Scope) Randn(shape []int64, o Options) *Tensor { return s.create(opRandn, o, shape, nil) }

// Rand returns samples of the uniform distribution on [0, 1).
func (s *Scope) Rand(shape []int64, o Options) *Tensor { return s.create(opRand, o, shape, nil) }

// Eye returns the n×n identity matrix.
func (s *Scope) Eye(n int64, o Options) *Tensor { return s.create(opEye, o, []int64{n}, nil) }

// Arange returns start, start+step, ... below end.
func (s *Scope) Arange(start, end, step float64, o Options) *Tensor {
	return s.create(opArange, o, nil, []float64{start, end, step})
}

// Scalar returns a zero-dimensional tensor holding v.
func (s *Scope) Scalar(v float64, o Options) *Tensor {
	return s.create(opScalarTensor, o, nil, []float64{v})
}

// ZerosLike returns zeros of t's shape, dtype and device.
func (t *Tensor) ZerosLike() *Tensor { return unary(opZerosLike, t, nil, nil) }

// OnesLike returns ones of t's shape, dtype and device.
func (t *Tensor) OnesLike() *Tensor { return unary(opOnesLike, t, nil, nil) }

// FullLike returns v of t's shape, dtype and device.
func (t *Tensor) FullLike(v float64) *Tensor { return unary(opFullLike, t, nil, []float64{v}) }

// FromFloat32 copies data into a new float32 CPU tensor of the given shape;
// with no shape it is one-dimensional (use Scalar for zero dimensions).
func (s *Scope) FromFloat32(data []float32, shape ...int64) *Tensor {
	return fromSlice(s, "from_float32", Float32, data, shape)
}

// FromFloat64 copies data into a new float64 CPU tensor of the given shape.
func (s *Scope) FromFloat64(data []float64, shape ...int64) *Tensor {
	return fromSlice(s, "from_float64", Float64, data, shape)
}

// FromInt64 copies data into a new int64 CPU tensor of the given shape.
func (s *Scope) FromInt64(data []int64, shape ...int64) *Tensor {
	return fromSlice(s, "from_int64", Int64, data, shape)
}

// FromBool copies data into a new bool CPU tensor of the given shape.
func (s *Scope) FromBool(data []bool, shape ...int64) *Tensor {
	return fromSlice(s, "from_bool", Bool, data, shape)
}

// FromBytes copies little-endian raw data of dtype dt (as a safetensors file
// stores it) into a new CPU tensor of the given shape.
func (s *Scope) FromBytes(data []byte, dt DType, shape []int64) *Tensor {
	return fromSlice(s, "from_bytes", dt, data, shape)
}

func fromSlice[T any](s *Scope, op string, dt DType, data []T, shape []int64) *Tensor {
	fail := func(err error) *Tensor {
		err = &OpError{Op: op, Err: err}
		if s == nil {
			return &Tensor{err: err}
		}
		return s.poison(err)
	}
	if err := s.ready(); err != nil {
		return fail(err)
	}
	if !dt.valid() {
		return fail(fmt.Errorf("unknown dtype %d", dt))
	}
	if len(shape) == 0 && op != "from_bytes" {
		shape = []int64{int64(len(data))}
	}
	nbytes := int64(len(data)) * int64(unsafe.Sizeof(*new(T)))
	if !loaded.Load() {
		return fail(ErrNotLoaded)
	}
	if err := hostAccess(op); err != nil {
		return fail(err)
	}
	var dp unsafe.Pointer
	if len(data) > 0 {
		dp = unsafe.Pointer(&data[0])
	}
	var out uintptr
	var errp *byte
	shp := make([]int64, len(shape)+1) // never empty, so &shp[0] is valid
	copy(shp, shape)
	purego.SyscallN(fnFromDt, uintptr(dp), uintptr(nbytes), uintptr(dt),
		uintptr(unsafe.Pointer(&shp[0])), uintptr(len(shape)),
		uintptr(unsafe.Pointer(&out)), uintptr(unsafe.Pointer(&errp)))
	runtime.KeepAlive(data)
	if errp != nil {
		return fail(errors.New(takeString(errp)))
	}
	return s.adopt(out)
}

// meta is a tensor's dtype, device, requires_grad and shape in one call.
type meta struct {
	dtype        DType
	device       Device
	requiresGrad bool
	shape        []int64
}

// meta returns t's dtype, device and shape, asking the shim once per
// handle: no op of the binding changes them in place, and code that checks
// shapes before each op would otherwise double its calls. requiresGrad is
// as of that first call; RequiresGrad asks again.
func (t *Tensor) meta() (meta, error) {
	if err := t.check("meta"); err != nil {
		return meta{}, err
	}
	if t.h.meta != nil {
		return *t.h.meta, nil
	}
	m, err := t.fetchMeta()
	if err == nil {
		t.h.meta = &m
	}
	return m, err
}

func (t *Tensor) fetchMeta() (meta, error) {
	if err := t.check("meta"); err != nil {
		return meta{}, err
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, t.h.ptr)
	c.wantIOut(64)
	if _, err := c.exec(opMeta); err != nil {
		return meta{}, &OpError{Op: "meta", Err: err}
	}
	r := c.iout[:c.f.niout]
	m := meta{dtype: DType(r[0]), requiresGrad: r[3] != 0, shape: append([]int64{}, r[5:5+r[4]]...)}
	switch r[1] {
	case 0:
		m.device = CPU
	case 1:
		m.device = CUDA(int(max(r[2], 0)))
	default:
		m.device = Device{Type: DeviceOther, Index: int(r[2])}
	}
	return m, nil
}

// Shape is t's size along each dimension; nil when t is poisoned or freed.
func (t *Tensor) Shape() []int64 {
	m, err := t.meta()
	if err != nil {
		return nil
	}
	return slices.Clone(m.shape)
}

// Dim is t's number of dimensions; -1 when t is poisoned or freed.
func (t *Tensor) Dim() int {
	m, err := t.meta()
	if err != nil {
		return -1
	}
	return len(m.shape)
}

// Size is t's size along dimension d (negative counts from the end). An
// out-of-range d, or a poisoned or freed t, gives 0 and records the error in
// t's scope, so that it is reported like any op's.
func (t *Tensor) Size(d int) int64 {
	m, err := t.meta()
	if err != nil {
		return 0
	}
	i := d
	if i < 0 {
		i += len(m.shape)
	}
	if i < 0 || i >= len(m.shape) {
		t.scope.fail(&OpError{Op: "size", Err: fmt.Errorf("dimension %d out of range for %s", d, t)})
		return 0
	}
	return m.shape[i]
}

// Numel is the number of elements of t; 0 when t is poisoned or freed.
func (t *Tensor) Numel() int64 {
	m, err := t.meta()
	if err != nil {
		return 0
	}
	n := int64(1)
	for _, d := range m.shape {
		n *= d
	}
	return n
}

// DType is t's element type; Float32 when t is poisoned or freed.
func (t *Tensor) DType() DType {
	m, _ := t.meta()
	return m.dtype
}

// Device is where t lives; the CPU when t is poisoned or freed.
func (t *Tensor) Device() Device {
	m, _ := t.meta()
	return m.device
}

// String describes t as f32[2,3] cpu, or its error.
func (t *Tensor) String() string {
	m, err := t.meta()
	if err != nil {
		return "<" + err.Error() + ">"
	}
	var b strings.Builder
	b.WriteString(m.dtype.String())
	b.WriteByte('[')
	for i, d := range m.shape {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteString("] ")
	b.WriteString(m.device.String())
	return b.String()
}

// copyOut converts t to dt on the CPU and copies it into dst, which must
// hold exactly its bytes.
func copyOut[T any](t *Tensor, op string, dt DType) ([]T, error) {
	if err := t.check(op); err != nil {
		return nil, err
	}
	if err := hostAccess(op); err != nil {
		return nil, err
	}
	n := t.Numel()
	dst := make([]T, n)
	nbytes := n * int64(unsafe.Sizeof(*new(T)))
	var dp unsafe.Pointer
	if n > 0 {
		dp = unsafe.Pointer(&dst[0])
	}
	var errp *byte
	purego.SyscallN(fnToDt, t.h.ptr, uintptr(dt), uintptr(dp), uintptr(nbytes), uintptr(unsafe.Pointer(&errp)))
	runtime.KeepAlive(dst)
	if errp != nil {
		return nil, &OpError{Op: op, Err: errors.New(takeString(errp))}
	}
	return dst, nil
}

// Float32s returns t's elements (row-major) as float32, converting from any
// dtype and copying from any device. A poisoned t returns its error.
func (t *Tensor) Float32s() ([]float32, error) { return copyOut[float32](t, "float32s", Float32) }

// Float64s returns t's elements as float64.
func (t *Tensor) Float64s() ([]float64, error) { return copyOut[float64](t, "float64s", Float64) }

// Int64s returns t's elements as int64.
func (t *Tensor) Int64s() ([]int64, error) { return copyOut[int64](t, "int64s", Int64) }

// Bools returns t's elements as bool.
func (t *Tensor) Bools() ([]bool, error) { return copyOut[bool](t, "bools", Bool) }

// Bytes returns t's elements in its own dtype as little-endian bytes (the
// safetensors layout).
func (t *Tensor) Bytes() ([]byte, error) {
	if err := t.check("bytes"); err != nil {
		return nil, err
	}
	if err := hostAccess("bytes"); err != nil {
		return nil, err
	}
	m, err := t.meta()
	if err != nil {
		return nil, err
	}
	n := int64(1)
	for _, d := range m.shape {
		n *= d
	}
	dst := make([]byte, n*int64(m.dtype.Size()))
	var dp unsafe.Pointer
	if len(dst) > 0 {
		dp = unsafe.Pointer(&dst[0])
	}
	var errp *byte
	purego.SyscallN(fnToDt, t.h.ptr, uintptr(m.dtype), uintptr(dp), uintptr(len(dst)), uintptr(unsafe.Pointer(&errp)))
	runtime.KeepAlive(dst)
	if errp != nil {
		return nil, &OpError{Op: "bytes", Err: errors.New(takeString(errp))}
	}
	return dst, nil
}

// Item returns the value of a one-element tensor.
func (t *Tensor) Item() (float64, error) {
	if err := t.check("item"); err != nil {
		return math.NaN(), err
	}
	if err := hostAccess("item"); err != nil {
		return math.NaN(), err
	}
	c := getCall()
	defer putCall(c)
	c.in = append(c.in, t.h.ptr)
	if _, err := c.exec(opItem); err != nil {
		return math.NaN(), &OpError{Op: "item", Err: fmt.Errorf("%s: %w", t, err)}
	}
	return c.dout[0], nil
}

// To returns t on dev with dtype dt (a copy when either differs).
func (t *Tensor) To(dev Device, dt DType) *Tensor {
	return unary(opTo, t, []int64{int64(dev.Type), int64(dev.Index), int64(dt)}, nil)
}

// ToDevice returns t on dev, keeping its dtype.
func (t *Tensor) ToDevice(dev Device) *Tensor {
	return unary(opTo, t, []int64{int64(dev.Type), int64(dev.Index), -1}, nil)
}

// ToDType returns t converted to dt.
func (t *Tensor) ToDType(dt DType) *Tensor { return unary(opToDType, t, []int64{int64(dt)}, nil) }

// Clone returns a copy of t (differentiable).
func (t *Tensor) Clone() *Tensor { return unary(opClone, t, nil, nil) }

// Detach returns t cut from the autograd graph, sharing its storage.
func (t *Tensor) Detach() *Tensor { return unary(opDetach, t, nil, nil) }

// Contiguous returns t laid out row-major (t itself when it already is).
func (t *Tensor) Contiguous() *Tensor { return unary(opContiguous, t, nil, nil) }
