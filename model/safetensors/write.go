package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/lavascope/lavascope/internal/atomicfile"
)

// Tensor is a tensor to write: raw little-endian data of DType and Shape.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// F32Tensor makes a Tensor from float32 values.
func F32Tensor(name string, shape []int64, v []float32) Tensor {
	b, _ := EncodeFloat32s(F32, v)
	return Tensor{Name: name, DType: F32, Shape: shape, Data: b}
}

// Write writes tensors in safetensors format. Tensors are laid out by
// element size, largest first, then by name, as the reference writer does, so
// each one is aligned to its element size; the header is padded with spaces to
// a multiple of 8 bytes.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	order := slices.Clone(tensors)
	slices.SortFunc(order, func(a, b Tensor) int {
		if a.DType.Size() != b.DType.Size() {
			return b.DType.Size() - a.DType.Size()
		}
		return strings.Compare(a.Name, b.Name)
	})
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata)
		if err != nil {
			return err
		}
		fmt.Fprintf(&hdr, "%q:%s", metadataKey, m)
	}
	seen := make(map[string]bool, len(order))
	off := int64(0)
	for _, t := range order {
		if t.Name == "" || t.Name == metadataKey || seen[t.Name] {
			return fmt.Errorf("safetensors: bad or repeated tensor name %q", t.Name)
		}
		seen[t.Name] = true
		if t.DType.Size() == 0 {
			return fmt.Errorf("safetensors: tensor %q: unknown dtype %v", t.Name, t.DType)
		}
		ti := TensorInfo{Shape: t.Shape}
		for _, d := range t.Shape {
			if d < 0 {
				return fmt.Errorf("safetensors: tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
		}
		if want := ti.NumElements() * int64(t.DType.Size()); int64(len(t.Data)) != want {
			return fmt.Errorf("safetensors: tensor %q: %s %v needs %d bytes, got %d", t.Name, t.DType, t.Shape, want, len(t.Data))
		}
		name, err := json.Marshal(t.Name)
		if err != nil {
			return err
		}
		shape, _ := json.Marshal(nonNil(t.Shape))
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		fmt.Fprintf(&hdr, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, name, t.DType, shape, off, off+int64(len(t.Data)))
		off += int64(len(t.Data))
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr.Bytes()); err != nil {
		return err
	}
	for _, t := range order {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

func nonNil(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// Save writes tensors to path atomically (see package atomicfile).
func Save(path string, tensors []Tensor, metadata map[string]string) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Write(w, tensors, metadata) })
}
