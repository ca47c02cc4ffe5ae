package model

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/trees"
)

// TestEvaluateTextInputIsHalf: with text input both readings of a pair read
// the same sentence, so a model, trained or not, scores exactly 50%; in the
// image-to-text direction every reading ties.
func TestEvaluateTextInputIsHalf(t *testing.T) {
	train, _, test := synthSplits(t, 100, 8)
	m, tok := smallCLIP(t, train, 4)
	text := evalSplit(t, m, tok, test, InputText)
	if text.Accuracy != 50 || text.Readings != 2*test.Len() {
		t.Errorf("text input: %.4f%% over %d readings, want exactly 50%% over %d", text.Accuracy, text.Readings, 2*test.Len())
	}
	if text.Correct != text.Wrong {
		t.Errorf("text input: %d correct, %d wrong; each pair has one of each (or two ties)", text.Correct, text.Wrong)
	}
	if it := text.ImageToText; it.Ties != it.Readings || it.Accuracy != 50 {
		t.Errorf("text input, image to text: %+v; want every reading tied", it)
	}
	for _, s := range text.Scores {
		if len(s.Logits) != 2 || len(s.ImageLogits) != 2 {
			t.Fatalf("%s/%d: %d and %d logits", s.Pair, s.Reading, len(s.Logits), len(s.ImageLogits))
		}
	}
	tree := evalSplit(t, m, tok, test, InputTree)
	if tree.Readings != text.Readings || len(tree.Families) != 3 {
		t.Errorf("tree input: %d readings, %d families", tree.Readings, len(tree.Families))
	}
	sum := 0
	for _, f := range tree.Families {
		sum += f.Readings
	}
	if sum != tree.Readings {
		t.Errorf("families hold %d readings of %d", sum, tree.Readings)
	}
}

// TestEvaluateTies: when a pair's two images are the same picture, no input
// can prefer either; every reading ties and counts half.
func TestEvaluateTies(t *testing.T) {
	train, _, test := synthSplits(t, 100, 9)
	m, tok := smallCLIP(t, train, 5)
	var pairs []loader.Pair
	for i := range test.Len() {
		p, _ := test.Pair(i)
		p.Readings = append([]loader.Reading(nil), p.Readings...)
		p.Readings[1].Pixels = p.Readings[0].Pixels
		pairs = append(pairs, p)
	}
	same := DatasetSplit(&loader.Dataset{Pairs: pairs}, "")
	r := evalSplit(t, m, tok, same, InputTree)
	if r.Ties != r.Readings || r.Accuracy != 50 || r.Correct != 0 || r.Wrong != 0 {
		t.Errorf("identical images: %+v; want every reading tied", r.Tally)
	}
}

// TestEvaluateChunks: how many pairs share a forward pass changes nothing.
func TestEvaluateChunks(t *testing.T) {
	train, _, test := synthSplits(t, 60, 10)
	m, tok := smallCLIP(t, train, 6)
	var results []*EvalResult
	for _, chunk := range []int{1, 5, 100} {
		r, err := Evaluate(context.Background(), m, tok, test, EvalOptions{ChunkPairs: chunk})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	// Other chunk sizes are other matrix shapes, which BLAS may block
	// differently: logits agree within chunkTol, and so do outcomes, except
	// where the reading's own logit is within chunkTol of another.
	const chunkTol = 1e-4
	for _, r := range results[1:] {
		nearTie := false
		for i, s := range r.Scores {
			one := results[0].Scores[i]
			for k := range s.Logits {
				if d := math.Abs(s.Logits[k] - one.Logits[k]); d > chunkTol {
					t.Errorf("%s/%d: logit %d differs by %g between chunk sizes", s.Pair, s.Reading, k, d)
				}
				if k != s.Reading && math.Abs(one.Logits[k]-one.Logits[s.Reading]) <= chunkTol {
					nearTie = true
				}
			}
		}
		if r.Tally != results[0].Tally && !nearTie {
			t.Errorf("tally %+v, with one pair a chunk %+v", r.Tally, results[0].Tally)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, m, tok, test, EvalOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := Evaluate(context.Background(), m, tok, DatasetSplit(&loader.Dataset{}, ""), EvalOptions{}); err == nil {
		t.Error("empty split: no error")
	}
}

// TestEvaluateRetrieval: the retrieval covers every reading and every image
// of the split; with text input the twin readings' identical inputs can
// never both rank first, in either direction, so R@1 is at most 50%, and
// the first-index accuracy is exactly 50% as the half-each one is.
func TestEvaluateRetrieval(t *testing.T) {
	train, _, test := synthSplits(t, 100, 13)
	m, tok := smallCLIP(t, train, 7)
	for _, input := range []string{InputText, InputTree} {
		st, _ := InputStyle(input, trees.StylePaper)
		r, err := Evaluate(context.Background(), m, tok, test, EvalOptions{Style: st, ChunkPairs: 3, Retrieval: true})
		if err != nil {
			t.Fatal(err)
		}
		ret := r.Retrieval
		if ret == nil || ret.Readings != r.Readings || ret.Images != r.Readings {
			t.Fatalf("%s input: retrieval %+v for %d readings with distinct images", input, ret, r.Readings)
		}
		t.Logf("%s input: accuracy %.2f, first index %.2f, retrieval %+v", input, r.Accuracy, r.AccuracyFirstIndex, *ret)
		for _, rc := range []Recall{ret.TextToImage, ret.ImageToText} {
			if !(rc.At1 <= rc.At5 && rc.At5 <= rc.At10 && rc.At10 <= 100) {
				t.Errorf("%s input: recalls %+v do not grow with K", input, rc)
			}
		}
		if input == InputText {
			if ret.TextToImage.At1 > 50 || ret.ImageToText.At1 > 50 {
				t.Errorf("text input: R@1 %g and %g, want at most 50", ret.TextToImage.At1, ret.ImageToText.At1)
			}
			if r.AccuracyFirstIndex != 50 {
				t.Errorf("text input: first-index accuracy %.4f, want exactly 50", r.AccuracyFirstIndex)
			}
		}
	}
}
