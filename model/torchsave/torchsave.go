// Package torchsave reads the zip files torch.save writes (PyTorch 1.6 and
// later) without Python and without running anything from the file.
//
// Such a file is a zip archive whose entries sit under one top folder (its
// name varies): data.pkl, a pickle of the saved object whose tensors refer
// to their storages by persistent id ("storage", torch.FloatStorage, key,
// location, numel); data/<key>, each storage's raw bytes; version; and, from
// PyTorch 2.1, byteorder ("little" or "big"). data.pkl is read by a
// restricted unpickler with the rules of torch.load(weights_only=True): it
// builds tensors, dicts, lists, tuples, numbers and strings, and refuses any
// other Python global (os.system, builtins.eval, ...) by name. Every size,
// stride and offset is checked against the storage's length before anything
// is allocated or read.
//
// Older torch.save files (a bare pickle stream, before PyTorch 1.6 or with
// _use_new_zipfile_serialization=False) are not read: Open returns
// ErrLegacy.
package torchsave

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
)

// DType is a tensor's element type, named as safetensors names it.
type DType string

// The element types of torch's storage classes.
const (
	F32  DType = "F32"
	F64  DType = "F64"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	}
	return 1
}

// ErrLegacy is a file that is not a zip archive: a pickle stream from
// torch.save before PyTorch 1.6 (or any other pickle), which only running
// Python code could read.
var ErrLegacy = errors.New("not a torch.save zip archive (a legacy pickle?)")

const (
	// maxPickle bounds data.pkl: a state_dict's pickle holds names and shapes
	// only (tens of kilobytes for CLIP ViT-L).
	maxPickle = 256 << 20
	// maxDeflateRatio is deflate's largest possible expansion; a record that
	// claims more is lying about its size.
	maxDeflateRatio = 1032
)

// storage is one data/<key> record.
type storage struct {
	key   string
	dtype DType
	numel int64
	rec   *zip.File
}

// Tensor is a tensor of the file: a view (offset, shape, stride in
// elements) into a storage that other tensors may share.
type Tensor struct {
	DType DType
	Shape []int64

	numel   int64
	offset  int64
	stride  []int64
	storage *storage
}

// NumBytes is the size of the tensor's data once read (contiguous).
func (t *Tensor) NumBytes() int64 { return t.numel * int64(t.DType.Size()) }

// File is an open torch.save file.
type File struct {
	// Path names the file in errors.
	Path   string
	root   any // the object data.pkl holds
	r      io.ReaderAt
	size   int64
	closer io.Closer
	big    bool // storages are big-endian
}

// Open opens and reads the pickle of a torch.save file; tensor data is read
// later, on demand.
func Open(name string) (*File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	tf, err := Read(f, st.Size(), name)
	if err != nil {
		f.Close()
		return nil, err
	}
	tf.closer = f
	return tf, nil
}

// IsZip reports whether r starts like a zip archive (what torch.save writes
// since PyTorch 1.6) rather than a bare pickle.
func IsZip(r io.ReaderAt) bool {
	var magic [4]byte
	_, err := r.ReadAt(magic[:], 0)
	return err == nil && string(magic[:]) == "PK\x03\x04"
}

// Read reads a torch.save file of size bytes from r; name appears in errors.
func Read(r io.ReaderAt, size int64, name string) (*File, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	if !IsZip(r) {
		return nil, fmt.Errorf("%s: %w", name, ErrLegacy)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, bad("not a readable zip archive (truncated?): %v", err)
	}
	var pkl *zip.File
	records := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		if _, dup := records[f.Name]; dup {
			return nil, bad("record %q appears twice", f.Name)
		}
		records[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(dir, "/") == 1 {
			if pkl != nil {
				return nil, bad("two pickles: %s and %s", pkl.Name, f.Name)
			}
			pkl = f
		}
	}
	if pkl == nil {
		return nil, bad("no <folder>/data.pkl record: a zip archive, but not one torch.save wrote")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	tf := &File{Path: name, r: r, size: size}
	if bo, ok := records[prefix+"byteorder"]; ok {
		b, err := readRecord(bo, size, 16)
		if err != nil {
			return nil, bad("%s: %v", bo.Name, err)
		}
		switch string(b) {
		case "little":
		case "big":
			tf.big = true
		default:
			return nil, bad("%s: %q, want little or big", bo.Name, b)
		}
	}
	data, err := readRecord(pkl, size, maxPickle)
	if err != nil {
		return nil, bad("%s: %v", pkl.Name, err)
	}
	storages := make(map[string]*storage)
	u := &unpickler{data: data, persistent: func(pid *tuple) (any, error) {
		return loadStorage(pid, storages, records, prefix, size)
	}}
	if tf.root, err = u.run(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, pkl.Name, err)
	}
	return tf, nil
}

// checkRecord refuses records whose sizes cannot be true.
func checkRecord(f *zip.File, fileSize int64) error {
	switch f.Method {
	case zip.Store:
		off, err := f.DataOffset()
		if err != nil {
			return err
		}
		if f.UncompressedSize64 != f.CompressedSize64 || off < 0 || f.UncompressedSize64 > uint64(fileSize-off) {
			return fmt.Errorf("record of %d bytes at offset %d runs past the end of the file (%d bytes; truncated?)", f.UncompressedSize64, off, fileSize)
		}
	case zip.Deflate:
		off, err := f.DataOffset()
		if err != nil {
			return err
		}
		if off < 0 || f.CompressedSize64 > uint64(fileSize-off) {
			return fmt.Errorf("record of %d compressed bytes at offset %d runs past the end of the file (%d bytes; truncated?)", f.CompressedSize64, off, fileSize)
		}
		if f.UncompressedSize64/maxDeflateRatio > f.CompressedSize64 {
			return fmt.Errorf("record claims %d bytes from %d compressed", f.UncompressedSize64, f.CompressedSize64)
		}
	default:
		return fmt.Errorf("compression method %d (torch.save stores records uncompressed)", f.Method)
	}
	return nil
}

// readRecord reads a small record whole. Memory grows with the bytes that
// arrive, not with the size the zip header claims.
func readRecord(f *zip.File, fileSize int64, limit uint64) ([]byte, error) {
	if err := checkRecord(f, fileSize); err != nil {
		return nil, err
	}
	if f.UncompressedSize64 > limit {
		return nil, fmt.Errorf("%d bytes, more than the %d allowed", f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)))
	if err != nil {
		return nil, fmt.Errorf("reading: %w (truncated?)", err)
	}
	if uint64(len(b)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("%d bytes of the %d its header gives (truncated?)", len(b), f.UncompressedSize64)
	}
	return b, nil
}

// loadStorage resolves ("storage", type, key, location, numel).
func loadStorage(pid *tuple, storages map[string]*storage, records map[string]*zip.File, prefix string, fileSize int64) (any, error) {
	it := pid.items
	if len(it) != 5 || it[0] != "storage" {
		return nil, fmt.Errorf("persistent id %s is not (\"storage\", type, key, location, numel)", describe(pid))
	}
	typ, ok := it[1].(storageType)
	if !ok {
		return nil, fmt.Errorf("storage type is a %s", typeName(it[1]))
	}
	key, ok1 := it[2].(string)
	numel, ok2 := it[4].(int64)
	if !ok1 || !ok2 || numel < 0 {
		return nil, fmt.Errorf("persistent id %s: bad key or element count", describe(pid))
	}
	if st, ok := storages[key]; ok {
		if st.dtype != typ.dtype || st.numel != numel {
			return nil, fmt.Errorf("storage %q is both %s[%d] and %s[%d]", key, st.dtype, st.numel, typ.dtype, numel)
		}
		return st, nil
	}
	rec, ok := records[prefix+"data/"+key]
	if !ok {
		return nil, fmt.Errorf("storage %q: no record %sdata/%s (truncated?)", key, prefix, key)
	}
	if err := checkRecord(rec, fileSize); err != nil {
		return nil, fmt.Errorf("storage %q: %w", key, err)
	}
	esize := int64(typ.dtype.Size())
	if numel > int64(rec.UncompressedSize64)/esize {
		return nil, fmt.Errorf("storage %q: %d elements of %s need %d bytes, the record holds %d", key, numel, typ.dtype, numel*esize, rec.UncompressedSize64)
	}
	st := &storage{key: key, dtype: typ.dtype, numel: numel, rec: rec}
	storages[key] = st
	return st, nil
}

func describe(v any) string {
	switch v := v.(type) {
	case *tuple:
		parts := make([]string, len(v.items))
		for i, x := range v.items {
			parts[i] = describe(x)
		}
		return "(" + strings.Join(parts, ", ") + ")"
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("%q", v)
	case int64, float64, bool:
		return fmt.Sprint(v)
	}
	return typeName(v)
}

// StateDict finds the tensors by name: the saved object itself when it is a
// dict of tensors, or the dict under its "state_dict" or "model" key (what
// training scripts save beside an epoch and an optimizer). When every name
// starts with "module." (torch.nn.DataParallel's), the prefix is removed.
func (f *File) StateDict() (map[string]*Tensor, error) {
	top, ok := f.root.(*dict)
	if !ok {
		return nil, fmt.Errorf("%s: holds a %s, not a state_dict", f.Path, typeName(f.root))
	}
	sd := top
	for _, k := range []string{"state_dict", "model"} {
		if v, ok := top.get(k); ok {
			if d, ok := v.(*dict); ok {
				sd = d
				break
			}
		}
	}
	out := make(map[string]*Tensor, len(sd.keys))
	prefixed := len(sd.keys) > 0
	for i, k := range sd.keys {
		name, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%s: state_dict key %s is not a string", f.Path, describe(k))
		}
		t, ok := sd.vals[i].(*Tensor)
		if !ok {
			keys := make([]string, 0, min(len(top.keys), 10))
			for _, k := range top.keys[:min(len(top.keys), 10)] {
				keys = append(keys, describe(k))
			}
			return nil, fmt.Errorf("%s: %q holds a %s, not a tensor: not a state_dict, nor a dict holding one under \"state_dict\" or \"model\" (keys: %s)",
				f.Path, name, typeName(sd.vals[i]), strings.Join(keys, ", "))
		}
		out[name] = t
		prefixed = prefixed && strings.HasPrefix(name, "module.")
	}
	if prefixed { // removing a prefix all names share keeps them distinct
		stripped := make(map[string]*Tensor, len(out))
		for name, t := range out {
			stripped[strings.TrimPrefix(name, "module.")] = t
		}
		out = stripped
	}
	return out, nil
}

// ReadInto reads t's elements in row-major order, little-endian, into dst,
// which must be exactly t.NumBytes() long. A strided view is gathered from
// its storage.
func (f *File) ReadInto(t *Tensor, dst []byte) error {
	if int64(len(dst)) != t.NumBytes() {
		return fmt.Errorf("%s: tensor of %d bytes, buffer of %d", f.Path, t.NumBytes(), len(dst))
	}
	if t.numel == 0 {
		return nil
	}
	es := int64(t.DType.Size())
	if t.contiguous() {
		if err := f.readStorage(t.storage, t.offset*es, dst); err != nil {
			return err
		}
	} else if err := f.gather(t, dst); err != nil {
		return err
	}
	if f.big && es > 1 {
		for i := 0; i < len(dst); i += int(es) {
			slices.Reverse(dst[i : i+int(es)])
		}
	}
	return nil
}

func (t *Tensor) contiguous() bool {
	want := int64(1)
	for i := len(t.Shape) - 1; i >= 0; i-- {
		if t.Shape[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= t.Shape[i]
	}
	return true
}

// gather reads a strided view in row-major order. When the view covers
// most of the bytes it spans (a transposed weight), the span is read once;
// a sparse view (a huge stride) is read element by element, so memory stays
// the size of the result whatever the strides say.
func (f *File) gather(t *Tensor, dst []byte) error {
	es := int64(t.DType.Size())
	last := t.offset
	for i, d := range t.Shape {
		last += (d - 1) * t.stride[i]
	}
	span := (last - t.offset + 1) * es
	var src []byte
	if span <= 2*int64(len(dst))+64<<10 || t.storage.rec.Method != zip.Store {
		src = make([]byte, span)
		if err := f.readStorage(t.storage, t.offset*es, src); err != nil {
			return err
		}
	}
	idx := make([]int64, len(t.Shape))
	for o := int64(0); o < int64(len(dst)); o += es {
		at := int64(0)
		for i, j := range idx {
			at += j * t.stride[i]
		}
		if src != nil {
			copy(dst[o:o+es], src[at*es:(at+1)*es])
		} else if err := f.readStorage(t.storage, (t.offset+at)*es, dst[o:o+es]); err != nil {
			return err
		}
		for i := len(idx) - 1; i >= 0; i-- {
			if idx[i]++; idx[i] < t.Shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return nil
}

func (f *File) readStorage(st *storage, off int64, dst []byte) error {
	fail := func(err error) error {
		return fmt.Errorf("%s: reading storage %s: %w", f.Path, st.rec.Name, err)
	}
	if st.rec.Method == zip.Store {
		start, err := st.rec.DataOffset()
		if err != nil {
			return fail(err)
		}
		if _, err := f.r.ReadAt(dst, start+off); err != nil {
			return fail(err)
		}
		return nil
	}
	rc, err := st.rec.Open()
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, off); err != nil {
		return fail(err)
	}
	if _, err := io.ReadFull(rc, dst); err != nil {
		return fail(err)
	}
	return nil
}

// Close closes the file.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}
