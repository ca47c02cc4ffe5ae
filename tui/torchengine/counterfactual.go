package torchengine

import (
	"context"
	"fmt"
	"image"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui"
)

// ScoreVariants implements tui.Counterfactual: the pair and its variants
// are laid out in one model.Inputs (model.AddVariants) and scored in one
// forward pass on the engine's worker.
func (e *TorchEngine) ScoreVariants(ctx context.Context, id string, vs []tui.Variant) ([][][]float64, error) {
	p, err := e.pair(id)
	if err != nil {
		return nil, err
	}
	mvs := make([]model.Variant, len(vs))
	for i, v := range vs {
		if mvs[i], err = e.variant(p, v); err != nil {
			return nil, fmt.Errorf("pair %s: variant %d: %w", id, i+1, err)
		}
	}
	in := model.NewInputs(e.tok, e.textContext, e.pixels)
	l, err := model.AddVariants(in, p, e.variantSource(), mvs)
	if err != nil {
		return nil, err
	}
	lpt, err := e.logits(ctx, in)
	if err != nil {
		return nil, err
	}
	return l.Logits(lpt, in.Images()), nil
}

// variantSource is how the engine's pairs are read for their variants.
func (e *TorchEngine) variantSource() model.VariantSource {
	size := func(p *loader.Pair, r int) (image.Point, error) {
		img, err := e.opt.Data.Image(&p.Readings[r])
		if err != nil {
			return image.Point{}, fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, r, p.Readings[r].Image, err)
		}
		return img.Bounds().Size(), nil
	}
	return model.VariantSource{Style: e.info.Style, Prep: e.prep, Size: size}
}

// variant turns the explorer's variant into the model's.
func (e *TorchEngine) variant(p *loader.Pair, v tui.Variant) (model.Variant, error) {
	mv := model.Variant{Swap: v.Swap, Neutral: v.Neutral}
	if v.Fill != "" {
		f, err := model.ParseFill(v.Fill)
		if err != nil {
			return mv, err
		}
		mv.Fill = f
		mv.Mask = make([][]loader.Box, len(p.Readings))
		for r := range p.Readings {
			for _, b := range p.Readings[r].Boxes {
				if b.Role == loader.RoleEvidence {
					mv.Mask[r] = append(mv.Mask[r], b)
				}
			}
		}
	}
	if v.DropLabel == "" {
		return mv, nil
	}
	r := v.DropReading
	if r < 0 || r >= len(p.Readings) {
		return mv, fmt.Errorf("no reading %d", r)
	}
	t, err := trees.Parse(p.Readings[r].Tree)
	if err != nil {
		return mv, fmt.Errorf("readings[%d].tree: %w", r, err)
	}
	n := findSpan(t, v.DropLabel, v.DropStart, v.DropEnd)
	if n == nil {
		return mv, fmt.Errorf("reading %d has no %s over words %d to %d", r, v.DropLabel, v.DropStart, v.DropEnd)
	}
	drop, err := model.ConstituentTokens(e.tok, e.textContext, trees.Linearize(t, e.info.Style), n)
	if err != nil {
		return mv, err
	}
	mv.Drop = make([][]int, len(p.Readings))
	mv.Drop[r] = drop
	return mv, nil
}

// findSpan is the node of t labelled label over the words [start, end).
func findSpan(t *trees.Node, label string, start, end int) *trees.Node {
	var found *trees.Node
	word := 0
	var walk func(n *trees.Node)
	walk = func(n *trees.Node) {
		if found != nil {
			return
		}
		first := word
		if n.IsLeaf() {
			if len(n.Words()) > 0 {
				word++
			}
			return
		}
		for _, c := range n.Children {
			walk(c)
		}
		if found == nil && n.Label == label && first == start && word == end {
			found = n
		}
	}
	walk(t)
	return found
}
