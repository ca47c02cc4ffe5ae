package explain

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// Cell is one logit: image Image scored against text Text, indices into the
// images and texts given to [Explain].
type Cell struct{ Image, Text int }

// Target is what relevance explains: the sum of the logits of its cells.
// One cell is the usual case (a reading against its own image, or against
// its twin's); several cells are the notebook's summed one-hot.
type Target []Cell

// Own returns the targets of n items scored each against its own image:
// {(0,0)}, {(1,1)}, … The reference notebook's one-hot over the diagonal of a
// batch gives every item exactly this relevance, since the items never
// interact inside the encoders.
func Own(n int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{{i, i}}
	}
	return ts
}

// Options choose the method of [Explain].
type Options struct {
	// Method is the relevance method; empty means Chefer.
	Method Method
	// Start is the first layer of Chefer's rule. The zero value is
	// AllLayers; the notebook's default is LastLayer.
	Start StartLayer
	// TextStart, when set, is the text encoder's first layer in place of
	// Start, as the notebook's start_layer_text.
	TextStart *StartLayer
	// Matrices keeps each encoder's whole relevance matrix in the results,
	// not only the rows that explain the target.
	Matrices bool
	// Interrupt, when set, is asked between the stages of each round (the
	// forward pass, the backward pass, the relevance rule), which libtorch
	// cannot stop once started; a non-nil answer abandons the work and
	// Explain returns it. The explorer passes its context's Err, so that a
	// cancelled background explanation frees the model within one stage.
	Interrupt func() error
}

// interrupted is Options.Interrupt's answer, nil without one.
func (o Options) interrupted() error {
	if o.Interrupt == nil {
		return nil
	}
	return o.Interrupt()
}

// textStart is the text encoder's first layer.
func (o Options) textStart() StartLayer {
	if o.TextStart != nil {
		return *o.TextStart
	}
	return o.Start
}

// Result is the relevance of one target.
type Result struct {
	Target Target
	// Logit is the target's value: the sum of its cells' logits.
	Logit float64
	// Images holds one map per distinct image of the target, in the order
	// the cells name them; Texts likewise.
	Images []ImageRelevance
	Texts  []TextRelevance
}

// Image returns the map of image i, or nil when the target does not use it.
func (r *Result) Image(i int) *ImageRelevance {
	for k := range r.Images {
		if r.Images[k].Index == i {
			return &r.Images[k]
		}
	}
	return nil
}

// Text returns the map of text j, or nil when the target does not use it.
func (r *Result) Text(j int) *TextRelevance {
	for k := range r.Texts {
		if r.Texts[k].Index == j {
			return &r.Texts[k]
		}
	}
	return nil
}

// ImageRelevance is the relevance of an image's patches for a target.
type ImageRelevance struct {
	// Index is the image's index in the pixels given to Explain.
	Index int
	// Grid is the side of the patch grid: Raw and Norm are Grid×Grid, row
	// by row.
	Grid int
	// Raw is the class token's row of the relevance matrix over the
	// patches, R[0, 1:].
	Raw []float32
	// Norm is Raw min–max normalised to [0, 1] (all zeros when Raw is
	// constant), as the notebook shows it.
	Norm []float32
	// Matrix is the whole (1+Grid²)×(1+Grid²) matrix, with Options.Matrices.
	Matrix []float32
}

// TextRelevance is the relevance of a text's tokens for a target.
type TextRelevance struct {
	// Index is the text's index in the ids given to Explain.
	Index int
	// EOT is the position the text is pooled at (its end-of-text token).
	EOT int
	// Raw is the end-of-text token's row of the relevance matrix,
	// R[EOT, :], over every position (zero after EOT: the mask is causal).
	Raw []float32
	// Norm is R[EOT, 1:EOT] divided by its sum, as the notebook shows it:
	// the tokens between start and end of text, Norm[k] for position k+1.
	// All zeros when the sum is 0.
	Norm []float32
	// Matrix is the whole N×N matrix, with Options.Matrices.
	Matrix []float32
}

// Explain computes the relevance of each target for the images pixels
// [I,C,S,S] (preprocessed) and the token ids [T,N], on any device (the
// model moves them to its own). It runs the model with
// its attention captured and, for the gradient methods, takes the gradient
// of every layer's attention from ONE backward pass of the sum of the
// targets' logits.
//
// Targets share that pass when they are independent: the two encoders
// process every image and every text on its own, so the gradient reaching
// an image's (or a text's) attention comes only from the cells that use
// that image (text). When no image and no text belongs to two targets, the
// sum gives each target exactly its own gradients. Targets that share an
// image or a text (a reading against both images, next to its twin against
// both) are split into rounds in which none shares, one forward and one
// backward per round, each round encoding only the images and texts it
// uses. The methods without gradients need one forward in all.
//
// Explain must run on the goroutine that runs the model's torch calls.
// Gradients are taken with autograd's grad, not accumulated into any
// tensor's Grad, so a model being trained is left as it was.
func Explain(m *model.CLIP, pixels, ids *torch.Tensor, targets []Target, opt Options) ([]Result, error) {
	method := opt.Method
	if method == "" {
		method = Chefer
	}
	if _, err := ParseMethod(string(method)); err != nil {
		return nil, err
	}
	if pixels == nil || ids == nil {
		return nil, errors.New("explain: need both pixels and ids")
	}
	if err := pixels.Err(); err != nil {
		return nil, fmt.Errorf("explain: pixels: %w", err)
	}
	if err := ids.Err(); err != nil {
		return nil, fmt.Errorf("explain: ids: %w", err)
	}
	if err := checkTargets(targets, int(pixels.Size(0)), int(ids.Size(0))); err != nil {
		return nil, err
	}
	results := make([]Result, len(targets))
	if len(targets) == 0 {
		return results, nil
	}
	for _, round := range planRounds(targets, method.NeedsGrad()) {
		if err := opt.interrupted(); err != nil {
			return nil, err
		}
		if err := explainRound(m, pixels, ids, targets, round, method, opt, results); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// checkTargets checks that every target has cells and that they name
// images and texts among ni and nt.
func checkTargets(targets []Target, ni, nt int) error {
	for k, t := range targets {
		if len(t) == 0 {
			return fmt.Errorf("explain: target %d has no cells", k)
		}
		for _, c := range t {
			if c.Image < 0 || c.Image >= ni || c.Text < 0 || c.Text >= nt {
				return fmt.Errorf("explain: target %d: cell (image %d, text %d) outside the %d images and %d texts", k, c.Image, c.Text, ni, nt)
			}
		}
	}
	return nil
}

// planRounds groups targets so that within a group no image and no text
// belongs to two targets (greedily, in order). Without gradients every
// target fits one group.
func planRounds(targets []Target, grad bool) [][]int {
	if !grad {
		all := make([]int, len(targets))
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	type round struct {
		members       []int
		images, texts map[int]bool
	}
	var rs []*round
	for k, t := range targets {
		var fit *round
		for _, r := range rs {
			free := true
			for _, c := range t {
				if r.images[c.Image] || r.texts[c.Text] {
					free = false
					break
				}
			}
			if free {
				fit = r
				break
			}
		}
		if fit == nil {
			fit = &round{images: map[int]bool{}, texts: map[int]bool{}}
			rs = append(rs, fit)
		}
		fit.members = append(fit.members, k)
		for _, c := range t {
			fit.images[c.Image] = true
			fit.texts[c.Text] = true
		}
	}
	out := make([][]int, len(rs))
	for i, r := range rs {
		out[i] = r.members
	}
	return out
}

// layout is the images and texts one round uses, in order of first use,
// and where each lands in the round's batch.
type layout struct {
	imgs, txts   []int
	imgAt, txtAt map[int]int
}

func newLayout(targets []Target, round []int) layout {
	l := layout{imgAt: map[int]int{}, txtAt: map[int]int{}}
	for _, k := range round {
		for _, c := range targets[k] {
			if _, ok := l.imgAt[c.Image]; !ok {
				l.imgAt[c.Image] = len(l.imgs)
				l.imgs = append(l.imgs, c.Image)
			}
			if _, ok := l.txtAt[c.Text]; !ok {
				l.txtAt[c.Text] = len(l.txts)
				l.txts = append(l.txts, c.Text)
			}
		}
	}
	return l
}

// weight is the objective's weight on each logit of the round's batch
// [images, texts], how many of the round's targets use that cell, as a
// tensor of s on m's device in its dtype.
func (l layout) weight(s *torch.Scope, m *model.CLIP, targets []Target, round []int) *torch.Tensor {
	w := make([]float32, len(l.imgs)*len(l.txts))
	for _, k := range round {
		for _, c := range targets[k] {
			w[l.imgAt[c.Image]*len(l.txts)+l.txtAt[c.Text]]++
		}
	}
	return s.FromFloat32(w, int64(len(l.imgs)), int64(len(l.txts))).To(m.Device(), m.DType())
}

// explainRound runs one forward (and backward) for the targets listed in
// round and fills their results.
func explainRound(m *model.CLIP, pixels, ids *torch.Tensor, targets []Target, round []int, method Method, opt Options, results []Result) error {
	l := newLayout(targets, round)
	s := torch.NewScope()
	defer s.Close()
	px := gatherRows(s, pixels, l.imgs)
	tx := gatherRows(s, ids, l.txts)
	width := int(ids.Size(1))
	// One read of the ids both checks them and finds where the texts end.
	v, err := m.CheckIDs(tx)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	if !opt.Matrices {
		// The text mask is causal: nothing after the last end of text
		// reaches any pooled feature or any relevance row that Explain
		// returns, so those positions need not be computed at all.
		tx = tx.Narrow(1, 0, int64(textExtent(m, v, width)))
	}
	var w *torch.Tensor
	if method.NeedsGrad() {
		w = l.weight(s, m, targets, round)
	}
	out, err := roundWork(s, m, px, tx, w, method, opt, model.ForwardOptions{Capture: true, CheckedIDs: true})
	if err != nil {
		return err
	}
	return l.results(out, targets, round, width, opt.Matrices, results)
}

// roundOutput is what a round computes on the device: each encoder's
// relevance matrices, the logits [images, texts] and the texts' end-of-text
// positions.
type roundOutput struct {
	image, text, logits, eot *torch.Tensor
}

func (o roundOutput) tensors() []*torch.Tensor {
	return []*torch.Tensor{o.image, o.text, o.logits, o.eot}
}

// roundOutputOf is the roundOutput whose tensors() are ts.
func roundOutputOf(ts []*torch.Tensor) roundOutput {
	return roundOutput{image: ts[0], text: ts[1], logits: ts[2], eot: ts[3]}
}

// roundWork is the device side of a round: the forward pass with attention
// captured, the backward pass of the weighted logits (w [images, texts] on
// the model's device and in its dtype, for the methods that need
// gradients) and each encoder's relevance matrix. It reads nothing back to
// the host, so that a CUDA graph can capture it.
func roundWork(s *torch.Scope, m *model.CLIP, px, tx, w *torch.Tensor, method Method, opt Options, fo model.ForwardOptions) (roundOutput, error) {
	out, err := m.Forward(s, px, tx, fo)
	if err != nil {
		return roundOutput{}, fmt.Errorf("explain: %w", err)
	}
	if err := opt.interrupted(); err != nil {
		return roundOutput{}, err
	}
	var gi, gt []*torch.Tensor
	if method.NeedsGrad() {
		logits := out.LogitsPerImage
		objective := logits.Mul(w).SumAll()
		if gi, gt, err = gradients(objective, out, method, opt.Start, opt.textStart()); err != nil {
			return roundOutput{}, fmt.Errorf("explain: %w", err)
		}
		if err := opt.interrupted(); err != nil {
			return roundOutput{}, err
		}
	}
	ri, err := method.Matrix(s, out.Image.Attentions, gi, opt.Start)
	if err != nil {
		return roundOutput{}, fmt.Errorf("explain: image encoder: %w", err)
	}
	rt, err := method.Matrix(s, out.Text.Attentions, gt, opt.textStart())
	if err != nil {
		return roundOutput{}, fmt.Errorf("explain: text encoder: %w", err)
	}
	return roundOutput{image: ri, text: rt, logits: out.LogitsPerImage, eot: out.Text.EOT}, nil
}

// results reads a round's output back and fills the results of its
// targets; width is the texts' width before any cut.
func (l layout) results(out roundOutput, targets []Target, round []int, width int, matrices bool, results []Result) error {
	logits, err := out.logits.Float64s()
	if err != nil {
		return fmt.Errorf("explain: logits: %w", err)
	}
	eots, err := out.eot.Int64s()
	if err != nil {
		return fmt.Errorf("explain: end of text: %w", err)
	}
	imaps, err := imageMaps(out.image, matrices)
	if err != nil {
		return fmt.Errorf("explain: image relevance: %w", err)
	}
	tmaps, err := textMaps(out.text, eots, width, matrices)
	if err != nil {
		return fmt.Errorf("explain: text relevance: %w", err)
	}
	for _, k := range round {
		r := Result{Target: targets[k]}
		seenI, seenT := map[int]bool{}, map[int]bool{}
		for _, c := range targets[k] {
			li, lt := l.imgAt[c.Image], l.txtAt[c.Text]
			r.Logit += logits[li*len(l.txts)+lt]
			if !seenI[c.Image] {
				seenI[c.Image] = true
				im := imaps[li].clone()
				im.Index = c.Image
				r.Images = append(r.Images, im)
			}
			if !seenT[c.Text] {
				seenT[c.Text] = true
				tm := tmaps[lt].clone()
				tm.Index = c.Text
				r.Texts = append(r.Texts, tm)
			}
		}
		results[k] = r
	}
	return nil
}

// gradients returns the gradient of objective with respect to the
// attention maps of both encoders that the method reads, from one backward
// pass, and nil for the others: autograd then only walks back as far as the
// first map it needs (the last layer alone for the notebook's default).
func gradients(objective *torch.Tensor, out *model.Output, method Method, start, textStart StartLayer) (gi, gt []*torch.Tensor, err error) {
	first := func(maps []*torch.Tensor, start StartLayer) (int, error) {
		if method == GradAttn {
			return len(maps) - 1, nil
		}
		return start.Index(len(maps))
	}
	fi, err := first(out.Image.Attentions, start)
	if err != nil {
		return nil, nil, fmt.Errorf("image encoder: %w", err)
	}
	ft, err := first(out.Text.Attentions, textStart)
	if err != nil {
		return nil, nil, fmt.Errorf("text encoder: %w", err)
	}
	want := append(append([]*torch.Tensor{}, out.Image.Attentions[fi:]...), out.Text.Attentions[ft:]...)
	grads, err := torch.Grad([]*torch.Tensor{objective}, want, nil, false)
	if err != nil {
		return nil, nil, fmt.Errorf("backward: %w", err)
	}
	ni := len(out.Image.Attentions) - fi
	gi = append(make([]*torch.Tensor, fi), grads[:ni]...)
	gt = append(make([]*torch.Tensor, ft), grads[ni:]...)
	return gi, gt, nil
}

// textExtent is the number of leading positions of ids [T,N] that hold
// every text's end of text, found by the model's pooling rule: the first
// eos_token_id, or argmax(ids) for legacy configs.
func textExtent(m *model.CLIP, v []int64, n int) int {
	tc := m.Config().Text
	extent := 1
	for row := range len(v) / n {
		r := v[row*n : (row+1)*n]
		eot := 0
		if tc.PoolsAtArgmax() {
			for k, id := range r {
				if id > r[eot] {
					eot = k
				}
			}
		} else if k := slices.Index(r, int64(tc.EOSTokenID)); k >= 0 {
			eot = k
		}
		extent = max(extent, eot+1)
	}
	return extent
}

// gatherRows returns rows idx of t (along dim 0), in s.
func gatherRows(s *torch.Scope, t *torch.Tensor, idx []int) *torch.Tensor {
	return t.In(s).IndexSelect(0, rowIndex(s, idx, t.Device()))
}

// rowIndex is idx as an int64 tensor of s on dev, for IndexSelect.
func rowIndex(s *torch.Scope, idx []int, dev torch.Device) *torch.Tensor {
	v := make([]int64, len(idx))
	for i, x := range idx {
		v[i] = int64(x)
	}
	return s.FromInt64(v, int64(len(v))).ToDevice(dev)
}

// imageMaps reads the class-token rows of the image relevance matrices
// r [B,N,N], N = 1+G².
func imageMaps(r *torch.Tensor, keep bool) ([]ImageRelevance, error) {
	b, n := int(r.Size(0)), int(r.Size(1))
	g := int(math.Round(math.Sqrt(float64(n - 1))))
	if g*g != n-1 {
		return nil, fmt.Errorf("%d positions are not a class token and a square grid of patches", n)
	}
	var all []float32
	var err error
	if keep {
		all, err = r.Float32s()
	} else {
		all, err = r.Select(1, 0).Float32s()
	}
	if err != nil {
		return nil, err
	}
	out := make([]ImageRelevance, b)
	for i := range out {
		var row []float32
		im := ImageRelevance{Grid: g}
		if keep {
			im.Matrix = all[i*n*n : (i+1)*n*n]
			row = im.Matrix[:n]
		} else {
			row = all[i*n : (i+1)*n]
		}
		im.Raw = append([]float32(nil), row[1:]...)
		im.Norm = append([]float32(nil), im.Raw...)
		MinMax(im.Norm)
		out[i] = im
	}
	return out, nil
}

// textMaps reads the end-of-text rows of the text relevance matrices
// r [B,N,N].
func textMaps(r *torch.Tensor, eots []int64, width int, keep bool) ([]TextRelevance, error) {
	b, n := int(r.Size(0)), int(r.Size(1))
	if len(eots) != b {
		return nil, fmt.Errorf("%d end-of-text positions for %d texts", len(eots), b)
	}
	all, err := r.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]TextRelevance, b)
	for i := range out {
		eot := int(eots[i])
		if eot < 0 || eot >= n {
			return nil, fmt.Errorf("text %d: end of text at %d, outside its %d positions", i, eot, n)
		}
		mat := all[i*n*n : (i+1)*n*n]
		// Positions cut off before the forward pass have relevance 0.
		tr := TextRelevance{EOT: eot, Raw: make([]float32, width)}
		copy(tr.Raw, mat[eot*n:(eot+1)*n])
		if keep {
			tr.Matrix = mat
		}
		tr.Norm = normalizeTokens(tr.Raw, eot)
		out[i] = tr
	}
	return out, nil
}

// normalizeTokens is row[1:eot] divided by its sum (zeros when the sum is
// not positive), the notebook's display of text relevance.
func normalizeTokens(row []float32, eot int) []float32 {
	if eot <= 1 {
		return []float32{}
	}
	v := append([]float32(nil), row[1:eot]...)
	var sum float64
	for _, x := range v {
		sum += float64(x)
	}
	if !(sum > 0) || math.IsInf(sum, 0) {
		clear(v)
		return v
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
	return v
}

func (m ImageRelevance) clone() ImageRelevance {
	m.Raw = append([]float32(nil), m.Raw...)
	m.Norm = append([]float32(nil), m.Norm...)
	if m.Matrix != nil {
		m.Matrix = append([]float32(nil), m.Matrix...)
	}
	return m
}

func (m TextRelevance) clone() TextRelevance {
	m.Raw = append([]float32(nil), m.Raw...)
	m.Norm = append([]float32(nil), m.Norm...)
	if m.Matrix != nil {
		m.Matrix = append([]float32(nil), m.Matrix...)
	}
	return m
}
