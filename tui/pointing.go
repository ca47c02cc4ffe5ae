package tui

import (
	"fmt"

	"github.com/lavascope/lavascope/analysis"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
)

// readingPointing plays the pointing game of one reading's image map
// against the evidence boxes of the image it lies over, and measures the
// share of the map's relevance inside each box alone (mass per box, in
// the boxes' order); nil without boxes or without a square patch grid. It
// decodes the image for its size, so it runs in a command, not on the UI
// goroutine.
func readingPointing(imgs *imageCache, pair *loader.Pair, rr ReadingRelevance, prep loader.PreprocessConfig) (*explain.Pointing, []float64, error) {
	if rr.Image < 0 || rr.Image >= len(pair.Readings) {
		return nil, nil, nil
	}
	r := &pair.Readings[rr.Image]
	boxes := r.BoxesWithRole(loader.RoleEvidence)
	g := rr.Patches
	if len(boxes) == 0 || g.W == 0 || g.W != g.H {
		return nil, nil, nil
	}
	img, err := imgs.get(r)
	if err != nil {
		return nil, nil, err
	}
	b := img.Bounds()
	geo, err := explain.NewGeometry(b.Dx(), b.Dy(), prep)
	if err != nil {
		return nil, nil, err
	}
	game := func(boxes []loader.Box) (explain.Pointing, error) {
		cover, err := geo.PatchCoverage(g.W, boxes)
		if err != nil {
			return explain.Pointing{}, err
		}
		pt, err := explain.PointingGame(g.V, cover)
		if err != nil {
			return explain.Pointing{}, fmt.Errorf("pair %s image %s: %w", pair.ID, letter(rr.Image), err)
		}
		return pt, nil
	}
	pt, err := game(boxes)
	if err != nil {
		return nil, nil, err
	}
	mass := make([]float64, len(boxes))
	for i, box := range boxes {
		one, err := game([]loader.Box{box})
		if err != nil {
			return nil, nil, err
		}
		mass[i] = one.Mass
	}
	return &pt, mass, nil
}

// analyse reads each reading's relevance in context and against its twin
// (package analysis), on copies of the engine's reports, which the export
// writes as the engine gave them. Nil where the engine gives no reports or
// the analysis fails: the pair view then shows the raw tokens.
func analyse(exp *Explanation) []*report.Analysis {
	rs := make([]*report.Reading, len(exp.Readings))
	for j, rr := range exp.Readings {
		if rr.Report == nil {
			return nil
		}
		c := *rr.Report
		rs[j] = &c
	}
	if analysis.Pair(rs) != nil {
		return nil
	}
	out := make([]*report.Analysis, len(rs))
	for j, r := range rs {
		out[j] = r.Analysis
	}
	return out
}

// pairPoint is a pair's pointing game over its readings that have boxes:
// the share of hits and the mean relevance mass inside the boxes.
type pairPoint struct {
	hits, mass float64
	n          int
}

// pairPointing is the pair's pointing game under the shown settings, once
// it is explained and where it has boxes.
func (m *Model) pairPointing(id string) (pairPoint, bool) {
	e := m.exps[m.currentKey(id)]
	if e == nil {
		return pairPoint{}, false
	}
	var pp pairPoint
	for _, pt := range e.point {
		if pt == nil {
			continue
		}
		pp.n++
		if pt.Hit {
			pp.hits++
		}
		pp.mass += pt.Mass
	}
	if pp.n == 0 {
		return pairPoint{}, false
	}
	pp.hits /= float64(pp.n)
	pp.mass /= float64(pp.n)
	return pp, true
}
