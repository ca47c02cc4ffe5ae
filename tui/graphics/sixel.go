package graphics

import (
	"fmt"
	"image"
	"image/color"
	"io"

	"github.com/mattn/go-sixel"
	"github.com/soniakeys/quant/median"
)

// sixelColors is the palette size: sixel terminals offer 256 colour
// registers, and go-sixel keeps one free.
const sixelColors = 255

// paletteSamples bounds the pixels the median cut looks at: the palette of
// a 224×224 heatmap from 8192 of its pixels is as good as from all 50176,
// and six times cheaper.
const paletteSamples = 8192

// encodeSixel writes img as one sixel image (DCS … ST), quantised to
// sixelColors colours without dithering (dithering raised the mean error on
// heatmaps, see notes/graphics.md).
func encodeSixel(w io.Writer, img *image.RGBA) error {
	if err := sixel.NewEncoder(w).Encode(quantize(img, sixelColors)); err != nil {
		return fmt.Errorf("graphics: sixel: %w", err)
	}
	return nil
}

// quantize maps img to a median-cut palette of at most n colours computed
// from a sample of its pixels. Each pixel takes the palette colour nearest
// to the first pixel seen in its 6-bit-per-channel cell, so the costly
// nearest-colour search runs once per cell in use rather than once per pixel.
func quantize(img *image.RGBA, n int) *image.Paletted {
	b := img.Rect
	count := b.Dx() * b.Dy()
	step := max(1, count/paletteSamples)
	sample := image.NewRGBA(image.Rect(0, 0, (count+step-1)/step, 1))
	for i, j := 0, 0; i < count; i, j = i+step, j+4 {
		x, y := i%b.Dx(), i/b.Dx()
		copy(sample.Pix[j:j+4], img.Pix[y*img.Stride+4*x:])
	}
	pal := median.Quantizer(n).Quantize(make(color.Palette, 0, n), sample)
	rgb := make([][3]int32, len(pal))
	for i, c := range pal {
		r, g, bl, _ := c.RGBA()
		rgb[i] = [3]int32{int32(r >> 8), int32(g >> 8), int32(bl >> 8)}
	}

	out := image.NewPaletted(image.Rect(0, 0, b.Dx(), b.Dy()), pal)
	cells := make([]uint16, 1<<18) // palette index + 1; 0 = not yet known
	for y := range b.Dy() {
		row := img.Pix[y*img.Stride : y*img.Stride+4*b.Dx()]
		dst := out.Pix[y*out.Stride : y*out.Stride+b.Dx()]
		for x := range dst {
			p := row[4*x : 4*x+3 : 4*x+3]
			key := int(p[0]>>2)<<12 | int(p[1]>>2)<<6 | int(p[2]>>2)
			if cells[key] == 0 {
				cells[key] = uint16(nearest(rgb, int32(p[0]), int32(p[1]), int32(p[2]))) + 1
			}
			dst[x] = uint8(cells[key] - 1)
		}
	}
	// Sixel colour registers are in whole percent, and go-sixel truncates
	// to them: store each palette colour as the byte that truncates to the
	// nearest percent, so that the terminal shows the closest it can.
	for i, c := range rgb {
		pal[i] = color.RGBA{percentByte(c[0]), percentByte(c[1]), percentByte(c[2]), 0xff}
	}
	return out
}

// percentByte returns the smallest byte whose value·100/255, truncated, is
// the percent nearest to v.
func percentByte(v int32) uint8 {
	p := (v*100 + 127) / 255
	return uint8((p*255 + 99) / 100)
}

// nearest returns the index of the palette colour closest to (r, g, b) in
// squared RGB distance.
func nearest(pal [][3]int32, r, g, b int32) int {
	best, bestD := 0, int32(1<<30)
	for i, c := range pal {
		dr, dg, db := c[0]-r, c[1]-g, c[2]-b
		if d := dr*dr + dg*dg + db*db; d < bestD {
			best, bestD = i, d
		}
	}
	return best
}
