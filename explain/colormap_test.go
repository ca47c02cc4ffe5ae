package explain

import (
	"bufio"
	"fmt"
	"image/color"
	"math"
	"os"
	"strings"
	"testing"
)

// TestJetMatchesOpenCV checks the table against cv2.applyColorMap's output
// as testdata/gen_reference.py recorded it.
func TestJetMatchesOpenCV(t *testing.T) {
	f, err := os.Open("testdata/jet_opencv.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		var r, g, b uint8
		if _, err := fmt.Sscan(sc.Text(), &r, &g, &b); err != nil {
			t.Fatalf("testdata/jet_opencv.txt:%d: %v", i+1, err)
		}
		if i < 256 && jetTable[i] != [3]uint8{r, g, b} {
			t.Errorf("jet[%d] = %v, OpenCV %v", i, jetTable[i], [3]uint8{r, g, b})
		}
	}
	if i != 256 {
		t.Errorf("testdata/jet_opencv.txt has %d entries, want 256", i)
	}
}

// TestJetIsOctaveJet checks the table, independently of OpenCV's output,
// against the piecewise-linear definition of GNU Octave's jet that OpenCV's
// table samples: red, green and blue ramps of slope 4 centred 1/4 apart.
// OpenCV stores the samples as rounded float32s, so a byte may be 1 off.
func TestJetIsOctaveJet(t *testing.T) {
	ramp := func(x, centre float64) float64 { // 1 within 1/8 of centre, falling off at slope 4 to 0 at 3/8
		return math.Max(0, math.Min(1, 1.5-4*math.Abs(x-centre)))
	}
	for i := range 256 {
		x := float64(i) / 255
		want := [3]float64{ramp(x, 0.75), ramp(x, 0.5), ramp(x, 0.25)}
		for c := range 3 {
			if d := math.Abs(float64(jetTable[i][c]) - 255*want[c]); d > 1 {
				t.Errorf("jet[%d][%d] = %d, Octave's jet gives %.2f", i, c, jetTable[i][c], 255*want[c])
			}
		}
	}
}

// TestColormapAnchors checks each map's ends and middle against the values
// published with it, as matplotlib turns them into bytes (255·v truncated).
func TestColormapAnchors(t *testing.T) {
	trunc := func(r, g, b float64) color.RGBA {
		return color.RGBA{uint8(255 * r), uint8(255 * g), uint8(255 * b), 255}
	}
	tests := []struct {
		cm   *Colormap
		v    float32
		want color.RGBA
	}{
		{Jet, 0, color.RGBA{0, 0, 128, 255}},
		{Jet, 0.5, color.RGBA{126, 255, 130, 255}}, // index 127
		{Jet, 1, color.RGBA{128, 0, 0, 255}},
		// viridis: _viridis_data[0] and [255] of matplotlib's _cm_listed.py.
		{Viridis, 0, trunc(0.267004, 0.004874, 0.329415)},
		{Viridis, 1, trunc(0.993248, 0.906157, 0.143936)},
		// turbo: Mikhailov's table, first and last entries.
		{Turbo, 0, trunc(0.18995, 0.07176, 0.23217)},
		{Turbo, 1, trunc(0.47960, 0.01583, 0.01055)},
		// RdBu_r: ColorBrewer's #053061 and #67001f at the ends.
		{RdBu, 0, color.RGBA{0x05, 0x30, 0x61, 255}},
		{RdBu, 1, color.RGBA{0x67, 0x00, 0x1f, 255}},
	}
	for _, tt := range tests {
		if got := tt.cm.At(tt.v); got != tt.want {
			t.Errorf("%s.At(%g) = %v, want %v", tt.cm.Name(), tt.v, got, tt.want)
		}
	}
	// RdBu's middle is ColorBrewer's near-white #f7f7f7.
	for _, v := range []float32{0.5, 128.0 / 255} {
		c := RdBu.At(v)
		if c.R < 0xf4 || c.G < 0xf4 || c.B < 0xf4 {
			t.Errorf("rdbu.At(%g) = %v, want near white", v, c)
		}
	}
}

func TestColormapIndexing(t *testing.T) {
	tests := []struct {
		v    float32
		want uint8
	}{
		{0, 0}, {-3, 0}, {float32(math.NaN()), 0}, {0.5, 127}, {0.999, 254}, {1, 255}, {7, 255},
		{float32(math.Inf(1)), 255}, {float32(math.Inf(-1)), 0},
	}
	for _, tt := range tests {
		if got := lutIndex(tt.v); got != tt.want {
			t.Errorf("index(%g) = %d, want %d", tt.v, got, tt.want)
		}
	}
}

// TestColormapsAreSmooth catches a corrupted table: neighbouring entries of
// every map differ by at most a few steps.
func TestColormapsAreSmooth(t *testing.T) {
	for _, cm := range colormaps {
		for i := 1; i < 256; i++ {
			for c := range 3 {
				if d := int(cm.lut[i][c]) - int(cm.lut[i-1][c]); d > 8 || d < -8 {
					t.Errorf("%s: entries %d and %d differ by %d in channel %d", cm.name, i-1, i, d, c)
				}
			}
		}
	}
}

func TestColormapNamed(t *testing.T) {
	for _, name := range []string{"jet", "Viridis", "TURBO", "rdbu"} {
		cm, err := ColormapNamed(name)
		if err != nil || !strings.EqualFold(cm.Name(), name) {
			t.Errorf("%s: %v, %v", name, cm, err)
		}
	}
	if !RdBu.Diverging() || Jet.Diverging() {
		t.Error("only rdbu is diverging")
	}
	_, err := ColormapNamed("hot")
	if err == nil || !strings.Contains(err.Error(), "jet, viridis, turbo, rdbu") {
		t.Errorf("unknown colormap: %v", err)
	}
	if got := strings.Join(ColormapNames(), " "); got != "jet viridis turbo rdbu" {
		t.Errorf("names %q", got)
	}
}
