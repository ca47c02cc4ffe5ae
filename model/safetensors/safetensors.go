// Package safetensors reads and writes the safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON mapping each tensor name to {"dtype",
// "shape", "data_offsets": [begin, end]} (offsets relative to the data that
// follows the header) plus an optional "__metadata__" object of strings, then
// the data. The reader checks what the reference implementation checks:
// offsets tile the data with no gap or overlap, each tensor's byte size
// matches its dtype and shape, and the data ends where the last tensor does.
// It knows nothing of models: package model maps the tensors to parameters.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// DType is the element type of a stored tensor.
type DType uint8

// The dtypes lavascope reads and writes.
const (
	Bool DType = iota + 1
	U8
	I8
	I16
	I32
	I64
	F16
	BF16
	F32
	F64
)

var dtypeNames = map[DType]string{
	Bool: "BOOL", U8: "U8", I8: "I8", I16: "I16", I32: "I32", I64: "I64",
	F16: "F16", BF16: "BF16", F32: "F32", F64: "F64",
}

// ParseDType reads a safetensors dtype name ("F32", "BF16", ...).
func ParseDType(s string) (DType, error) {
	for d, n := range dtypeNames {
		if n == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unsupported dtype %q", s)
}

func (d DType) String() string {
	if n, ok := dtypeNames[d]; ok {
		return n
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Bool, U8, I8:
		return 1
	case I16, F16, BF16:
		return 2
	case I32, F32:
		return 4
	case I64, F64:
		return 8
	}
	return 0
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == F16 || d == BF16 || d == F32 || d == F64 }

const (
	// maxHeader is the reference implementation's limit on the header length.
	maxHeader = 100_000_000
	// metadataKey holds the file's string-to-string metadata.
	metadataKey = "__metadata__"
)

// TensorInfo describes one stored tensor.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int64
	// Begin and End are the data offsets from the header: bytes [Begin, End) of
	// the data section, which starts right after the header.
	Begin, End int64
}

// NumElements is the product of the shape (1 for a scalar).
func (ti TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range ti.Shape {
		n *= d
	}
	return n
}

// File is an open safetensors file. Tensors are read on demand, so the
// file is never held in memory as a whole.
type File struct {
	// Path names the file in errors.
	Path string
	// Metadata is the header's __metadata__ (nil when absent).
	Metadata map[string]string

	r         io.ReaderAt
	closer    io.Closer
	dataStart int64
	tensors   []TensorInfo // sorted by name
	byName    map[string]int
}

// Open opens and validates a safetensors file.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory, not a safetensors file", path)
	}
	s, err := Read(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.closer = f
	return s, nil
}

// Read reads the header of size bytes of safetensors from r and
// validates it; name appears in errors. Tensor data is read later from r.
func Read(r io.ReaderAt, size int64, name string) (*File, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	if size < 8 {
		return nil, bad("truncated: %d bytes, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, bad("reading header length: %v", err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > maxHeader {
		return nil, bad("bad header: length %d exceeds the limit of %d bytes", hlen, maxHeader)
	}
	if int64(hlen) > size-8 {
		return nil, bad("truncated: header says %d bytes of JSON, the file has %d after the length", hlen, size-8)
	}
	hdr := make([]byte, hlen)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, bad("reading header: %v", err)
	}
	s := &File{Path: name, r: r, dataStart: 8 + int64(hlen), byName: make(map[string]int)}
	if err := s.parseHeader(hdr); err != nil {
		return nil, bad("bad header: %v", err)
	}
	if err := s.checkLayout(size - s.dataStart); err != nil {
		return nil, bad("%v", err)
	}
	return s, nil
}

type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       []uint64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

func (s *File) parseHeader(hdr []byte) error {
	if len(bytes.TrimSpace(hdr)) == 0 || bytes.TrimLeft(hdr, " \t\r\n")[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%q: %w", key, err)
		}
		if key == metadataKey {
			if s.Metadata != nil {
				return fmt.Errorf("%s appears twice", metadataKey)
			}
			if err := json.Unmarshal(raw, &s.Metadata); err != nil {
				return fmt.Errorf("%s: want an object of strings: %w", metadataKey, err)
			}
			if s.Metadata == nil {
				s.Metadata = map[string]string{}
			}
			continue
		}
		if _, dup := s.byName[key]; dup {
			return fmt.Errorf("tensor %q appears twice", key)
		}
		ti, err := parseEntry(key, raw)
		if err != nil {
			return err
		}
		s.byName[key] = -1
		s.tensors = append(s.tensors, ti)
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	slices.SortFunc(s.tensors, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range s.tensors {
		s.byName[t.Name] = i
	}
	return nil
}

func parseEntry(name string, raw json.RawMessage) (TensorInfo, error) {
	var e headerEntry
	d := json.NewDecoder(bytes.NewReader(raw))
	if err := d.Decode(&e); err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	switch {
	case e.DType == nil:
		return TensorInfo{}, fmt.Errorf("tensor %q: no dtype", name)
	case e.Shape == nil:
		return TensorInfo{}, fmt.Errorf("tensor %q: no shape", name)
	case len(e.DataOffsets) != 2:
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets must be [begin, end]", name)
	}
	dt, err := ParseDType(*e.DType)
	if err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	ti := TensorInfo{Name: name, DType: dt, Shape: make([]int64, len(e.Shape))}
	n := uint64(1)
	for i, d := range e.Shape {
		if d > math.MaxInt64 || (d != 0 && n > math.MaxInt64/d) {
			return TensorInfo{}, fmt.Errorf("tensor %q: shape %v overflows", name, e.Shape)
		}
		n *= d
		ti.Shape[i] = int64(d)
	}
	if n > math.MaxInt64/uint64(dt.Size()) {
		return TensorInfo{}, fmt.Errorf("tensor %q: shape %v overflows", name, e.Shape)
	}
	b, en := e.DataOffsets[0], e.DataOffsets[1]
	if b > math.MaxInt64 || en > math.MaxInt64 {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets [%d, %d] out of range", name, b, en)
	}
	ti.Begin, ti.End = int64(b), int64(en)
	return ti, nil
}

// checkLayout checks that the tensors tile the data section of size bytes.
func (s *File) checkLayout(size int64) error {
	order := slices.Clone(s.tensors)
	slices.SortFunc(order, func(a, b TensorInfo) int {
		if a.Begin != b.Begin {
			return compare(a.Begin, b.Begin)
		}
		return compare(a.End, b.End)
	})
	pos := int64(0)
	var prev string
	for _, t := range order {
		if t.End < t.Begin {
			return fmt.Errorf("bad header: tensor %q: data_offsets [%d, %d] end before they begin", t.Name, t.Begin, t.End)
		}
		if want := t.NumElements() * int64(t.DType.Size()); t.End-t.Begin != want {
			return fmt.Errorf("bad header: tensor %q: %s %v needs %d bytes, data_offsets [%d, %d] hold %d",
				t.Name, t.DType, t.Shape, want, t.Begin, t.End, t.End-t.Begin)
		}
		switch {
		case t.Begin < pos:
			return fmt.Errorf("bad header: tensor %q at [%d, %d] overlaps %q, which ends at %d", t.Name, t.Begin, t.End, prev, pos)
		case t.Begin > pos:
			return fmt.Errorf("bad header: gap of %d bytes before tensor %q at [%d, %d]", t.Begin-pos, t.Name, t.Begin, t.End)
		}
		if t.End > size {
			return fmt.Errorf("truncated: tensor %q needs data up to byte %d, the file has %d bytes of data", t.Name, t.End, size)
		}
		pos, prev = t.End, t.Name
	}
	if pos != size {
		return fmt.Errorf("bad header: tensors end at data byte %d, the file has %d bytes of data", pos, size)
	}
	return nil
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Tensors lists the stored tensors, sorted by name.
func (s *File) Tensors() []TensorInfo { return slices.Clone(s.tensors) }

// Tensor returns the description of one tensor.
func (s *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := s.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return s.tensors[i], true
}

// ReadInto reads the raw little-endian bytes of a tensor into dst, which must
// be exactly the tensor's size.
func (s *File) ReadInto(name string, dst []byte) error {
	t, ok := s.Tensor(name)
	if !ok {
		return fmt.Errorf("%s: no tensor %q", s.Path, name)
	}
	if int64(len(dst)) != t.End-t.Begin {
		return fmt.Errorf("%s: tensor %q has %d bytes, buffer has %d", s.Path, name, t.End-t.Begin, len(dst))
	}
	if len(dst) == 0 {
		return nil
	}
	if _, err := s.r.ReadAt(dst, s.dataStart+t.Begin); err != nil {
		return fmt.Errorf("%s: reading tensor %q: %w", s.Path, name, err)
	}
	return nil
}

// Bytes returns the raw little-endian bytes of a tensor.
func (s *File) Bytes(name string) ([]byte, error) {
	t, ok := s.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", s.Path, name)
	}
	b := make([]byte, t.End-t.Begin)
	return b, s.ReadInto(name, b)
}

// Float32s returns a floating-point tensor's values as float32.
func (s *File) Float32s(name string) ([]float32, error) {
	t, _ := s.Tensor(name)
	b, err := s.Bytes(name)
	if err != nil {
		return nil, err
	}
	v, err := DecodeFloat32s(t.DType, b)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", s.Path, name, err)
	}
	return v, nil
}

// Int64s returns an integer tensor's values as int64.
func (s *File) Int64s(name string) ([]int64, error) {
	t, _ := s.Tensor(name)
	b, err := s.Bytes(name)
	if err != nil {
		return nil, err
	}
	v, err := DecodeInt64s(t.DType, b)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", s.Path, name, err)
	}
	return v, nil
}

// Close closes the file.
func (s *File) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}
