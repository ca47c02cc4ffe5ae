package explain

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// Faithfulness asks whether relevance points at what the model uses. For a
// reading of a pair, the quantity watched is its margin: the logit of its
// text against its own image minus the logit against its twin's image, the
// number that decides whether the model picks right.

// DefaultFractions are the shares of patches removed along a perturbation
// curve: none, then 10% to 90%.
var DefaultFractions = []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}

// Curve is the margin of a reading as patches of its own image are removed.
type Curve struct {
	Fractions []float64 `json:"fractions"`
	// Removed[i] is how many patches were removed at Fractions[i]:
	// round(fraction · patches).
	Removed []int     `json:"removed"`
	Margins []float64 `json:"margins"`
	// AUC is the area under the margin curve over the fractions, by the
	// trapezoid rule.
	AUC float64 `json:"auc"`
}

// Perturbation holds both orders of removal. Removing the most relevant
// patches first (Positive) should make the margin fall fast, so a faithful
// map has a low positive AUC; removing the least relevant first (Negative)
// should leave it standing, so a high negative AUC.
type Perturbation struct {
	Positive Curve `json:"positive"`
	Negative Curve `json:"negative"`
}

// Perturb re-scores a reading with patches of its own image removed in order
// of relevance: own and twin are the two images [C,S,S] (preprocessed), ids
// [N] the reading's tokens, rel the relevance of own's G×G patches for the
// reading (any method; ties keep patch order). A removed patch's pixels
// become 0, which after CLIP's normalisation is the per-channel mean of the
// training images. All variants go through the model in one batch, without
// gradients. fractions nil means DefaultFractions; each must lie in [0, 1].
func Perturb(m *model.CLIP, own, twin, ids *torch.Tensor, rel []float32, fractions []float64) (*Perturbation, error) {
	if fractions == nil {
		fractions = DefaultFractions
	}
	if !slices.IsSorted(fractions) {
		return nil, fmt.Errorf("perturb: fractions %v are not in increasing order", fractions)
	}
	for _, f := range fractions {
		if !(f >= 0 && f <= 1) {
			return nil, fmt.Errorf("perturb: fraction %g outside [0, 1]", f)
		}
	}
	if len(fractions) == 0 {
		return nil, errors.New("perturb: no fractions")
	}
	if err := checkPair(own, twin); err != nil {
		return nil, fmt.Errorf("perturb: %w", err)
	}
	size := own.Size(1)
	grid, err := gridOf(len(rel))
	if err != nil {
		return nil, fmt.Errorf("perturb: %w", err)
	}
	if size%int64(grid) != 0 {
		return nil, fmt.Errorf("perturb: %d-pixel images do not split into a %d×%d grid", size, grid, grid)
	}
	patch := int(size) / grid
	orders := [2][]int{descending(rel), ascending(rel)}
	np := len(rel)
	// One mask per (order, fraction): 1 keeps a pixel, 0 removes it.
	k := 2 * len(fractions)
	masks := make([]float32, k*int(size*size))
	removed := make([]int, len(fractions))
	for o, order := range orders {
		for fi, f := range fractions {
			n := int(math.Round(f * float64(np)))
			removed[fi] = n
			mask := masks[(o*len(fractions)+fi)*int(size*size):][:size*size]
			for i := range mask {
				mask[i] = 1
			}
			for _, p := range order[:n] {
				r, c := p/grid, p%grid
				for y := r * patch; y < (r+1)*patch; y++ {
					clear(mask[y*int(size)+c*patch : y*int(size)+(c+1)*patch])
				}
			}
		}
	}
	var logits []float64
	err = torch.NoGrad(func() error {
		s := torch.NewScope()
		defer s.Close()
		mk := s.FromFloat32(masks, int64(k), 1, size, size).To(own.Device(), own.DType())
		imgs := torch.Cat([]*torch.Tensor{own.In(s).Unsqueeze(0).Mul(mk), twin.In(s).Unsqueeze(0)}, 0)
		out, err := m.Forward(s, imgs, ids.In(s).Unsqueeze(0), model.ForwardOptions{})
		if err != nil {
			return err
		}
		logits, err = out.LogitsPerImage.Float64s()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("perturb: %w", err)
	}
	twinLogit := logits[k]
	curve := func(o int) Curve {
		c := Curve{Fractions: slices.Clone(fractions), Removed: slices.Clone(removed), Margins: make([]float64, len(fractions))}
		for fi := range fractions {
			c.Margins[fi] = logits[o*len(fractions)+fi] - twinLogit
		}
		c.AUC = trapezoid(c.Fractions, c.Margins)
		return c
	}
	return &Perturbation{Positive: curve(0), Negative: curve(1)}, nil
}

func checkPair(own, twin *torch.Tensor) error {
	for _, t := range []*torch.Tensor{own, twin} {
		if err := t.Err(); err != nil {
			return err
		}
		if sh := t.Shape(); len(sh) != 3 || sh[1] != sh[2] {
			return fmt.Errorf("image %s: want [channels, size, size]", t)
		}
	}
	if !slices.Equal(own.Shape(), twin.Shape()) {
		return fmt.Errorf("images %s and %s differ in shape", own, twin)
	}
	return nil
}

// gridOf returns G for G² patches.
func gridOf(n int) (int, error) {
	g := int(math.Round(math.Sqrt(float64(n))))
	if n == 0 || g*g != n {
		return 0, fmt.Errorf("%d patch values are not a square grid", n)
	}
	return g, nil
}

// descending lists indices of v from the largest value down, ties in index
// order.
func descending(v []float32) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(v[b], v[a]) })
	return idx
}

// ascending lists indices of v from the smallest value up, ties in index
// order.
func ascending(v []float32) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(v[a], v[b]) })
	return idx
}

func trapezoid(x, y []float64) float64 {
	var a float64
	for i := 1; i < len(x); i++ {
		a += (x[i] - x[i-1]) * (y[i] + y[i-1]) / 2
	}
	return a
}

// Geometry is how CLIP's preprocessing places a source image in the model's
// input: resized (the shorter side to the shortest edge, the longer side
// truncated as transformers does, or to a fixed size) and centre-cropped,
// with black padding where the resized image is smaller than the crop.
type Geometry struct {
	// SrcW, SrcH are the source image's size in pixels.
	SrcW, SrcH int
	// ResizedW, ResizedH are its size after resizing.
	ResizedW, ResizedH int
	// Left, Top are the crop's offset in the resized image (negative where
	// the crop pads).
	Left, Top int
	// W, H are the model input's size.
	W, H int
}

// NewGeometry returns the geometry of a srcW×srcH image under p, following
// loader.Preprocess.
func NewGeometry(srcW, srcH int, p loader.PreprocessConfig) (Geometry, error) {
	if srcW <= 0 || srcH <= 0 {
		return Geometry{}, fmt.Errorf("geometry: empty %dx%d image", srcW, srcH)
	}
	h, w, err := p.Size()
	if err != nil {
		return Geometry{}, fmt.Errorf("geometry: %w", err)
	}
	g := Geometry{SrcW: srcW, SrcH: srcH, W: w, H: h}
	g.ResizedW, g.ResizedH = p.Resized(srcW, srcH)
	g.Left, g.Top = p.CropOffset(g.ResizedW, g.ResizedH)
	return g, nil
}

// ToSource maps a point of the model input to the source image.
func (g Geometry) ToSource(x, y float64) (float64, float64) {
	return (x + float64(g.Left)) * float64(g.SrcW) / float64(g.ResizedW),
		(y + float64(g.Top)) * float64(g.SrcH) / float64(g.ResizedH)
}

// PatchCoverage returns, for each patch of a grid×grid split of the model
// input, the share of its pixels whose centre falls inside one of the boxes
// (source pixel coordinates, as in the manifest).
func (g Geometry) PatchCoverage(grid int, boxes []loader.Box) ([]float64, error) {
	if grid <= 0 || g.W%grid != 0 || g.H%grid != 0 {
		return nil, fmt.Errorf("geometry: a %dx%d input does not split into a %d×%d grid", g.W, g.H, grid, grid)
	}
	pw, ph := g.W/grid, g.H/grid
	cover := make([]float64, grid*grid)
	for y := range g.H {
		for x := range g.W {
			sx, sy := g.ToSource(float64(x)+0.5, float64(y)+0.5)
			if sx < 0 || sy < 0 || sx >= float64(g.SrcW) || sy >= float64(g.SrcH) {
				continue // padding
			}
			for _, b := range boxes {
				if sx >= float64(b.X0) && sx < float64(b.X1) && sy >= float64(b.Y0) && sy < float64(b.Y1) {
					cover[(y/ph)*grid+x/pw]++
					break
				}
			}
		}
	}
	for i := range cover {
		cover[i] /= float64(pw * ph)
	}
	return cover, nil
}

// Pointing is the pointing game of one image map against evidence boxes.
type Pointing struct {
	// Top is the most relevant patch (the first one on a tie).
	Top int `json:"top"`
	// Hit reports that Top overlaps an evidence box.
	Hit bool `json:"hit"`
	// Chance is the share of patches that overlap a box: the hit rate of a
	// patch picked uniformly at random.
	Chance float64 `json:"chance"`
	// Mass is the share of the map's relevance that falls inside the boxes
	// (each patch weighted by its covered share; negative values count as
	// 0).
	Mass float64 `json:"mass"`
	// ChanceMass is the share of the input's area inside the boxes: the Mass
	// of a uniform map.
	ChanceMass float64 `json:"chance_mass"`
}

// PointingGame scores relevance rel over G×G patches against cover, the
// share of each patch inside the evidence (Geometry.PatchCoverage).
func PointingGame(rel []float32, cover []float64) (Pointing, error) {
	if len(rel) != len(cover) || len(rel) == 0 {
		return Pointing{}, fmt.Errorf("pointing game: %d relevance values for %d patches", len(rel), len(cover))
	}
	var p Pointing
	var total, inside, area float64
	hits := 0
	for i, v := range rel {
		if v > rel[p.Top] {
			p.Top = i
		}
		w := max(float64(v), 0)
		total += w
		inside += w * cover[i]
		area += cover[i]
		if cover[i] > 0 {
			hits++
		}
	}
	if area == 0 {
		return Pointing{}, errors.New("pointing game: the evidence boxes cover no patch of the model's input")
	}
	p.Hit = cover[p.Top] > 0
	p.Chance = float64(hits) / float64(len(rel))
	p.ChanceMass = area / float64(len(rel))
	if total > 0 {
		p.Mass = inside / total
	}
	return p, nil
}

// TokenDeletion is a reading re-scored with some tokens dropped.
type TokenDeletion struct {
	// Removed are the positions dropped, most relevant first for
	// TextDeletion.Top, least relevant first for Bottom.
	Removed []int `json:"removed"`
	// Margin is the reading's margin without them; Delta its change from
	// the full text's margin.
	Margin float64 `json:"margin"`
	Delta  float64 `json:"delta"`
}

// TextDeletion is the margin of a reading as its most (Top) or least
// (Bottom) relevant tokens are dropped, Top[i] and Bottom[i] for the k of
// DeleteTokens' ks[i].
type TextDeletion struct {
	Margin float64         `json:"margin"`
	Ks     []int           `json:"k"`
	Top    []TokenDeletion `json:"top"`
	Bottom []TokenDeletion `json:"bottom"`
}

// DefaultKs are the numbers of tokens DeleteTokens drops by default.
var DefaultKs = []int{1, 2, 3}

// DeleteTokens re-scores a reading with its k most and k least relevant
// tokens dropped, for each k of ks (nil means DefaultKs; a k larger than
// the number of tokens drops them all). own and twin are its two images
// [C,S,S], ids [N] its tokens, rel the relevance of each position (Raw of a
// TextRelevance) and eot its end of text; only the tokens strictly between
// start and end of text can be dropped.
//
// Tokens are dropped from the sequence, not masked or replaced: the rest
// move up and the end of text follows them, so the text is what the model
// would read had the tokens never been there (a replacement token would
// carry meaning of its own). The freed positions at the end take the end of
// text's id; the causal mask keeps them from the pooled feature.
func DeleteTokens(m *model.CLIP, own, twin, ids *torch.Tensor, rel []float32, eot int, ks []int) (*TextDeletion, error) {
	if ks == nil {
		ks = DefaultKs
	}
	if err := checkPair(own, twin); err != nil {
		return nil, fmt.Errorf("delete tokens: %w", err)
	}
	row, err := ids.Int64s()
	if err != nil {
		return nil, fmt.Errorf("delete tokens: ids: %w", err)
	}
	n := len(row)
	if ids.Dim() != 1 || len(rel) != n {
		return nil, fmt.Errorf("delete tokens: ids %s and %d relevance values: want one row of N ids and N values", ids, len(rel))
	}
	if eot < 1 || eot >= n {
		return nil, fmt.Errorf("delete tokens: end of text at %d, outside 1..%d", eot, n-1)
	}
	var variants [][]int
	for _, k := range ks {
		if k < 1 {
			return nil, fmt.Errorf("delete tokens: k = %d, want at least 1", k)
		}
		variants = append(variants, model.DeletionPreset(rel, eot, k, true), model.DeletionPreset(rel, eot, k, false))
	}
	texts := slices.Clone(row)
	for _, drop := range variants {
		v := model.DropPositions(row, drop)
		for len(v) < n {
			v = append(v, row[eot])
		}
		texts = append(texts, v...)
	}
	var logits []float64
	err = torch.NoGrad(func() error {
		s := torch.NewScope()
		defer s.Close()
		imgs := torch.Stack([]*torch.Tensor{own.In(s), twin.In(s)}, 0)
		tx := s.FromInt64(texts, int64(len(variants)+1), int64(n)).ToDevice(ids.Device())
		out, err := m.Forward(s, imgs, tx, model.ForwardOptions{})
		if err != nil {
			return err
		}
		logits, err = out.LogitsPerImage.Float64s()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete tokens: %w", err)
	}
	nt := len(variants) + 1
	margin := func(t int) float64 { return logits[t] - logits[nt+t] }
	d := &TextDeletion{Margin: margin(0), Ks: slices.Clone(ks)}
	for i, drop := range variants {
		td := TokenDeletion{Removed: drop, Margin: margin(i + 1)}
		td.Delta = td.Margin - d.Margin
		if i%2 == 0 {
			d.Top = append(d.Top, td)
		} else {
			d.Bottom = append(d.Bottom, td)
		}
	}
	return d, nil
}

// Metrics are the faithfulness measures of one reading's explanation; a
// measure that was not taken is nil.
type Metrics struct {
	// Margin is the reading's own logit minus its twin's.
	Margin       float64       `json:"margin"`
	Perturbation *Perturbation `json:"perturbation,omitempty"`
	// Pointing needs evidence boxes.
	Pointing *Pointing     `json:"pointing,omitempty"`
	Text     *TextDeletion `json:"text,omitempty"`
}

// Summary averages Metrics over readings. Each mean is over the readings
// that have the measure, counted beside it.
type Summary struct {
	Readings int `json:"readings"`
	// Correct counts readings with a positive margin.
	Correct    int     `json:"correct"`
	MeanMargin float64 `json:"mean_margin"`

	Perturbed   int     `json:"perturbed"`
	AUCPositive float64 `json:"auc_positive"`
	AUCNegative float64 `json:"auc_negative"`

	Pointed          int     `json:"pointed"`
	PointingHits     int     `json:"pointing_hits"`
	PointingAccuracy float64 `json:"pointing_accuracy"`
	PointingChance   float64 `json:"pointing_chance"`
	Mass             float64 `json:"mass"`
	ChanceMass       float64 `json:"chance_mass"`

	// TextDeleted counts the readings whose token deletion used Ks;
	// TopDelta[i] and BottomDelta[i] are the mean margin changes for Ks[i].
	TextDeleted int       `json:"text_deleted"`
	Ks          []int     `json:"k,omitempty"`
	TopDelta    []float64 `json:"top_delta,omitempty"`
	BottomDelta []float64 `json:"bottom_delta,omitempty"`
}

// Summarize averages ms. Token deletions are averaged over the readings
// that used the same ks as the first one that has any.
func Summarize(ms []Metrics) Summary {
	var s Summary
	for _, m := range ms {
		s.Readings++
		s.MeanMargin += m.Margin
		if m.Margin > 0 {
			s.Correct++
		}
		if p := m.Perturbation; p != nil {
			s.Perturbed++
			s.AUCPositive += p.Positive.AUC
			s.AUCNegative += p.Negative.AUC
		}
		if p := m.Pointing; p != nil {
			s.Pointed++
			if p.Hit {
				s.PointingHits++
			}
			s.PointingChance += p.Chance
			s.Mass += p.Mass
			s.ChanceMass += p.ChanceMass
		}
		if t := m.Text; t != nil {
			if s.Ks == nil {
				s.Ks = slices.Clone(t.Ks)
				s.TopDelta = make([]float64, len(t.Ks))
				s.BottomDelta = make([]float64, len(t.Ks))
			}
			if !slices.Equal(t.Ks, s.Ks) {
				continue
			}
			s.TextDeleted++
			for i := range t.Ks {
				s.TopDelta[i] += t.Top[i].Delta
				s.BottomDelta[i] += t.Bottom[i].Delta
			}
		}
	}
	mean := func(sum *float64, n int) {
		if n > 0 {
			*sum /= float64(n)
		}
	}
	mean(&s.MeanMargin, s.Readings)
	mean(&s.AUCPositive, s.Perturbed)
	mean(&s.AUCNegative, s.Perturbed)
	if s.Pointed > 0 {
		s.PointingAccuracy = float64(s.PointingHits) / float64(s.Pointed)
	}
	mean(&s.PointingChance, s.Pointed)
	mean(&s.Mass, s.Pointed)
	mean(&s.ChanceMass, s.Pointed)
	for i := range s.Ks {
		mean(&s.TopDelta[i], s.TextDeleted)
		mean(&s.BottomDelta[i], s.TextDeleted)
	}
	return s
}
