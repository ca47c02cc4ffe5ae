package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lavascope/lavascope/internal/atomicfile"
)

// Safetensors (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data
// that follows the header) plus an optional "__metadata__" object of strings,
// then the data. The reader checks what the reference implementation checks:
// offsets tile the data with no gap or overlap, each tensor's byte size matches
// its dtype and shape, and the data ends where the last tensor does.

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

// Safetensors is an open safetensors file. Tensors are read on demand, so the
// file is never held in memory as a whole.
type Safetensors struct {
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

// OpenSafetensors opens and validates a safetensors file.
func OpenSafetensors(path string) (*Safetensors, error) {
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
	s, err := ReadSafetensors(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.closer = f
	return s, nil
}

// ReadSafetensors reads the header of size bytes of safetensors from r and
// validates it; name appears in errors. Tensor data is read later from r.
func ReadSafetensors(r io.ReaderAt, size int64, name string) (*Safetensors, error) {
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
	s := &Safetensors{Path: name, r: r, dataStart: 8 + int64(hlen), byName: make(map[string]int)}
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

func (s *Safetensors) parseHeader(hdr []byte) error {
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
func (s *Safetensors) checkLayout(size int64) error {
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
func (s *Safetensors) Tensors() []TensorInfo { return slices.Clone(s.tensors) }

// Tensor returns the description of one tensor.
func (s *Safetensors) Tensor(name string) (TensorInfo, bool) {
	i, ok := s.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return s.tensors[i], true
}

// ReadInto reads the raw little-endian bytes of a tensor into dst, which must
// be exactly the tensor's size.
func (s *Safetensors) ReadInto(name string, dst []byte) error {
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
func (s *Safetensors) Bytes(name string) ([]byte, error) {
	t, ok := s.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: no tensor %q", s.Path, name)
	}
	b := make([]byte, t.End-t.Begin)
	return b, s.ReadInto(name, b)
}

// Float32s returns a floating-point tensor's values as float32.
func (s *Safetensors) Float32s(name string) ([]float32, error) {
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
func (s *Safetensors) Int64s(name string) ([]int64, error) {
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
func (s *Safetensors) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer.Close()
}

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

// WriteSafetensors writes tensors in safetensors format. Tensors are laid out by
// element size, largest first, then by name, as the reference writer does, so
// each one is aligned to its element size; the header is padded with spaces to
// a multiple of 8 bytes.
func WriteSafetensors(w io.Writer, tensors []Tensor, metadata map[string]string) error {
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

// SaveSafetensors writes tensors to path atomically (see package atomicfile).
func SaveSafetensors(path string, tensors []Tensor, metadata map[string]string) error {
	return atomicfile.Write(path, func(w io.Writer) error { return WriteSafetensors(w, tensors, metadata) })
}

// Sharded checkpoints and the tensors of a checkpoint folder.

const (
	singleFile = "model.safetensors"
	indexFile  = "model.safetensors.index.json"
)

// TensorRef is one tensor of a checkpoint: its description, its file, and a way
// to read its raw little-endian bytes.
type TensorRef struct {
	TensorInfo
	// File is the file that holds it (safetensors or torch.save).
	File string
	src  tensorSource
}

// tensorSource reads a tensor's contiguous little-endian bytes by name.
type tensorSource interface {
	ReadInto(name string, dst []byte) error
}

// ReadInto reads the tensor's bytes into dst, which must be exactly its size
// (End - Begin), for instance the memory of a freshly allocated tensor.
func (r TensorRef) ReadInto(dst []byte) error { return r.src.ReadInto(r.Name, dst) }

// Bytes returns the tensor's bytes.
func (r TensorRef) Bytes() ([]byte, error) {
	b := make([]byte, r.End-r.Begin)
	return b, r.ReadInto(b)
}

// Float32s returns the tensor's values converted to float32.
func (r TensorRef) Float32s() ([]float32, error) {
	b, err := r.Bytes()
	if err != nil {
		return nil, err
	}
	v, err := DecodeFloat32s(r.DType, b)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", r.File, r.Name, err)
	}
	return v, nil
}

// Weights are the tensors of a checkpoint: model.safetensors, the shards
// listed by model.safetensors.index.json, or a torch.save file.
type Weights struct {
	// Files are the files read, for messages.
	Files   []string
	closers []func() error
	tensors map[string]TensorRef
}

// OpenWeights opens the safetensors weights of a checkpoint folder.
func OpenWeights(dir string) (*Weights, error) {
	single := filepath.Join(dir, singleFile)
	index := filepath.Join(dir, indexFile)
	if _, err := os.Stat(single); err == nil {
		w := &Weights{tensors: make(map[string]TensorRef)}
		if err := w.add(single, nil); err != nil {
			return nil, err
		}
		return w, nil
	}
	if _, err := os.Stat(index); err == nil {
		return openSharded(dir, index)
	}
	return nil, fmt.Errorf("%s: no %s or %s", dir, singleFile, indexFile)
}

func openSharded(dir, index string) (*Weights, error) {
	data, err := os.ReadFile(index)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: empty or missing weight_map", index)
	}
	shards := make(map[string]map[string]bool)
	for name, file := range idx.WeightMap {
		if file == "" || filepath.Base(file) != file || file == "." || file == ".." {
			return nil, fmt.Errorf("%s: tensor %q: shard %q is not a file name in the checkpoint folder", index, name, file)
		}
		if shards[file] == nil {
			shards[file] = make(map[string]bool)
		}
		shards[file][name] = true
	}
	files := make([]string, 0, len(shards))
	for f := range shards {
		files = append(files, f)
	}
	slices.Sort(files)
	w := &Weights{tensors: make(map[string]TensorRef)}
	for _, f := range files {
		if err := w.add(filepath.Join(dir, f), shards[f]); err != nil {
			w.Close()
			return nil, fmt.Errorf("%w (listed in %s)", err, index)
		}
	}
	for name, file := range idx.WeightMap {
		if _, ok := w.tensors[name]; !ok {
			w.Close()
			return nil, fmt.Errorf("%s: tensor %q is listed in %s but absent from it", filepath.Join(dir, file), name, index)
		}
	}
	return w, nil
}

// add opens one file; want, when set, is the set of names the index gives it.
func (w *Weights) add(path string, want map[string]bool) error {
	s, err := OpenSafetensors(path)
	if err != nil {
		return err
	}
	w.closers = append(w.closers, s.Close)
	w.Files = append(w.Files, path)
	for _, t := range s.tensors {
		if want != nil && !want[t.Name] {
			return fmt.Errorf("%s: tensor %q is not listed in the index", path, t.Name)
		}
		if prev, dup := w.tensors[t.Name]; dup {
			return fmt.Errorf("tensor %q is in both %s and %s", t.Name, prev.File, path)
		}
		w.tensors[t.Name] = TensorRef{TensorInfo: t, File: path, src: s}
	}
	return nil
}

// Tensors returns every tensor by name.
func (w *Weights) Tensors() map[string]TensorRef { return maps.Clone(w.tensors) }

// Tensor returns one tensor.
func (w *Weights) Tensor(name string) (TensorRef, bool) {
	r, ok := w.tensors[name]
	return r, ok
}

// Names lists the tensor names, sorted.
func (w *Weights) Names() []string {
	names := make([]string, 0, len(w.tensors))
	for n := range w.tensors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Close closes every file.
func (w *Weights) Close() error {
	var errs []error
	for _, c := range w.closers {
		errs = append(errs, c())
	}
	w.closers = nil
	return errors.Join(errs...)
}

// Conversions.

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
