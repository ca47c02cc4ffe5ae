package synth

import (
	"image"
	"image/color"
)

// canvas draws flat, aliased shapes with integer arithmetic only, so that the
// same scene gives the same bytes on every machine (floating point may be
// fused differently by different compilers and CPUs), and records the extent
// of what each element drew.
type canvas struct {
	img  *image.RGBA
	size int
	// ext collects the bounds of everything drawn since begin.
	ext image.Rectangle
}

func newCanvas(size int) *canvas {
	return &canvas{img: image.NewRGBA(image.Rect(0, 0, size, size)), size: size}
}

func (c *canvas) begin() { c.ext = image.Rectangle{} }

// rect fills the rectangle between two corners, given in either order.
func (c *canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	r := image.Rect(x0, y0, x1, y1).Intersect(c.img.Rect)
	if r.Empty() {
		return
	}
	c.ext = c.ext.Union(r)
	px := [4]uint8{col.R, col.G, col.B, 0xff}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := c.img.Pix[c.img.PixOffset(r.Min.X, y):c.img.PixOffset(r.Max.X, y)]
		for i := 0; i < len(row); i += 4 {
			copy(row[i:i+4], px[:])
		}
	}
}

// ellipse fills the ellipse centred at (cx,cy) with radii rx, ry.
func (c *canvas) ellipse(cx, cy, rx, ry int, col color.RGBA) {
	if rx <= 0 || ry <= 0 {
		return
	}
	rx2, ry2 := int64(rx)*int64(rx), int64(ry)*int64(ry)
	for dy := -ry; dy <= ry; dy++ {
		// widest dx with dx²·ry² + dy²·rx² ≤ rx²·ry²
		lim := rx2*ry2 - int64(dy)*int64(dy)*rx2
		dx := isqrt(lim / ry2)
		c.rect(cx-dx, cy+dy, cx+dx+1, cy+dy+1, col)
	}
}

// line draws a segment of width w between two points.
func (c *canvas) line(x0, y0, x1, y1, w int, col color.RGBA) {
	dx, dy := abs(x1-x0), abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	err := dx - dy
	h := w / 2
	for {
		c.rect(x0-h, y0-h, x0-h+w, y0-h+w, col)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 > -dy {
			err -= dy
			x0 += sx
		}
		if e2 < dx {
			err += dx
			y0 += sy
		}
	}
}

// mirror flips the image left to right.
func (c *canvas) mirror() {
	s := c.size
	for y := range s {
		row := c.img.Pix[y*c.img.Stride : y*c.img.Stride+4*s]
		for i, j := 0, s-1; i < j; i, j = i+1, j-1 {
			a, b := row[4*i:4*i+4], row[4*j:4*j+4]
			for k := range 4 {
				a[k], b[k] = b[k], a[k]
			}
		}
	}
}

func isqrt(n int64) int {
	if n <= 0 {
		return 0
	}
	x := int64(1) << ((bitLen(n) + 1) / 2)
	for {
		y := (x + n/x) / 2
		if y >= x {
			return int(x)
		}
		x = y
	}
}

func bitLen(n int64) int {
	l := 0
	for n > 0 {
		l++
		n >>= 1
	}
	return l
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// shade darkens (pct < 100) or lightens a colour.
func shade(c color.RGBA, pct int) color.RGBA {
	f := func(v uint8) uint8 { return uint8(min(255, int(v)*pct/100)) }
	return color.RGBA{f(c.R), f(c.G), f(c.B), 0xff}
}
