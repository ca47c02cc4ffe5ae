package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DecodeFloat32s converts little-endian F16, BF16, F32 or F64 data to float32.
func DecodeFloat32s(dt DType, b []byte) ([]float32, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %s is not floating point", dt)
	}
	if len(b)%dt.Size() != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(b), dt)
	}
	out := make([]float32, len(b)/dt.Size())
	for i := range out {
		switch dt {
		case F16:
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		case BF16:
			out[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		case F32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		case F64:
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	}
	return out, nil
}

// EncodeFloat32s converts float32 values to little-endian F16, BF16, F32 or F64
// data, rounding to nearest even.
func EncodeFloat32s(dt DType, v []float32) ([]byte, error) {
	if !dt.IsFloat() {
		return nil, fmt.Errorf("dtype %s is not floating point", dt)
	}
	b := make([]byte, len(v)*dt.Size())
	for i, x := range v {
		switch dt {
		case F16:
			binary.LittleEndian.PutUint16(b[2*i:], Float32ToFloat16(x))
		case BF16:
			binary.LittleEndian.PutUint16(b[2*i:], Float32ToBFloat16(x))
		case F32:
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		case F64:
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(float64(x)))
		}
	}
	return b, nil
}

// DecodeInt64s converts little-endian integer or BOOL data to int64.
func DecodeInt64s(dt DType, b []byte) ([]int64, error) {
	if dt.IsFloat() || dt.Size() == 0 {
		return nil, fmt.Errorf("dtype %s is not an integer type", dt)
	}
	if len(b)%dt.Size() != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(b), dt)
	}
	out := make([]int64, len(b)/dt.Size())
	for i := range out {
		switch dt {
		case Bool, U8:
			out[i] = int64(b[i])
		case I8:
			out[i] = int64(int8(b[i]))
		case I16:
			out[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		case I32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		case I64:
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	}
	return out, nil
}

// Float16ToFloat32 converts an IEEE 754 half-precision value.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: mant * 2^-24, exact in float32.
	f := float32(mant) * (1.0 / (1 << 24))
	if sign != 0 {
		f = -f
	}
	return f
}

// Float32ToFloat16 converts to half precision, rounding to nearest even;
// values beyond the range become ±Inf and NaN stays NaN.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		// Subnormal half: shift the full significand (with its implicit 1).
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(half)
}

// BFloat16ToFloat32 converts a bfloat16 value (the top half of a float32).
func BFloat16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBFloat16 converts to bfloat16, rounding to nearest even as PyTorch
// does; NaN stays a quiet NaN.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}
