package model

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/trees"
)

// Probing asks which structure the model sees in each image of a pair.
//
// Each reading's tree is compared with its alternatives (the trees one
// re-attachment away, trees.Reattachments) and with the trees of the
// pair's other readings, which are usually among them: every structure is
// scored against every image of the pair. A reading is structurally
// discriminated when, among its structures, its own image gives the
// strictly highest logit to its own tree and each other reading's image to
// that reading's tree. The structural-discrimination score is the
// percentage of readings that are.

// The roles of a probed structure.
const (
	RoleOriginal    = "original"    // the probed reading's own tree
	RoleReading     = "reading"     // another reading's tree
	RoleAlternative = "alternative" // an alternative that is no reading's tree
)

// Structure is one tree a reading was compared with.
type Structure struct {
	Role string `json:"role"`
	// Reading is the index of the pair's reading whose tree this is, -1
	// for an alternative that is no reading's.
	Reading int `json:"reading"`
	// Tree is the bracketing (trees.Format) and Text what the text encoder
	// read.
	Tree string `json:"tree"`
	Text string `json:"text"`
	// Move says how the tree differs from the probed reading's: nil for
	// the original, and for another reading's tree that no single
	// re-attachment reaches.
	Move *trees.Alternative `json:"move,omitempty"`
	// Logits are against each image of the pair, in reading order.
	Logits []float64 `json:"logits"`
	// Margin is the logit for the probed reading's image minus the highest
	// for another image: how much the structure prefers that image.
	Margin float64 `json:"margin"`
	// Ranks holds, per image, the structure's rank among the reading's
	// structures by that image's logit: 1 plus how many score higher.
	Ranks []int `json:"ranks"`
}

// ReadingProbe is one reading of a pair and the structures it was compared
// with, highest margin first.
type ReadingProbe struct {
	Pair    string `json:"pair"`
	Family  string `json:"family"`
	Reading int    `json:"reading"`
	// Words are the sentence's words, which the spans of a Move index.
	Words      []string    `json:"words"`
	Structures []Structure `json:"structures"`
	// OwnRank is the rank of the reading's tree for its own image;
	// OtherRank the worst rank of another reading's tree for that reading's
	// image.
	OwnRank   int `json:"own_rank"`
	OtherRank int `json:"other_rank"`
	// Reachable says that every other reading's tree is an alternative.
	Reachable     bool `json:"reachable"`
	Discriminated bool `json:"discriminated"`
}

// ProbeTally sums up probed readings.
type ProbeTally struct {
	Readings      int `json:"readings"`
	Discriminated int `json:"discriminated"`
	// Score is Discriminated / Readings in percent.
	Score     float64 `json:"score"`
	Reachable int     `json:"reachable"`
	// Structures, OwnRank and OtherRank are means over the readings.
	Structures float64 `json:"structures"`
	OwnRank    float64 `json:"own_rank"`
	OtherRank  float64 `json:"other_rank"`
}

func (t *ProbeTally) add(r *ReadingProbe) {
	n := float64(t.Readings)
	t.Readings++
	if r.Discriminated {
		t.Discriminated++
	}
	if r.Reachable {
		t.Reachable++
	}
	mean := func(m *float64, v int) { *m = (*m*n + float64(v)) / (n + 1) }
	mean(&t.Structures, len(r.Structures))
	mean(&t.OwnRank, r.OwnRank)
	mean(&t.OtherRank, r.OtherRank)
	t.Score = 100 * float64(t.Discriminated) / float64(t.Readings)
}

// ProbeFamily is the tally of one ambiguity family.
type ProbeFamily struct {
	Family string `json:"family"`
	ProbeTally
}

// ProbeResult is a probe of some pairs.
type ProbeResult struct {
	Style trees.Style `json:"style"`
	ProbeTally
	Families []ProbeFamily `json:"families"`
	// Probes are every probed reading, pairs in the order asked for.
	Probes []ReadingProbe `json:"probes"`
	// Truncated counts the inputs cut to the context length.
	Truncated int `json:"truncated"`
}

// Probe scores, for every reading of the pairs of split at idx (all of them
// when idx is nil), the reading's tree, its alternatives and the other
// readings' trees against the pair's images (see Structure), one forward
// pass per o.ChunkPairs pairs. o.Style must write brackets: with
// StyleWords every structure would read the same sentence. It stops with
// ctx's error, between chunks, when ctx is cancelled. With o.Group, each
// rank probes its share of idx and every rank returns the whole result.
func Probe(ctx context.Context, m *CLIP, tok *tokenizer.Tokenizer, split Split, idx []int, o EvalOptions) (*ProbeResult, error) {
	if o.Style == trees.StyleWords {
		return nil, errors.New("probe: style words reads the same sentence for every structure; probe a linearized tree")
	}
	if idx == nil && split != nil {
		for i := range split.Len() {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil, errors.New("probe: no pairs")
	}
	prep, w, chunk, done, err := o.resolve(m)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := newBatcher(m, tok, split, o.Style, prep)
	lo, hi := o.share(len(idx))
	var mine probeShare
	prepare := func(a, z int) (*probeChunk, error) { return prepareProbe(b, idx[lo+a:lo+z]) }
	for c := range prefetchChunks(ctx, hi-lo, chunk, prepare) {
		if c.err != nil {
			return nil, c.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mine.Truncated += c.v.in.truncated
		lpt, err := c.v.in.logits(w, m)
		if err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
		for _, r := range c.v.readings {
			mine.Probes = append(mine.Probes, *r.score(lpt, c.v.in.images))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	shares := []probeShare{mine}
	if o.Group != nil {
		if shares, err = gather(o, w, m, split, idx, mine); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
	}
	res := &ProbeResult{Style: o.Style}
	families := map[string]*ProbeTally{}
	for _, sh := range shares {
		res.Truncated += sh.Truncated
		res.Probes = append(res.Probes, sh.Probes...)
	}
	for i := range res.Probes {
		rp := &res.Probes[i]
		res.ProbeTally.add(rp)
		if families[rp.Family] == nil {
			families[rp.Family] = &ProbeTally{}
		}
		families[rp.Family].add(rp)
	}
	for _, name := range slices.Sorted(maps.Keys(families)) {
		res.Families = append(res.Families, ProbeFamily{Family: name, ProbeTally: *families[name]})
	}
	return res, nil
}

// probeShare is what one process probed: its readings in order.
type probeShare struct {
	Probes    []ReadingProbe
	Truncated int
}

// probeChunk is a few pairs' readings ready for the model.
type probeChunk struct {
	readings []*probeReading
	in       *Inputs
}

// probeReading is a reading with its structures before scoring: structure
// s is row rows[s] of the logits, image k column cols[k].
type probeReading struct {
	rp   ReadingProbe
	rows []int
	cols []int
	// of[k] is the index of reading k's tree among the structures.
	of []int
}

func prepareProbe(b *batcher, idx []int) (*probeChunk, error) {
	c := &probeChunk{in: newChunkInputs(b)}
	for _, i := range idx {
		p, err := b.split.Pair(i)
		if err != nil {
			return nil, err
		}
		if len(p.Readings) < 2 {
			return nil, fmt.Errorf("pair %s has %d reading; probing needs two or more", p.ID, len(p.Readings))
		}
		ts := make([]*trees.Node, len(p.Readings))
		for r := range p.Readings {
			if ts[r], err = trees.Parse(p.Readings[r].Tree); err != nil {
				return nil, fmt.Errorf("pair %s: readings[%d].tree: %w", p.ID, r, err)
			}
		}
		var cols []int
		for r := range p.Readings {
			col, err := c.in.Image(&p, r)
			if err != nil {
				return nil, err
			}
			cols = append(cols, col)
		}
		for r := range p.Readings {
			c.readings = append(c.readings, newProbeReading(c.in, &p, ts, r, cols, b.style))
		}
	}
	return c, c.in.Pack()
}

// newProbeReading lists reading r's structures (trees.Candidates) as rows
// of in.
func newProbeReading(in *Inputs, p *loader.Pair, ts []*trees.Node, r int, cols []int, style trees.Style) *probeReading {
	cs, of, reachable := trees.Candidates(ts, r, style)
	pr := &probeReading{rp: ReadingProbe{Pair: p.ID, Family: family(p), Reading: r, Words: ts[r].Words(), Reachable: reachable}, cols: cols, of: of}
	for _, c := range cs {
		s := Structure{Role: RoleAlternative, Reading: c.Reading, Tree: trees.Format(c.Tree), Text: c.Text, Move: c.Move}
		switch c.Reading {
		case -1:
		case r:
			s.Role = RoleOriginal
		default:
			s.Role = RoleReading
		}
		pr.rp.Structures = append(pr.rp.Structures, s)
		pr.rows = append(pr.rows, in.Text(c.Text))
	}
	return pr
}

// score fills in the logits, ranks and verdict from the chunk's logits lpt,
// images columns wide, and sorts the structures by margin.
func (pr *probeReading) score(lpt []float32, images int) *ReadingProbe {
	rp := &pr.rp
	ss := rp.Structures
	for s := range ss {
		ss[s].Logits = make([]float64, len(pr.cols))
		for k, col := range pr.cols {
			ss[s].Logits[k] = float64(lpt[pr.rows[s]*images+col])
		}
	}
	// top[k] says that structure of[k] alone has image k's highest logit.
	top := make([]bool, len(pr.cols))
	for k := range pr.cols {
		for s := range ss {
			rank := 1
			for t := range ss {
				if ss[t].Logits[k] > ss[s].Logits[k] {
					rank++
				}
			}
			ss[s].Ranks = append(ss[s].Ranks, rank)
		}
		own := pr.of[k]
		top[k] = true
		for t := range ss {
			if t != own && ss[t].Logits[k] >= ss[own].Logits[k] {
				top[k] = false
			}
		}
	}
	rp.Discriminated = !slices.Contains(top, false)
	rp.OwnRank = ss[pr.of[rp.Reading]].Ranks[rp.Reading]
	for k := range pr.cols {
		if k != rp.Reading {
			rp.OtherRank = max(rp.OtherRank, ss[pr.of[k]].Ranks[k])
		}
	}
	for s := range ss {
		best := ss[s].Logits[(rp.Reading+1)%len(pr.cols)]
		for k, v := range ss[s].Logits {
			if k != rp.Reading {
				best = max(best, v)
			}
		}
		ss[s].Margin = ss[s].Logits[rp.Reading] - best
	}
	// Stable, so that among equal margins the original stays first.
	slices.SortStableFunc(ss, func(a, b Structure) int {
		switch {
		case a.Margin > b.Margin:
			return -1
		case a.Margin < b.Margin:
			return 1
		}
		return 0
	})
	return rp
}
