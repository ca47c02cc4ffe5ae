package tui

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/draw"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tui/graphics"
)

// visualKey names one image as drawn: which pair, column and image, under
// which explanation (zero for the plain image), colormap, mode and box.
type visualKey struct {
	exp        expKey
	pair       string
	col, image int
	cmap       string
	mode       graphics.Mode
	cols, rows int
	// boxes draws the image's evidence boxes on it.
	boxes bool
	// fill, when not empty, fills the image's evidence boxes as a
	// counterfactual's mask fills them (M): grey, mean or blur.
	fill string
}

// visual is an image ready for the screen: half-block lines, or the sixel
// or kitty escapes that draw it at the cursor.
type visual struct {
	key   visualKey
	lines []string
	raw   string
	err   error
}

// visualReq is a visual the frame wants, with what it is made from.
type visualReq struct {
	key     visualKey
	reading *loader.Reading
	grid    *explain.Grid
	// grey is the colour of the grey fill: the preprocessing's mean.
	grey color.RGBA
}

// imageSlot is where an image goes: its cells, its top-left cell, the
// slot's number (a kitty image id) and the explanation it paints.
type imageSlot struct {
	x, y, col  int
	cols, rows int
	exp        expKey
}

// shownImage is the image column j shows: that of its explanation's
// target, the reading's own before it is explained.
func shownImage(pp *prepared, j int, exp *explained) int {
	if exp != nil && exp.err == nil && j < len(exp.exp.Readings) {
		if i := exp.exp.Readings[j].Image; i >= 0 && i < len(pp.pair.Readings) {
			return i
		}
	}
	return j
}

// visualFor returns the visual column j wants and the best one ready to
// show: the wanted one, else the plain image in the same box.
func (m *Model) visualFor(pp *prepared, j int, exp *explained, at imageSlot) (visualReq, *visual) {
	req := visualReq{key: visualKey{pair: pp.pair.ID, col: at.col, image: j, cmap: m.cmap.Name(), mode: m.mode, cols: at.cols, rows: at.rows}}
	// Without the heatmap (i) the image stays the one the heatmap lies
	// over, so that i takes the heatmap away and nothing else.
	req.key.image = shownImage(pp, j, exp)
	if exp != nil && exp.err == nil && j < len(exp.exp.Readings) && !m.rawImages {
		rr := exp.exp.Readings[j]
		g := rr.Patches
		req.grid = &g
		req.key.exp = at.exp
	}
	if exp != nil && exp.err == nil {
		req.key.fill = exp.exp.Request.Variant.Fill
		mean := m.prep().Mean
		req.grey = color.RGBA{R: uint8(255 * mean[0]), G: uint8(255 * mean[1]), B: uint8(255 * mean[2]), A: 255}
	}
	req.reading = &pp.pair.Readings[req.key.image]
	req.key.boxes = m.boxes && len(req.reading.BoxesWithRole(loader.RoleEvidence)) > 0
	if v, ok := m.visuals[req.key]; ok {
		return req, v
	}
	// The stand-in is the same image, never another one under this one's
	// label.
	plain := req.key
	plain.exp = expKey{}
	if v, ok := m.visuals[plain]; ok {
		return req, v
	}
	return req, nil
}

// requestVisuals starts making the visuals the last frame wanted and lacked.
func (m *Model) requestVisuals() tea.Cmd {
	var cmds []tea.Cmd
	for _, req := range m.wantVisuals {
		if _, ok := m.visuals[req.key]; ok || m.pending[req.key] {
			continue
		}
		m.pending[req.key] = true
		cmds = append(cmds, m.visualCmd(req))
	}
	return tea.Batch(cmds...)
}

func (m *Model) visualCmd(req visualReq) tea.Cmd {
	imgs, cm := m.imgs, m.cmap
	enc := graphics.Encoder{Mode: req.key.mode, CellWidth: m.opt.CellWidth, CellHeight: m.opt.CellHeight, ImageID: uint32(req.key.col + 1)}
	return func() tea.Msg {
		vis := &visual{key: req.key}
		vis.lines, vis.raw, vis.err = makeVisual(imgs, req, cm, enc)
		return visualMsg{key: req.key, vis: vis}
	}
}

// makeVisual loads the image, lays the heatmap over it and encodes it.
func makeVisual(imgs *imageCache, req visualReq, cm *explain.Colormap, enc graphics.Encoder) ([]string, string, error) {
	var img image.Image
	img, err := imgs.get(req.reading)
	if err != nil {
		return nil, "", err
	}
	if req.key.fill != "" {
		img = fillBoxes(img, req.reading.BoxesWithRole(loader.RoleEvidence), req.key.fill, req.grey)
	}
	if req.grid != nil {
		ov, err := explain.Overlay(img, *req.grid, explain.OverlayOptions{Colormap: cm, Signed: cm.Diverging()})
		if err != nil {
			return nil, "", err
		}
		img = ov
	}
	k := req.key
	if k.boxes {
		img = drawBoxes(img, req.reading.BoxesWithRole(loader.RoleEvidence), k.cols)
	}
	if k.mode == graphics.Blocks {
		return graphics.HalfBlocks(img, k.cols, k.rows), "", nil
	}
	var buf bytes.Buffer
	if err := enc.Encode(&buf, img, k.cols, k.rows); err != nil {
		return nil, "", err
	}
	return nil, buf.String(), nil
}

// fillBoxes draws img with boxes filled as model.MaskPixels fills them in
// the model's input: grey (CLIP's mean colour), the image's mean colour,
// or a box blur of radius 1/16 of the image's shorter side (sampled
// sparsely: it is drawn on every frame's new visual). The model
// fills its 224² input; the screen shows the file's pixels, so the fill is
// drawn again there, for the eye only: the scores and heatmaps come from
// the engine's.
func fillBoxes(img image.Image, boxes []loader.Box, fill string, grey color.RGBA) image.Image {
	b := img.Bounds()
	out := image.NewRGBA(b)
	draw.Draw(out, b, img, b.Min, draw.Src)
	src := image.NewRGBA(b)
	draw.Draw(src, b, img, b.Min, draw.Src)
	with := func(x, y int) color.RGBA { return grey }
	switch fill {
	case "mean":
		var sum [3]float64
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := src.RGBAAt(x, y)
				sum[0], sum[1], sum[2] = sum[0]+float64(c.R), sum[1]+float64(c.G), sum[2]+float64(c.B)
			}
		}
		n := float64(max(1, b.Dx()*b.Dy()))
		c := color.RGBA{R: uint8(sum[0] / n), G: uint8(sum[1] / n), B: uint8(sum[2] / n), A: 255}
		with = func(x, y int) color.RGBA { return c }
	case "blur":
		r := max(1, min(b.Dx(), b.Dy())/16)
		with = func(x, y int) color.RGBA {
			var sum [3]int
			n := 0
			for j := max(b.Min.Y, y-r); j <= min(b.Max.Y-1, y+r); j += max(1, r/4) {
				for i := max(b.Min.X, x-r); i <= min(b.Max.X-1, x+r); i += max(1, r/4) {
					c := src.RGBAAt(i, j)
					sum[0], sum[1], sum[2] = sum[0]+int(c.R), sum[1]+int(c.G), sum[2]+int(c.B)
					n++
				}
			}
			return color.RGBA{R: uint8(sum[0] / n), G: uint8(sum[1] / n), B: uint8(sum[2] / n), A: 255}
		}
	}
	for _, box := range boxes {
		r := box.Rect().Intersect(b)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				out.SetRGBA(x, y, with(x, y))
			}
		}
	}
	return out
}

// trimVisuals forgets visuals the frame does not show once there are many.
func (m *Model) trimVisuals() {
	if len(m.visuals) <= 64 {
		return
	}
	keep := map[visualKey]bool{}
	for _, r := range m.wantVisuals {
		keep[r.key] = true
	}
	for k := range m.visuals {
		if !keep[k] {
			delete(m.visuals, k)
		}
	}
}

// drawState is a set of sixel or kitty images and the frame they were
// drawn into.
type drawState struct {
	mode   graphics.Mode
	sig    uint64
	places []placement
	// stale marks images that must be drawn again whatever the frame
	// (after a resize).
	stale bool
}

func (d drawState) any() bool { return len(d.places) > 0 }

// syncImages brings the sixel or kitty images on the terminal in line with
// the frame just rendered. Images are drawn imageDelay after the frame, so
// that they land after the renderer has flushed it, and again whenever the
// rows they cover change, since the renderer may erase to the end of a line
// it rewrites. Kitty images that leave are deleted at once; sixel pixels are
// text cells to the terminal and go with a full repaint.
func (m *Model) syncImages() tea.Cmd {
	want := drawState{mode: m.mode}
	if m.screen == screenPair && (m.mode == graphics.Sixel || m.mode == graphics.Kitty) {
		want.places = m.placements
	}
	want.sig = m.placeSig(want)
	if want.sig == m.drawn.sig && !m.drawn.stale && !m.wantDrawPending() {
		return nil
	}
	if m.wantDrawPending() && want.sig == m.wantDraw.sig {
		return nil
	}
	var cmds []tea.Cmd
	if m.drawn.any() {
		switch m.drawn.mode {
		case graphics.Kitty:
			var del strings.Builder
			for _, p := range m.drawn.places {
				if !hasCol(want, p.key.col) || want.mode != graphics.Kitty {
					del.WriteString(graphics.KittyDelete(uint32(p.key.col + 1)))
				}
			}
			if del.Len() > 0 {
				cmds = append(cmds, tea.Raw(del.String()))
			}
		case graphics.Sixel:
			if !samePlaces(m.drawn, want) {
				cmds = append(cmds, tea.ClearScreen)
			}
		}
	}
	if !want.any() {
		m.drawn, m.wantSeq = want, ""
		return tea.Batch(cmds...)
	}
	var seq strings.Builder
	for _, p := range want.places {
		seq.WriteString(placeAt(p.x, p.y, p.seq))
	}
	m.drawGen++
	m.wantDraw, m.wantSeq = want, seq.String()
	gen := m.drawGen
	cmds = append(cmds, tea.Tick(imageDelay, func(time.Time) tea.Msg { return drawMsg{gen} }))
	return tea.Batch(cmds...)
}

func (m *Model) wantDrawPending() bool { return m.wantSeq != "" }

// placeSig fingerprints the images of d and the frame rows they cover.
func (m *Model) placeSig(d drawState) uint64 {
	if !d.any() {
		return 0
	}
	h := fnv.New64a()
	fmt.Fprint(h, d.mode, m.w, m.h)
	rows := map[int]bool{}
	for _, p := range d.places {
		fmt.Fprintf(h, "|%d,%d,%v", p.x, p.y, p.key)
		for y := p.y; y < p.y+p.key.rows; y++ {
			rows[y] = true
		}
	}
	for y, l := range m.lines {
		if rows[y] {
			fmt.Fprint(h, y, l)
		}
	}
	return h.Sum64()
}

func hasCol(d drawState, col int) bool {
	for _, p := range d.places {
		if p.key.col == col {
			return true
		}
	}
	return false
}

func samePlaces(a, b drawState) bool {
	if a.mode != b.mode || len(a.places) != len(b.places) {
		return false
	}
	for i := range a.places {
		pa, pb := a.places[i], b.places[i]
		if pa.x != pb.x || pa.y != pb.y || pa.key.cols != pb.key.cols || pa.key.rows != pb.key.rows {
			return false
		}
	}
	return true
}

// placeAt wraps an image that an Encoder draws at the cursor so that it is
// drawn at cell (x, y) and the cursor ends where the renderer left it. The
// encoder brackets its image in save/restore cursor, and the terminal has
// one save slot, so those are replaced by one pair around the move.
func placeAt(x, y int, seq string) string {
	inner := strings.TrimSuffix(strings.TrimPrefix(seq, ansi.SaveCursor), ansi.RestoreCursor)
	return ansi.SaveCursor + ansi.CursorPosition(x+1, y+1) + inner + ansi.RestoreCursor
}

// boxColor outlines evidence boxes: magenta, which none of the colormaps
// paints, so that a box stays visible on any heatmap.
var boxColor = color.RGBA{255, 0, 255, 255}

// drawBoxes returns a copy of img with boxes outlined, the lines as thick
// as one of the cols columns the image is shown in, so that they survive
// the scaling down to cells.
func drawBoxes(img image.Image, boxes []loader.Box, cols int) image.Image {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	t := max(1, (b.Dx()+max(1, cols)-1)/max(1, cols))
	fill := func(r image.Rectangle) {
		draw.Draw(out, r.Intersect(out.Rect), image.NewUniform(boxColor), image.Point{}, draw.Src)
	}
	for _, bx := range boxes {
		r := image.Rect(bx.X0, bx.Y0, bx.X1, bx.Y1)
		fill(image.Rect(r.Min.X, r.Min.Y, r.Max.X, r.Min.Y+t))
		fill(image.Rect(r.Min.X, r.Max.Y-t, r.Max.X, r.Max.Y))
		fill(image.Rect(r.Min.X, r.Min.Y, r.Min.X+t, r.Max.Y))
		fill(image.Rect(r.Max.X-t, r.Min.Y, r.Max.X, r.Max.Y))
	}
	return out
}
