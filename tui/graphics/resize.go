package graphics

import (
	"image"
	"image/draw"
	"math"
)

// DefaultCellWidth and DefaultCellHeight are the cell size in pixels assumed
// when the terminal does not say: a common size, and the 1:2 aspect that
// half-blocks assume.
const (
	DefaultCellWidth  = 10
	DefaultCellHeight = 20
)

// fit scales w×h pixels to the largest size that fits boxW×boxH keeping the
// aspect ratio, where one box unit is unitW/unitH times as wide as it is tall
// in the image's pixels; the result is at least 1×1.
func fit(w, h, boxW, boxH int, unitW, unitH float64) (fw, fh int) {
	if w <= 0 || h <= 0 || boxW <= 0 || boxH <= 0 {
		return 0, 0
	}
	// Compare the two in screen space: the box is boxW·unitW by boxH·unitH.
	s := math.Min(float64(boxW)*unitW/float64(w), float64(boxH)*unitH/float64(h))
	fw = min(boxW, max(1, int(math.Round(float64(w)*s/unitW))))
	fh = min(boxH, max(1, int(math.Round(float64(h)*s/unitH))))
	return fw, fh
}

// toRGBA returns img as *image.RGBA with its origin at (0, 0), copying only
// when it must.
func toRGBA(img image.Image) *image.RGBA {
	if m, ok := img.(*image.RGBA); ok && m.Rect.Min == (image.Point{}) {
		return m
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}

// areaWeights returns, for each of the out destination indices, the source
// indices it covers and the share of each, when in source pixels are spread
// evenly over out destination pixels.
func areaWeights(in, out int) [][]areaTap {
	taps := make([][]areaTap, out)
	scale := float64(in) / float64(out)
	for d := range out {
		lo, hi := float64(d)*scale, float64(d+1)*scale
		for s := int(lo); s < in && float64(s) < hi; s++ {
			cover := math.Min(hi, float64(s+1)) - math.Max(lo, float64(s))
			if cover > 1e-9 {
				taps[d] = append(taps[d], areaTap{s, float32(cover / scale)})
			}
		}
	}
	return taps
}

type areaTap struct {
	src int
	w   float32
}

// resize scales img to w×h by area averaging: each destination pixel is the
// mean of the source area it covers (so a 2× downscale is the mean of 2×2
// pixels), which is exact for downscaling and replicates pixels when
// enlarging. Alpha is premultiplied, as in *image.RGBA.
func resize(img image.Image, w, h int) *image.RGBA {
	src := toRGBA(img)
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	if sw == w && sh == h {
		return src
	}
	xt, yt := areaWeights(sw, w), areaWeights(sh, h)
	// Horizontal pass into float rows, then the vertical pass.
	rows := make([]float32, sh*w*4)
	for y := range sh {
		sp := src.Pix[y*src.Stride : y*src.Stride+4*sw]
		rp := rows[y*w*4 : (y+1)*w*4]
		for x, taps := range xt {
			var acc [4]float32
			for _, t := range taps {
				p := sp[4*t.src : 4*t.src+4 : 4*t.src+4]
				acc[0] += float32(p[0]) * t.w
				acc[1] += float32(p[1]) * t.w
				acc[2] += float32(p[2]) * t.w
				acc[3] += float32(p[3]) * t.w
			}
			copy(rp[4*x:4*x+4], acc[:])
		}
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y, taps := range yt {
		dp := out.Pix[y*out.Stride : y*out.Stride+4*w]
		for i := range dp {
			var acc float32
			for _, t := range taps {
				acc += rows[t.src*w*4+i] * t.w
			}
			dp[i] = uint8(min(255, acc+0.5))
		}
	}
	return out
}
