package tui

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
)

// Engine is everything the explorer needs from the model side, in plain Go
// values: no tensors cross it. An Engine is bound to one set of weights (its
// checkpoint) and to the dataset it was opened with, and names pairs by ID.
//
// The explorer calls an Engine only from goroutines of its own, never from
// the UI goroutine, and may call it from several at once (a fine-tune run
// while the split is explained in the background): an implementation must be
// safe for concurrent use, and may serialise the calls (a libtorch engine
// runs them all on its one model goroutine). Every call that can take long
// takes a context and returns ctx.Err() soon after it is cancelled.
type Engine interface {
	// Info describes the engine; it is called often and must be cheap.
	Info() EngineInfo
	// Score computes the logits of the pairs named by ids, in that order.
	Score(ctx context.Context, ids []string) ([]Score, error)
	// Explain computes the relevance of one pair for one method, start
	// layer and target.
	Explain(ctx context.Context, req ExplainRequest) (*Explanation, error)
	// FineTune trains a copy of the engine's model on the train split of its
	// dataset, sends progress on progress while it runs (it never closes the
	// channel, and the explorer keeps reading it until FineTune returns), and
	// returns an engine over the new weights, whose Info().Checkpoint differs
	// from this one's. The receiver stays usable, so that the explorer can
	// show the pairs before and after. A cancelled ctx stops the run and
	// FineTune returns ctx.Err() and no engine.
	FineTune(ctx context.Context, opt FineTuneOptions, progress chan<- FineTuneProgress) (Engine, error)
	// Close frees the engine's resources; the explorer calls it once for
	// every engine it got, when it quits.
	Close() error
}

// RunCheckpoints is implemented by an engine that a fine-tune returned when
// its run left other checkpoints than the one it runs (the engine runs the
// final weights, last/; best/ holds those of the best validation). The
// explorer offers them with L. Engines without it offer none.
type RunCheckpoints interface {
	// RunCheckpoints names the run's checkpoints ("last", "best") and
	// which of them the engine runs.
	RunCheckpoints() (own string, all []string)
	// OpenRunCheckpoint opens one of them as an engine over the same data,
	// which the explorer closes like the others.
	OpenRunCheckpoint(ctx context.Context, name string) (Engine, error)
}

// EngineInfo is what the status bar says about an engine.
type EngineInfo struct {
	// Checkpoint names the weights, unique among the engines of one
	// session: explanations are cached under it.
	Checkpoint string
	// Device is where the model runs: cpu, cuda:0, ...
	Device string
	// Runtime names what computes, such as "libtorch 2.5.1".
	Runtime string
	// Style is the linearization the text encoder reads:
	// trees.StylePaper for tree input, trees.StyleWords for text input.
	// Token offsets of an Explanation index into trees.Linearize(tree,
	// Style).Text.
	Style trees.Style
	// Layers is the number of attention layers the start layer counts in
	// (the smaller of the two encoders' depths); 0 when unknown.
	Layers int
	// Preprocess is how the engine fits an image to the model's input,
	// which places the evidence boxes on the patch grid for the pointing
	// game; nil means CLIP's default.
	Preprocess *loader.PreprocessConfig
}

// Method names a relevance method: package explain's methods, which the m key
// cycles through in the order of explain.Methods.
type Method = explain.Method

// Target is the logit an explanation explains (own, twin, all): the
// report's, so that the screen and the reports share one vocabulary.
type Target = report.Target

// The targets, in the order the t key cycles through them.
const (
	TargetOwn  = report.TargetOwn
	TargetTwin = report.TargetTwin
	TargetAll  = report.TargetAll
)

// Targets lists the targets in the order the t key cycles through them.
var Targets = report.Targets

// ParseTarget reads own, twin or all.
func ParseTarget(s string) (Target, error) { return report.ParseTarget(s) }

// ExplainRequest asks for the relevance of one pair.
type ExplainRequest struct {
	PairID string
	Method Method
	// StartLayer is the first layer of Chefer's rule, parsed where the
	// setting entered (flag, configuration, the l key).
	StartLayer explain.StartLayer
	Target     Target
	// Trees, when set, are the readings' trees to explain in place of the
	// pair's, one a line: a pair edited in the explorer (E). The explorer
	// sets it only for an engine that is a Prober. A string, so that
	// requests stay comparable.
	Trees string
	// Variant, when not the zero Variant, is the counterfactual to explain
	// in place of the pair as it is (the pair view's M, I and D): the
	// images masked or swapped, the text shortened. Variant is
	// comparable, so requests stay so.
	Variant Variant
}

// Edited returns p with the request's Trees in place of its readings'
// trees, or p itself when the request has none.
func (r ExplainRequest) Edited(p *loader.Pair) (*loader.Pair, error) {
	if r.Trees == "" {
		return p, nil
	}
	ts := strings.Split(r.Trees, "\n")
	if len(ts) != len(p.Readings) {
		return nil, fmt.Errorf("pair %s: %d trees for %d readings", p.ID, len(ts), len(p.Readings))
	}
	q := *p
	q.Readings = slices.Clone(p.Readings)
	for j := range q.Readings {
		q.Readings[j].Tree = ts[j]
	}
	return &q, nil
}

// Explanation is the relevance of one pair for one request.
type Explanation struct {
	Request ExplainRequest
	// Checkpoint is the Info().Checkpoint of the engine that computed it.
	Checkpoint string
	// Readings is indexed like the pair's readings.
	Readings []ReadingRelevance
	// Elapsed is how long the engine took.
	Elapsed time.Duration
}

// ReadingRelevance is the relevance for one reading's target.
type ReadingRelevance struct {
	// Text is the string the text encoder read: the reading's tree
	// linearized in the engine's Style.
	Text string
	// Tokens are the text's tokens in order, special tokens included.
	Tokens []Token
	// Image is the index of the image that Patches lie over (the image of
	// the target's logit; the reading's own for TargetOwn and TargetAll).
	Image int
	// Cells are the logit cells (image, text) summed into the target.
	Cells [][2]int
	// Patches is the image relevance per patch (7×7 for ViT-B/32), as the
	// method gives it, not normalised.
	Patches explain.Grid
	// Report is the reading's report as the export writes it, without the
	// logits, which the export takes from the pair's Score, and without a
	// figure; nil where the engine gives none (the export then fails).
	Report *report.Reading
}

// Token is one token of a reading's text with its relevance.
type Token struct {
	// Text is the token as the tokenizer writes it, for display and export.
	Text string
	// Start and End are its bytes [Start, End) in ReadingRelevance.Text;
	// equal for tokens that cover no text (start and end markers).
	Start, End int
	// Relevance is the method's value, not normalised.
	Relevance float64
}

// Score is how a model scores one pair: every reading's text against every
// image of the pair.
type Score struct {
	PairID string
	// Logits[i][j] is the logit of image i against reading j's text.
	Logits [][]float64
	// Probs[i][j] is the softmax over images i of Logits[·][j]: how sure
	// reading j is of each image.
	Probs [][]float64
	// Picks[j] is the image reading j scores highest, -1 on a tie.
	Picks []int
	// Correct[j] reports whether reading j's own image has the strictly
	// highest logit.
	Correct []bool
	// Margins[j] is Logits[j][j] minus the highest logit of another image
	// for reading j: positive when correct.
	Margins []float64
}

// NewScore fills a Score from the logits of an n×n pair, Logits[image][text].
func NewScore(id string, logits [][]float64) (Score, error) {
	n := len(logits)
	if n < 2 {
		return Score{}, fmt.Errorf("score pair %s: %d images, want at least 2", id, n)
	}
	for i, row := range logits {
		if len(row) != n {
			return Score{}, fmt.Errorf("score pair %s: logits row %d has %d texts, want %d", id, i, len(row), n)
		}
	}
	s := Score{PairID: id, Logits: logits, Probs: make([][]float64, n), Picks: make([]int, n), Correct: make([]bool, n), Margins: make([]float64, n)}
	for i := range s.Probs {
		s.Probs[i] = make([]float64, n)
	}
	for j := range n {
		hi := math.Inf(-1)
		for i := range n {
			hi = max(hi, logits[i][j])
		}
		sum := 0.0
		for i := range n {
			sum += math.Exp(logits[i][j] - hi)
		}
		pick, ties := -1, 0
		other := math.Inf(-1)
		for i := range n {
			s.Probs[i][j] = math.Exp(logits[i][j]-hi) / sum
			if logits[i][j] == hi {
				pick = i
				ties++
			}
			if i != j {
				other = max(other, logits[i][j])
			}
		}
		if ties > 1 {
			pick = -1
		}
		s.Picks[j] = pick
		s.Correct[j] = pick == j
		s.Margins[j] = logits[j][j] - other
	}
	return s, nil
}

// Margin is the pair's smallest reading margin: negative when some reading
// fails. The list sorts by it.
func (s Score) Margin() float64 {
	m := math.Inf(1)
	for _, v := range s.Margins {
		m = min(m, v)
	}
	return m
}

// Failed reports whether some reading does not pick its own image.
func (s Score) Failed() bool {
	for _, c := range s.Correct {
		if !c {
			return true
		}
	}
	return false
}

// FineTuneOptions are the fields of the fine-tune panel's form.
type FineTuneOptions struct {
	Steps int
	LR    float64
	// BatchPairs is how many whole pairs make one batch (the paper's batch
	// 2 is 1 pair, batch 4 is 2).
	BatchPairs int
	// Input is "tree" or "text".
	Input        string
	FreezeVision bool
	// Precision is the training step's, one of FineTunePrecisions ("" is
	// fp32): tf32 has an effect on CUDA only.
	Precision string
}

// FineTunePrecisions are the precisions a fine-tune takes, those of
// `lavascope train --precision`.
var FineTunePrecisions = []string{"fp32", "tf32", "bf16-mixed"}

// Validate reports the first field that cannot start a run.
func (o FineTuneOptions) Validate() error {
	switch {
	case o.Steps <= 0:
		return fmt.Errorf("steps must be at least 1, got %d", o.Steps)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("lr must be a positive number, got %g", o.LR)
	case o.BatchPairs <= 0:
		return fmt.Errorf("batch pairs must be at least 1, got %d", o.BatchPairs)
	case o.Input != "tree" && o.Input != "text":
		return fmt.Errorf("input must be tree or text, got %q", o.Input)
	case o.Precision != "" && !slices.Contains(FineTunePrecisions, o.Precision):
		return fmt.Errorf("precision must be one of %s, got %q", strings.Join(FineTunePrecisions, ", "), o.Precision)
	}
	return nil
}

// FineTuneProgress is one report of a running fine-tune.
type FineTuneProgress struct {
	Step, Steps int
	// Loss is the training loss of the last step.
	Loss float64
	// ValStep is the step of the last evaluation on the val split, 0 before
	// the first; ValAccuracy is its accuracy in percent.
	ValStep     int
	ValAccuracy float64
	// ItemsPerSec is the training throughput (one item is one reading).
	ItemsPerSec float64
	Elapsed     time.Duration
}

// Prober is implemented by an engine that can score trees a pair's
// readings do not have: the explorer's edited readings (E) and the ranking
// of a reading's alternatives (R). Engines without it show those keys
// disabled.
type Prober interface {
	// ScoreTrees returns, for each bracketed tree, its logits against each
	// image of pair id in reading order: logits[t][k]. The trees are
	// linearized in the engine's Style and scored in one forward pass, laid
	// out as Score lays out pairs, so that a tree equal to a reading's
	// reads the same text as that reading does. A tree that does not parse
	// is an error naming it.
	ScoreTrees(ctx context.Context, id string, trees []string) ([][]float64, error)
}

// Variant is one counterfactual of a pair (Counterfactual). Its zero value
// is the pair as it is; it is comparable, so that requests can be keyed.
type Variant struct {
	// Fill, when not empty, fills every image's evidence boxes: grey
	// (CLIP's mean colour), mean (the image's) or blur.
	Fill string
	// Swap gives each reading its twin's image.
	Swap bool
	// Neutral makes every reading read the plain sentence.
	Neutral bool
	// DropLabel, when not empty, drops from reading DropReading's text the
	// tokens of its constituent labelled DropLabel over the words
	// [DropStart, DropEnd).
	DropLabel          string
	DropReading        int
	DropStart, DropEnd int
}

// Counterfactual is implemented by an engine that can score a pair with
// its inputs changed: the pair view's masks (M), swapped images (I) and
// dropped constituents (D). Engines without it show those keys disabled.
type Counterfactual interface {
	// ScoreVariants returns the logits [text][image] of pair id as it is
	// (out[0]) and under each variant (out[v+1]), all from one forward
	// pass, so that an input a variant leaves alone keeps its logit
	// exactly.
	ScoreVariants(ctx context.Context, id string, vs []Variant) ([][][]float64, error)
}
