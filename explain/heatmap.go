package explain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// Grid is a W×H field of values in row-major order, such as the patch
// relevance of a ViT (7×7 for ViT-B/32 at 224 pixels).
type Grid struct {
	W, H int
	V    []float32
}

// NewGrid returns the w×h grid over v, which must hold w·h values.
func NewGrid(w, h int, v []float32) (Grid, error) {
	g := Grid{W: w, H: h, V: v}
	return g, g.check()
}

func (g Grid) check() error {
	if g.W <= 0 || g.H <= 0 {
		return fmt.Errorf("explain: grid %d×%d has no cells", g.W, g.H)
	}
	if len(g.V) != g.W*g.H {
		return fmt.Errorf("explain: grid %d×%d holds %d values, want %d", g.W, g.H, len(g.V), g.W*g.H)
	}
	return nil
}

// At returns the value of cell (x, y).
func (g Grid) At(x, y int) float32 { return g.V[y*g.W+x] }

// Upsample resizes g to w×h by bilinear interpolation with the sampling of
// PyTorch's interpolate(mode="bilinear", align_corners=False), which the
// reference notebook uses: output index d reads the source at
// (d+0.5)·in/out − 0.5, clamped to 0 below and to the last cell above. The
// cell centres of g thus sit at the centres of the blocks they cover, and the
// outer half-blocks repeat the border cells instead of stretching the grid
// corner to corner. Arithmetic is in float32, in torch's order, so results
// agree with torch to float32 rounding.
func Upsample(g Grid, w, h int) (Grid, error) {
	if err := g.check(); err != nil {
		return Grid{}, err
	}
	if w <= 0 || h <= 0 {
		return Grid{}, fmt.Errorf("explain: upsample %d×%d grid to %d×%d: empty target", g.W, g.H, w, h)
	}
	out := Grid{W: w, H: h, V: make([]float32, w*h)}
	upsampleInto(out.V, g, w, h)
	return out, nil
}

// linearAxis holds, for each output index along one axis, the two source
// indices and their weights.
type linearAxis struct {
	i0, i1 []int
	w0, w1 []float32
}

func newLinearAxis(in, out int) linearAxis {
	a := linearAxis{i0: make([]int, out), i1: make([]int, out), w0: make([]float32, out), w1: make([]float32, out)}
	scale := float32(in) / float32(out)
	for d := range out {
		src := scale*(float32(d)+0.5) - 0.5
		if src < 0 {
			src = 0
		}
		i := int(src)
		next := i
		if i < in-1 {
			next = i + 1
		}
		l1 := src - float32(i)
		a.i0[d], a.i1[d], a.w0[d], a.w1[d] = i, next, 1-l1, l1
	}
	return a
}

// upsampleInto interpolates along x first, once per source row, then blends
// the two rows each output row needs: the same products and sums as torch's
// separable kernel, without repeating the horizontal pass for every output row.
// It returns the smallest and largest value written (NaNs aside), which saves
// Overlay a pass.
func upsampleInto(dst []float32, g Grid, w, h int) (lo, hi float32) {
	ax, ay := newLinearAxis(g.W, w), newLinearAxis(g.H, h)
	rows := make([]float32, g.H*w)
	for y := range g.H {
		src := g.V[y*g.W : (y+1)*g.W]
		row := rows[y*w : (y+1)*w]
		for x := range row {
			row[x] = src[ax.i0[x]]*ax.w0[x] + src[ax.i1[x]]*ax.w1[x]
		}
	}
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for y := range h {
		r0 := rows[ay.i0[y]*w : (ay.i0[y]+1)*w]
		r1 := rows[ay.i1[y]*w : (ay.i1[y]+1)*w]
		w0, w1 := ay.w0[y], ay.w1[y]
		out := dst[y*w : (y+1)*w]
		for x := range out {
			v := r0[x]*w0 + r1[x]*w1
			out[x] = v
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
	}
	return lo, hi
}

// MinMax rescales v in place to [0, 1], the lowest value to 0 and the highest
// to 1, and returns the two. NaNs are ignored in the range and become 0.
// When every value is the same the relevance says nothing, and v becomes all
// zeros (the notebook would divide 0 by 0).
func MinMax(v []float32) (lo, hi float32) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range v {
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
	}
	span := hi - lo
	if !(span > 0) || math.IsInf(float64(span), 0) {
		clear(v)
		if lo > hi {
			return 0, 0
		}
		return lo, hi
	}
	for i, x := range v {
		if x != x {
			v[i] = 0
			continue
		}
		// Divide rather than multiply by 1/span, as numpy does, so that the
		// colormap index truncates the same way.
		v[i] = (x - lo) / span
	}
	return lo, hi
}

// minMaxIndex sets idx to the colormap indices of v after [MinMax], given
// the range lo..hi of v's values other than NaN, in one pass over v that
// leaves it unchanged.
func minMaxIndex(idx []uint8, v []float32, lo, hi float32) {
	span := hi - lo
	if !(span > 0) || math.IsInf(float64(span), 0) {
		// A constant map, all NaN, or infinities: take the careful path.
		// (A NaN among finite values falls out as index 0 below, as in MinMax.)
		MinMax(v)
		for i, x := range v {
			idx[i] = lutIndex(x)
		}
		return
	}
	for i, x := range v {
		idx[i] = lutIndex((x - lo) / span)
	}
}

// Symmetric rescales signed values in place to [0, 1] with 0 at 0.5, so that
// a diverging colormap shows the sign: v ↦ 0.5 + 0.5·v/m with m the largest
// |v|, which it returns. NaNs become 0.5, and so does everything when m is 0.
func Symmetric(v []float32) (m float32) {
	for _, x := range v {
		if a := float32(math.Abs(float64(x))); a > m && !math.IsInf(float64(a), 0) {
			m = a
		}
	}
	if m == 0 {
		for i := range v {
			v[i] = 0.5
		}
		return 0
	}
	k := 0.5 / m
	for i, x := range v {
		switch {
		case x != x:
			x = 0.5
		case x > m:
			x = 1
		case x < -m:
			x = 0
		default:
			x = 0.5 + x*k
		}
		v[i] = x
	}
	return m
}

// Colorize paints g, whose values are taken as lying in [0, 1], with cm, one
// pixel per cell.
func Colorize(g Grid, cm *Colormap) (*image.RGBA, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, g.W, g.H))
	for i, v := range g.V {
		c := cm.lut[lutIndex(v)]
		p := img.Pix[4*i : 4*i+4 : 4*i+4]
		p[0], p[1], p[2], p[3] = c[0], c[1], c[2], 0xff
	}
	return img, nil
}

// Blend is how [Overlay] mixes the heatmap with the image.
type Blend int

const (
	// BlendNotebook is the reference notebook's show_cam_on_image: heatmap
	// plus image, both in [0, 1], divided by the largest channel value of the
	// sum, then truncated to bytes. The sum reaches up to 2, so the image
	// comes out darker than it is, the more so the brighter the heatmap.
	BlendNotebook Blend = iota
	// BlendAlpha is (1−α)·image + α·heatmap.
	BlendAlpha
)

func (b Blend) String() string {
	switch b {
	case BlendNotebook:
		return "notebook"
	case BlendAlpha:
		return "alpha"
	}
	return fmt.Sprintf("Blend(%d)", int(b))
}

// DefaultAlpha is the heatmap's weight in [BlendAlpha] when
// [OverlayOptions.Alpha] is zero.
const DefaultAlpha = 0.5

// OverlayOptions select the colormap, blend and normalisation of [Overlay].
// The zero value draws as the notebook does: jet, min–max, notebook blend.
type OverlayOptions struct {
	// Colormap paints the normalised relevance; nil means [Jet].
	Colormap *Colormap
	Blend    Blend
	// Alpha is the heatmap's weight for BlendAlpha, in (0, 1]; zero means
	// DefaultAlpha.
	Alpha float32
	// Signed normalises with [Symmetric] rather than [MinMax], for signed
	// maps, where 0 must land in the middle of a diverging colormap.
	Signed bool
}

// Overlay draws the relevance grid g over img as the notebook's
// show_image_relevance does: upsample g to the image size ([Upsample]),
// normalise after upsampling ([MinMax], or [Symmetric] when opt.Signed),
// index the colormap with uint8(255·v) as np.uint8(255*mask) does, and blend.
// The result has img's size with its origin at (0, 0); transparent image
// pixels count as if over black.
//
// The notebook draws on the preprocessed tensor, min–max stretched; Overlay
// draws on the image as given, channel values over 255. The notebook also
// adds OpenCV's BGR heatmap to an RGB image and swaps channels for display,
// so its figures show the photo with red and blue exchanged; Overlay keeps
// both in RGB.
func Overlay(img image.Image, g Grid, opt OverlayOptions) (*image.RGBA, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, errors.New("explain: overlay on an empty image")
	}
	cm := opt.Colormap
	if cm == nil {
		cm = Jet
	}
	alpha := opt.Alpha
	if alpha == 0 {
		alpha = DefaultAlpha
	}
	if opt.Blend == BlendAlpha && !(alpha > 0 && alpha <= 1) {
		return nil, fmt.Errorf("explain: overlay alpha %g outside (0, 1]", alpha)
	}
	if opt.Blend != BlendNotebook && opt.Blend != BlendAlpha {
		return nil, fmt.Errorf("explain: unknown %v", opt.Blend)
	}

	v := make([]float32, w*h)
	lo, hi := upsampleInto(v, g, w, h)
	idx := make([]uint8, len(v))
	if opt.Signed {
		Symmetric(v)
		for i, x := range v {
			idx[i] = lutIndex(x)
		}
	} else {
		minMaxIndex(idx, v, lo, hi)
	}

	base, stride, off := rgbaPix(img)
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	lut := &cm.lut
	switch opt.Blend {
	case BlendNotebook:
		// Pass one finds the brightest channel of heatmap+image; pass two
		// divides by it through a table of the 511 possible sums. The table
		// holds floor(255·s/max) in exact integers, where numpy divides in
		// float32; on the reference image the two agree on every value.
		maxSum := 0
		for y := range h {
			row := base[off+y*stride : off+y*stride+4*w]
			for x, k := range idx[y*w : (y+1)*w] {
				c, p := &lut[k], row[4*x:4*x+3:4*x+3]
				maxSum = max(maxSum, int(c[0])+int(p[0]), int(c[1])+int(p[1]), int(c[2])+int(p[2]))
			}
		}
		var scale [511]uint8
		if maxSum > 0 {
			for s := range scale {
				scale[s] = uint8(min(255, s*255/maxSum))
			}
		}
		for y := range h {
			row := base[off+y*stride : off+y*stride+4*w]
			dst := out.Pix[y*out.Stride : y*out.Stride+4*w]
			for x, k := range idx[y*w : (y+1)*w] {
				c, p := &lut[k], row[4*x:4*x+3:4*x+3]
				binary.LittleEndian.PutUint32(dst[4*x:], uint32(scale[int(c[0])+int(p[0])])|
					uint32(scale[int(c[1])+int(p[1])])<<8|uint32(scale[int(c[2])+int(p[2])])<<16|0xff<<24)
			}
		}
	case BlendAlpha:
		aw := uint32(alpha*256 + 0.5)
		bw := 256 - aw
		// The heatmap's share of each table entry, computed once.
		var heat [256][3]uint32
		for k, c := range lut {
			heat[k] = [3]uint32{uint32(c[0])*aw + 128, uint32(c[1])*aw + 128, uint32(c[2])*aw + 128}
		}
		for y := range h {
			row := base[off+y*stride : off+y*stride+4*w]
			dst := out.Pix[y*out.Stride : y*out.Stride+4*w]
			for x, k := range idx[y*w : (y+1)*w] {
				c, p := &heat[k], row[4*x:4*x+3:4*x+3]
				binary.LittleEndian.PutUint32(dst[4*x:], (uint32(p[0])*bw+c[0])>>8|
					(uint32(p[1])*bw+c[1])>>8<<8|(uint32(p[2])*bw+c[2])>>8<<16|0xff<<24)
			}
		}
	}
	return out, nil
}

// rgbaPix returns img's pixels as premultiplied RGBA bytes with the stride and
// offset of its first pixel, converting only images that are not already
// *image.RGBA or opaque-capable *image.NRGBA.
func rgbaPix(img image.Image) (pix []byte, stride, off int) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.RGBA:
		return m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y)
	case *image.NRGBA:
		if m.Opaque() {
			return m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y)
		}
	}
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	return rgba.Pix, rgba.Stride, 0
}

// WritePNG writes img to path as a PNG atomically: into a temporary file in
// the same directory, synced, then renamed over path, so that a reader never
// sees half an image.
func WritePNG(path string, img image.Image) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("explain: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file private; a figure is meant to be shared.
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("explain: write %s: %w", path, err)
	}
	if err := png.Encode(f, img); err != nil {
		return fmt.Errorf("explain: encode %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("explain: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("explain: write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("explain: write %s: %w", path, err)
	}
	return nil
}
