package analysis

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Chart geometry, in pixels; basicfont's face is 7×13.
const (
	chartWidth  = 640
	chartMargin = 48
	panelBars   = 72
	lineHeight  = 15
	maxNameLen  = 40
)

var (
	barColor = color.RGBA{0x3b, 0x6e, 0xa8, 0xff}
	// belowZero marks bins of negative values: wrong readings, in the
	// margin chart.
	belowZero = color.RGBA{0xc8, 0x5a, 0x2a, 0xff}
	axisColor = color.RGBA{0x55, 0x55, 0x55, 0xff}
	gridColor = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
)

// Chart draws one histogram per family of s and one for all readings,
// stacked with the same bins, each with its name, its number of values
// and the count above every bar: which histogram of a Family hist picks
// (its MarginHist or UniqueHist), titled title, its axis named xlabel.
// Bins of values below zero are drawn in another colour.
func Chart(title, xlabel string, s Summary, hist func(Family) Histogram) *image.RGBA {
	fams := append(append([]Family(nil), s.Families...), s.All)
	panel := 2*lineHeight + panelBars + lineHeight + 8
	h := 2*lineHeight + len(fams)*panel + lineHeight + 8
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	text(img, chartMargin, lineHeight, title, color.Black)
	y := 2 * lineHeight
	plotW := chartWidth - 2*chartMargin
	for _, f := range fams {
		hs := hist(f)
		n := 0
		peak := 0
		for _, c := range hs.Counts {
			n += c
			peak = max(peak, c)
		}
		name := f.Name
		if r := []rune(name); len(r) > maxNameLen {
			name = string(r[:maxNameLen-1]) + "…"
		}
		text(img, chartMargin, y+lineHeight, fmt.Sprintf("%s (%d)", name, n), color.Black)
		base := y + 2*lineHeight + panelBars
		fill(img, image.Rect(chartMargin, base-panelBars, chartMargin+plotW, base-panelBars+1), gridColor)
		fill(img, image.Rect(chartMargin, base, chartMargin+plotW, base+1), axisColor)
		bins := len(hs.Counts)
		for i, c := range hs.Counts {
			x0 := chartMargin + i*plotW/bins
			x1 := chartMargin + (i+1)*plotW/bins
			if c == 0 {
				continue
			}
			bh := max(1, c*(panelBars-lineHeight)/peak)
			bar := color.Color(barColor)
			if hs.Edges[i+1] <= 0 {
				bar = belowZero
			}
			fill(img, image.Rect(x0+1, base-bh, x1-1, base), bar)
			label := strconv.Itoa(c)
			text(img, (x0+x1)/2-width(label)/2, base-bh-3, label, color.Black)
		}
		// Every other edge is labelled, so that the labels never touch.
		for i := 0; i < len(hs.Edges); i += 2 {
			x := chartMargin + i*plotW/max(1, bins)
			fill(img, image.Rect(x, base, x+1, base+4), axisColor)
			label := strconv.FormatFloat(hs.Edges[i], 'g', 3, 64)
			text(img, x-width(label)/2, base+lineHeight, label, axisColor)
		}
		y += panel
	}
	text(img, chartWidth/2-width(xlabel)/2, y+lineHeight, xlabel, color.Black)
	return img
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func width(s string) int { return font.MeasureString(basicfont.Face7x13, s).Ceil() }

// text draws s with its baseline at y.
func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
