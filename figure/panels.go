package figure

import (
	"fmt"
	"image"
	"math"

	xdraw "golang.org/x/image/draw"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
)

// crop returns the region of image i that the model saw (the centre crop
// of its preprocessing) in the image's own coordinates.
func (l *layout) crop(i int) (image.Rectangle, error) {
	img := l.in.Images[i]
	b := img.Bounds()
	g, err := explain.NewGeometry(b.Dx(), b.Dy(), l.in.Prep)
	if err != nil {
		return image.Rectangle{}, fmt.Errorf("image %s: %w", letter(i), err)
	}
	x0, y0 := g.ToSource(0, 0)
	x1, y1 := g.ToSource(float64(g.W), float64(g.H))
	r := image.Rect(int(x0+0.5), int(y0+0.5), int(x1+0.5), int(y1+0.5)).Add(b.Min).Intersect(b)
	if r.Empty() {
		return b, nil
	}
	return r, nil
}

// scaledImage returns the crop of image i resampled so that its longer side
// is `prepared` pixels: heatmaps over small images come out smooth, and
// large images do not bloat the SVG.
func (l *layout) scaledImage(i int) (image.Image, image.Rectangle, error) {
	r, err := l.crop(i)
	if err != nil {
		return nil, r, err
	}
	if img, ok := l.scaled[i]; ok {
		return img, r, nil
	}
	w, h := prepared, prepared
	if r.Dx() > r.Dy() {
		h = max(1, int(math.Round(float64(prepared)*float64(r.Dy())/float64(r.Dx()))))
	} else if r.Dy() > r.Dx() {
		w = max(1, int(math.Round(float64(prepared)*float64(r.Dx())/float64(r.Dy()))))
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, dst.Rect, l.in.Images[i], r, xdraw.Src, nil)
	l.scaled[i] = dst
	return dst, r, nil
}

// panelImage is one image panel of a reading: image i, with the heatmap
// of grid k of the reading's report when heat.
type panelImage struct {
	image, grid int
	heat        bool
}

// panelsOf lists reading j's panels: for a target of one image, that image
// as it is and with the heatmap over it; for a target of several, each
// with its heatmap. Every panel shows an image of the target, never another.
func (l *layout) panelsOf(j int) []panelImage {
	r := l.in.Readings[j]
	var out []panelImage
	seen := map[int]bool{}
	for k, im := range r.Images {
		if seen[im.Image] {
			continue
		}
		seen[im.Image] = true
		out = append(out, panelImage{image: im.Image, grid: k, heat: true})
	}
	if len(out) == 1 {
		out = []panelImage{{image: out[0].image, grid: out[0].grid}, out[0]}
	}
	return out
}

func (l *layout) panels(j int, x, y, cw float64) (float64, error) {
	r := l.in.Readings[j]
	ps := l.panelsOf(j)
	side := (cw - float64(len(ps)-1)*panelGap) / float64(len(ps))
	h := l.para(x, y, cw, bold, 15, black, "Images, relevance and evidence boxes")
	top := y + h + 6
	bottom := top
	for k, p := range ps {
		px := x + float64(k)*(side+panelGap)
		img, crop, err := l.scaledImage(p.image)
		if err != nil {
			return 0, err
		}
		b := img.Bounds()
		dw, dh := side, side
		if b.Dx() > b.Dy() {
			dh = side * float64(b.Dy()) / float64(b.Dx())
		} else if b.Dy() > b.Dx() {
			dw = side * float64(b.Dx()) / float64(b.Dy())
		}
		shown := img
		if p.heat {
			im := r.Images[p.grid]
			grid, err := explain.NewGrid(im.Grid, im.Grid, im.Relevance)
			if err != nil {
				return 0, err
			}
			if shown, err = explain.Overlay(img, grid, explain.OverlayOptions{Colormap: l.in.Colormap, Signed: l.in.Colormap.Diverging()}); err != nil {
				return 0, err
			}
		}
		l.add(item{kind: kindImage, x: px, y: top, w: dw, h: dh, img: shown})
		l.fig.panels = append(l.fig.panels, panel{reading: j, image: p.image, heat: p.heat, rect: rect{px, top, dw, dh}, img: shown})
		l.boxes(p.image, crop, rect{px, top, dw, dh})
		cy := top + dh + 6
		what := "image " + letter(p.image) + " — " + l.whose(p.image, j)
		if p.heat {
			what += ", with relevance"
		}
		cy += l.para(px, cy, dw, bold, 14, black, what)
		var note string
		if p.heat {
			note = relevanceRange(r.Images[p.grid].Relevance, l.in.Colormap.Diverging())
		} else {
			note = l.in.Pair.Readings[p.image].Image
		}
		if note != "" {
			cy += l.para(px, cy, dw, regular, 13, grey, note)
		}
		bottom = max(bottom, cy)
	}
	return bottom - y, nil
}

// relevanceRange says what the ends of the colour bar stand for on a panel:
// its own smallest and largest value, or ±its largest magnitude.
func relevanceRange(v []float32, signed bool) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range v {
		if f := float64(x); !math.IsNaN(f) {
			lo, hi = math.Min(lo, f), math.Max(hi, f)
		}
	}
	if lo > hi {
		return "no relevance values"
	}
	if signed {
		m := math.Max(math.Abs(lo), math.Abs(hi))
		return fmt.Sprintf("scale ±%.3g", m)
	}
	return fmt.Sprintf("scale %.3g to %.3g", lo, hi)
}

// boxes outlines the evidence boxes of image i, given in the pixels of its
// file, over the panel at pr that shows the region crop of it.
func (l *layout) boxes(i int, crop image.Rectangle, pr rect) {
	min := l.in.Images[i].Bounds().Min
	sx, sy := pr.w/float64(crop.Dx()), pr.h/float64(crop.Dy())
	for _, bx := range l.in.Pair.Readings[i].BoxesWithRole(loader.RoleEvidence) {
		r := bx.Rect().Add(min).Intersect(crop)
		if r.Empty() {
			continue
		}
		x0, y0 := pr.x+float64(r.Min.X-crop.Min.X)*sx, pr.y+float64(r.Min.Y-crop.Min.Y)*sy
		x1, y1 := pr.x+float64(r.Max.X-crop.Min.X)*sx, pr.y+float64(r.Max.Y-crop.Min.Y)*sy
		l.strokeRect(x0, y0, x1-x0, y1-y0, 3, BoxColor)
		if bx.Label != "" {
			label := ellipsize(regular, 12, math.Max(pr.x+pr.w-x0-6, 24), termtext.Sanitize(bx.Label))
			w := measure(regular, 12, label) + 6
			l.fillRect(x0, y0, w, 16, BoxColor)
			l.label(x0+3, y0+12.5, regular, 12, white, label)
		}
	}
}
