package model

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/lavascope/lavascope/loader"
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

// Evaluate scores every reading of split with m, as the seed paper's Table
// 1 does (see Outcome). It stops with ctx's error when ctx is cancelled.
func Evaluate(ctx context.Context, m *CLIP, tok *Tokenizer, split Split, o EvalOptions) (*EvalResult, error) {
	if split == nil || split.Len() == 0 {
		return nil, errors.New("evaluate: the split has no pairs")
	}
	prep := o.Preprocess
	if prep == nil {
		p, err := PreprocessFor(m)
		if err != nil {
			return nil, err
		}
		prep = &p
	}
	w := o.Worker
	if w == nil {
		w = torch.NewWorker()
		defer w.Close()
	}
	chunk := o.ChunkPairs
	if chunk <= 0 {
		chunk = 16
	}
	e := &evaluator{m: m, tok: tok, split: split, style: o.Style, prep: *prep, res: &EvalResult{Style: o.Style}}
	families := map[string]*Tally{}
	var all *splitEmbeds
	if o.Retrieval {
		all = newSplitEmbeds()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for c := range e.chunks(ctx, chunk) {
		if c.err != nil {
			return nil, c.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e.res.Truncated += c.truncated
		var lpt, textEmb, imageEmb []float32
		err := w.Do(func() error {
			s := torch.NewScope()
			defer s.Close()
			size := int64(m.cfg.Vision.ImageSize)
			px := s.FromFloat32(c.pixels, int64(c.images), 3, size, size)
			ids := s.FromInt64(c.ids, int64(c.texts), int64(c.length))
			out, err := m.Forward(s, px, ids, ForwardOptions{})
			if err != nil {
				return err
			}
			if lpt, err = out.LogitsPerText.Contiguous().Float32s(); err != nil || all == nil {
				return err
			}
			if textEmb, err = out.Text.Embeds.Contiguous().Float32s(); err != nil {
				return err
			}
			imageEmb, err = out.Image.Embeds.Contiguous().Float32s()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		var rows, cols []int
		if all != nil {
			rows, cols = all.add(c, textEmb, imageEmb)
		}
		for _, p := range c.pairs {
			for r := range p.textRow {
				if all != nil {
					all.textOf = append(all.textOf, rows[p.textRow[r]])
					all.imageOf = append(all.imageOf, cols[p.imageCol[r]])
				}
				sc := ReadingScore{Pair: p.id, Family: p.family, Reading: r}
				for k := range p.textRow {
					sc.Logits = append(sc.Logits, float64(lpt[p.textRow[r]*c.images+p.imageCol[k]]))
					sc.ImageLogits = append(sc.ImageLogits, float64(lpt[p.textRow[k]*c.images+p.imageCol[r]]))
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
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range families {
			if !yield(k) {
				return
			}
		}
	}) {
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
	m     *CLIP
	tok   *Tokenizer
	split Split
	style trees.Style
	prep  loader.PreprocessConfig
	res   *EvalResult
}

// evalChunk is a few pairs ready for the model: their images, and the
// distinct texts of their readings.
type evalChunk struct {
	pairs []evalPair
	// textKeys are the inputs of the rows, imageKeys the SHA-256 of the
	// columns' pixels: what makes them the same across chunks.
	textKeys      []string
	imageKeys     [][sha256.Size]byte
	images, texts int
	pixels        []float32
	ids           []int64
	length        int
	truncated     int
	err           error
}

// evalPair locates a pair in the logits: the input of reading r is row
// textRow[r], its image column imageCol[r].
type evalPair struct {
	id, family string
	textRow    []int
	imageCol   []int
}

// chunks prepares the chunks on a goroutine, one ahead of the model.
func (e *evaluator) chunks(ctx context.Context, size int) <-chan *evalChunk {
	ch := make(chan *evalChunk, 1)
	b := &batcher{split: e.split, tok: e.tok, style: e.style, prep: e.prep,
		context: e.m.cfg.Text.MaxPositionEmbeddings, size: e.m.cfg.Vision.ImageSize}
	go func() {
		defer close(ch)
		for lo := 0; lo < e.split.Len(); lo += size {
			c, err := e.chunk(b, lo, min(lo+size, e.split.Len()))
			if err != nil {
				c = &evalChunk{err: err}
			}
			select {
			case ch <- c:
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

func (e *evaluator) chunk(b *batcher, lo, hi int) (*evalChunk, error) {
	c := &evalChunk{}
	rows := map[string]int{}
	cols := map[uint64][]int{}
	n := 3 * b.size * b.size
	var encs []Encoding
	for i := lo; i < hi; i++ {
		p, err := e.split.Pair(i)
		if err != nil {
			return nil, err
		}
		texts, err := ReadingTexts(&p, e.style)
		if err != nil {
			return nil, err
		}
		fam := p.Ambiguity
		if fam == "" {
			fam = "unknown"
		}
		ep := evalPair{id: p.ID, family: fam}
		for r := range p.Readings {
			row, ok := rows[texts[r]]
			if !ok {
				enc := b.tok.Encode(texts[r], b.context)
				if enc.Truncated {
					c.truncated++
				}
				row = len(encs)
				rows[texts[r]] = row
				encs = append(encs, enc)
				c.textKeys = append(c.textKeys, texts[r])
				c.length = max(c.length, len(enc.IDs))
			}
			ep.textRow = append(ep.textRow, row)
			px, err := b.pixels(&p, r)
			if err != nil {
				return nil, err
			}
			// Identical pixels share a column, as identical texts share a
			// row: equal inputs get equal logits by construction.
			h := hashPixels(px)
			col := -1
			for _, j := range cols[h] {
				if slices.Equal(c.pixels[j*n:(j+1)*n], px) {
					col = j
				}
			}
			if col < 0 {
				col = c.images
				cols[h] = append(cols[h], col)
				c.pixels = append(c.pixels, px...)
				c.imageKeys = append(c.imageKeys, pixelKey(px))
				c.images++
			}
			ep.imageCol = append(ep.imageCol, col)
		}
		c.pairs = append(c.pairs, ep)
	}
	c.texts = len(encs)
	var err error
	c.ids, err = b.tok.Pack(encs, c.length)
	return c, err
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
func (e *splitEmbeds) add(c *evalChunk, textEmb, imageEmb []float32) (rows, cols []int) {
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

// hashPixels is FNV-1a over the bits of the values.
func hashPixels(px []float32) uint64 {
	h := uint64(14695981039346656037)
	for _, v := range px {
		h ^= uint64(math.Float32bits(v))
		h *= 1099511628211
	}
	return h
}
