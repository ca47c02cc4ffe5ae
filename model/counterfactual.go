package model

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"slices"
	"strconv"
	"strings"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// Counterfactuals change what the model reads or sees in a pair and score
// the change: tokens dropped from a reading's text, the brackets replaced
// by the plain sentence, a box of an image filled, or the images swapped.
// A pair and all its variants go through the model in one batch laid out
// by Inputs, so that every logit of a request comes from one forward pass
// and an unchanged input shares its row or column with the original (its
// delta is exactly 0).
//
// Tokens are dropped by position from the reading's token ids, not from
// its string: BPE of a shortened string can split the remaining words
// differently, and then the variant would change more than the dropped
// tokens. The rest move up and the end of text follows them, as
// explain.DeleteTokens has always dropped them (it uses DropPositions).
//
// Boxes are filled in the preprocessed image, the one the model reads: an
// input pixel is filled when its centre, mapped back through the resize
// and centre crop, falls inside a box (in image-file pixels), the rule the
// pointing game counts patches with. Filling there, rather than in the
// file's pixels before resizing, keeps the resize's interpolation from
// smearing the fill beyond the box, and makes a box of zero size change
// nothing at all.

// Fill is what a masked box becomes.
type Fill int

const (
	// FillGrey is 0 after CLIP's normalisation: the mean colour of
	// CLIP's training images.
	FillGrey Fill = iota
	// FillMean is the image's own mean colour, per channel.
	FillMean
	// FillBlur is a box blur of the image (radius 1/16 of its side), which
	// keeps colours and removes detail.
	FillBlur
)

var fillNames = []string{FillGrey: "grey", FillMean: "mean", FillBlur: "blur"}

func (f Fill) String() string {
	if f >= 0 && int(f) < len(fillNames) {
		return fillNames[f]
	}
	return "Fill(" + strconv.Itoa(int(f)) + ")"
}

// ParseFill reads grey, mean or blur.
func ParseFill(s string) (Fill, error) {
	if i := slices.Index(fillNames, s); i >= 0 {
		return Fill(i), nil
	}
	return 0, fmt.Errorf("unknown fill %q: want %s", s, strings.Join(fillNames, ", "))
}

// Variant is one counterfactual of a pair. Its slices are indexed by
// reading; a missing or nil entry leaves that reading as it is.
type Variant struct {
	// Neutral makes every reading read the plain sentence
	// (trees.StyleWords) in place of its linearized tree.
	Neutral bool
	// Drop lists, per reading, positions of the reading's token ids (0 is
	// the start of text) to drop. Only positions strictly between start
	// and end of text can be dropped.
	Drop [][]int
	// Mask lists, per reading, boxes of the reading's image to fill with
	// Fill, in image-file pixels.
	Mask [][]loader.Box
	Fill Fill
	// Swap gives reading r the image of reading (r+1) mod n (with the
	// masks of that reading's image): for two readings, each the other's.
	Swap bool
}

// VariantSource says how to read a pair for its variants.
type VariantSource struct {
	Style trees.Style
	Prep  loader.PreprocessConfig
	// Size is the size in file pixels of reading r's image, which the
	// boxes are in.
	Size func(p *loader.Pair, r int) (image.Point, error)
}

// VariantLayout locates a pair and its variants in an Inputs: rows[v][r]
// is reading r's text under variant v and cols[v][k] image k's column,
// variant 0 being the pair as it is.
type VariantLayout struct {
	rows, cols [][]int
}

// AddVariants adds pair p and each of vs to in, which must not be packed
// yet.
func AddVariants(in *Inputs, p *loader.Pair, src VariantSource, vs []Variant) (*VariantLayout, error) {
	n := len(p.Readings)
	texts, err := ReadingTexts(p, src.Style)
	if err != nil {
		return nil, err
	}
	var plain []string
	l := &VariantLayout{}
	orig := make([]int, n)
	for r := range n {
		if orig[r], err = in.Image(p, r); err != nil {
			return nil, err
		}
	}
	for v := -1; v < len(vs); v++ {
		var x Variant
		if v >= 0 {
			x = vs[v]
		}
		rows := make([]int, n)
		for r := range n {
			text := texts[r]
			if x.Neutral {
				if plain == nil {
					if plain, err = ReadingTexts(p, trees.StyleWords); err != nil {
						return nil, err
					}
				}
				text = plain[r]
			}
			var drop []int
			if r < len(x.Drop) {
				drop = x.Drop[r]
			}
			if rows[r], err = in.dropped(text, drop); err != nil {
				return nil, fmt.Errorf("pair %s: variant %d, reading %s: %w", p.ID, v+1, readingLetter(r), err)
			}
		}
		cols := make([]int, n)
		for k := range n {
			var boxes []loader.Box
			if k < len(x.Mask) {
				boxes = x.Mask[k]
			}
			if cols[k], err = in.masked(p, k, orig[k], boxes, x.Fill, src); err != nil {
				return nil, fmt.Errorf("pair %s: variant %d, image %s: %w", p.ID, v+1, readingLetter(k), err)
			}
		}
		if x.Swap {
			cols = append(cols[1:], cols[0])
		}
		l.rows = append(l.rows, rows)
		l.cols = append(l.cols, cols)
	}
	return l, nil
}

// Place returns where variant v lies in the Inputs (0 is the pair as it
// is): rows[r] is reading r's text, cols[k] the column shown as image k
// (after a swap, the twin's image).
func (l *VariantLayout) Place(v int) (rows, cols []int) {
	return l.rows[v], l.cols[v]
}

// Logits reads the layout's logits from lpt, a forward pass of its Inputs
// (images columns wide): out[v][r][k] is reading r's text against image k
// under variant v, 0 being the pair as it is.
func (l *VariantLayout) Logits(lpt []float32, images int) [][][]float64 {
	out := make([][][]float64, len(l.rows))
	for v, rows := range l.rows {
		out[v] = make([][]float64, len(rows))
		for r, row := range rows {
			out[v][r] = make([]float64, len(l.cols[v]))
			for k, col := range l.cols[v] {
				out[v][r][k] = float64(lpt[row*images+col])
			}
		}
	}
	return out
}

func readingLetter(r int) string {
	if r < 26 {
		return string(rune('A' + r))
	}
	return strconv.Itoa(r + 1)
}

// DropPositions returns ids without the positions of drop; the order of
// the rest is kept.
func DropPositions[T any](ids []T, drop []int) []T {
	out := make([]T, 0, len(ids))
	for p, id := range ids {
		if !slices.Contains(drop, p) {
			out = append(out, id)
		}
	}
	return out
}

// DeletionPreset is token deletion's choice of tokens: the k most
// relevant positions strictly between start and end of text (eot), most
// relevant first, or with most false the k least relevant, least first;
// ties keep position order. rel holds a value per position. A k beyond
// the tokens takes them all.
func DeletionPreset(rel []float32, eot, k int, most bool) []int {
	inner := rel[1:eot]
	idx := make([]int, len(inner))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if most {
			a, b = b, a
		}
		return cmp.Compare(inner[a], inner[b])
	})
	idx = idx[:min(k, len(idx))]
	for i := range idx {
		idx[i]++
	}
	return idx
}

// dropped returns the row of text with the token positions of drop
// removed; with none, the text's own row.
func (c *Inputs) dropped(text string, drop []int) (int, error) {
	if len(drop) == 0 {
		return c.Text(text), nil
	}
	enc := c.tok.Encode(text, c.context)
	eot := len(enc.IDs) - 1
	for _, p := range drop {
		if p < 1 || p >= eot {
			return 0, fmt.Errorf("token %d: only the tokens 1 to %d (between start and end of text) can be dropped", p, eot-1)
		}
	}
	drop = slices.Sorted(slices.Values(drop))
	drop = slices.Compact(drop)
	// The key cannot be a text's: texts hold no NUL.
	key := fmt.Sprintf("%s\x00drop %v", text, drop)
	if row, ok := c.rows[key]; ok {
		return row, nil
	}
	if enc.Truncated {
		c.truncated++
	}
	enc.IDs = DropPositions(enc.IDs, drop)
	enc.Offsets = DropPositions(enc.Offsets, drop)
	row := len(c.encs)
	c.rows[key] = row
	c.encs = append(c.encs, enc)
	c.textKeys = append(c.textKeys, key)
	c.length = max(c.length, len(enc.IDs))
	return row, nil
}

// masked returns the column of image k of p with boxes filled; orig is its
// column as it is, which an empty mask (or one that covers no input
// pixel) returns.
func (c *Inputs) masked(p *loader.Pair, k, orig int, boxes []loader.Box, fill Fill, src VariantSource) (int, error) {
	if len(boxes) == 0 {
		return orig, nil
	}
	if src.Size == nil {
		return 0, errors.New("masking boxes needs the images' sizes")
	}
	size, err := src.Size(p, k)
	if err != nil {
		return 0, err
	}
	n := len(c.pixels) / max(1, c.images)
	px := slices.Clone(c.pixels[orig*n : (orig+1)*n])
	changed, err := MaskPixels(px, size, src.Prep, boxes, fill)
	if err != nil {
		return 0, err
	}
	if !changed {
		return orig, nil
	}
	return c.addPixels(px), nil
}

// MaskPixels fills boxes of a preprocessed image px ([3,S,S]) whose file
// is src pixels large, preprocessed with prep, and reports whether any
// input pixel was filled.
func MaskPixels(px []float32, src image.Point, prep loader.PreprocessConfig, boxes []loader.Box, fill Fill) (bool, error) {
	h, w, err := prep.Size()
	if err != nil {
		return false, err
	}
	if len(px) != 3*w*h {
		return false, fmt.Errorf("mask: %d values for a 3×%d×%d image", len(px), h, w)
	}
	if src.X <= 0 || src.Y <= 0 {
		return false, fmt.Errorf("mask: empty %dx%d image", src.X, src.Y)
	}
	rw, rh := prep.Resized(src.X, src.Y)
	left, top := prep.CropOffset(rw, rh)
	inside := make([]bool, w*h)
	hit := false
	for y := range h {
		sy := (float64(y) + 0.5 + float64(top)) * float64(src.Y) / float64(rh)
		for x := range w {
			sx := (float64(x) + 0.5 + float64(left)) * float64(src.X) / float64(rw)
			for _, b := range boxes {
				if sx >= float64(b.X0) && sx < float64(b.X1) && sy >= float64(b.Y0) && sy < float64(b.Y1) {
					inside[y*w+x] = true
					hit = true
					break
				}
			}
		}
	}
	if !hit {
		return false, nil
	}
	plane := w * h
	for ch := range 3 {
		c := px[ch*plane : (ch+1)*plane]
		var with []float32
		switch fill {
		case FillGrey:
		case FillMean:
			var sum float64
			for _, v := range c {
				sum += float64(v)
			}
			with = []float32{float32(sum / float64(plane))}
		case FillBlur:
			with = boxBlur(c, w, h, max(1, min(w, h)/16))
		default:
			return false, fmt.Errorf("mask: unknown fill %v", fill)
		}
		for i, in := range inside {
			if !in {
				continue
			}
			switch len(with) {
			case 0:
				c[i] = 0
			case 1:
				c[i] = with[0]
			default:
				c[i] = with[i]
			}
		}
	}
	return true, nil
}

// boxBlur is the mean of each pixel's (2r+1)² neighbourhood, clamped at
// the edges, in two separable passes.
func boxBlur(c []float32, w, h, r int) []float32 {
	tmp := make([]float32, len(c))
	out := make([]float32, len(c))
	for y := range h {
		for x := range w {
			var s float32
			lo, hi := max(0, x-r), min(w-1, x+r)
			for i := lo; i <= hi; i++ {
				s += c[y*w+i]
			}
			tmp[y*w+x] = s / float32(hi-lo+1)
		}
	}
	for y := range h {
		lo, hi := max(0, y-r), min(h-1, y+r)
		for x := range w {
			var s float32
			for j := lo; j <= hi; j++ {
				s += tmp[j*w+x]
			}
			out[y*w+x] = s / float32(hi-lo+1)
		}
	}
	return out
}

// ConstituentTokens lists the positions of text's token ids (as tok
// encodes l.Text) that belong to node n of l's tree: a token counts when
// every part it overlaps is n's or a descendant's.
func ConstituentTokens(tok *tokenizer.Tokenizer, context int, l *trees.Linear, n *trees.Node) ([]int, error) {
	enc := tok.Encode(l.Text, context)
	a, err := trees.Align(l, enc.Offsets)
	if err != nil {
		return nil, err
	}
	under := map[*trees.Node]bool{}
	var walk func(*trees.Node)
	walk = func(x *trees.Node) {
		under[x] = true
		for _, ch := range x.Children {
			walk(ch)
		}
	}
	walk(n)
	var out []int
	for t, ps := range a.Parts {
		if t == 0 || t == len(a.Parts)-1 || len(ps) == 0 {
			continue
		}
		in := true
		for _, p := range ps {
			in = in && under[l.Parts[p].Node]
		}
		if in {
			out = append(out, t)
		}
	}
	return out, nil
}

// ScoreVariants scores pair i of split and its variants vs in one forward
// pass on w: see VariantLayout.Logits.
func ScoreVariants(ctx context.Context, w *torch.Worker, m *CLIP, tok *tokenizer.Tokenizer, split Split, i int, style trees.Style, vs []Variant) ([][][]float64, error) {
	prep, err := PreprocessFor(m)
	if err != nil {
		return nil, err
	}
	p, err := split.Pair(i)
	if err != nil {
		return nil, err
	}
	b := newBatcher(m, tok, split, style, prep)
	in := newChunkInputs(b)
	size := func(p *loader.Pair, r int) (image.Point, error) {
		img, err := split.Image(&p.Readings[r])
		if err != nil {
			return image.Point{}, fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, r, p.Readings[r].Image, err)
		}
		return img.Bounds().Size(), nil
	}
	l, err := AddVariants(in, &p, VariantSource{Style: style, Prep: prep, Size: size}, vs)
	if err != nil {
		return nil, err
	}
	if err := in.Pack(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lpt, err := in.logits(w, m)
	if err != nil {
		return nil, fmt.Errorf("score variants: %w", err)
	}
	return l.Logits(lpt, in.Images()), nil
}
