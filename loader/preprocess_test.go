package loader

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// readSafetensors reads the f32 tensors of a safetensors file: 8-byte
// little-endian header length, JSON header, raw little-endian data.
func readSafetensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 8 {
		t.Fatalf("%s: too short", path)
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) {
		t.Fatalf("%s: header length %d past the end", path, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &hdr); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	body := data[8+n:]
	out := map[string][]float32{}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var ti struct {
			Dtype   string   `json:"dtype"`
			Shape   []int    `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &ti); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		if ti.Dtype != "F32" {
			t.Fatalf("%s: %s: dtype %s, want F32", path, name, ti.Dtype)
		}
		b := body[ti.Offsets[0]:ti.Offsets[1]]
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		out[name] = v
	}
	return out
}

// errStats is the error of a preprocessed image against a reference, in
// normalised units and in 8-bit levels (normalised × std × 255).
type errStats struct{ max, mean, maxLevels, meanLevels float64 }

func compare(got, want []float32, std [3]float64) errStats {
	var s errStats
	n := len(got) / 3
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		l := d * std[i/n] * 255
		s.max, s.maxLevels = max(s.max, d), max(s.maxLevels, l)
		s.mean += d
		s.meanLevels += l
	}
	s.mean /= float64(len(got))
	s.meanLevels /= float64(len(got))
	return s
}

// TestPreprocessMatchesHF compares with testdata/hf-preprocess: hf.* is what
// transformers' CLIPImageProcessor returns (the reference lavascope follows),
// pil.* a plain PIL pipeline that rounds the long side instead of truncating
// it; with that one rounding changed, the resampling must agree with PIL's
// bit for bit.
func TestPreprocessMatchesHF(t *testing.T) {
	dir := filepath.Join("testdata", "hf-preprocess")
	want := readSafetensors(t, filepath.Join(dir, "expected.safetensors"))
	files, _ := filepath.Glob(filepath.Join(dir, "images", "*.png"))
	if len(files) != 6 {
		t.Fatalf("%d reference images, want 6", len(files))
	}
	sort.Strings(files)
	p := DefaultPreprocessConfig()
	var all errStats
	for _, f := range files {
		name := filepath.Base(f)
		img, err := ReadImage(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Preprocess(img, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3*224*224 {
			t.Fatalf("%s: %d values, want 3×224×224", name, len(got))
		}
		hf := compare(got, want["hf."+name], p.Std)
		t.Logf("%-17s vs hf:  max %.4f mean %.6f normalised; max %.2f mean %.4f levels of 255", name, hf.max, hf.mean, hf.maxLevels, hf.meanLevels)
		if hf.maxLevels > 2.01 || hf.meanLevels > 0.02 {
			t.Errorf("%s: differs from transformers by up to %.2f/255 (mean %.4f/255)", name, hf.maxLevels, hf.meanLevels)
		}
		all.max, all.maxLevels = max(all.max, hf.max), max(all.maxLevels, hf.maxLevels)
		all.mean += hf.mean / 6
		all.meanLevels += hf.meanLevels / 6
		pilRound, err := preprocess(img, p, true)
		if err != nil {
			t.Fatal(err)
		}
		pil := compare(pilRound, want["pil."+name], p.Std)
		if pil.max > 1e-6 {
			t.Errorf("%s: resampling differs from PIL by up to %.4f (normalised)", name, pil.max)
		}
	}
	t.Logf("all six vs hf: max %.4f mean %.6f normalised; max %.2f mean %.4f levels of 255", all.max, all.mean, all.maxLevels, all.meanLevels)
}

func solid(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// Values worked out by hand from the bicubic kernel, the crop rule and CLIP's
// mean and std.
func TestPreprocessByHand(t *testing.T) {
	// Halving [0 0 255 255] with PIL's bicubic: the kernel is stretched to
	// support 4; output 0 is centred on input 1 with weights
	// f(-0.25), f(0.25), f(0.75), f(1.25) = 0.8671875, 0.8671875, 0.2265625,
	// -0.0703125 (sum 1.890625), so 255·(0.2265625-0.0703125)/1.890625 = 21.07
	// and output 1 mirrors it: 255 - 21.07 = 233.93.
	src := rgb{w: 4, h: 1, pix: []uint8{0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255}}
	got := resize(src, 2, 1, ResampleBicubic)
	if want := []uint8{21, 21, 21, 234, 234, 234}; !slices.Equal(got.pix, want) {
		t.Errorf("bicubic 4→2 = %v, want %v", got.pix, want)
	}

	// A flat colour stays flat whatever the resizing: (v/255 - mean)/std.
	p := DefaultPreprocessConfig()
	out, err := Preprocess(solid(300, 200, color.RGBA{255, 128, 0, 255}), p)
	if err != nil {
		t.Fatal(err)
	}
	n := 224 * 224
	for c, want := range []float64{(1 - 0.48145466) / 0.26862954, (128.0/255 - 0.4578275) / 0.26130258, (0 - 0.40821073) / 0.27577711} {
		for _, i := range []int{0, n / 2, n - 1} {
			if d := math.Abs(float64(out[c*n+i]) - want); d > 1e-6 {
				t.Errorf("channel %d pixel %d = %v, want %v", c, i, out[c*n+i], want)
			}
		}
	}

	// 448×224, black left half, white right half: no resize (the short side
	// is 224 already), the crop keeps columns 112..335, so the output is
	// black for x < 112 and white from 112 on, in every row. A red dot at
	// (120, 3) lands at (8, 3) of channel 0 only.
	img := solid(448, 224, color.RGBA{0, 0, 0, 255})
	for y := range 224 {
		for x := 224; x < 448; x++ {
			img.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
		}
	}
	img.SetRGBA(120, 3, color.RGBA{255, 0, 0, 255})
	out, err = Preprocess(img, p)
	if err != nil {
		t.Fatal(err)
	}
	black := float32((0 - 0.48145466) / 0.26862954)
	white := float32((1 - 0.48145466) / 0.26862954)
	for _, x := range []int{0, 111, 112, 223} {
		want := black
		if x >= 112 {
			want = white
		}
		if got := out[100*224+x]; math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("row 100 column %d = %v, want %v", x, got, want)
		}
	}
	if got := out[3*224+8]; math.Abs(float64(got-white)) > 1e-6 {
		t.Errorf("red dot, red channel = %v, want %v", got, white)
	}
	if got, want := out[n+3*224+8], float32((0-0.4578275)/0.26130258); math.Abs(float64(got-want)) > 1e-6 {
		t.Errorf("red dot, green channel = %v, want %v", got, want)
	}
}

func TestLoadPreprocessConfig(t *testing.T) {
	dir := t.TempDir()
	p, err := LoadPreprocessConfig(dir)
	if err != nil || !reflect.DeepEqual(p, DefaultPreprocessConfig()) {
		t.Errorf("without a file: %+v, %v; want the defaults", p, err)
	}
	cases := []struct {
		json string
		want func(*PreprocessConfig)
		err  string
	}{
		{json: `{"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}, "resample": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": 0.5}`,
			want: func(p *PreprocessConfig) {
				p.ShortestEdge, p.CropHeight, p.CropWidth, p.Resample = 336, 336, 336, ResampleBilinear
				p.Mean, p.Std = [3]float64{0.5, 0.5, 0.5}, [3]float64{0.5, 0.5, 0.5}
			}},
		{json: `{"size": 224, "crop_size": 224, "do_normalize": false, "feature_extractor_type": "CLIPFeatureExtractor"}`,
			want: func(p *PreprocessConfig) { p.DoNormalize = false }},
		{json: `{"size": {"height": 64, "width": 64}, "do_center_crop": false}`,
			want: func(p *PreprocessConfig) { p.ShortestEdge, p.Height, p.Width, p.DoCenterCrop = 0, 64, 64, false }},
		{json: `{"resample": 9}`, err: "resample 9 is not a PIL filter"},
		{json: `{"size": "big"}`, err: "size: want a number"},
		{json: `{"image_std": [0.5, 0.5]}`, err: "image_std: want a number or a list of 3 numbers"},
		{json: `{"image_std": [0.5, 0, 0.5]}`, err: "image_std[1] is 0"},
		{json: `{"do_center_crop": false}`, err: "varying size"},
		{json: `{"crop_size": 22400}`, err: "crop_size.height 22400 is larger than 8192"},
		{json: `{"size": `, err: "unexpected end of JSON"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, "preprocessor_config.json")
		if err := os.WriteFile(path, []byte(c.json), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := LoadPreprocessConfig(dir)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: error %v, want one naming %s and saying %q", c.json, err, path, c.err)
			}
			continue
		}
		want := DefaultPreprocessConfig()
		c.want(&want)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", c.json, got, err, want)
		}
	}
}

func TestReadImage(t *testing.T) {
	dir := t.TempDir()
	jpg := filepath.Join(dir, "a.jpg")
	f, err := os.Create(jpg)
	if err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(f, solid(40, 30, color.RGBA{10, 200, 30, 255}), nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	img, err := ReadImage(jpg)
	if err != nil || img.Bounds().Dx() != 40 {
		t.Fatalf("ReadImage(jpeg) = %v, %v", img, err)
	}
	if size, err := ReadImageSize(jpg); err != nil || size != image.Pt(40, 30) {
		t.Errorf("ReadImageSize(jpeg) = %v, %v", size, err)
	}
	if _, err := Preprocess(img, DefaultPreprocessConfig()); err != nil {
		t.Error(err)
	}
	txt := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(txt, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, read := range []func(string) error{
		func(p string) error { _, err := ReadImage(p); return err },
		func(p string) error { _, err := ReadImageSize(p); return err },
	} {
		if err := read(txt); err == nil || !strings.Contains(err.Error(), txt+": not a PNG or JPEG image") {
			t.Errorf("reading text: %v", err)
		}
	}
}

// A few bytes that claim a 100000×100000 image are refused before decoding,
// with the bytes decoding would take.
func TestReadImageTooLarge(t *testing.T) {
	ihdr := []byte("IHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x02\x00\x00\x00")
	var b []byte
	b = append(b, "\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"...)
	b = append(b, ihdr...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
	path := filepath.Join(t.TempDir(), "bomb.png")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if size, err := ReadImageSize(path); err != nil || size != image.Pt(100000, 100000) {
		t.Errorf("ReadImageSize = %v, %v", size, err)
	}
	if _, err := ReadImage(path); err == nil || !strings.Contains(err.Error(), "100000x100000 8-bit RGB png takes up to 40000000000 bytes") {
		t.Errorf("ReadImage: %v", err)
	}
}

func BenchmarkPreprocessFrame(b *testing.B) {
	img, err := ReadImage(filepath.Join("testdata", "hf-preprocess", "images", "frame720x540.png"))
	if err != nil {
		b.Fatal(err)
	}
	p := DefaultPreprocessConfig()
	for b.Loop() {
		if _, err := Preprocess(img, p); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParsePreprocessConfig(f *testing.F) {
	f.Add([]byte(`{"size": {"shortest_edge": 224}, "crop_size": 224, "image_mean": [0.5, 0.5, 0.5], "image_std": 0.5, "resample": 3}`))
	f.Add([]byte(`{"size": {"height": 3, "width": 2}, "do_center_crop": false}`))
	f.Add([]byte(`{"crop_size": {"height": 1, "width": 1}, "size": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePreprocessConfig(data)
		if err != nil {
			return
		}
		h, w, err := p.Size()
		if err != nil || h <= 0 || w <= 0 {
			t.Fatalf("accepted a config with output size %dx%d (%v)", w, h, err)
		}
		if h*w > 1<<16 || p.ShortestEdge > 1<<9 || p.Width > 1<<9 || p.Height > 1<<9 {
			return // too large to run quickly; the parse is what is fuzzed
		}
		out, err := Preprocess(solid(5, 3, color.RGBA{1, 2, 3, 255}), p)
		if err == nil && len(out) != 3*h*w {
			t.Fatalf("%d values for %dx%d", len(out), w, h)
		}
	})
}

func TestResizedAndCropOffset(t *testing.T) {
	p := DefaultPreprocessConfig()
	noCrop := p
	noCrop.DoCenterCrop = false
	noResize := p
	noResize.DoResize = false
	tests := []struct {
		name      string
		p         PreprocessConfig
		w, h      int
		rw, rh    int
		left, top int
	}{
		{"landscape frame", p, 720, 540, 298, 224, 37, 0},
		{"portrait", p, 100, 150, 224, 336, 0, 56},
		{"square", p, 224, 224, 224, 224, 0, 0},
		{"no crop", noCrop, 720, 540, 298, 224, 0, 0},
		{"no resize pads", noResize, 100, 150, 100, 150, -62, -37},
	}
	for _, tc := range tests {
		rw, rh := tc.p.Resized(tc.w, tc.h)
		left, top := tc.p.CropOffset(rw, rh)
		if rw != tc.rw || rh != tc.rh || left != tc.left || top != tc.top {
			t.Errorf("%s: resized %dx%d, crop at (%d,%d); want %dx%d at (%d,%d)", tc.name, rw, rh, left, top, tc.rw, tc.rh, tc.left, tc.top)
		}
	}
}

// TestPreprocess336 runs openai/clip-vit-large-patch14-336's preprocessing
// (its preprocessor_config.json, abridged): a 4:3 photo becomes a 336×336
// tensor, each channel of a flat colour normalised by that channel's mean
// and deviation.
func TestPreprocess336(t *testing.T) {
	p, err := ParsePreprocessConfig([]byte(`{"crop_size": {"height": 336, "width": 336}, "do_center_crop": true,
		"do_normalize": true, "do_resize": true, "image_mean": [0.48145466, 0.4578275, 0.40821073],
		"image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": {"shortest_edge": 336}}`))
	if err != nil {
		t.Fatal(err)
	}
	if h, w, err := p.Size(); err != nil || h != 336 || w != 336 {
		t.Fatalf("Size() = %d, %d, %v; want 336, 336", h, w, err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	rgb := [3]uint8{200, 100, 50}
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = rgb[0], rgb[1], rgb[2], 255
	}
	px, err := Preprocess(img, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(px) != 3*336*336 {
		t.Fatalf("%d values, want 3×336×336", len(px))
	}
	for c := range 3 {
		want := (float64(rgb[c])/255 - p.Mean[c]) / p.Std[c]
		for _, k := range []int{0, 336*336/2 + 168, 336*336 - 1} {
			// A flat image stays flat through bicubic resampling; 1e-5
			// allows the float32 arithmetic.
			if got := float64(px[c*336*336+k]); math.Abs(got-want) > 1e-5 {
				t.Errorf("channel %d, pixel %d: %v, want %v", c, k, got, want)
			}
		}
	}
}
