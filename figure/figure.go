package figure

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"strings"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
)

// Width is the figure's width in the units of its layout: the SVG's user
// units and the PNG's pixels at DefaultWidth.
const Width = 1600

// DefaultWidth is the PNG width in pixels when none is chosen.
const DefaultWidth = 1600

// Input is what a figure shows: a pair, the report of each of its readings
// for one method, start layer and target, and the pair's decoded images.
type Input struct {
	Pair *loader.Pair
	// Readings[j] is reading j's report, with its logits set.
	Readings []report.Reading
	// Images[i] is the decoded image of the pair's reading i.
	Images []image.Image
	// Prep is the preprocessing the model saw the images through: each
	// panel shows the region of the file its centre crop keeps.
	Prep loader.PreprocessConfig
	// Colormap paints the relevance; nil means explain.Jet.
	Colormap *explain.Colormap
}

// Figure is a laid-out figure: shapes in logical units, Width wide and H
// high, drawn in order.
type Figure struct {
	H      float64
	items  []item
	panels []panel
}

type itemKind uint8

const (
	kindRect itemKind = iota + 1
	kindText
	kindImage
)

type anchor uint8

const (
	anchorStart anchor = iota
	anchorMiddle
	anchorEnd
)

// item is one shape. A rect is filled with fill when fill.A > 0 and
// outlined with stroke when stroke > 0; lines are thin rects. A text's
// (x, y) is its anchor on the baseline.
type item struct {
	kind       itemKind
	x, y, w, h float64
	fill       color.RGBA
	stroke     float64
	text       string
	// fit, when > 0, is the width the text must fill exactly (a label on
	// a chip): the SVG stretches it there in whatever font the reader has.
	fit    float64
	style  fontStyle
	size   float64
	anchor anchor
	img    image.Image
}

// panel records where an image panel lies, for tests and captions.
type panel struct {
	reading, image int
	// heat is true for the panel with the heatmap over the image.
	heat bool
	rect rect
	img  image.Image
}

type rect struct{ x, y, w, h float64 }

// BoxColor outlines the evidence boxes: magenta, which none of the
// colormaps contain.
var BoxColor = color.RGBA{0xe0, 0x00, 0xe0, 0xff}

var (
	black = color.RGBA{0, 0, 0, 0xff}
	grey  = color.RGBA{0x55, 0x55, 0x55, 0xff}
	rule  = color.RGBA{0xbb, 0xbb, 0xbb, 0xff}
	green = color.RGBA{0x1a, 0x7f, 0x37, 0xff}
	red   = color.RGBA{0xc0, 0x1c, 0x28, 0xff}
	white = color.RGBA{0xff, 0xff, 0xff, 0xff}
)

// The layout's measures, in logical units.
const (
	margin    = 40.0
	colGap    = 56.0
	panelGap  = 16.0
	prepared  = 448 // panel images are resampled to this side, at most
	treeRow   = 24.0
	treeFont  = 15.0
	treeChipH = 19.0
)

// New lays in out as a figure. It fails on reports that do not belong to
// the pair (another reading count, a tree whose nodes differ from the
// report's, an image index outside the pair).
func New(in Input) (*Figure, error) {
	if err := loadFonts(); err != nil {
		return nil, err
	}
	if err := check(in); err != nil {
		return nil, err
	}
	if in.Colormap == nil {
		in.Colormap = explain.Jet
	}
	l := &layout{in: in, fig: &Figure{}, scaled: map[int]image.Image{}}
	if err := l.run(); err != nil {
		return nil, fmt.Errorf("figure of pair %s: %w", termtext.Sanitize(in.Pair.ID), err)
	}
	return l.fig, nil
}

func check(in Input) error {
	if in.Pair == nil {
		return errors.New("figure: no pair")
	}
	n := len(in.Pair.Readings)
	id := termtext.Sanitize(in.Pair.ID)
	if n < 2 || len(in.Readings) != n || len(in.Images) != n {
		return fmt.Errorf("figure of pair %s: %d readings, %d reports, %d images; want as many reports and images as readings, at least 2",
			id, n, len(in.Readings), len(in.Images))
	}
	for j, r := range in.Readings {
		if r.Reading != j || len(r.Logits) != n || len(r.Images) == 0 {
			return fmt.Errorf("figure of pair %s: report %d is of reading %d with %d logits and %d images", id, j, r.Reading, len(r.Logits), len(r.Images))
		}
		for _, im := range r.Images {
			if im.Image < 0 || im.Image >= n {
				return fmt.Errorf("figure of pair %s: reading %d explains image %d of %d", id, j, im.Image, n)
			}
			if im.Grid <= 0 || len(im.Relevance) != im.Grid*im.Grid {
				return fmt.Errorf("figure of pair %s: reading %d: a %d×%d grid with %d values", id, j, im.Grid, im.Grid, len(im.Relevance))
			}
		}
	}
	for i, img := range in.Images {
		if img == nil || img.Bounds().Empty() {
			return fmt.Errorf("figure of pair %s: image %d is empty", id, i)
		}
	}
	return nil
}

// layout builds a Figure top to bottom; y is the top of what comes next.
type layout struct {
	in     Input
	fig    *Figure
	y      float64
	scaled map[int]image.Image
	// treeScale is the largest |relevance| of a node over all readings:
	// the top of the trees' colour scale.
	treeScale float64
}

// letter names reading or image i as the figure does: A, B, C, ...
func letter(i int) string {
	if i >= 0 && i < 26 {
		return string(rune('A' + i))
	}
	return fmt.Sprint(i + 1)
}

func (l *layout) add(it item) { l.fig.items = append(l.fig.items, it) }

func (l *layout) fillRect(x, y, w, h float64, c color.RGBA) {
	l.add(item{kind: kindRect, x: x, y: y, w: w, h: h, fill: c})
}

func (l *layout) strokeRect(x, y, w, h, width float64, c color.RGBA) {
	l.add(item{kind: kindRect, x: x, y: y, w: w, h: h, fill: c, stroke: width})
}

// text adds one line of untrusted text, sanitised once here for both
// outputs: control and bidi characters become visible escapes.
func (l *layout) text(x, baseline float64, style fontStyle, size float64, c color.RGBA, a anchor, s string) {
	l.add(item{kind: kindText, x: x, y: baseline, text: termtext.Sanitize(s), style: style, size: size, fill: c, anchor: a})
}

// label is text that must fit a chip: it is stretched to its width as
// measured here, in every font.
func (l *layout) label(x, baseline float64, style fontStyle, size float64, c color.RGBA, s string) {
	s = termtext.Sanitize(s)
	l.add(item{kind: kindText, x: x, y: baseline, text: s, style: style, size: size, fill: c, fit: measure(style, size, s)})
}

// para adds s wrapped to width from the current line top y, and returns the
// height it took.
func (l *layout) para(x, y, width float64, style fontStyle, size float64, c color.RGBA, s string) float64 {
	lh := size * 1.3
	// A tenth of slack: an SVG reader without the Go font falls back to a
	// wider one (DejaVu Sans is about 10% wider).
	lines := wrap(style, size, 0.9*width, termtext.Sanitize(s))
	for k, line := range lines {
		l.text(x, y+float64(k)*lh+size, style, size, c, anchorStart, line)
	}
	return float64(len(lines)) * lh
}

func (l *layout) run() error {
	in := l.in
	n := len(in.Pair.Readings)
	l.y = margin
	inner := Width - 2*margin
	l.y += l.para(margin, l.y, inner, bold, 28, black, "“"+in.Pair.Sentence+"”")
	l.y += 6
	l.y += l.para(margin, l.y, inner, regular, 16, grey, l.subtitle())
	l.y += 12
	l.fillRect(margin, l.y, inner, 1.5, rule)
	l.y += 20

	cw := (inner - float64(n-1)*colGap) / float64(n)
	x := func(j int) float64 { return margin + float64(j)*(cw+colGap) }

	// Each band is laid out per column and ends below the tallest column,
	// so that the trees, the images and the logits line up across readings.
	band := func(f func(j int, x, y float64) (float64, error)) error {
		top, h := l.y, 0.0
		for j := range n {
			hj, err := f(j, x(j), top)
			if err != nil {
				return err
			}
			h = max(h, hj)
		}
		l.y = top + h
		return nil
	}
	if err := band(func(j int, x, y float64) (float64, error) { return l.header(j, x, y, cw), nil }); err != nil {
		return err
	}
	l.y += 10
	l.scaleTrees()
	if err := band(func(j int, x, y float64) (float64, error) { return l.tree(j, x, y, cw) }); err != nil {
		return err
	}
	l.y += 18
	if err := band(func(j int, x, y float64) (float64, error) { return l.panels(j, x, y, cw) }); err != nil {
		return err
	}
	l.y += 18
	if err := band(func(j int, x, y float64) (float64, error) { return l.logits(j, x, y, cw), nil }); err != nil {
		return err
	}
	l.y += 24
	l.fillRect(margin, l.y, inner, 1.5, rule)
	l.y += 20
	l.colorBar(inner)
	l.fig.H = math.Ceil(l.y + margin)
	return nil
}

// subtitle says what was explained: the pair, the method and start layer,
// and the target in words.
func (l *layout) subtitle() string {
	r := l.in.Readings[0]
	parts := []string{"pair " + l.in.Pair.ID}
	if a := l.in.Pair.Ambiguity; a != "" {
		parts = append(parts, a)
	}
	m := "method " + string(r.Method)
	if r.StartLayer != "-" && r.StartLayer != "" {
		m += ", start layer " + r.StartLayer
		if r.StartLayerText != "" {
			m += " (text " + r.StartLayerText + ")"
		}
	}
	parts = append(parts, m, "target "+r.Target+": "+targetWords(r.Target))
	if r.Checkpoint != "" {
		parts = append(parts, "checkpoint "+r.Checkpoint)
	}
	return strings.Join(parts, " · ")
}

func targetWords(t string) string {
	switch t {
	case "own":
		return "each reading's text against its own image"
	case "twin":
		return "each reading's text against the other reading's image"
	case "all":
		return "each reading's text against every image of the pair, summed"
	}
	return t
}

func (l *layout) header(j int, x, y, cw float64) float64 {
	r := l.in.Readings[j]
	h := l.para(x, y, cw, bold, 24, black, "Reading "+letter(j))
	if r.Gloss != "" {
		h += 4
		h += l.para(x, y+h, cw, italic, 18, black, "“"+r.Gloss+"”")
	}
	return h
}

// whose says whose image i is for reading j.
func whose(i, j int) string {
	if i == j {
		return "its own"
	}
	return "reading " + letter(i) + "'s"
}

// twinWhose is whose, naming the twin as such in a pair of two readings.
func (l *layout) whose(i, j int) string {
	if i != j && len(l.in.Pair.Readings) == 2 {
		return "the twin's"
	}
	return whose(i, j)
}
