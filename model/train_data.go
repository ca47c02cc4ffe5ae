package model

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math/bits"
	"math/rand/v2"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/trees"
)

// The inputs the text encoder can read for a reading.
const (
	// InputTree is the reading's parse tree, linearized in a trees.Style
	// (trees.StylePaper by default): the seed paper's syntax-aware input.
	InputTree = "tree"
	// InputText is the sentence, written from the tree's words
	// (trees.StyleWords). Every reading of a pair shares its words, so both
	// readings send the same text: the baseline that cannot tell them apart.
	InputText = "text"
)

// InputStyle is the linearization the text encoder reads for an input kind:
// style for InputTree, trees.StyleWords for InputText.
func InputStyle(input string, style trees.Style) (trees.Style, error) {
	switch input {
	case InputTree:
		if style == trees.StyleWords {
			return 0, errors.New("input tree with style words is the text input; use --input text")
		}
		return style, nil
	case InputText:
		return trees.StyleWords, nil
	}
	return 0, fmt.Errorf("input %q is not tree or text", input)
}

// ReadingTexts returns what the text encoder reads for each reading of p:
// the reading's tree linearized in style (see InputStyle).
func ReadingTexts(p *loader.Pair, style trees.Style) ([]string, error) {
	out := make([]string, len(p.Readings))
	for i := range p.Readings {
		t, err := trees.Parse(p.Readings[i].Tree)
		if err != nil {
			return nil, fmt.Errorf("pair %s: readings[%d].tree: %w", p.ID, i, err)
		}
		out[i] = trees.Linearize(t, style).Text
	}
	return out, nil
}

// Split is a list of pairs that training and evaluation read, with a way to
// decode their images. DatasetSplit makes one of a loaded manifest; package
// demo makes the synthetic splits, drawing each pair when it is asked for.
type Split interface {
	// Len is the number of pairs.
	Len() int
	// Pair returns pair i, 0 ≤ i < Len().
	Pair(i int) (loader.Pair, error)
	// Image decodes the image of a reading of a pair that Pair returned.
	Image(r *loader.Reading) (image.Image, error)
}

// DatasetSplit is a Split over the pairs of one split of a loaded manifest
// (all of them when split is empty).
func DatasetSplit(ds *loader.Dataset, split string) Split {
	return datasetSplit{ds.Split(split)}
}

type datasetSplit struct{ ds *loader.Dataset }

func (d datasetSplit) Len() int                                     { return len(d.ds.Pairs) }
func (d datasetSplit) Pair(i int) (loader.Pair, error)              { return d.ds.Pairs[i], nil }
func (d datasetSplit) Image(r *loader.Reading) (image.Image, error) { return d.ds.Image(r) }

// dataOrder is the order in which training visits pairs: epoch e is a
// permutation of the pair indices drawn from (seed, e), and step s takes the
// batchPairs pairs at positions [b·K, (b+1)·K) of epoch s / perEpoch, with
// b = s mod perEpoch. Pairs left over at the end of an epoch (fewer than K)
// sit that epoch out; the next permutation places them elsewhere. The order
// is a function of the seed and the step alone, so a run resumed at step s
// sees exactly the batches the uninterrupted run would have seen.
type dataOrder struct {
	seed     uint64
	pairs    int
	k        int
	perEpoch int

	epoch int
	perm  []int
}

func newDataOrder(seed uint64, pairs, batchPairs int) (*dataOrder, error) {
	if batchPairs < 1 {
		return nil, fmt.Errorf("batch pairs must be at least 1, got %d", batchPairs)
	}
	if pairs < batchPairs {
		return nil, fmt.Errorf("the training split has %d pairs, fewer than the %d a batch takes", pairs, batchPairs)
	}
	return &dataOrder{seed: seed, pairs: pairs, k: batchPairs, perEpoch: pairs / batchPairs, epoch: -1}, nil
}

// batch returns the pair indices of step s (0-based).
func (o *dataOrder) batch(s int) []int {
	e, b := s/o.perEpoch, s%o.perEpoch
	if e != o.epoch {
		o.perm = permutation(o.seed, e, o.pairs)
		o.epoch = e
	}
	return append([]int(nil), o.perm[b*o.k:(b+1)*o.k]...)
}

// epochAt is the fractional epoch reached after s steps.
func (o *dataOrder) epochAt(s int) float64 { return float64(s) / float64(o.perEpoch) }

// permutation is a Fisher–Yates shuffle of 0..n-1 driven by PCG with its
// output reduced by multiply-high, both fixed by their definitions, so that
// the data order cannot change with the Go version.
func permutation(seed uint64, epoch, n int) []int {
	r := rand.NewPCG(seed, 0x6c617661<<32|uint64(epoch))
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j, _ := bits.Mul64(r.Uint64(), uint64(i+1))
		p[i], p[int(j)] = p[int(j)], p[i]
	}
	return p
}

// encodedBatch is one training or evaluation batch ready for the model.
type encodedBatch struct {
	// pairs are the indices in the split of the pairs of the batch.
	pairs []int
	// items is the number of readings: rows of ids and images of pixels.
	items int
	// ids is [items, length] token ids, padded with EOS to the longest
	// text of the batch (the causal mask and first-EOS pooling make the
	// padding length irrelevant to the result).
	ids    []int64
	length int
	// pixels is [items, 3, size, size].
	pixels []float32
	// truncated counts texts cut to the context length.
	truncated int
}

// batcher turns pairs into encoded batches.
type batcher struct {
	split   Split
	tok     *tokenizer.Tokenizer
	style   trees.Style
	prep    loader.PreprocessConfig
	context int
	size    int
	// width pads every batch's texts to that many positions (a CUDA graph
	// needs one shape); 0 pads to the batch's longest.
	width int
	// rank of world takes the rank-th of world equal runs of each batch's
	// pairs (world divides the batch); world ≤ 1 is a single process.
	rank, world int
}

// encode reads, tokenizes and preprocesses the pairs at idx, each reading
// an item, readings of a pair next to each other.
func (b *batcher) encode(idx []int) (*encodedBatch, error) {
	eb := &encodedBatch{pairs: idx}
	var encs []tokenizer.Encoding
	for _, i := range idx {
		p, err := b.split.Pair(i)
		if err != nil {
			return nil, err
		}
		texts, err := ReadingTexts(&p, b.style)
		if err != nil {
			return nil, err
		}
		for r := range p.Readings {
			enc := b.tok.Encode(texts[r], b.context)
			if enc.Truncated {
				eb.truncated++
			}
			encs = append(encs, enc)
			eb.length = max(eb.length, len(enc.IDs))
			px, err := b.pixels(&p, r)
			if err != nil {
				return nil, err
			}
			eb.pixels = append(eb.pixels, px...)
		}
	}
	eb.items = len(encs)
	if b.width > 0 {
		eb.length = b.width
	}
	var err error
	eb.ids, err = b.tok.Pack(encs, eb.length)
	return eb, err
}

// pixels preprocesses the image of reading r of p.
func (b *batcher) pixels(p *loader.Pair, r int) ([]float32, error) {
	rd := &p.Readings[r]
	img, err := b.split.Image(rd)
	if err != nil {
		return nil, fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, r, rd.Image, err)
	}
	px, err := loader.Preprocess(img, b.prep)
	if err != nil {
		return nil, fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, r, rd.Image, err)
	}
	if len(px) != 3*b.size*b.size {
		return nil, fmt.Errorf("pair %s: readings[%d].image: preprocessing gives %d values, the model takes 3×%d×%d", p.ID, r, len(px), b.size, b.size)
	}
	return px, nil
}

// prefetch encodes the batches of steps [from, to) on a goroutine of its
// own, a few ahead of the consumer, so that image work overlaps the model's.
// The channel is closed after the last batch, after an error (sent as the
// last value), or when ctx is done.
func (b *batcher) prefetch(ctx context.Context, order *dataOrder, from, to int) <-chan batchOrErr {
	ch := make(chan batchOrErr, 2)
	go func() {
		defer close(ch)
		for s := from; s < to; s++ {
			idx := order.batch(s)
			if b.world > 1 {
				n := len(idx) / b.world
				idx = idx[b.rank*n : (b.rank+1)*n]
			}
			eb, err := b.encode(idx)
			select {
			case ch <- batchOrErr{eb, err}:
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

type batchOrErr struct {
	b   *encodedBatch
	err error
}

// LearnSplitVocab learns a BPE vocabulary of at most merges merges from the
// trees of train's readings, linearized in style, and their sentences.
func LearnSplitVocab(train Split, style trees.Style, merges int) (*tokenizer.Tokenizer, error) {
	var texts []string
	for i := range train.Len() {
		p, err := train.Pair(i)
		if err != nil {
			return nil, err
		}
		for _, st := range []trees.Style{style, trees.StyleWords} {
			ts, err := ReadingTexts(&p, st)
			if err != nil {
				return nil, err
			}
			texts = append(texts, ts...)
		}
	}
	return tokenizer.LearnBPE(texts, merges, 2)
}
