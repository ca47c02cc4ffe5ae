// Package bench times lavascope's GPU-relevant work (relevance, scoring,
// training) on a CLIP model with synthetic inputs, and compares its
// records with those of the Hugging Face reference
// (scripts/reference/hf_bench.py), which writes the same JSON records for
// the same work items.
//
// The work items are the rows of issue 9's table. Each is run a few times
// to warm up (CUDA context, kernel choice, caching allocator), then timed
// over repeated runs with the device synchronised around each, and reported
// as median, quartiles and extremes, with the peak CUDA memory.
package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a work item exercises.
type Kind string

const (
	// Explain is relevance with Chefer's rule: a forward pass with the
	// attention captured, the backward pass of the targets' logits, the
	// relevance maps read back to the host.
	Explain Kind = "explain"
	// Score is one forward pass without autograd, logits read back.
	Score Kind = "score"
	// Train is one optimizer step: forward, contrastive loss, backward,
	// gradient clipping, AdamW, the clamp of the logit scale, the loss read
	// back.
	Train Kind = "train"
)

// Work is one row of the table.
type Work struct {
	// ID names the row in both programs' records: explain-last,
	// explain-all, explain-batch, score, train-N (N items per step).
	ID    string
	Title string
	Kind  Kind
	// Pairs is the number of LAVA pairs per run (Explain, Score) or per
	// step (Train); each pair is two items (an image and a text each).
	Pairs int
	// AllLayers selects Chefer's rule over every layer; otherwise the
	// last layer only (the reference notebook's default). Explain only.
	AllLayers bool
}

// Items is the number of images (and texts) one run processes.
func (w Work) Items() int { return 2 * w.Pairs }

// ExplainWork is the relevance rows: one pair with the last layer, one
// pair with all layers, and n pairs batched with all layers.
func ExplainWork(n int) []Work {
	return []Work{
		{ID: "explain-last", Title: "relevance, one pair, last layer only", Kind: Explain, Pairs: 1},
		{ID: "explain-all", Title: "relevance, one pair, all layers", Kind: Explain, Pairs: 1, AllLayers: true},
		{ID: "explain-batch", Title: fmt.Sprintf("relevance, %s batched, all layers", pairsOf(n)), Kind: Explain, Pairs: n, AllLayers: true},
	}
}

// ScoreWork is the scoring row: one pair, forward only.
func ScoreWork() []Work {
	return []Work{{ID: "score", Title: "scoring one pair (forward only)", Kind: Score, Pairs: 1}}
}

// TrainWork is a training row for each batch size, in pairs per step.
func TrainWork(batchPairs []int) []Work {
	ws := make([]Work, len(batchPairs))
	for i, k := range batchPairs {
		ws[i] = Work{
			ID:    "train-" + strconv.Itoa(2*k),
			Title: fmt.Sprintf("training, %d items (%s) per step", 2*k, pairsOf(k)),
			Kind:  Train,
			Pairs: k,
		}
	}
	return ws
}

// pairsOf is "1 pair" or "N pairs": the titles, which hf_bench.py writes
// the same way.
func pairsOf(n int) string {
	if n == 1 {
		return "1 pair"
	}
	return strconv.Itoa(n) + " pairs"
}

// DefaultBatchPairs are the training rows of the issue: 4 and 64 items per
// step.
var DefaultBatchPairs = []int{2, 32}

// DefaultPairs is the batch of the batched relevance row: the 101 test
// pairs of the paper's LAVA split.
const DefaultPairs = 101

// Target is the goal for a row on the GPU (ViT-B/32): a time
// (MaxMS) or a throughput (MinItemsPerS).
type Target struct {
	MaxMS        float64
	MinItemsPerS float64
}

// String reads "≤ 5 ms" or "≥ 175 items/s".
func (t Target) String() string {
	if t.MinItemsPerS > 0 {
		return "≥ " + strconv.FormatFloat(t.MinItemsPerS, 'f', -1, 64) + " items/s"
	}
	return "≤ " + strconv.FormatFloat(t.MaxMS, 'f', -1, 64) + " ms"
}

// Met reports whether a record meets the target.
func (t Target) Met(r *Record) bool {
	if t.MinItemsPerS > 0 {
		return r.ItemsPerS >= t.MinItemsPerS
	}
	return r.MedianMS <= t.MaxMS
}

// TargetFor returns the target for a record's row, which applies
// to ViT-B/32 on a CUDA device, with the row's default batch.
func TargetFor(r *Record) (Target, bool) {
	if r.Config != "vit-b-32" || !strings.HasPrefix(r.Device, "cuda") {
		return Target{}, false
	}
	switch r.Work {
	case "explain-last":
		return Target{MaxMS: 5}, true
	case "explain-all":
		return Target{MaxMS: 10}, true
	case "explain-batch":
		return Target{MaxMS: 150}, r.Pairs == DefaultPairs
	case "score":
		return Target{MaxMS: 5}, true
	case "train-4":
		return Target{MinItemsPerS: 175}, true
	case "train-64":
		return Target{MinItemsPerS: 1300}, true
	}
	return Target{}, false
}
