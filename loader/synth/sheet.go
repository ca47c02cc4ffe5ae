package synth

import (
	"image"
	"image/color"
	"image/draw"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/lavascope/lavascope/loader"
)

// ContactSheet lays pairs out for a person to look at, perRow pairs side by
// side: each pair under its id and sentence, each reading's gloss above its
// image. Evidence boxes are outlined in cyan.
func ContactSheet(pairs []loader.Pair, perRow int) *image.RGBA {
	const pad, gap, lineH, charW = 8, 24, 14, 7
	perRow = max(1, perRow)
	size, readings := 64, 2
	for _, p := range pairs {
		readings = max(readings, len(p.Readings))
		for _, r := range p.Readings {
			if r.Pixels != nil {
				size = max(size, r.Pixels.Bounds().Dx())
			}
		}
	}
	cellW := readings*(size+pad) - pad
	// A cell's text is as many lines as its longest wrapped sentence or gloss;
	// rows of cells share the tallest.
	type cell struct {
		title   []string
		glosses [][]string
		glossH  int
	}
	cells := make([]cell, len(pairs))
	for i, p := range pairs {
		c := cell{title: wrap(p.ID+"  "+p.Sentence, cellW/charW)}
		for _, r := range p.Readings {
			g := wrap(r.Gloss, size/charW)
			c.glosses = append(c.glosses, g)
			c.glossH = max(c.glossH, len(g))
		}
		cells[i] = c
	}
	rows := (len(pairs) + perRow - 1) / perRow
	rowText := make([][2]int, rows)
	for i, c := range cells {
		rt := &rowText[i/perRow]
		rt[0], rt[1] = max(rt[0], len(c.title)), max(rt[1], c.glossH)
	}
	width := 2*pad + min(perRow, len(pairs))*(cellW+gap) - gap
	height := pad
	for _, rt := range rowText {
		height += (rt[0]+rt[1])*lineH + size + 2*pad
	}
	sheet := image.NewRGBA(image.Rect(0, 0, max(width, 1), max(height, 1)))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(color.RGBA{250, 250, 250, 255}), image.Point{}, draw.Src)
	text := func(x, y int, s string, col color.Color) {
		d := font.Drawer{Dst: sheet, Src: image.NewUniform(col), Face: basicfont.Face7x13, Dot: fixed.P(x, y+11)}
		d.DrawString(s)
	}
	cyan := color.RGBA{0, 230, 255, 255}
	y := pad
	for row, rt := range rowText {
		for k := range perRow {
			i := row*perRow + k
			if i >= len(pairs) {
				break
			}
			x0 := pad + k*(cellW+gap)
			for j, l := range cells[i].title {
				text(x0, y+j*lineH, l, color.Black)
			}
			for n, r := range pairs[i].Readings {
				x := x0 + n*(size+pad)
				for j, l := range cells[i].glosses[n] {
					text(x, y+(rt[0]+j)*lineH, l, color.RGBA{30, 60, 140, 255})
				}
				if r.Pixels == nil {
					continue
				}
				at := image.Pt(x, y+(rt[0]+rt[1])*lineH)
				b := r.Pixels.Bounds()
				draw.Draw(sheet, b.Sub(b.Min).Add(at), r.Pixels, b.Min, draw.Src)
				for _, e := range r.BoxesWithRole(loader.RoleEvidence) {
					outline(sheet, e.Rect().Add(at), cyan)
				}
			}
		}
		y += (rt[0]+rt[1])*lineH + size + 2*pad
		if row < rows-1 {
			draw.Draw(sheet, image.Rect(pad, y-pad/2-1, width-pad, y-pad/2), image.NewUniform(color.RGBA{200, 200, 200, 255}), image.Point{}, draw.Src)
		}
	}
	return sheet
}

func outline(img *image.RGBA, r image.Rectangle, col color.RGBA) {
	for x := r.Min.X; x < r.Max.X; x++ {
		img.SetRGBA(x, r.Min.Y, col)
		img.SetRGBA(x, r.Max.Y-1, col)
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		img.SetRGBA(r.Min.X, y, col)
		img.SetRGBA(r.Max.X-1, y, col)
	}
}

// wrap breaks s into lines of at most n characters at spaces.
func wrap(s string, n int) []string {
	var lines []string
	var cur string
	for _, w := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = w
		case len(cur)+1+len(w) <= n:
			cur += " " + w
		default:
			lines = append(lines, cur)
			cur = w
		}
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}
