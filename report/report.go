// Package report holds the one report of an explained reading: the record
// that `lavascope explain` writes per reading and the explorer's export
// writes for each reading of its pair, with the same keys and the same
// values for the same pair, method, start layer and target. It holds plain
// data and the rules that derive values from other values (node relevance,
// correctness), so that front ends cannot drift apart; it runs no model.
// docs/report-schema.md documents the JSON.
package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/trees"
)

// Schema is the version of the JSON below; it changes whenever a key is
// renamed, removed or changes meaning (adding a key does not).
const Schema = 1

// Reading is the explanation of one reading of a pair for one method,
// start layer and target.
type Reading struct {
	Schema     int               `json:"schema"`
	Pair       string            `json:"pair"`
	Reading    int               `json:"reading"`
	Sentence   string            `json:"sentence"`
	Ambiguity  string            `json:"ambiguity,omitempty"`
	Tree       string            `json:"tree"`
	Gloss      string            `json:"gloss,omitempty"`
	Text       string            `json:"text"`
	Checkpoint string            `json:"checkpoint"`
	Method     explain.Method    `json:"method"`
	StartLayer string            `json:"start_layer"`
	Target     string            `json:"target"`
	Cells      [][2]int          `json:"cells"`
	Logit      float64           `json:"logit"`
	Logits     []float64         `json:"logits"`
	Correct    bool              `json:"correct"`
	Truncated  bool              `json:"truncated,omitempty"`
	Tokens     []Token           `json:"tokens"`
	Nodes      []trees.NodeScore `json:"nodes"`
	Words      []trees.WordScore `json:"words"`
	Unassigned float64           `json:"unassigned"`
	Images     []Image           `json:"images"`
	// Figure is the PNG drawn beside the JSON, relative to its folder.
	Figure string `json:"figure"`
	// Colormap is the one the figure paints relevance in.
	Colormap string           `json:"colormap,omitempty"`
	Metrics  *explain.Metrics `json:"metrics,omitempty"`

	// StartLayerText is the text encoder's start layer, when it differs.
	StartLayerText string `json:"start_layer_text,omitempty"`

	// Analysis is the relevance in context and the contrast with the
	// twin reading that package analysis derives from the values above;
	// nil until it has run.
	Analysis *Analysis `json:"analysis,omitempty"`
}

// Analysis is a reading's relevance read in context: per word and per
// constituent rather than per token, and against the other reading of its
// pair (package analysis documents every rule).
type Analysis struct {
	// Style is the linearization the model read, found from text and tree.
	Style trees.Style `json:"style"`
	// Signed is true when some token has negative relevance; the masses
	// below are then shares of the absolute values.
	Signed bool `json:"signed"`
	// Words holds each word with its preterminal's brackets and tag folded
	// in, in sentence order.
	Words []WordContext `json:"words"`
	// Constituents are the phrases (every node above the preterminals),
	// the most relevant first.
	Constituents []Constituent `json:"constituents"`
	// Contrast is nil when the reading was analysed without its twin.
	Contrast *Contrast `json:"contrast,omitempty"`
}

// WordContext is one word's relevance with its preterminal folded in.
type WordContext struct {
	Index     int     `json:"index"`
	Word      string  `json:"word"`
	Tag       string  `json:"tag"`
	Relevance float64 `json:"relevance"`
}

// Constituent is one phrase with the relevance of its own brackets and
// label (the tokens that open and close it) and that of its whole span.
type Constituent struct {
	Label string `json:"label"`
	// Start and End are its words [Start, End); Words are those words.
	Start     int     `json:"start"`
	End       int     `json:"end"`
	Words     string  `json:"words"`
	Relevance float64 `json:"relevance"`
	Subtree   float64 `json:"subtree"`
	// Only marks a constituent the twin's tree lacks, Moved the
	// re-attached one, Site its attachment site in this reading.
	Only  bool `json:"only,omitempty"`
	Moved bool `json:"moved,omitempty"`
	Site  bool `json:"site,omitempty"`
}

// Contrast is where the reading's relevance falls relative to what tells
// it apart from its twin. Masses are shares of the relevance on the tokens
// that cover the tree (all 0 when that is 0).
type Contrast struct {
	// Twin is the other reading's index in the pair.
	Twin int `json:"twin"`
	// Unique is the share on tokens the twin's linearization lacks, Shared
	// the rest: Unique + Shared = 1 unless there is no relevance at all.
	Unique float64 `json:"unique"`
	Shared float64 `json:"shared"`
	// UniqueTokens are the indices into Tokens of those tokens.
	UniqueTokens []int `json:"unique_tokens"`
	// Site is the attachment site in this reading and Noun the ambiguous
	// noun; nil where the two trees have no such thing.
	Site *Focus `json:"site,omitempty"`
	Noun *Focus `json:"noun,omitempty"`
}

// Focus is a piece of the tree the paper's analysis looks at, with the
// share of the reading's relevance on it.
type Focus struct {
	Label string `json:"label"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Words string `json:"words"`
	// Head is the index of its head word, HeadWord that word.
	Head     int     `json:"head"`
	HeadWord string  `json:"head_word"`
	Mass     float64 `json:"mass"`
}

// Token is one token of the text with its relevance.
type Token struct {
	// Token is the vocabulary entry, as the tokenizer's vocabulary spells
	// it (")))</w>").
	Token string `json:"token"`
	// Start and End are its bytes [Start, End) in Reading.Text.
	Start int `json:"start"`
	End   int `json:"end"`
	// Relevance is the method's value; Normalized its share of the tokens
	// between start and end of text (0 for those two).
	Relevance  float32 `json:"relevance"`
	Normalized float32 `json:"normalized"`
}

// Image is the patch relevance over one image of the target.
type Image struct {
	// Image is the index of the image among the pair's readings.
	Image int `json:"image"`
	// File is the image's file as the manifest names it.
	File string `json:"file,omitempty"`
	// Grid is the side of the patch grid; Relevance and Normalized are
	// Grid×Grid, row by row.
	Grid       int       `json:"grid"`
	Relevance  []float32 `json:"relevance"`
	Normalized []float32 `json:"normalized"`
}

// Target is the logit an explanation explains, for each reading j of a pair.
type Target int

const (
	// TargetOwn is reading j's text against its own image j: why it
	// picked (or failed to pick) the right image.
	TargetOwn Target = iota
	// TargetTwin is reading j's text against the other reading's image.
	TargetTwin
	// TargetAll is the sum of reading j's text against every image of the
	// pair, as the reference notebook's summed one-hot does.
	TargetAll
)

// Targets lists the targets in the order the explorer's t key cycles
// through them.
var Targets = []Target{TargetOwn, TargetTwin, TargetAll}

var targetNames = [...]string{TargetOwn: "own", TargetTwin: "twin", TargetAll: "all"}

// String is the one name of t on the screen, on the command line, in the
// configuration and in reports.
func (t Target) String() string {
	if t >= 0 && int(t) < len(targetNames) {
		return targetNames[t]
	}
	return fmt.Sprintf("Target(%d)", int(t))
}

// ParseTarget reads own, twin or all.
func ParseTarget(s string) (Target, error) {
	for i, n := range targetNames {
		if n == s {
			return Target(i), nil
		}
	}
	return 0, fmt.Errorf("unknown target %q (want own, twin or all)", s)
}

// Cells are the (image, reading) cells of a pair of n readings that t sums
// for reading j: its own image (own), the next reading's (twin), or every
// image of the pair (all).
func (t Target) Cells(j, n int) [][2]int {
	switch t {
	case TargetTwin:
		return [][2]int{{(j + 1) % n, j}}
	case TargetAll:
		cells := make([][2]int, n)
		for i := range n {
			cells[i] = [2]int{i, j}
		}
		return cells
	}
	return [][2]int{{j, j}}
}

// Settings are what was explained, as the report writes them.
type Settings struct {
	Checkpoint string
	Method     explain.Method
	Start      explain.StartLayer
	// TextStart is the text encoder's start layer, nil when Start's.
	TextStart *explain.StartLayer
	Target    Target
}

// New starts the report of reading j of p: what the pair and the settings
// say. The caller adds the model's values and then calls Finish.
func New(p *loader.Pair, j int, text string, s Settings) Reading {
	rd := &p.Readings[j]
	r := Reading{
		Schema: Schema, Pair: p.ID, Reading: j, Sentence: p.Sentence, Ambiguity: p.Ambiguity,
		Tree: rd.Tree, Gloss: rd.Gloss, Text: text, Checkpoint: s.Checkpoint, Method: s.Method,
		Target: s.Target.String(), StartLayer: "-",
	}
	// Only Chefer's rule reads a start layer; the baselines ignore it.
	if s.Method == explain.Chefer {
		r.StartLayer = s.Start.String()
		if s.TextStart != nil {
			r.StartLayerText = s.TextStart.String()
		}
	}
	return r
}

// SetLogits records the logits of the reading's text against the pair's
// images and whether its own image has the strictly highest.
func (r *Reading) SetLogits(logits []float64) error {
	if r.Reading < 0 || r.Reading >= len(logits) {
		return fmt.Errorf("report: reading %d of %d logits", r.Reading, len(logits))
	}
	r.Logits = logits
	own := logits[r.Reading]
	r.Correct = true
	for i, l := range logits {
		if i != r.Reading && l >= own {
			r.Correct = false
		}
	}
	return nil
}

// Finish derives node and word relevance from the tokens' normalised
// relevance, gathered onto the tree linearized in style through
// trees.Align (a token over k parts gives each 1/k).
func (r *Reading) Finish(style trees.Style) error {
	tree, err := trees.Parse(r.Tree)
	if err != nil {
		return err
	}
	lin := trees.Linearize(tree, style)
	if lin.Text != r.Text {
		return fmt.Errorf("report: the model read %q, not the tree's %s linearization", r.Text, style)
	}
	offs := make([][2]int, len(r.Tokens))
	vals := make([]float64, len(r.Tokens))
	for k, t := range r.Tokens {
		offs[k], vals[k] = [2]int{t.Start, t.End}, float64(t.Normalized)
	}
	al, err := trees.Align(lin, offs)
	if err != nil {
		return err
	}
	rel, err := al.Aggregate(vals)
	if err != nil {
		return err
	}
	r.Nodes, r.Words = rel.Scores(tree)
	r.Unassigned = rel.Unassigned
	return nil
}

// Write writes r as indented JSON, dataset text escaped for a terminal
// (termtext.JSON), and a newline.
func (r *Reading) Write(w io.Writer) error {
	data, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(termtext.JSON(data), '\n'))
	return err
}
