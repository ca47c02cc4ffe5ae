package explain

import (
	"encoding/json"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpsampleHandComputed(t *testing.T) {
	tests := []struct {
		name       string
		in         Grid
		outW, outH int
		want       []float32
	}{
		{
			// in=2, out=4: sources at −0.25 (clamped to 0), 0.25, 0.75, 1.25
			// (last cell repeated), so weights (1,0), (.75,.25), (.25,.75), (0,1).
			name: "2x2 to 4x4", in: Grid{W: 2, H: 2, V: []float32{0, 1, 2, 3}}, outW: 4, outH: 4,
			want: []float32{
				0, 0.25, 0.75, 1,
				0.5, 0.75, 1.25, 1.5,
				1.5, 1.75, 2.25, 2.5,
				2, 2.25, 2.75, 3,
			},
		},
		{
			// in=3, out=2: sources at 0.25 and 1.75.
			name: "3x1 to 2x1", in: Grid{W: 3, H: 1, V: []float32{0, 4, 8}}, outW: 2, outH: 1,
			want: []float32{1, 7},
		},
		{
			name: "1x1 to 3x2", in: Grid{W: 1, H: 1, V: []float32{5}}, outW: 3, outH: 2,
			want: []float32{5, 5, 5, 5, 5, 5},
		},
		{
			// in=2, out=3 along y: sources at −1/6 (clamped), 0.5, 7/6 (clamped to row 1).
			name: "1x2 to 1x3", in: Grid{W: 1, H: 2, V: []float32{0, 6}}, outW: 1, outH: 3,
			want: []float32{0, 3, 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Upsample(tt.in, tt.outW, tt.outH)
			if err != nil {
				t.Fatal(err)
			}
			if got.W != tt.outW || got.H != tt.outH {
				t.Fatalf("size %d×%d, want %d×%d", got.W, got.H, tt.outW, tt.outH)
			}
			for i := range tt.want {
				if math.Abs(float64(got.V[i]-tt.want[i])) > 1e-6 {
					t.Fatalf("value %d (x=%d y=%d) = %g, want %g\nall: %v", i, i%tt.outW, i/tt.outW, got.V[i], tt.want[i], got.V)
				}
			}
		})
	}
}

// TestUpsampleMatchesTorch compares with torch.nn.functional.interpolate
// (testdata/interpolate.json, written by testdata/gen_reference.py).
func TestUpsampleMatchesTorch(t *testing.T) {
	var ref struct {
		Torch string
		Cases []struct {
			W      int       `json:"w"`
			H      int       `json:"h"`
			OutW   int       `json:"out_w"`
			OutH   int       `json:"out_h"`
			In     []float32 `json:"in"`
			Out    []float32 `json:"out"`
			Sample [][3]float64
		}
	}
	data, err := os.ReadFile("testdata/interpolate.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatalf("testdata/interpolate.json: %v", err)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("testdata/interpolate.json: no cases")
	}
	for _, c := range ref.Cases {
		g, err := NewGrid(c.W, c.H, c.In)
		if err != nil {
			t.Fatal(err)
		}
		up, err := Upsample(g, c.OutW, c.OutH)
		if err != nil {
			t.Fatal(err)
		}
		check := func(x, y int, want float64) {
			got := float64(up.At(x, y))
			if math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
				t.Errorf("%d×%d→%d×%d at (%d,%d): %g, torch %s gives %g", c.W, c.H, c.OutW, c.OutH, x, y, got, ref.Torch, want)
			}
		}
		n := 0
		for i, want := range c.Out {
			check(i%c.OutW, i/c.OutW, float64(want))
			n++
		}
		for _, s := range c.Sample {
			check(int(s[1]), int(s[0]), s[2])
			n++
		}
		if n == 0 {
			t.Errorf("%d×%d→%d×%d: no reference values", c.W, c.H, c.OutW, c.OutH)
		}
	}
}

func TestGridErrors(t *testing.T) {
	if _, err := NewGrid(7, 7, make([]float32, 48)); err == nil || !strings.Contains(err.Error(), "holds 48 values, want 49") {
		t.Errorf("short grid: %v", err)
	}
	if _, err := NewGrid(0, 3, nil); err == nil {
		t.Error("empty grid accepted")
	}
	if _, err := Upsample(Grid{W: 1, H: 1, V: []float32{1}}, 0, 4); err == nil {
		t.Error("empty target accepted")
	}
	if _, err := Upsample(Grid{W: 2, H: 2, V: []float32{1}}, 4, 4); err == nil {
		t.Error("inconsistent grid accepted")
	}
}

func TestMinMax(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name   string
		in     []float32
		want   []float32
		lo, hi float32
	}{
		{"spread", []float32{1, 3, 2}, []float32{0, 1, 0.5}, 1, 3},
		{"negative", []float32{-4, 0, 4}, []float32{0, 0.5, 1}, -4, 4},
		{"constant", []float32{2, 2}, []float32{0, 0}, 2, 2},
		{"nan ignored", []float32{nan, 0, 4}, []float32{0, 0, 1}, 0, 4},
		{"all nan", []float32{nan}, []float32{0}, 0, 0},
		{"empty", nil, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := MinMax(tt.in)
			if lo != tt.lo || hi != tt.hi {
				t.Errorf("range %g..%g, want %g..%g", lo, hi, tt.lo, tt.hi)
			}
			for i := range tt.want {
				if tt.in[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", tt.in, tt.want)
				}
			}
		})
	}
}

func TestSymmetric(t *testing.T) {
	tests := []struct {
		name string
		in   []float32
		want []float32
		m    float32
	}{
		{"signed", []float32{-2, 0, 1}, []float32{0, 0.5, 0.75}, 2},
		{"positive only", []float32{0, 4}, []float32{0.5, 1}, 4},
		{"zeros", []float32{0, 0}, []float32{0.5, 0.5}, 0},
		{"nan", []float32{float32(math.NaN()), -1}, []float32{0.5, 0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m := Symmetric(tt.in); m != tt.m {
				t.Errorf("m = %g, want %g", m, tt.m)
			}
			for i := range tt.want {
				if tt.in[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", tt.in, tt.want)
				}
			}
		})
	}
}

func TestColorize(t *testing.T) {
	img, err := Colorize(Grid{W: 3, H: 1, V: []float32{0, 0.5, 1}}, Jet)
	if err != nil {
		t.Fatal(err)
	}
	want := []color.RGBA{{0, 0, 128, 255}, {126, 255, 130, 255}, {128, 0, 0, 255}}
	for x, w := range want {
		if got := img.RGBAAt(x, 0); got != w {
			t.Errorf("pixel %d = %v, want %v", x, got, w)
		}
	}
}

// notebookInputs loads the base image and relevance grid that
// testdata/gen_reference.py fed to the notebook's drawing code.
func notebookInputs(t *testing.T) (*image.RGBA, Grid) {
	base := readPNG(t, "testdata/notebook_base.png")
	var grid struct {
		W, H int
		V    []float32
	}
	data, err := os.ReadFile("testdata/notebook_grid.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &grid); err != nil {
		t.Fatalf("testdata/notebook_grid.json: %v", err)
	}
	g, err := NewGrid(grid.W, grid.H, grid.V)
	if err != nil {
		t.Fatal(err)
	}
	return base, g
}

// TestOverlayMatchesNotebook compares with the notebook's own code run by
// testdata/gen_reference.py: torch interpolate, min–max, cv2 COLORMAP_JET,
// heatmap + image over the maximum, np.uint8. numpy divides in float32,
// which can land one below an exact integer, so one step is allowed.
func TestOverlayMatchesNotebook(t *testing.T) {
	base, g := notebookInputs(t)
	got, err := Overlay(base, g, OverlayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := readPNG(t, "testdata/notebook_overlay.png")
	if got.Rect != want.Rect {
		t.Fatalf("size %v, want %v", got.Rect, want.Rect)
	}
	off, worst := 0, 0
	for i := range got.Pix {
		d := int(got.Pix[i]) - int(want.Pix[i])
		if d != 0 {
			off++
			worst = max(worst, d, -d)
		}
	}
	t.Logf("%d of %d channel values differ from the notebook's, by at most %d", off, len(got.Pix), worst)
	if worst > 1 || off > len(got.Pix)/100 {
		t.Errorf("%d values differ, by up to %d: want at most 1%% and by 1", off, worst)
	}
}

func TestOverlayHandComputed(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 2, 1))
	img.SetRGBA(0, 0, color.RGBA{100, 200, 50, 255})
	img.SetRGBA(1, 0, color.RGBA{0, 0, 0, 255})
	g := Grid{W: 1, H: 1, V: []float32{0.3}} // constant: normalises to 0, jet (0, 0, 128)
	tests := []struct {
		opt  OverlayOptions
		want [2]color.RGBA
	}{
		// Sums (100, 200, 178) and (0, 0, 128); max 200; floor(255·s/200).
		{OverlayOptions{}, [2]color.RGBA{{127, 255, 226, 255}, {0, 0, 163, 255}}},
		// α = 0.5 is 128/256: (100·128 + 128) >> 8 = 50, (50·128 + 128·128 + 128) >> 8 = 89.
		{OverlayOptions{Blend: BlendAlpha}, [2]color.RGBA{{50, 100, 89, 255}, {0, 0, 64, 255}}},
		// α = 1 is the heatmap alone.
		{OverlayOptions{Blend: BlendAlpha, Alpha: 1}, [2]color.RGBA{{0, 0, 128, 255}, {0, 0, 128, 255}}},
		// Signed: a constant 0.3 maps to 0.5 + 0.5·0.3/0.3 = 1, RdBu's last entry.
		{OverlayOptions{Blend: BlendAlpha, Alpha: 1, Signed: true, Colormap: RdBu}, [2]color.RGBA{{103, 0, 31, 255}, {103, 0, 31, 255}}},
	}
	for _, tt := range tests {
		got, err := Overlay(img, g, tt.opt)
		if err != nil {
			t.Fatal(err)
		}
		for x := range 2 {
			if p := got.RGBAAt(x, 0); p != tt.want[x] {
				t.Errorf("%+v: pixel %d = %v, want %v", tt.opt, x, p, tt.want[x])
			}
		}
	}
}

func TestOverlaySubImageAndFormats(t *testing.T) {
	base, g := notebookInputs(t)
	r := image.Rect(30, 40, 130, 190)
	sub := base.SubImage(r)
	want, err := Overlay(toRGBA(sub), g, OverlayOptions{Blend: BlendAlpha})
	if err != nil {
		t.Fatal(err)
	}
	nrgba := image.NewNRGBA(r)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			nrgba.Set(x, y, base.At(x, y))
		}
	}
	gray := image.NewGray(image.Rect(0, 0, 3, 3))
	for name, img := range map[string]image.Image{"rgba sub-image": sub, "nrgba": nrgba} {
		got, err := Overlay(img, g, OverlayOptions{Blend: BlendAlpha})
		if err != nil {
			t.Fatal(err)
		}
		if got.Rect != want.Rect || string(got.Pix) != string(want.Pix) {
			t.Errorf("%s: overlay differs from the one on a copied image", name)
		}
	}
	if got, err := Overlay(gray, g, OverlayOptions{}); err != nil || got.Rect.Dx() != 3 {
		t.Errorf("gray image: %v, %v", got.Rect, err)
	}
}

func TestOverlayErrors(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	g := Grid{W: 2, H: 2, V: []float32{1, 2, 3, 4}}
	tests := []struct {
		name string
		img  image.Image
		g    Grid
		opt  OverlayOptions
		want string
	}{
		{"bad grid", img, Grid{W: 2, H: 2, V: []float32{1}}, OverlayOptions{}, "holds 1 values"},
		{"empty image", image.NewRGBA(image.Rect(0, 0, 0, 3)), g, OverlayOptions{}, "empty image"},
		{"alpha above 1", img, g, OverlayOptions{Blend: BlendAlpha, Alpha: 1.5}, "alpha 1.5"},
		{"negative alpha", img, g, OverlayOptions{Blend: BlendAlpha, Alpha: -0.1}, "alpha -0.1"},
		{"unknown blend", img, g, OverlayOptions{Blend: Blend(9)}, "Blend(9)"},
	}
	for _, tt := range tests {
		if _, err := Overlay(tt.img, tt.g, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestOverlayGolden(t *testing.T) {
	base, g := notebookInputs(t)
	signed := Grid{W: g.W, H: g.H, V: make([]float32, len(g.V))}
	for i, v := range g.V {
		signed.V[i] = v - 0.5
	}
	tests := []struct {
		file string
		g    Grid
		opt  OverlayOptions
	}{
		{"overlay_jet_notebook.golden.png", g, OverlayOptions{}},
		{"overlay_viridis_alpha.golden.png", g, OverlayOptions{Colormap: Viridis, Blend: BlendAlpha, Alpha: 0.6}},
		{"overlay_turbo_alpha.golden.png", g, OverlayOptions{Colormap: Turbo, Blend: BlendAlpha}},
		{"overlay_rdbu_signed.golden.png", signed, OverlayOptions{Colormap: RdBu, Blend: BlendAlpha, Alpha: 0.7, Signed: true}},
	}
	for _, tt := range tests {
		img, err := Overlay(base, tt.g, tt.opt)
		if err != nil {
			t.Fatal(err)
		}
		goldenPNG(t, tt.file, img)
	}
}

func TestWritePNG(t *testing.T) {
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.SetRGBA(2, 1, color.RGBA{1, 2, 3, 255})
	path := filepath.Join(dir, "a.png")
	if err := WritePNG(path, img); err != nil {
		t.Fatal(err)
	}
	back := readPNG(t, path)
	if back.RGBAAt(2, 1) != (color.RGBA{1, 2, 3, 255}) || back.Rect != img.Rect {
		t.Errorf("round trip lost pixels: %v", back.Rect)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	missing := filepath.Join(dir, "no", "such", "b.png")
	if err := WritePNG(missing, img); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing directory: %v", err)
	}
}

func BenchmarkOverlay7x7To224(b *testing.B) {
	base := image.NewRGBA(image.Rect(0, 0, 224, 224))
	for i := range base.Pix {
		base.Pix[i] = uint8(i * 7)
	}
	g := Grid{W: 7, H: 7, V: make([]float32, 49)}
	for i := range g.V {
		g.V[i] = float32((i * 37) % 11)
	}
	for _, tt := range []struct {
		name string
		opt  OverlayOptions
	}{
		{"notebook", OverlayOptions{}},
		{"alpha", OverlayOptions{Blend: BlendAlpha, Colormap: Turbo}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Overlay(base, g, tt.opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUpsample7x7To224(b *testing.B) {
	g := Grid{W: 7, H: 7, V: make([]float32, 49)}
	for b.Loop() {
		if _, err := Upsample(g, 224, 224); err != nil {
			b.Fatal(err)
		}
	}
}
