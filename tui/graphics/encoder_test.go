package graphics

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/mattn/go-sixel"
)

// kittyImage is a kitty transmission read back from the escapes.
type kittyImage struct {
	ctrl   map[string]string // keys of the first chunk
	chunks int
	img    *image.RGBA
}

// parseKitty reads every kitty APC in b, checks the chunking rules and
// decodes the image they carry.
func parseKitty(t *testing.T, b []byte) kittyImage {
	t.Helper()
	var k kittyImage
	var payload []byte
	for {
		i := bytes.Index(b, []byte("\x1b_G"))
		if i < 0 {
			break
		}
		end := bytes.Index(b[i:], []byte("\x1b\\"))
		if end < 0 {
			t.Fatal("unterminated kitty escape")
		}
		body := b[i+3 : i+end]
		b = b[i+end+2:]
		ctrl, data, ok := bytes.Cut(body, []byte(";"))
		if !ok {
			t.Fatalf("kitty chunk %d has no payload", k.chunks)
		}
		if len(data) > kittyChunk {
			t.Errorf("kitty chunk %d carries %d bytes, more than %d", k.chunks, len(data), kittyChunk)
		}
		keys := map[string]string{}
		for _, kv := range strings.Split(string(ctrl), ",") {
			key, v, _ := strings.Cut(kv, "=")
			keys[key] = v
		}
		if k.chunks == 0 {
			k.ctrl = keys
		} else if len(keys) != 1 {
			t.Errorf("chunk %d has keys %v; later chunks carry only m", k.chunks, keys)
		}
		if len(data)%4 != 0 {
			t.Errorf("chunk %d: %d base64 bytes, not a multiple of 4", k.chunks, len(data))
		}
		payload = append(payload, data...)
		k.chunks++
		if keys["m"] == "0" {
			break
		}
		if keys["m"] != "1" {
			t.Fatalf("chunk %d: m=%q", k.chunks-1, keys["m"])
		}
	}
	raw, err := base64.StdEncoding.DecodeString(string(payload))
	if err != nil {
		t.Fatalf("kitty payload: %v", err)
	}
	switch k.ctrl["f"] {
	case "100":
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("kitty PNG: %v", err)
		}
		k.img = toRGBA(img)
	case "24":
		w, _ := strconv.Atoi(k.ctrl["s"])
		h, _ := strconv.Atoi(k.ctrl["v"])
		if len(raw) != 3*w*h {
			t.Fatalf("kitty RGB: %d bytes for %d×%d", len(raw), w, h)
		}
		k.img = image.NewRGBA(image.Rect(0, 0, w, h))
		for i := range w * h {
			copy(k.img.Pix[4*i:], raw[3*i:3*i+3])
			k.img.Pix[4*i+3] = 255
		}
	default:
		t.Fatalf("kitty format f=%q", k.ctrl["f"])
	}
	return k
}

func TestKittyParseBack(t *testing.T) {
	img := heatmap(t)
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("raw=%v", raw), func(t *testing.T) {
			e := &Encoder{Mode: Kitty, CellWidth: 8, CellHeight: 16, ImageID: 7, KittyRaw: raw}
			var out bytes.Buffer
			if err := e.Encode(&out, img, 40, 10); err != nil {
				t.Fatal(err)
			}
			s := out.String()
			if !strings.HasPrefix(s, saveCursor+"\x1b_G") || !strings.HasSuffix(s, "\x1b\\"+restoreCursor) {
				t.Errorf("not wrapped in save/restore cursor: %q…%q", s[:8], s[len(s)-8:])
			}
			k := parseKitty(t, out.Bytes())
			// 10 rows of 16 px hold 160 px: the image is 160×160, 20×10 cells.
			want := map[string]string{"a": "T", "c": "20", "r": "10", "C": "1", "q": "2", "i": "7", "m": "1"}
			for key, v := range want {
				if k.ctrl[key] != v {
					t.Errorf("%s=%q, want %q (all: %v)", key, k.ctrl[key], v, k.ctrl)
				}
			}
			if k.chunks < 2 {
				t.Errorf("%d chunk(s); a 160×160 image needs several", k.chunks)
			}
			if k.img.Rect.Dx() != 160 || k.img.Rect.Dy() != 160 {
				t.Fatalf("image %v, want 160×160", k.img.Rect)
			}
			if d := maxDiff(k.img, resize(img, 160, 160)); d != 0 {
				t.Errorf("decoded image differs by up to %d", d)
			}
		})
	}
	// An image that shares a larger image's rows (stride wider than it).
	sub := resize(img, 160, 160).SubImage(image.Rect(0, 0, 40, 40)).(*image.RGBA)
	var subOut bytes.Buffer
	if err := (&Encoder{Mode: Kitty, KittyRaw: true, CellWidth: 8, CellHeight: 16}).Encode(&subOut, sub, 5, 5); err != nil {
		t.Fatal(err)
	}
	compact := image.NewRGBA(image.Rect(0, 0, 40, 40))
	draw.Draw(compact, compact.Rect, sub, image.Point{}, draw.Src)
	if k := parseKitty(t, subOut.Bytes()); maxDiff(k.img, compact) != 0 {
		t.Error("sub-image sent wrong pixels")
	}
	small := &Encoder{Mode: Kitty}
	var out bytes.Buffer
	if err := small.Encode(&out, grayRow(1, 2), 4, 4); err != nil {
		t.Fatal(err)
	}
	k := parseKitty(t, out.Bytes())
	if k.chunks != 1 || k.ctrl["m"] != "0" || k.ctrl["i"] != "" {
		t.Errorf("small image: %d chunks, keys %v", k.chunks, k.ctrl)
	}
}

func TestKittyDeleteAndClear(t *testing.T) {
	if got := KittyDelete(0); got != "\x1b_Ga=d,d=A,q=2\x1b\\" {
		t.Errorf("delete all: %q", got)
	}
	if got := KittyDelete(31); got != "\x1b_Ga=d,d=I,i=31,q=2\x1b\\" {
		t.Errorf("delete 31: %q", got)
	}
	if ClearAll(Kitty) != KittyDelete(0) || ClearAll(Sixel) != "" || ClearAll(Blocks) != "" {
		t.Error("ClearAll")
	}
}

// sixelImage encodes img as the bare sixel that Encode wraps.
func sixelImage(t testing.TB, img *image.RGBA) []byte {
	var b bytes.Buffer
	if err := encodeSixel(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// meanAbsError returns the mean absolute difference per channel (R, G, B).
func meanAbsError(a, b *image.RGBA) [3]float64 {
	var sum [3]float64
	n := 0
	for i := 0; i < len(a.Pix); i += 4 {
		for c := range 3 {
			sum[c] += math.Abs(float64(a.Pix[i+c]) - float64(b.Pix[i+c]))
		}
		n++
	}
	for c := range sum {
		sum[c] /= float64(n)
	}
	return sum
}

// TestSixelDecodedByImageMagick decodes the sixel of a heatmap with
// ImageMagick and compares it with the source. A sixel palette holds 255
// colours, given in whole percent, so some error is expected; the note in
// notes/graphics.md reports it.
func TestSixelDecodedByImageMagick(t *testing.T) {
	convert := ""
	for _, name := range []string{"convert-im6.q16", "magick", "convert"} {
		if p, err := exec.LookPath(name); err == nil {
			convert = p
			break
		}
	}
	if convert == "" {
		t.Skip("ImageMagick is not installed")
	}
	src := resize(heatmap(t), 224, 224)
	dir := t.TempDir()
	six, out := filepath.Join(dir, "heatmap.six"), filepath.Join(dir, "heatmap.png")
	if err := os.WriteFile(six, sixelImage(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{six, out}
	if filepath.Base(convert) == "magick" {
		args = append([]string{"convert"}, args...)
	}
	if msg, err := exec.Command(convert, args...).CombinedOutput(); err != nil {
		if strings.Contains(string(msg), "no decode delegate") {
			t.Skipf("%s cannot read sixel: %s", convert, msg)
		}
		t.Fatalf("%s: %v\n%s", convert, err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	got := toRGBA(dec)
	if got.Rect != src.Rect {
		t.Fatalf("ImageMagick decoded %v, want %v", got.Rect, src.Rect)
	}
	mae := meanAbsError(got, src)
	t.Logf("sixel via ImageMagick: mean absolute error R %.2f G %.2f B %.2f, max %d", mae[0], mae[1], mae[2], maxDiff(got, src))
	for c, e := range mae {
		if e > 4 {
			t.Errorf("channel %d: mean absolute error %.2f, want at most 4", c, e)
		}
	}
	if *update {
		// Not compared: kept for people to look at next to the source.
		if err := explain.WritePNG(filepath.Join("testdata", "heatmap.sixel-decoded.png"), got); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSixelRoundTrip decodes with go-sixel's own decoder, which needs no
// ImageMagick, so CI always checks the encoding.
func TestSixelRoundTrip(t *testing.T) {
	src := resize(heatmap(t), 100, 64)
	var dec image.Image
	if err := sixel.NewDecoder(bytes.NewReader(sixelImage(t, src))).Decode(&dec); err != nil {
		t.Fatal(err)
	}
	got := toRGBA(dec)
	if got.Rect.Dx() != 100 || got.Rect.Dy() < 64 {
		t.Fatalf("decoded %v, want 100×64", got.Rect)
	}
	got = toRGBA(got.SubImage(image.Rect(0, 0, 100, 64)))
	mae := meanAbsError(got, src)
	t.Logf("sixel via go-sixel: mean absolute error R %.2f G %.2f B %.2f", mae[0], mae[1], mae[2])
	for c, e := range mae {
		if e > 4 {
			t.Errorf("channel %d: mean absolute error %.2f, want at most 4", c, e)
		}
	}
}

func TestEncodeModes(t *testing.T) {
	img := heatmap(t)
	tests := []struct {
		mode         Mode
		wantC, wantR int
		check        func(t *testing.T, s string)
	}{
		{Sixel, 20, 10, func(t *testing.T, s string) {
			if !strings.HasPrefix(s, saveCursor+"\x1bP0;0;8q\"1;1;200;200") {
				t.Errorf("sixel header: %q", s[:min(len(s), 30)])
			}
		}},
		{Blocks, 20, 10, func(t *testing.T, s string) {
			if n := strings.Count(s, "▀"); n != 20*10 {
				t.Errorf("%d half blocks, want 200", n)
			}
			if !strings.Contains(s, restoreCursor+"\x1b[9B") {
				t.Error("rows are not placed below the first")
			}
		}},
		{None, 15, 1, func(t *testing.T, s string) {
			if s != saveCursor+"[image 224x224]"+restoreCursor {
				t.Errorf("placeholder %q", s)
			}
		}},
	}
	for _, tt := range tests {
		e := &Encoder{Mode: tt.mode}
		var out bytes.Buffer
		if err := e.Encode(&out, img, 30, 10); err != nil {
			t.Fatalf("%v: %v", tt.mode, err)
		}
		s := out.String()
		if !strings.HasSuffix(s, restoreCursor) {
			t.Errorf("%v: does not restore the cursor", tt.mode)
		}
		tt.check(t, s)
		if c, r := e.Cells(img, 30, 10); c != tt.wantC || r != tt.wantR {
			t.Errorf("%v: Cells = %d×%d, want %d×%d", tt.mode, c, r, tt.wantC, tt.wantR)
		}
	}
	// A placeholder longer than the box is cut.
	var out bytes.Buffer
	if err := (&Encoder{Mode: None}).Encode(&out, img, 6, 1); err != nil || out.String() != saveCursor+"[image"+restoreCursor {
		t.Errorf("cut placeholder %q, %v", out.String(), err)
	}

	errs := []struct {
		e          Encoder
		img        image.Image
		cols, rows int
		want       string
	}{
		{Encoder{Mode: Auto}, img, 10, 10, "resolve it with Detect"},
		{Encoder{Mode: Sixel}, img, 0, 10, "no room"},
		{Encoder{Mode: Blocks}, image.NewRGBA(image.Rect(0, 0, 0, 0)), 10, 10, "empty image"},
	}
	for _, tt := range errs {
		if err := tt.e.Encode(&out, tt.img, tt.cols, tt.rows); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want %q", tt.e.Mode, err, tt.want)
		}
	}
}

func TestWriteInline(t *testing.T) {
	img := heatmap(t)
	var out bytes.Buffer
	if err := Write(&out, img, Blocks, 10, 5); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); len(lines) != 5 || strings.Contains(out.String(), "\x1b7") {
		t.Errorf("blocks: %d lines %q", len(lines), out.String()[:20])
	}
	out.Reset()
	if err := Write(&out, img, Kitty, 20, 5); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	// 5 rows of 20 px (the default cell) hold 100×100 px: 10×5 cells.
	if !strings.HasPrefix(s, "\r\n\n\n\n\n\x1b[5A"+saveCursor) || !strings.HasSuffix(s, restoreCursor+"\x1b[5B\r") {
		t.Errorf("kitty inline framing: %q … %q", s[:16], s[len(s)-10:])
	}
	out.Reset()
	if err := Write(&out, img, None, 20, 5); err != nil || out.String() != "[image 224x224]\n" {
		t.Errorf("none: %q %v", out.String(), err)
	}
	if err := Write(&out, img, Sixel, 0, 5); err == nil {
		t.Error("no room accepted")
	}
}

func BenchmarkHalfBlocks224To40x20(b *testing.B) {
	img := heatmap(b)
	for b.Loop() {
		HalfBlocks(img, 40, 20)
	}
}

func BenchmarkEncode224(b *testing.B) {
	img := heatmap(b)
	for _, m := range []Mode{Sixel, Kitty, Blocks} {
		b.Run(m.String(), func(b *testing.B) {
			e := &Encoder{Mode: m, CellWidth: 8, CellHeight: 16}
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				if err := e.Encode(&out, img, 28, 14); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len()), "bytes/image")
		})
	}
}

// TestPercentByte: for every byte, the colour register the terminal
// reconstructs (round(p·255/100) from go-sixel's truncated percent p) is
// the closest a whole percent can come.
func TestPercentByte(t *testing.T) {
	for v := range int32(256) {
		c := percentByte(v)
		p := int(c) * 100 / 255
		shown := (p*255 + 50) / 100
		if d := math.Abs(float64(shown) - float64(v)); d > 1.275 {
			t.Errorf("byte %d: register %d, shown as %d (off by %g)", v, c, shown, d)
		}
	}
}

// TestQuantizeFewColours: an image with fewer colours than the palette
// keeps them all, up to the whole-percent registers.
func TestQuantizeFewColours(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 30, 7))
	cols := []color.RGBA{{200, 10, 30, 255}, {0, 255, 128, 255}, {17, 17, 17, 255}}
	for y := range 7 {
		for x := range 30 {
			img.SetRGBA(x, y, cols[(x/10+y)%3])
		}
	}
	p := quantize(img, sixelColors)
	if len(p.Palette) != 3 {
		t.Errorf("%d palette entries for 3 colours", len(p.Palette))
	}
	for y := range 7 {
		for x := range 30 {
			got := color.RGBAModel.Convert(p.At(x, y)).(color.RGBA)
			want := cols[(x/10+y)%3]
			for c, g := range []uint8{got.R, got.G, got.B} {
				w := []uint8{want.R, want.G, want.B}[c]
				if d := int(g) - int(w); d < -2 || d > 2 {
					t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, got, want)
				}
			}
		}
	}
}
