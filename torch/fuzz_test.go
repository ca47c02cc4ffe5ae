package torch_test

import (
	"encoding/binary"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// FuzzFromBytes feeds arbitrary bytes, dtypes and shapes (as a corrupt
// safetensors file could) to FromBytes: it must build the tensor or return
// an error, never crash, and a tensor it builds must give its bytes back.
func FuzzFromBytes(f *testing.F) {
	torchtest.Require(f)
	f.Add([]byte{0, 0, 0x80, 0x3f}, int8(0), []byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 0x3c, 0, 0x3c}, int8(1), []byte{2, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 3}, int8(7), []byte{3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{}, int8(4), []byte{0, 0, 0, 0, 0, 0, 0, 0x40, 4, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1}, int8(9), []byte{})
	f.Fuzz(func(t *testing.T, data []byte, dt int8, rawShape []byte) {
		var shape []int64
		for i := 0; i+8 <= len(rawShape) && len(shape) < 6; i += 8 {
			shape = append(shape, int64(binary.LittleEndian.Uint64(rawShape[i:])))
		}
		s := torch.NewScope()
		defer s.Close()
		x := s.FromBytes(data, torch.DType(dt), shape)
		if x.Err() != nil {
			return
		}
		back, err := x.Bytes()
		if err != nil {
			t.Fatalf("tensor built from %d bytes, %v, %v cannot be read back: %v", len(data), torch.DType(dt), shape, err)
		}
		if string(back) != string(data) {
			t.Fatalf("bytes changed: %v → %v", data, back)
		}
	})
}

// FuzzParseDevice checks that any device name parses or fails cleanly, and
// that the name of what parses parses back to the same device.
func FuzzParseDevice(f *testing.F) {
	torchtest.Require(f)
	for _, s := range []string{"cpu", "cuda", "cuda:0", "cuda:12", "auto", "cuda:", "cuda:-1", "CPU", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := torch.ParseDevice(s)
		if err != nil {
			return
		}
		if d2, err := torch.ParseDevice(d.String()); err != nil || d2 != d {
			t.Errorf("ParseDevice(%q) = %v, which parses back as %v, %v", s, d, d2, err)
		}
	})
}

func TestParseDType(t *testing.T) {
	for i := torch.Float32; i <= torch.Bool; i++ {
		got, err := torch.ParseDType(i.String())
		if err != nil || got != i {
			t.Errorf("ParseDType(%q) = %v, %v", i.String(), got, err)
		}
	}
	if d, err := torch.ParseDType("BF16"); err != nil || d != torch.BFloat16 {
		t.Errorf("ParseDType(BF16) = %v, %v", d, err)
	}
	if _, err := torch.ParseDType("F8_E4M3"); err == nil {
		t.Error("ParseDType(F8_E4M3): no error")
	}
}
