package torchsave

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixtures are written by testdata/pt/make_fixtures.py (PyTorch 1.13).
const fixtures = "../../testdata/pt"

func openFixture(t *testing.T, name string) *File {
	t.Helper()
	f, err := Open(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func float32s(t *testing.T, f *File, ten *Tensor) []float32 {
	t.Helper()
	b := make([]byte, ten.NumBytes())
	if err := f.ReadInto(ten, b); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, ten.numel)
	for i := range out {
		switch ten.DType {
		case F32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		case BF16:
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		case I64:
			out[i] = float32(int64(binary.LittleEndian.Uint64(b[8*i:])))
		default:
			t.Fatalf("dtype %s", ten.DType)
		}
	}
	return out
}

func TestSmall(t *testing.T) {
	f := openFixture(t, "small.pt")
	sd, err := f.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		dtype DType
		shape []int64
		vals  []float32
	}{
		"bf16":   {BF16, []int64{3, 4}, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		"param":  {F32, []int64{3}, []float32{0.5, -1.25, 3}},
		"ids":    {I64, []int64{5}, []float32{0, 1, 2, 3, 4}},
		"scalar": {F32, []int64{}, []float32{2.6592}},
		"row1":   {F32, []int64{4}, []float32{4, 5, 6, 7}},
		"col2":   {F32, []int64{3}, []float32{2, 6, 10}},
	}
	if len(sd) != len(want) {
		t.Fatalf("got %d tensors, want %d", len(sd), len(want))
	}
	for name, w := range want {
		ten, ok := sd[name]
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		if ten.DType != w.dtype || !slices.Equal(ten.Shape, w.shape) {
			t.Errorf("%s: %s %v, want %s %v", name, ten.DType, ten.Shape, w.dtype, w.shape)
			continue
		}
		if got := float32s(t, f, ten); !slices.Equal(got, w.vals) {
			t.Errorf("%s = %v, want %v", name, got, w.vals)
		}
	}
	if sd["row1"].storage != sd["col2"].storage {
		t.Error("row1 and col2 should share one storage")
	}
}

func TestModulePrefixAndWrapper(t *testing.T) {
	f := openFixture(t, "clip-tiny-f16.pth")
	sd, err := f.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	ten, ok := sd["logit_scale"]
	if !ok {
		t.Fatalf("no logit_scale after stripping module.; have %d tensors", len(sd))
	}
	if ten.DType != F16 {
		t.Errorf("logit_scale is %s, want F16", ten.DType)
	}
	for name := range sd {
		if strings.HasPrefix(name, "module.") {
			t.Fatalf("%s kept its prefix", name)
		}
	}
}

func TestRefusesGlobals(t *testing.T) {
	marker := "/tmp/lavascope-pwned-pt"
	os.Remove(marker)
	_, err := Open(filepath.Join(fixtures, "evil.pt"))
	var re *RefusedError
	if !errors.As(err, &re) || re.Global != "posix.system" {
		t.Fatalf("got %v, want the refusal of posix.system", err)
	}
	if !strings.Contains(err.Error(), "evil.pt") || !strings.Contains(err.Error(), "posix.system") {
		t.Errorf("message should name the file and the global: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("%s exists: the pickle's command ran", marker)
	}
}

func TestLegacy(t *testing.T) {
	_, err := Open(filepath.Join(fixtures, "legacy.pt"))
	if !errors.Is(err, ErrLegacy) {
		t.Fatalf("got %v, want ErrLegacy", err)
	}
}

func TestTruncated(t *testing.T) {
	full, err := os.ReadFile(filepath.Join(fixtures, "small.pt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{10, len(full) / 2, len(full) - 30, len(full) - 1} {
		_, err := Read(bytes.NewReader(full[:n]), int64(n), "cut.pt")
		if err == nil || !strings.Contains(err.Error(), "cut.pt") {
			t.Errorf("%d of %d bytes: got %v, want an error naming the file", n, len(full), err)
		}
	}
}

// archive builds a torch.save-like zip from a pickle and storage records.
func archive(t *testing.T, pkl []byte, storages map[string][]byte) []byte {
	t.Helper()
	records := map[string][]byte{"x/data.pkl": pkl}
	for k, v := range storages {
		records["x/data/"+k] = v
	}
	return zipOf(t, zip.Store, records)
}

// zipOf writes records, in name order, with one compression method.
func zipOf(t *testing.T, method uint16, records map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := slices.Sorted(maps.Keys(records))
	for _, name := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(records[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBigEndian(t *testing.T) {
	data := make([]byte, 4*6)
	for i := range 6 {
		binary.BigEndian.PutUint32(data[4*i:], math.Float32bits(float32(i)))
	}
	b := zipOf(t, zip.Store, map[string][]byte{
		"x/data.pkl":  tensorPickle(6, 0, []byte{3, 2}, []byte{1, 3}),
		"x/byteorder": []byte("big"),
		"x/data/0":    data,
	})
	f, err := Read(bytes.NewReader(b), int64(len(b)), "big.pt")
	if err != nil {
		t.Fatal(err)
	}
	sd, err := f.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := float32s(t, f, sd["w"]), []float32{0, 3, 1, 4, 2, 5}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// A torch.save file zipped again with deflate reads the same.
func TestDeflated(t *testing.T) {
	path := filepath.Join(fixtures, "small.pt")
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	records := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		records[f.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	b := zipOf(t, zip.Deflate, records)
	deflated, err := Read(bytes.NewReader(b), int64(len(b)), "deflated.pt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := deflated.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	orig := openFixture(t, "small.pt")
	want, err := orig.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if g := got[name]; g == nil || !slices.Equal(float32s(t, deflated, g), float32s(t, orig, w)) {
			t.Errorf("%s differs once deflated", name)
		}
	}
}

// tensorPickle is {"w": _rebuild_tensor_v2(FloatStorage "0" of numel, off, size, stride, False, OrderedDict())}.
func tensorPickle(numel, off byte, size, stride []byte) []byte {
	p := []byte("\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00\x00cpuq\x06K")
	p = append(p, numel)
	p = append(p, "tq\x07QK"...)
	p = append(p, off)
	p = append(p, '(')
	for _, s := range size {
		p = append(p, 'K', s)
	}
	p = append(p, "t("...)
	for _, s := range stride {
		p = append(p, 'K', s)
	}
	p = append(p, "t\x89ccollections\nOrderedDict\n)Rtq\x08Rq\x09s."...)
	return p
}

func TestBounds(t *testing.T) {
	data := make([]byte, 4*6)
	for i := range 6 {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(i)))
	}
	cases := []struct {
		name          string
		numel, off    byte
		size, stride  []byte
		want          []float32
		wantErrSubstr string
	}{
		{"contiguous", 6, 0, []byte{2, 3}, []byte{3, 1}, []float32{0, 1, 2, 3, 4, 5}, ""},
		{"transposed", 6, 0, []byte{3, 2}, []byte{1, 3}, []float32{0, 3, 1, 4, 2, 5}, ""},
		{"offset", 6, 4, []byte{2}, []byte{1}, []float32{4, 5}, ""},
		{"past the end", 6, 5, []byte{2}, []byte{1}, nil, "reach element 6 of a storage of 6"},
		{"stride past the end", 6, 0, []byte{2, 3}, []byte{4, 1}, nil, "reach element"},
		{"storage larger than its record", 7, 0, []byte{1}, []byte{1}, nil, "the record holds 24"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := archive(t, tensorPickle(c.numel, c.off, c.size, c.stride), map[string][]byte{"0": data})
			f, err := Read(bytes.NewReader(b), int64(len(b)), "hand.pt")
			if c.wantErrSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErrSubstr) {
					t.Fatalf("got %v, want an error with %q", err, c.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sd, err := f.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			if got := float32s(t, f, sd["w"]); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestRefusedOpcodes(t *testing.T) {
	cases := map[string]string{ // pickle: what the error must say
		"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.":           "global builtins.eval",
		"\x80\x02c__builtin__\ngetattr\n.":                            "global __builtin__.getattr",
		"\x80\x04\x8c\x02os\x8c\x06system\x93.":                       "global os.system",
		"\x80\x02ctorch.storage\n_load_from_bytes\n.":                 "global torch.storage._load_from_bytes",
		"\x80\x02ccollections\nOrderedDict\n)\x81.":                   "NEWOBJ",
		"\x80\x02ccollections\nOrderedDict\nX\x01\x00\x00\x00a\x85R.": "1 arguments, want none",
		"\x80\x02]q\x00h\x00a.":                                       "", // a list holding itself: harmless
	}
	for pkl, want := range cases {
		b := archive(t, []byte(pkl), nil)
		_, err := Read(bytes.NewReader(b), int64(len(b)), "hand.pt")
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", pkl, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "hand.pt") {
			t.Errorf("%q: got %v, want an error naming hand.pt with %q", pkl, err, want)
		}
	}
}

func FuzzReadPT(f *testing.F) {
	for _, name := range []string{"small.pt", "evil.pt", "legacy.pt"} {
		b, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tf, err := Read(bytes.NewReader(b), int64(len(b)), "fuzz.pt")
		if err != nil {
			return
		}
		sd, err := tf.StateDict()
		if err != nil {
			return
		}
		for _, ten := range sd {
			if ten.NumBytes() > 1<<20 {
				continue
			}
			_ = tf.ReadInto(ten, make([]byte, ten.NumBytes()))
		}
	})
}
