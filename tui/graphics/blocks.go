package graphics

import (
	"image"
	"strconv"
)

// HalfBlocks renders img in at most cols×rows cells, two pixels to a cell:
// the image is area-averaged to the largest size that fits cols×2·rows
// pixels with its aspect ratio, taking cells to be twice as tall as wide,
// and each cell is "▀" with the upper pixel as 24-bit foreground and the
// lower one as background. Colour escapes are written only where the colour
// changes, each line ends with an SGR reset, and when the image has an odd
// number of pixel rows the last line's lower halves keep the terminal's
// background. It returns one string per line, each as many cells wide as the
// scaled image, or nil for an empty image or box.
func HalfBlocks(img image.Image, cols, rows int) []string {
	b := img.Bounds()
	w, h := fit(b.Dx(), b.Dy(), cols, 2*rows, 1, 1)
	if w == 0 {
		return nil
	}
	px := resize(img, w, h)
	lines := make([]string, 0, (h+1)/2)
	var buf []byte
	for y := 0; y < h; y += 2 {
		buf = buf[:0]
		fg, bg := [3]uint8{}, [3]uint8{}
		first := true
		top := px.Pix[y*px.Stride:]
		var bottom []uint8
		if y+1 < h {
			bottom = px.Pix[(y+1)*px.Stride:]
		}
		for x := range w {
			t := [3]uint8{top[4*x], top[4*x+1], top[4*x+2]}
			setFG := first || t != fg
			setBG := false
			var u [3]uint8
			if bottom != nil {
				u = [3]uint8{bottom[4*x], bottom[4*x+1], bottom[4*x+2]}
				setBG = first || u != bg
			}
			if setFG || setBG {
				buf = append(buf, "\x1b["...)
				if setFG {
					buf = appendRGB(append(buf, "38;2;"...), t)
				}
				if setBG {
					if setFG {
						buf = append(buf, ';')
					}
					buf = appendRGB(append(buf, "48;2;"...), u)
				}
				if bottom == nil && first { // lower halves in the default background
					buf = append(buf, ";49"...)
				}
				buf = append(buf, 'm')
			}
			fg, bg, first = t, u, false
			buf = append(buf, "▀"...)
		}
		buf = append(buf, "\x1b[0m"...)
		lines = append(lines, string(buf))
	}
	return lines
}

func appendRGB(b []byte, c [3]uint8) []byte {
	b = strconv.AppendUint(b, uint64(c[0]), 10)
	b = append(b, ';')
	b = strconv.AppendUint(b, uint64(c[1]), 10)
	b = append(b, ';')
	return strconv.AppendUint(b, uint64(c[2]), 10)
}
