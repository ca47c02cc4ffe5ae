package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixtureDir is the Hugging Face reference checkpoint and its outputs; absolute,
// since some tests change the working directory.
var fixtureDir = absPath(filepath.Join("..", "..", "testdata", "hf-clip-tiny"))

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func openFixture(t *testing.T, name string) *File {
	t.Helper()
	s, err := Open(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestReadFixture(t *testing.T) {
	ck := openFixture(t, "checkpoint/model.safetensors")
	if n := len(ck.Tensors()); n != 78 {
		t.Errorf("checkpoint has %d tensors, want 78", n)
	}
	if ck.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", ck.Metadata)
	}
	ti, ok := ck.Tensor("vision_model.embeddings.patch_embedding.weight")
	if !ok || ti.DType != F32 || !slices.Equal(ti.Shape, []int64{64, 3, 32, 32}) {
		t.Errorf("patch embedding: %+v", ti)
	}
	ls, err := ck.Float32s("logit_scale")
	if err != nil || len(ls) != 1 {
		t.Fatalf("logit_scale: %v %v", ls, err)
	}
	// transformers initialises logit_scale to logit_scale_init_value.
	if math.Abs(float64(ls[0])-2.6592) > 1e-6 {
		t.Errorf("logit_scale = %v, want 2.6592", ls[0])
	}

	// The expected outputs are consistent with each other only if every value
	// was read from the right place.
	exp := openFixture(t, "expected.safetensors")
	lpi, err := exp.Float32s("logits_per_image")
	if err != nil {
		t.Fatal(err)
	}
	lpt, _ := exp.Float32s("logits_per_text")
	img, _ := exp.Float32s("image_embeds")
	txt, _ := exp.Float32s("text_embeds")
	scale := math.Exp(float64(ls[0]))
	for i := range 2 {
		for j := range 2 {
			if lpi[i*2+j] != lpt[j*2+i] {
				t.Errorf("logits_per_image[%d,%d] = %v, logits_per_text[%d,%d] = %v", i, j, lpi[i*2+j], j, i, lpt[j*2+i])
			}
			dot := 0.0
			for k := range 32 {
				dot += float64(img[i*32+k]) * float64(txt[j*32+k])
			}
			if math.Abs(scale*dot-float64(lpi[i*2+j])) > 1e-4 {
				t.Errorf("logits_per_image[%d,%d] = %v, exp(logit_scale)·<img,txt> = %v", i, j, lpi[i*2+j], scale*dot)
			}
		}
	}

	in := openFixture(t, "inputs.safetensors")
	ids, err := in.Int64s("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	eot, _ := in.Int64s("eot_index")
	for b, e := range eot {
		row := ids[b*77 : (b+1)*77]
		if first := slices.Index(row, 499); int64(first) != e {
			t.Errorf("row %d: first EOS (499) at %d, eot_index says %d", b, first, e)
		}
	}
	if _, err := in.Float32s("input_ids"); err == nil {
		t.Error("Float32s accepted an I64 tensor")
	}
}

func randomTensors(rng *rand.Rand) []Tensor {
	var ts []Tensor
	for i, dt := range []DType{F32, F16, BF16, I64, I32, Bool, F64, U8, I8, I16} {
		shape := []int64{int64(1 + rng.IntN(3)), int64(rng.IntN(4))}
		if i == 0 {
			shape = []int64{} // a scalar
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		data := make([]byte, n*int64(dt.Size()))
		for k := range data {
			data[k] = byte(rng.IntN(256))
		}
		ts = append(ts, Tensor{Name: fmt.Sprintf("t%d.%s", i, strings.ToLower(dt.String())), DType: dt, Shape: shape, Data: data})
	}
	return ts
}

func TestWriteReadRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ts := randomTensors(rng)
	meta := map[string]string{"format": "pt", "note": "\"quoted\" <x>"}
	path := filepath.Join(t.TempDir(), "rt.safetensors")
	if err := Save(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Metadata) != 2 || s.Metadata["note"] != meta["note"] {
		t.Errorf("metadata %v", s.Metadata)
	}
	if s.dataStart%8 != 0 {
		t.Errorf("data starts at %d, not 8-aligned", s.dataStart)
	}
	for _, want := range ts {
		ti, ok := s.Tensor(want.Name)
		if !ok {
			t.Fatalf("%s missing", want.Name)
		}
		if ti.DType != want.DType || !slices.Equal(ti.Shape, want.Shape) || ti.Begin%int64(ti.DType.Size()) != 0 {
			t.Errorf("%s: %+v", want.Name, ti)
		}
		got, err := s.Bytes(want.Name)
		if err != nil || !bytes.Equal(got, want.Data) {
			t.Errorf("%s: data differs (%v)", want.Name, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestRewriteFixture reads every tensor of the HF checkpoint and writes them
// again: the result must read back identically.
func TestRewriteFixture(t *testing.T) {
	src := openFixture(t, "checkpoint/model.safetensors")
	var ts []Tensor
	for _, ti := range src.Tensors() {
		b, err := src.Bytes(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Save(path, ts, src.Metadata); err != nil {
		t.Fatal(err)
	}
	back, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	for _, want := range ts {
		got, err := back.Bytes(want.Name)
		if err != nil || !bytes.Equal(got, want.Data) {
			t.Fatalf("%s differs after rewrite (%v)", want.Name, err)
		}
	}
}

func TestAtomicWriteKeepsOldFileOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Save(path, []Tensor{F32Tensor("a", []int64{2}, []float32{1, 2})}, nil); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path)
	bad := []Tensor{{Name: "a", DType: F32, Shape: []int64{3}, Data: make([]byte, 8)}}
	err := Save(path, bad, nil)
	if err == nil || !strings.Contains(err.Error(), "needs 12 bytes, got 8") {
		t.Fatalf("error %v", err)
	}
	now, _ := os.ReadFile(path)
	if !bytes.Equal(old, now) {
		t.Error("a failed write changed the file")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := Save(filepath.Join(path, "x", "y"), nil, nil); err == nil {
		t.Error("writing under a file succeeded")
	}
}

func TestWriterRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		ts   []Tensor
		want string
	}{
		{"repeated", []Tensor{F32Tensor("a", nil, []float32{1}), F32Tensor("a", nil, []float32{1})}, "repeated"},
		{"metadata name", []Tensor{F32Tensor("__metadata__", nil, []float32{1})}, "bad or repeated"},
		{"no dtype", []Tensor{{Name: "a", Shape: []int64{1}, Data: []byte{0}}}, "unknown dtype"},
		{"negative", []Tensor{{Name: "a", DType: U8, Shape: []int64{-1}}}, "negative"},
	} {
		if err := Write(&bytes.Buffer{}, tc.ts, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// rawFile builds a safetensors file from a header given as JSON and data bytes.
func rawFile(header string, data []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestReadRejectsBadFiles(t *testing.T) {
	eight := make([]byte, 8)
	good := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<40)
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "truncated: 0 bytes"},
		{"short length", []byte{1, 2, 3}, "truncated: 3 bytes"},
		{"header past end", rawFile(good, eight)[:20], "truncated: header says"},
		{"huge header", huge, "exceeds the limit"},
		{"data truncated", rawFile(good, eight[:5]), "truncated: tensor \"a\" needs data up to byte 8, the file has 5"},
		{"not json", rawFile(`{"a":`, nil), "bad header"},
		{"not object", rawFile(`[1,2]`, nil), "not a JSON object"},
		{"trailing", rawFile(`{} {}`, nil), "data after"},
		{"duplicate", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil), `tensor "a" appears twice`},
		{"no dtype", rawFile(`{"a":{"shape":[1],"data_offsets":[0,1]}}`, []byte{0}), "no dtype"},
		{"no shape", rawFile(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`, []byte{0}), "no shape"},
		{"bad offsets", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`, []byte{0}), "data_offsets must be"},
		{"negative offsets", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, []byte{0}), "bad header"},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), `unsupported dtype "F8_E4M3"`},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, eight), "F32 [3] needs 12 bytes, data_offsets [0, 8] hold 8"},
		{"end before begin", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[8,7]}}`, eight), "end before they begin"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "overlaps"},
		{"gap", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "gap of 4 bytes"},
		{"out of range", rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, eight), "needs data up to byte 16"},
		{"extra data", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, eight), "tensors end at data byte 4, the file has 8"},
		{"overflow", rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, eight), "overflows"},
		{"bad metadata", rawFile(`{"__metadata__":{"a":1}}`, nil), "__metadata__: want an object of strings"},
	}
	for _, tt := range tests {
		_, err := Read(bytes.NewReader(tt.file), int64(len(tt.file)), "bad.safetensors")
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "bad.safetensors: ") {
			t.Errorf("%s: error %v, want it to name the file and say %q", tt.name, err, tt.want)
		}
	}
	// Accepted: spaces after the JSON (the reference writer pads), zero-size
	// tensors sharing an offset, an empty file of tensors.
	for _, ok := range [][]byte{
		rawFile(good+"   ", eight),
		rawFile(`{"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"y":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}`, nil),
		rawFile(`{}`, nil),
	} {
		if _, err := Read(bytes.NewReader(ok), int64(len(ok)), "ok"); err != nil {
			t.Errorf("rejected a valid file: %v", err)
		}
	}
}

func TestFloat16Conversions(t *testing.T) {
	// Every half converts to float32 and back unchanged (NaNs stay NaN).
	for h := range 1 << 16 {
		f := Float16ToFloat32(uint16(h))
		back := Float32ToFloat16(f)
		if math.IsNaN(float64(f)) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if back != uint16(h) {
			t.Fatalf("%#04x → %v → %#04x", h, f, back)
		}
	}
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e9, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {5.960464477539063e-08, 0x0001}, {2.98e-08, 0x0000},
		{1 + 1.0/2048, 0x3c00}, // halfway: to even
		{1 + 3.0/2048, 0x3c02}, // halfway: to even, upwards
		{6.097555160522461e-05, 0x03ff},
	} {
		if got := Float32ToFloat16(tc.f); got != tc.want {
			t.Errorf("Float32ToFloat16(%v) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
	// Rounding is to the nearest half: no other half is closer.
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		f := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(40)-24)))
		h := Float32ToFloat16(f)
		if h&0x7fff == 0x7c00 {
			// IEEE rounding overflows to Inf from 65520 on.
			if math.Abs(float64(f)) < 65520 {
				t.Fatalf("%v became Inf", f)
			}
			continue
		}
		got := float64(Float16ToFloat32(h))
		for _, nb := range []uint16{h - 1, h + 1} {
			other := float64(Float16ToFloat32(nb))
			if nb&0x7c00 != 0x7c00 && math.Abs(other-float64(f)) < math.Abs(got-float64(f)) {
				t.Fatalf("%v rounded to %v, %v is closer", f, got, other)
			}
		}
	}
}

func TestBFloat16Conversions(t *testing.T) {
	for h := range 1 << 16 {
		f := BFloat16ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(BFloat16ToFloat32(Float32ToBFloat16(f)))) {
				t.Fatalf("NaN %#04x lost", h)
			}
			continue
		}
		if back := Float32ToBFloat16(f); back != uint16(h) {
			t.Fatalf("%#04x → %v → %#04x", h, f, back)
		}
	}
	for _, tc := range []struct {
		bits uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // halfway, even stays
		{0x3f818000, 0x3f82}, // halfway, odd rounds up
		{0x3f808001, 0x3f81},
		{0x7f7fffff, 0x7f80}, // rounds to Inf
	} {
		if got := Float32ToBFloat16(math.Float32frombits(tc.bits)); got != tc.want {
			t.Errorf("Float32ToBFloat16(%#08x) = %#04x, want %#04x", tc.bits, got, tc.want)
		}
	}
}

func TestDecodeEncodeFloats(t *testing.T) {
	v := []float32{0, 1, -2.5, 1024, 3.140625}
	for _, dt := range []DType{F16, BF16, F32, F64} {
		b, err := EncodeFloat32s(dt, v)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeFloat32s(dt, b)
		if err != nil || !slices.Equal(back, v) {
			t.Errorf("%s: %v (%v)", dt, back, err)
		}
	}
	if _, err := EncodeFloat32s(I32, v); err == nil {
		t.Error("EncodeFloat32s accepted I32")
	}
	if _, err := DecodeFloat32s(F32, make([]byte, 5)); err == nil {
		t.Error("DecodeFloat32s accepted 5 bytes of F32")
	}
	ints, err := DecodeInt64s(I16, []byte{0xff, 0xff, 2, 0})
	if err != nil || !slices.Equal(ints, []int64{-1, 2}) {
		t.Errorf("I16: %v %v", ints, err)
	}
}

func FuzzSafetensors(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, randomTensors(rand.New(rand.NewPCG(7, 8))), map[string]string{"k": "v"})
	f.Add(buf.Bytes())
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"a":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]},"b":{"dtype":"BOOL","shape":[],"data_offsets":[4,5]}}`, make([]byte, 5)))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Read(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		var ts []Tensor
		for _, ti := range s.Tensors() {
			b, err := s.Bytes(ti.Name)
			if err != nil {
				t.Fatalf("%s: %v", ti.Name, err)
			}
			if ti.DType.IsFloat() {
				if _, err := s.Float32s(ti.Name); err != nil {
					t.Fatal(err)
				}
			} else if _, err := s.Int64s(ti.Name); err != nil {
				t.Fatal(err)
			}
			ts = append(ts, Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
		}
		var out bytes.Buffer
		if err := Write(&out, ts, s.Metadata); err != nil {
			t.Fatalf("rewriting a valid file: %v", err)
		}
		back, err := Read(bytes.NewReader(out.Bytes()), int64(out.Len()), "rewritten")
		if err != nil {
			t.Fatalf("rewritten file is invalid: %v", err)
		}
		if len(back.Tensors()) != len(ts) {
			t.Fatalf("%d tensors after rewrite, want %d", len(back.Tensors()), len(ts))
		}
	})
}
