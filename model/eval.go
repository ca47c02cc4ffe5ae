package model

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// The protocol of the seed paper's Table 1, which Evaluate follows.
//
// For each reading of a pair, the reading's input (its linearized tree, or
// the sentence) is scored against every image of the pair. The reading is
// correct when its own image has the strictly highest logit, wrong when
// another image's logit is higher, and a tie when its own image shares the
// highest logit with another image; a tie counts half. Accuracy is
// (correct + ties/2) / readings, in percent.
//
// With text input both readings of a pair send the same text, so both see
// the same logits for the pair's two images: whichever image scores higher is
// right for one reading and wrong for the other, and the accuracy is exactly
// 50% (texts are encoded once per distinct string, so identical inputs get
// identical logits by construction, not by luck of the arithmetic).
//
// Evaluate also scores the other direction: each reading's image against the
// inputs of the pair's readings (ImageToText). There identical texts give
// equal logits, so text input ties on every reading, which counts 50% too.
//
// The authors' own scripts break ties differently: torch's argmax over the
// pair's images returns the first of the highest, so a tie is right for
// the pair's first reading and wrong for the others (AccuracyFirstIndex).
// Text input scores exactly 50% by that rule too: both readings see the
// same two logits, and whichever image wins, or the first on a tie, is the
// own image of exactly one of them.

// Outcome is how one reading fared.
type Outcome int8

// The outcomes of a reading.
const (
	Wrong Outcome = iota
	Tie
	Correct
)

func (o Outcome) String() string {
	switch o {
	case Correct:
		return "correct"
	case Tie:
		return "tie"
	}
	return "wrong"
}

// MarshalText writes the outcome's name.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Tally counts outcomes.
type Tally struct {
	Readings int `json:"readings"`
	Correct  int `json:"correct"`
	Ties     int `json:"ties"`
	Wrong    int `json:"wrong"`
	// Accuracy is (Correct + Ties/2) / Readings in percent; 0 without
	// readings.
	Accuracy float64 `json:"accuracy"`
	// TiesFirstIndex counts the ties whose reading's own image is the
	// first of the highest, which the authors' argmax counts as right;
	// AccuracyFirstIndex is (Correct + TiesFirstIndex) / Readings.
	TiesFirstIndex     int     `json:"ties_first_index"`
	AccuracyFirstIndex float64 `json:"accuracy_first_index"`
}

// add counts an outcome; first says whether the reading's own image is the
// first of the highest logits.
func (t *Tally) add(o Outcome, first bool) {
	t.Readings++
	switch o {
	case Correct:
		t.Correct++
	case Tie:
		t.Ties++
		if first {
			t.TiesFirstIndex++
		}
	default:
		t.Wrong++
	}
	n := float64(t.Readings)
	t.Accuracy = 100 * (float64(t.Correct) + 0.5*float64(t.Ties)) / n
	t.AccuracyFirstIndex = 100 * float64(t.Correct+t.TiesFirstIndex) / n
}

// FamilyTally is the tally of one ambiguity family.
type FamilyTally struct {
	Family string `json:"family"`
	Tally
}

// ReadingScore is the evaluation of one reading.
type ReadingScore struct {
	Pair    string `json:"pair"`
	Family  string `json:"family,omitempty"`
	Reading int    `json:"reading"`
	// Logits are the reading's input against each image of the pair, in
	// reading order (its own image at index Reading).
	Logits []float64 `json:"logits"`
	// Outcome is the text-to-image outcome (the paper's); FirstIndex says
	// whether the authors' argmax (the first of the highest logits) picks
	// the reading's own image.
	Outcome    Outcome `json:"outcome"`
	FirstIndex bool    `json:"first_index_correct"`
	// ImageLogits are the reading's image against the input of each
	// reading; ImageOutcome is that direction's outcome.
	ImageLogits  []float64 `json:"image_logits"`
	ImageOutcome Outcome   `json:"image_outcome"`
}

// EvalResult is an evaluation of a model on a split.
type EvalResult struct {
	// Style is the linearization the text encoder read.
	Style trees.Style `json:"style"`
	// Tally is the paper's text-to-image accuracy.
	Tally
	// ImageToText is the same count with each image scored against the
	// readings' inputs.
	ImageToText Tally `json:"image_to_text"`
	// Families are the tallies per ambiguity family, by name.
	Families []FamilyTally `json:"families"`
	// Retrieval is R@1/5/10 over the whole split (EvalOptions.Retrieval).
	Retrieval *Retrieval `json:"retrieval,omitempty"`
	// Scores are every reading's logits and outcomes, pairs in split order.
	Scores []ReadingScore `json:"scores,omitempty"`
	// Truncated counts the inputs cut to the context length.
	Truncated int `json:"truncated"`
}

// EvalOptions say how Evaluate runs.
type EvalOptions struct {
	// Style is the linearization the text encoder reads (InputStyle).
	Style trees.Style
	// ChunkPairs is how many pairs go through the model at once; it
	// changes speed and memory only. 0 means 16.
	ChunkPairs int
	// Preprocess turns images into pixels; nil uses PreprocessFor(m).
	Preprocess *loader.PreprocessConfig
	// Worker runs the torch calls; nil starts one.
	Worker *torch.Worker
	// Retrieval adds R@1/5/10 over the whole split (see RetrievalOf): each
	// reading's input against every distinct image of the split.
	Retrieval bool
}

// resolve fills in the defaults of o: the preprocessing of m, a worker of
// its own (closed by done), 16 pairs a chunk.
func (o EvalOptions) resolve(m *CLIP) (prep loader.PreprocessConfig, w *torch.Worker, chunk int, done func(), err error) {
	if o.Preprocess != nil {
		prep = *o.Preprocess
	} else if prep, err = PreprocessFor(m); err != nil {
		return prep, nil, 0, nil, err
	}
	w, done = o.Worker, func() {}
	if w == nil {
		w = torch.NewWorker()
		done = w.Close
	}
	chunk = o.ChunkPairs
	if chunk <= 0 {
		chunk = 16
	}
	return prep, w, chunk, done, nil
}

// Evaluate scores every reading of split with m, as the seed paper's Table
// 1 does (see Outcome). It stops with ctx's error when ctx is cancelled.
func Evaluate(ctx context.Context, m *CLIP, tok *tokenizer.Tokenizer, split Split, o EvalOptions) (*EvalResult, error) {
	if split == nil || split.Len() == 0 {
		return nil, errors.New("evaluate: the split has no pairs")
	}
	prep, w, chunk, done, err := o.resolve(m)
	if err != nil {
		return nil, err
	}
	defer done()
	e := &evaluator{split: split, style: o.Style, res: &EvalResult{Style: o.Style}}
	families := map[string]*Tally{}
	var all *splitEmbeds
	if o.Retrieval {
		all = newSplitEmbeds()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := newBatcher(m, tok, split, o.Style, prep)
	for c := range prefetchChunks(ctx, split.Len(), chunk, func(lo, hi int) (*evalChunk, error) { return e.chunk(b, lo, hi) }) {
		if c.err != nil {
			return nil, c.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e.res.Truncated += c.v.in.truncated
		lpt, textEmb, imageEmb, err := c.v.in.forward(w, m, all != nil)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		var rows, cols []int
		if all != nil {
			rows, cols = all.add(c.v.in, textEmb, imageEmb)
		}
		images := c.v.in.images
		for _, p := range c.v.pairs {
			for r := range p.textRow {
				if all != nil {
					all.textOf = append(all.textOf, rows[p.textRow[r]])
					all.imageOf = append(all.imageOf, cols[p.imageCol[r]])
				}
				sc := ReadingScore{Pair: p.id, Family: p.family, Reading: r}
				for k := range p.textRow {
					sc.Logits = append(sc.Logits, float64(lpt[p.textRow[r]*images+p.imageCol[k]]))
					sc.ImageLogits = append(sc.ImageLogits, float64(lpt[p.textRow[k]*images+p.imageCol[r]]))
				}
				sc.Outcome = outcome(sc.Logits, r)
				sc.FirstIndex = firstArgmax(sc.Logits) == r
				sc.ImageOutcome = outcome(sc.ImageLogits, r)
				e.res.Tally.add(sc.Outcome, sc.FirstIndex)
				e.res.ImageToText.add(sc.ImageOutcome, firstArgmax(sc.ImageLogits) == r)
				fam := p.family
				if families[fam] == nil {
					families[fam] = &Tally{}
				}
				families[fam].add(sc.Outcome, sc.FirstIndex)
				e.res.Scores = append(e.res.Scores, sc)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(families)) {
		e.res.Families = append(e.res.Families, FamilyTally{Family: name, Tally: *families[name]})
	}
	if all != nil {
		var err error
		if e.res.Retrieval, err = all.retrieval(m, w); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	return e.res, nil
}

// firstArgmax is the index torch's argmax returns: the first of the
// highest values.
func firstArgmax(v []float64) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// outcome judges entry own of logits against the others.
func outcome(logits []float64, own int) Outcome {
	best := math.Inf(-1)
	for k, v := range logits {
		if k != own {
			best = max(best, v)
		}
	}
	switch {
	case logits[own] > best:
		return Correct
	case logits[own] == best:
		return Tie
	}
	return Wrong
}

type evaluator struct {
	split Split
	style trees.Style
	res   *EvalResult
}

// evalChunk is a few pairs ready for the model.
type evalChunk struct {
	pairs []evalPair
	in    *chunkInputs
}

// evalPair locates a pair in the logits: the input of reading r is row
// textRow[r], its image column imageCol[r].
type evalPair struct {
	id, family string
	textRow    []int
	imageCol   []int
}

func (e *evaluator) chunk(b *batcher, lo, hi int) (*evalChunk, error) {
	c := &evalChunk{in: newChunkInputs(b)}
	for i := lo; i < hi; i++ {
		p, err := e.split.Pair(i)
		if err != nil {
			return nil, err
		}
		texts, err := ReadingTexts(&p, e.style)
		if err != nil {
			return nil, err
		}
		ep := evalPair{id: p.ID, family: family(&p)}
		for r := range p.Readings {
			ep.textRow = append(ep.textRow, c.in.text(texts[r]))
			col, err := c.in.image(&p, r)
			if err != nil {
				return nil, err
			}
			ep.imageCol = append(ep.imageCol, col)
		}
		c.pairs = append(c.pairs, ep)
	}
	return c, c.in.pack()
}

// family is the pair's ambiguity family, "unknown" when it has none.
func family(p *loader.Pair) string {
	if p.Ambiguity == "" {
		return "unknown"
	}
	return p.Ambiguity
}

// newBatcher is the batcher that evaluation and probing read pairs with.
func newBatcher(m *CLIP, tok *tokenizer.Tokenizer, split Split, style trees.Style, prep loader.PreprocessConfig) *batcher {
	return &batcher{split: split, tok: tok, style: style, prep: prep,
		context: m.cfg.Text.MaxPositionEmbeddings, size: m.cfg.Vision.ImageSize}
}

// chunkOrErr is a prepared chunk, or why it could not be prepared.
type chunkOrErr[T any] struct {
	v   T
	err error
}

// prefetchChunks prepares the chunks [lo, lo+size) of n items on a
// goroutine, one ahead of the consumer, so that reading and preprocessing
// images overlaps the model. The channel is closed after the last chunk,
// after an error (sent as the last value), or when ctx is done.
func prefetchChunks[T any](ctx context.Context, n, size int, prepare func(lo, hi int) (T, error)) <-chan chunkOrErr[T] {
	ch := make(chan chunkOrErr[T], 1)
	go func() {
		defer close(ch)
		for lo := 0; lo < n; lo += size {
			v, err := prepare(lo, min(lo+size, n))
			select {
			case ch <- chunkOrErr[T]{v, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// chunkInputs are the distinct texts and images of a chunk. Identical
// texts share a row and identical pixels a column, so that equal inputs get
// equal logits by construction.
type chunkInputs struct {
	b         *batcher
	rows      map[string]int
	encs      []tokenizer.Encoding
	length    int
	truncated int
	ids       []int64

	cols   map[uint64][]int
	pixels []float32
	images int

	// textKeys are the inputs of the rows, imageKeys the SHA-256 of the
	// columns' pixels: what makes them the same across chunks.
	textKeys  []string
	imageKeys [][sha256.Size]byte
}

func newChunkInputs(b *batcher) *chunkInputs {
	return &chunkInputs{b: b, rows: map[string]int{}, cols: map[uint64][]int{}}
}

// text returns the row of text, tokenizing it on first sight.
func (c *chunkInputs) text(text string) int {
	if row, ok := c.rows[text]; ok {
		return row
	}
	enc := c.b.tok.Encode(text, c.b.context)
	if enc.Truncated {
		c.truncated++
	}
	row := len(c.encs)
	c.rows[text] = row
	c.encs = append(c.encs, enc)
	c.textKeys = append(c.textKeys, text)
	c.length = max(c.length, len(enc.IDs))
	return row
}

// image returns the column of the image of reading r of p, preprocessing it.
func (c *chunkInputs) image(p *loader.Pair, r int) (int, error) {
	px, err := c.b.pixels(p, r)
	if err != nil {
		return 0, err
	}
	n := len(px)
	h := hashPixels(px)
	for _, j := range c.cols[h] {
		if slices.Equal(c.pixels[j*n:(j+1)*n], px) {
			return j, nil
		}
	}
	col := c.images
	c.cols[h] = append(c.cols[h], col)
	c.pixels = append(c.pixels, px...)
	c.imageKeys = append(c.imageKeys, pixelKey(px))
	c.images++
	return col, nil
}

// pack lays the texts out for the model; the chunk takes no more texts.
func (c *chunkInputs) pack() error {
	var err error
	c.ids, err = c.b.tok.Pack(c.encs, c.length)
	return err
}

// logits runs the chunk through m in one forward pass on w: row t of the
// result holds text t's logits against every image.
func (c *chunkInputs) logits(w *torch.Worker, m *CLIP) ([]float32, error) {
	lpt, _, _, err := c.forward(w, m, false)
	return lpt, err
}

// forward is logits, with the texts' and images' embeddings ([texts,P] and
// [images,P]) too when embeds is set.
func (c *chunkInputs) forward(w *torch.Worker, m *CLIP, embeds bool) (lpt, textEmb, imageEmb []float32, err error) {
	err = w.Do(func() error {
		s := torch.NewScope()
		defer s.Close()
		size := int64(m.cfg.Vision.ImageSize)
		px := s.FromFloat32(c.pixels, int64(c.images), 3, size, size)
		ids := s.FromInt64(c.ids, int64(len(c.encs)), int64(c.length))
		out, err := m.Forward(s, px, ids, ForwardOptions{})
		if err != nil {
			return err
		}
		if lpt, err = out.LogitsPerText.Contiguous().Float32s(); err != nil || !embeds {
			return err
		}
		if textEmb, err = out.Text.Embeds.Contiguous().Float32s(); err != nil {
			return err
		}
		imageEmb, err = out.Image.Embeds.Contiguous().Float32s()
		return err
	})
	return lpt, textEmb, imageEmb, err
}

// hashPixels is FNV-1a over the bits of the values.
func hashPixels(px []float32) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range px {
		h ^= uint64(math.Float32bits(v))
		h *= 1099511628211
	}
	return h
}

// pixelKey is the SHA-256 of the values' bits: equal keys are equal
// pixels.
func pixelKey(px []float32) [sha256.Size]byte {
	b := make([]byte, 4*len(px))
	for i, v := range px {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return sha256.Sum256(b)
}

// splitEmbeds gathers the distinct inputs and images of a split with their
// embeddings, for the retrieval over the whole split.
type splitEmbeds struct {
	texts  map[string]int
	images map[[sha256.Size]byte]int
	// textEmb and imageEmb are the embeddings, one row each, in order.
	textEmb, imageEmb []float32
	dim               int
	// textOf and imageOf locate each reading's input and image.
	textOf, imageOf []int
}

func newSplitEmbeds() *splitEmbeds {
	return &splitEmbeds{texts: map[string]int{}, images: map[[sha256.Size]byte]int{}}
}

// add takes in a chunk's embeddings ([texts,P] and [images,P]) and returns
// the split-wide index of each of its rows and columns.
func (e *splitEmbeds) add(c *chunkInputs, textEmb, imageEmb []float32) (rows, cols []int) {
	e.dim = len(textEmb) / max(1, len(c.textKeys))
	for i, k := range c.textKeys {
		rows = append(rows, intern(e.texts, &e.textEmb, k, textEmb[i*e.dim:(i+1)*e.dim]))
	}
	for i, k := range c.imageKeys {
		cols = append(cols, intern(e.images, &e.imageEmb, k, imageEmb[i*e.dim:(i+1)*e.dim]))
	}
	return rows, cols
}

// intern returns the index of key, giving a new key the next index and
// appending its embedding to emb.
func intern[K comparable](index map[K]int, emb *[]float32, key K, row []float32) int {
	j, ok := index[key]
	if !ok {
		j = len(index)
		index[key] = j
		*emb = append(*emb, row...)
	}
	return j
}

// retrieval scores every distinct input against every distinct image, as
// CLIPModel does (exp(logit_scale) times the cosine), and ranks them.
func (e *splitEmbeds) retrieval(m *CLIP, w *torch.Worker) (*Retrieval, error) {
	nt, ni := len(e.texts), len(e.images)
	var flat []float32
	err := w.Do(func() error {
		scale, err := m.LogitScale()
		if err != nil {
			return err
		}
		s := torch.NewScope()
		defer s.Close()
		te := s.FromFloat32(e.textEmb, int64(nt), int64(e.dim))
		ie := s.FromFloat32(e.imageEmb, int64(ni), int64(e.dim))
		flat, err = te.Matmul(ie.T()).MulScalar(scale).Contiguous().Float32s()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retrieval logits: %w", err)
	}
	logits := make([][]float64, nt)
	for t := range logits {
		logits[t] = make([]float64, ni)
		for i := range ni {
			logits[t][i] = float64(flat[t*ni+i])
		}
	}
	return RetrievalOf(logits, e.textOf, e.imageOf)
}
