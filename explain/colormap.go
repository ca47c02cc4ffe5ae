package explain

import (
	"fmt"
	"image/color"
	"strings"
)

// Colormap maps values in [0, 1] to colours through a 256-entry table.
type Colormap struct {
	name      string
	diverging bool
	lut       [256][3]uint8
}

var (
	// Jet is OpenCV's COLORMAP_JET, the map of the reference notebook
	// (cv2.applyColorMap). It is not matplotlib's jet, which has wider
	// cyan and yellow bands: the two differ by up to 33 in a channel (at
	// 222/255 OpenCV gives (255, 4, 0), matplotlib (255, 37, 0)).
	Jet = &Colormap{name: "jet", lut: jetTable}
	// Viridis is matplotlib's perceptually uniform default.
	Viridis = &Colormap{name: "viridis", lut: viridisTable}
	// Turbo is Google's improved rainbow, smoother in lightness than jet.
	Turbo = &Colormap{name: "turbo", lut: turboTable}
	// RdBu is diverging for signed maps: blue below the middle, white at it,
	// red above (matplotlib's RdBu_r). Pair it with [Symmetric].
	RdBu = &Colormap{name: "rdbu", diverging: true, lut: rdbuTable}
)

var colormaps = []*Colormap{Jet, Viridis, Turbo, RdBu}

// ColormapNames lists the names [ColormapNamed] accepts, jet first.
func ColormapNames() []string {
	names := make([]string, len(colormaps))
	for i, c := range colormaps {
		names[i] = c.name
	}
	return names
}

// ColormapNamed returns the colormap called name (case-insensitive).
func ColormapNamed(name string) (*Colormap, error) {
	for _, c := range colormaps {
		if strings.EqualFold(name, c.name) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("explain: unknown colormap %q (want one of %s)", name, strings.Join(ColormapNames(), ", "))
}

// Name is the colormap's name, as [ColormapNamed] accepts it.
func (c *Colormap) Name() string { return c.name }

// Diverging reports whether the map is made for signed values centred on 0.5.
func (c *Colormap) Diverging() bool { return c.diverging }

// At returns the colour of v. Like np.uint8(255*v) in the notebook, the
// table index is 255·v truncated, so only v = 1 reaches the last entry;
// values outside [0, 1] clamp, NaN counts as 0.
func (c *Colormap) At(v float32) color.RGBA {
	e := c.lut[lutIndex(v)]
	return color.RGBA{e[0], e[1], e[2], 0xff}
}

func lutIndex(v float32) uint8 {
	x := v * 255
	if !(x > 0) {
		return 0
	}
	if x >= 255 {
		return 255
	}
	return uint8(x)
}

// labelGap is the space in pixels between a colour bar and its labels.
const labelGap = 3
