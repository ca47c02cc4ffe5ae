package graphics

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/explain"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"auto", Auto, false}, {"sixel", Sixel, false}, {"KITTY", Kitty, false},
		{" blocks ", Blocks, false}, {"none", None, false},
		{"", Auto, true}, {"iterm", Auto, true}, {"half-block", Auto, true},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "auto|sixel|kitty|blocks|none") {
			t.Errorf("ParseMode(%q): error %q does not list the modes", tt.in, err)
		}
	}
	for _, m := range []Mode{Auto, Sixel, Kitty, Blocks, None} {
		if back, err := ParseMode(m.String()); err != nil || back != m {
			t.Errorf("%v does not round-trip: %v %v", m, back, err)
		}
	}
	if Mode(42).String() != "Mode(42)" {
		t.Errorf("unknown mode prints %q", Mode(42).String())
	}
}

func TestFit(t *testing.T) {
	tests := []struct {
		name             string
		w, h, boxW, boxH int
		unitW, unitH     float64
		wantW, wantH     int
	}{
		{"square in wide box", 224, 224, 400, 200, 1, 1, 200, 200},
		{"upscale", 10, 5, 100, 100, 1, 1, 100, 50},
		{"tall", 100, 400, 50, 50, 1, 1, 13, 50},
		{"square in cells 1:2", 224, 224, 40, 20, 10, 20, 40, 20},
		{"tiny stays visible", 1000, 1, 10, 10, 1, 1, 10, 1},
		{"empty image", 0, 5, 10, 10, 1, 1, 0, 0},
		{"empty box", 5, 5, 0, 10, 1, 1, 0, 0},
	}
	for _, tt := range tests {
		w, h := fit(tt.w, tt.h, tt.boxW, tt.boxH, tt.unitW, tt.unitH)
		if w != tt.wantW || h != tt.wantH {
			t.Errorf("%s: fit = %d×%d, want %d×%d", tt.name, w, h, tt.wantW, tt.wantH)
		}
	}
}

func grayRow(vals ...uint8) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, len(vals), 1))
	for x, v := range vals {
		img.SetRGBA(x, 0, color.RGBA{v, v, v, 255})
	}
	return img
}

func TestResizeAreaAverage(t *testing.T) {
	tests := []struct {
		name string
		in   *image.RGBA
		w    int
		want []uint8
	}{
		{"halve", grayRow(0, 100, 200, 50), 2, []uint8{50, 125}},
		// 3 → 2: each output covers 1.5 inputs: (0 + 90/2)/1.5 and (90/2 + 180)/1.5.
		{"three to two", grayRow(0, 90, 180), 2, []uint8{30, 150}},
		{"double", grayRow(10, 20), 4, []uint8{10, 10, 20, 20}},
		{"same size", grayRow(1, 2, 3), 3, []uint8{1, 2, 3}},
	}
	for _, tt := range tests {
		out := resize(tt.in, tt.w, 1)
		for x, v := range tt.want {
			if got := out.RGBAAt(x, 0); got != (color.RGBA{v, v, v, 255}) {
				t.Errorf("%s: pixel %d = %v, want gray %d", tt.name, x, got, v)
			}
		}
	}
	// Two rows into one: the vertical pass averages too.
	img := image.NewRGBA(image.Rect(0, 0, 1, 2))
	img.SetRGBA(0, 0, color.RGBA{200, 0, 0, 255})
	img.SetRGBA(0, 1, color.RGBA{0, 100, 0, 255})
	if got := resize(img, 1, 1).RGBAAt(0, 0); got != (color.RGBA{100, 50, 0, 255}) {
		t.Errorf("vertical average %v", got)
	}
	// An image whose origin is not (0, 0).
	sub := grayRow(7, 8, 9, 10).SubImage(image.Rect(2, 0, 4, 1))
	if got := resize(sub, 1, 1).RGBAAt(0, 0); got.R != 10 { // (9+10)/2 = 9.5 rounds to 10
		t.Errorf("sub-image average %v", got)
	}
}

// heatmap is the test image: a relevance map drawn over a synthetic picture
// by package explain, as the explorer shows it.
func heatmap(t testing.TB) *image.RGBA {
	t.Helper()
	base := image.NewRGBA(image.Rect(0, 0, 224, 224))
	for y := range 224 {
		for x := range 224 {
			base.SetRGBA(x, y, color.RGBA{uint8(x), uint8(y), uint8((x + y) / 2), 255})
		}
	}
	for y := 60; y < 120; y++ {
		for x := 90; x < 170; x++ {
			base.SetRGBA(x, y, color.RGBA{250, 240, 30, 255})
		}
	}
	g := explain.Grid{W: 7, H: 7, V: make([]float32, 49)}
	for i := range g.V {
		x, y := float32(i%7), float32(i/7)
		g.V[i] = 1 / (1 + (x-4)*(x-4) + (y-2)*(y-2))
	}
	img, err := explain.Overlay(base, g, explain.OverlayOptions{Blend: explain.BlendAlpha})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestHalfBlocksHandComputed(t *testing.T) {
	red, blue, green := color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}, color.RGBA{0, 128, 0, 255}
	col := image.NewRGBA(image.Rect(0, 0, 1, 2))
	col.SetRGBA(0, 0, red)
	col.SetRGBA(0, 1, blue)
	if got, want := HalfBlocks(col, 1, 1), []string{"\x1b[38;2;255;0;0;48;2;0;0;255m▀\x1b[0m"}; !slices.Equal(got, want) {
		t.Errorf("1×2: %q, want %q", got, want)
	}

	// 2×3: two lines; the second has no lower pixels and keeps the default
	// background; repeated colours are not repeated.
	img := image.NewRGBA(image.Rect(0, 0, 2, 3))
	for x := range 2 {
		img.SetRGBA(x, 0, red)
		img.SetRGBA(x, 1, blue)
		img.SetRGBA(x, 2, green)
	}
	want := []string{
		"\x1b[38;2;255;0;0;48;2;0;0;255m▀▀\x1b[0m",
		"\x1b[38;2;0;128;0;49m▀▀\x1b[0m",
	}
	if got := HalfBlocks(img, 2, 2); !slices.Equal(got, want) {
		t.Errorf("2×3: %q, want %q", got, want)
	}
	// Only the background changes.
	img2 := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img2.SetRGBA(0, 0, red)
	img2.SetRGBA(1, 0, red)
	img2.SetRGBA(0, 1, blue)
	img2.SetRGBA(1, 1, green)
	want2 := []string{"\x1b[38;2;255;0;0;48;2;0;0;255m▀\x1b[48;2;0;128;0m▀\x1b[0m"}
	if got := HalfBlocks(img2, 2, 1); !slices.Equal(got, want2) {
		t.Errorf("background change: %q, want %q", got, want2)
	}
	if got := HalfBlocks(img, 0, 3); got != nil {
		t.Errorf("no room: %q", got)
	}
}

// TestHalfBlocksGolden keeps the heatmap's half-block rendering at 28×14
// cells, and checks it against the image by reading the colours back.
func TestHalfBlocksGolden(t *testing.T) {
	img := heatmap(t)
	lines := HalfBlocks(img, 28, 14)
	if len(lines) != 14 {
		t.Fatalf("%d lines, want 14", len(lines))
	}
	back := decodeHalfBlocks(t, lines)
	if back.Rect.Dx() != 28 || back.Rect.Dy() != 28 {
		t.Fatalf("decoded %v, want 28×28", back.Rect)
	}
	if d := maxDiff(back, resize(img, 28, 28)); d != 0 {
		t.Errorf("decoded colours differ from the scaled image by up to %d", d)
	}
	got := []byte(strings.Join(lines, "\n") + "\n")
	path := filepath.Join("testdata", "heatmap_28x14.blocks.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		// The colours read back, for people to look at.
		if err := explain.WritePNG(filepath.Join("testdata", "heatmap_28x14.blocks.png"), back); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("half-block output differs from %s (rerun with -update if the change is meant)", path)
	}
}

// decodeHalfBlocks turns half-block lines back into pixels, reading the SGR
// colours as a terminal would.
func decodeHalfBlocks(t *testing.T, lines []string) *image.RGBA {
	t.Helper()
	w := strings.Count(lines[0], "▀")
	img := image.NewRGBA(image.Rect(0, 0, w, 2*len(lines)))
	for y, line := range lines {
		var fg, bg color.RGBA
		x := 0
		for s := line; s != ""; {
			switch {
			case strings.HasPrefix(s, "\x1b["):
				end := strings.IndexByte(s, 'm')
				if end < 0 {
					t.Fatalf("line %d: unterminated escape in %q", y, s)
				}
				applySGR(t, s[2:end], &fg, &bg)
				s = s[end+1:]
			case strings.HasPrefix(s, "▀"):
				img.SetRGBA(x, 2*y, fg)
				img.SetRGBA(x, 2*y+1, bg)
				x++
				s = s[len("▀"):]
			default:
				t.Fatalf("line %d: unexpected %q", y, s)
			}
		}
		if x != w {
			t.Fatalf("line %d has %d cells, line 0 has %d", y, x, w)
		}
	}
	return img
}

func applySGR(t *testing.T, params string, fg, bg *color.RGBA) {
	p := strings.Split(params, ";")
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case "0":
			*fg, *bg = color.RGBA{}, color.RGBA{}
		case "49":
			*bg = color.RGBA{}
		case "38", "48":
			if i+4 >= len(p) || p[i+1] != "2" {
				t.Fatalf("bad colour in %q", params)
			}
			var c [3]uint8
			for k := range 3 {
				var v int
				for _, d := range p[i+2+k] {
					v = 10*v + int(d-'0')
				}
				c[k] = uint8(v)
			}
			col := color.RGBA{c[0], c[1], c[2], 255}
			if p[i] == "38" {
				*fg = col
			} else {
				*bg = col
			}
			i += 4
		default:
			t.Fatalf("unexpected SGR %q in %q", p[i], params)
		}
	}
}

func maxDiff(a, b *image.RGBA) int {
	d := 0
	for i := range a.Pix {
		d = max(d, int(a.Pix[i])-int(b.Pix[i]), int(b.Pix[i])-int(a.Pix[i]))
	}
	return d
}
