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

// UnmarshalText reads an outcome's name as MarshalText writes it.
func (o *Outcome) UnmarshalText(b []byte) error {
	for _, v := range []Outcome{Wrong, Tie, Correct} {
		if string(b) == v.String() {
			*o = v
			return nil
		}
	}
	return fmt.Errorf("unknown outcome %q (want correct, tie or wrong)", b)
}

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
	// Group, when set, shares the pairs out among its ranks (shard.go):
	// every rank must make the same call, and every rank gets the result
	// of all the pairs.
	Group *torch.ProcessGroup
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
// With o.Group, each rank scores its share of the pairs (dist.Share) and
// every rank returns the result of the whole split.
func Evaluate(ctx context.Context, m *CLIP, tok *tokenizer.Tokenizer, split Split, o EvalOptions) (*EvalResult, error) {
	if split == nil || split.Len() == 0 {
		return nil, errors.New("evaluate: the split has no pairs")
	}
	prep, w, chunk, done, err := o.resolve(m)
	if err != nil {
		return nil, err
	}
	defer done()
	lo, hi := o.share(split.Len())
	sh := &evalShare{}
	if o.Retrieval {
		sh.Embeds = newSplitEmbeds()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	e := &evaluator{split: split, style: o.Style}
	b := newBatcher(m, tok, split, o.Style, prep)
	prepare := func(a, z int) (*evalChunk, error) { return e.chunk(b, lo+a, lo+z) }
	for c := range prefetchChunks(ctx, hi-lo, chunk, prepare) {
		if c.err != nil {
			return nil, c.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := sh.add(c.v, w, m); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	shares := []*evalShare{sh}
	if o.Group != nil {
		if shares, err = gather(o, w, m, split, nil, sh); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	res := &EvalResult{Style: o.Style}
	families := map[string]*Tally{}
	var all *splitEmbeds
	if o.Retrieval {
		all = newSplitEmbeds()
	}
	for _, sh := range shares {
		res.Truncated += sh.Truncated
		res.Scores = append(res.Scores, sh.Scores...)
		if all != nil {
			all.merge(sh.Embeds)
		}
	}
	for _, sc := range res.Scores {
		res.Tally.add(sc.Outcome, sc.FirstIndex)
		res.ImageToText.add(sc.ImageOutcome, firstArgmax(sc.ImageLogits) == sc.Reading)
		if families[sc.Family] == nil {
			families[sc.Family] = &Tally{}
		}
		families[sc.Family].add(sc.Outcome, sc.FirstIndex)
	}
	for _, name := range slices.Sorted(maps.Keys(families)) {
		res.Families = append(res.Families, FamilyTally{Family: name, Tally: *families[name]})
	}
	if all != nil {
		var err error
		if res.Retrieval, err = all.retrieval(m, w); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
	}
	return res, nil
}

// evalShare is what one process scored: every reading of its pairs, in
// order, and for the retrieval the distinct inputs and images it met with
// their embeddings. Its fields are exported for the gathering (gob).
type evalShare struct {
	Scores    []ReadingScore
	Truncated int
	Embeds    *splitEmbeds
}

// add scores a chunk on w.
func (sh *evalShare) add(c *evalChunk, w *torch.Worker, m *CLIP) error {
	sh.Truncated += c.in.truncated
	lpt, textEmb, imageEmb, err := c.in.forward(w, m, sh.Embeds != nil)
	if err != nil {
		return err
	}
	var rows, cols []int
	if sh.Embeds != nil {
		rows, cols = sh.Embeds.add(c.in, textEmb, imageEmb)
	}
	images := c.in.images
	for _, p := range c.pairs {
		for r := range p.textRow {
			if sh.Embeds != nil {
				sh.Embeds.TextOf = append(sh.Embeds.TextOf, rows[p.textRow[r]])
				sh.Embeds.ImageOf = append(sh.Embeds.ImageOf, cols[p.imageCol[r]])
			}
			sc := ReadingScore{Pair: p.id, Family: p.family, Reading: r}
			for k := range p.textRow {
				sc.Logits = append(sc.Logits, float64(lpt[p.textRow[r]*images+p.imageCol[k]]))
				sc.ImageLogits = append(sc.ImageLogits, float64(lpt[p.textRow[k]*images+p.imageCol[r]]))
			}
			sc.Outcome = outcome(sc.Logits, r)
			sc.FirstIndex = firstArgmax(sc.Logits) == r
			sc.ImageOutcome = outcome(sc.ImageLogits, r)
			sh.Scores = append(sh.Scores, sc)
		}
	}
	return nil
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
}

// evalChunk is a few pairs ready for the model.
type evalChunk struct {
	pairs []evalPair
	in    *Inputs
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
			ep.textRow = append(ep.textRow, c.in.Text(texts[r]))
			col, err := c.in.Image(&p, r)
			if err != nil {
				return nil, err
			}
			ep.imageCol = append(ep.imageCol, col)
		}
		c.pairs = append(c.pairs, ep)
	}
	return c, c.in.Pack()
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

// Inputs are the distinct texts and images of a batch of pairs, laid out
// for one forward pass: every front end that scores pairs (evaluation,
// probing, the explorer's engine) builds its batches with them, so that
// there is one de-duplication policy. Identical texts (by string) share a
// row and identical pixels (by value) a column, so that equal inputs get
// equal logits by construction (text input gives both readings of a pair
// the same sentence; a dataset may reuse an image).
type Inputs struct {
	tok       *tokenizer.Tokenizer
	context   int
	source    func(p *loader.Pair, r int) ([]float32, error)
	rows      map[string]int
	encs      []tokenizer.Encoding
	length    int
	truncated int
	ids       []int64

	cols   map[uint64][]int
	pixels []float32
	images int

	// textKeys are the inputs of the rows: what makes them the same
	// across chunks (an image's is the SHA-256 of its pixels, imageKey).
	textKeys []string
}

// NewInputs starts an empty batch whose texts tok encodes to at most
// context tokens and whose images pixels preprocesses for the model.
func NewInputs(tok *tokenizer.Tokenizer, context int, pixels func(p *loader.Pair, r int) ([]float32, error)) *Inputs {
	return &Inputs{tok: tok, context: context, source: pixels, rows: map[string]int{}, cols: map[uint64][]int{}}
}

func newChunkInputs(b *batcher) *Inputs { return NewInputs(b.tok, b.context, b.pixels) }

// Text returns the row of text, tokenizing it on first sight.
func (c *Inputs) Text(text string) int {
	if row, ok := c.rows[text]; ok {
		return row
	}
	enc := c.tok.Encode(text, c.context)
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

// Image returns the column of the image of reading r of p, preprocessing it.
func (c *Inputs) Image(p *loader.Pair, r int) (int, error) {
	px, err := c.source(p, r)
	if err != nil {
		return 0, err
	}
	return c.addPixels(px), nil
}

// addPixels returns the column of the preprocessed image px, adding it
// when no column holds these pixels.
func (c *Inputs) addPixels(px []float32) int {
	n := len(px)
	h := hashPixels(px)
	for _, j := range c.cols[h] {
		if slices.Equal(c.pixels[j*n:(j+1)*n], px) {
			return j
		}
	}
	col := c.images
	c.cols[h] = append(c.cols[h], col)
	c.pixels = append(c.pixels, px...)
	c.images++
	return col
}

// Pack lays the texts out for the model; the batch takes no more texts.
func (c *Inputs) Pack() error {
	var err error
	c.ids, err = c.tok.Pack(c.encs, c.length)
	return err
}

// Texts and Images are the numbers of distinct texts (rows) and images
// (columns).
func (c *Inputs) Texts() int  { return len(c.encs) }
func (c *Inputs) Images() int { return c.images }

// Encoding is the encoding of the text of row.
func (c *Inputs) Encoding(row int) tokenizer.Encoding { return c.encs[row] }

// Pixels are the images, [Images,3,S,S] row-major; IDs the packed token
// ids, [Texts,Width], after Pack.
func (c *Inputs) Pixels() []float32 { return c.pixels }
func (c *Inputs) IDs() []int64      { return c.ids }
func (c *Inputs) Width() int        { return c.length }

// logits runs the chunk through m in one forward pass on w: row t of the
// result holds text t's logits against every image.
func (c *Inputs) logits(w *torch.Worker, m *CLIP) ([]float32, error) {
	lpt, _, _, err := c.forward(w, m, false)
	return lpt, err
}

// Logits is logits on the calling goroutine, which must be the one that
// runs m's torch calls.
func (c *Inputs) Logits(m *CLIP) ([]float32, error) {
	lpt, _, _, err := c.run(m, false)
	return lpt, err
}

// forward is logits, with the texts' and images' embeddings ([texts,P] and
// [images,P]) too when embeds is set.
func (c *Inputs) forward(w *torch.Worker, m *CLIP, embeds bool) (lpt, textEmb, imageEmb []float32, err error) {
	err = w.Do(func() error {
		lpt, textEmb, imageEmb, err = c.run(m, embeds)
		return err
	})
	return lpt, textEmb, imageEmb, err
}

func (c *Inputs) run(m *CLIP, embeds bool) (lpt, textEmb, imageEmb []float32, err error) {
	s := torch.NewScope()
	defer s.Close()
	size := int64(m.cfg.Vision.ImageSize)
	// To m's device here, as the explorer's engine always did: a no-op
	// where the model's first op would move them anyway.
	px := s.FromFloat32(c.pixels, int64(c.images), 3, size, size).ToDevice(m.Device())
	ids := s.FromInt64(c.ids, int64(len(c.encs)), int64(c.length)).ToDevice(m.Device())
	out, err := m.Forward(s, px, ids, ForwardOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	if lpt, err = out.LogitsPerText.Contiguous().Float32s(); err != nil || !embeds {
		return lpt, nil, nil, err
	}
	if textEmb, err = out.Text.Embeds.Contiguous().Float32s(); err != nil {
		return nil, nil, nil, err
	}
	imageEmb, err = out.Image.Embeds.Contiguous().Float32s()
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
// embeddings, for the retrieval over the whole split. Its exported fields
// travel between ranks (gob); the indexes are rebuilt by merge.
type splitEmbeds struct {
	texts  map[string]int
	images map[[sha256.Size]byte]int
	// TextKeys and ImageKeys are the distinct inputs and images (the
	// SHA-256 of the pixels) in order of first sight; TextEmb and ImageEmb
	// their embeddings, Dim wide, one row each.
	TextKeys          []string
	ImageKeys         [][sha256.Size]byte
	TextEmb, ImageEmb []float32
	Dim               int
	// TextOf and ImageOf locate each reading's input and image.
	TextOf, ImageOf []int
}

func newSplitEmbeds() *splitEmbeds {
	return &splitEmbeds{texts: map[string]int{}, images: map[[sha256.Size]byte]int{}}
}

// add takes in a chunk's embeddings ([texts,P] and [images,P]) and returns
// the split-wide index of each of its rows and columns.
func (e *splitEmbeds) add(c *Inputs, textEmb, imageEmb []float32) (rows, cols []int) {
	e.Dim = len(textEmb) / max(1, len(c.textKeys))
	for i, k := range c.textKeys {
		rows = append(rows, intern(e.texts, &e.TextKeys, &e.TextEmb, k, textEmb[i*e.Dim:(i+1)*e.Dim]))
	}
	// The SHA-256 is taken here, not as images are added: only the
	// retrieval over a whole split needs it.
	n := len(c.pixels) / max(1, c.images)
	for i := range c.images {
		k := pixelKey(c.pixels[i*n : (i+1)*n])
		cols = append(cols, intern(e.images, &e.ImageKeys, &e.ImageEmb, k, imageEmb[i*e.Dim:(i+1)*e.Dim]))
	}
	return rows, cols
}

// merge appends the readings of o, a later part of the split, keeping the
// embedding of each input's and image's first sight, as add does.
func (e *splitEmbeds) merge(o *splitEmbeds) {
	if o == nil || len(o.TextOf) == 0 {
		return
	}
	e.Dim = o.Dim
	rows := make([]int, len(o.TextKeys))
	for i, k := range o.TextKeys {
		rows[i] = intern(e.texts, &e.TextKeys, &e.TextEmb, k, o.TextEmb[i*o.Dim:(i+1)*o.Dim])
	}
	cols := make([]int, len(o.ImageKeys))
	for i, k := range o.ImageKeys {
		cols[i] = intern(e.images, &e.ImageKeys, &e.ImageEmb, k, o.ImageEmb[i*o.Dim:(i+1)*o.Dim])
	}
	for r := range o.TextOf {
		e.TextOf = append(e.TextOf, rows[o.TextOf[r]])
		e.ImageOf = append(e.ImageOf, cols[o.ImageOf[r]])
	}
}

// intern returns the index of key, giving a new key the next index and
// appending it to keys and its embedding to emb.
func intern[K comparable](index map[K]int, keys *[]K, emb *[]float32, key K, row []float32) int {
	j, ok := index[key]
	if !ok {
		j = len(index)
		index[key] = j
		*keys = append(*keys, key)
		*emb = append(*emb, row...)
	}
	return j
}

// retrieval scores every distinct input against every distinct image, as
// CLIPModel does (exp(logit_scale) times the cosine), and ranks them.
func (e *splitEmbeds) retrieval(m *CLIP, w *torch.Worker) (*Retrieval, error) {
	nt, ni := len(e.TextKeys), len(e.ImageKeys)
	var flat []float32
	err := w.Do(func() error {
		scale, err := m.LogitScale()
		if err != nil {
			return err
		}
		s := torch.NewScope()
		defer s.Close()
		te := s.FromFloat32(e.TextEmb, int64(nt), int64(e.Dim))
		ie := s.FromFloat32(e.ImageEmb, int64(ni), int64(e.Dim))
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
	return RetrievalOf(logits, e.TextOf, e.ImageOf)
}
