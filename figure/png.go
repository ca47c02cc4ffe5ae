package figure

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/math/fixed"
)

// MinWidth and MaxWidth bound the PNG width: below 400 pixels the text is
// unreadable, and 8000 pixels make a canvas of about 180 MB already.
const (
	MinWidth = 400
	MaxWidth = 8000
)

// Image draws fig width pixels wide (DefaultWidth when width is 0).
func Image(fig *Figure, width int) (*image.RGBA, error) {
	if width == 0 {
		width = DefaultWidth
	}
	if width < MinWidth || width > MaxWidth {
		return nil, fmt.Errorf("figure: width %d pixels is outside %d to %d", width, MinWidth, MaxWidth)
	}
	s := float64(width) / Width
	dst := image.NewRGBA(image.Rect(0, 0, width, int(math.Ceil(fig.H*s))))
	draw.Draw(dst, dst.Rect, image.White, image.Point{}, draw.Src)
	px := func(v float64) int { return int(math.Round(v * s)) }
	box := func(x, y, w, h float64) image.Rectangle {
		r := image.Rect(px(x), px(y), px(x+w), px(y+h))
		// A line thinner than a pixel still shows.
		if r.Dx() == 0 {
			r.Max.X++
		}
		if r.Dy() == 0 {
			r.Max.Y++
		}
		return r
	}
	facesMu.Lock()
	defer facesMu.Unlock()
	for _, it := range fig.items {
		switch it.kind {
		case kindRect:
			c := image.NewUniform(it.fill)
			if it.stroke == 0 {
				draw.Draw(dst, box(it.x, it.y, it.w, it.h), c, image.Point{}, draw.Over)
				continue
			}
			t := it.stroke
			for _, e := range [][4]float64{
				{it.x - t/2, it.y - t/2, it.w + t, t}, {it.x - t/2, it.y + it.h - t/2, it.w + t, t},
				{it.x - t/2, it.y - t/2, t, it.h + t}, {it.x + it.w - t/2, it.y - t/2, t, it.h + t},
			} {
				draw.Draw(dst, box(e[0], e[1], e[2], e[3]), c, image.Point{}, draw.Over)
			}
		case kindImage:
			xdraw.BiLinear.Scale(dst, box(it.x, it.y, it.w, it.h), it.img, it.img.Bounds(), xdraw.Over, nil)
		case kindText:
			if err := drawText(dst, it, s); err != nil {
				return nil, err
			}
		}
	}
	return dst, nil
}

func drawText(dst *image.RGBA, it item, s float64) error {
	f, err := face(it.style, it.size*s)
	if err != nil {
		return err
	}
	x := it.x * s
	switch it.anchor {
	case anchorMiddle:
		x -= fixedFloat(font.MeasureString(f, it.text)) / 2
	case anchorEnd:
		x -= fixedFloat(font.MeasureString(f, it.text))
	}
	d := font.Drawer{Dst: dst, Src: image.NewUniform(color.RGBA(it.fill)), Face: f,
		Dot: fixed.Point26_6{X: fixed.Int26_6(math.Round(x * 64)), Y: fixed.Int26_6(math.Round(it.y * s * 64))}}
	d.DrawString(it.text)
	return nil
}

// PNG writes fig as a PNG width pixels wide (DefaultWidth when 0).
func PNG(w io.Writer, fig *Figure, width int) error {
	img, err := Image(fig, width)
	if err != nil {
		return err
	}
	return encodePNG(w, img)
}

// encodePNG favours speed: default compression took about 70% of the time
// of a figure, for a file less than a tenth smaller.
func encodePNG(w io.Writer, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(w, img); err != nil {
		return fmt.Errorf("figure: encode PNG: %w", err)
	}
	return nil
}
