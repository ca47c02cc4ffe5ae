package figure

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
)

// testPair is the first synthetic pair, 96 pixels a side, with its
// evidence boxes.
func testPair(t testing.TB) *loader.Pair {
	t.Helper()
	pairs, err := synth.Generate(synth.Config{Pairs: 1, Seed: 1, Size: 96})
	if err != nil {
		t.Fatal(err)
	}
	return &pairs[0]
}

// testInput is a figure of p for target, with hand-made relevance: each
// node's relevance decreases with its preorder index, and each image's
// 7×7 patch relevance peaks at a corner that differs by image.
func testInput(t testing.TB, p *loader.Pair, target report.Target) Input {
	t.Helper()
	n := len(p.Readings)
	in := Input{Pair: p, Prep: loader.DefaultPreprocessConfig(), Colormap: explain.Viridis}
	last, err := explain.ParseStartLayer("last")
	if err != nil {
		t.Fatal(err)
	}
	for j := range n {
		img := p.Readings[j].Pixels
		if img == nil {
			t.Fatalf("reading %d has no pixels", j)
		}
		in.Images = append(in.Images, img)
		r := report.New(p, j, "", report.Settings{Checkpoint: "test", Method: explain.Chefer, Start: last, Target: target})
		r.Cells = target.Cells(j, n)
		logits := []float64{20, 21}
		if j == 0 {
			logits = []float64{22.5, 21.25}
		}
		if err := r.SetLogits(logits); err != nil {
			t.Fatal(err)
		}
		tree, err := trees.Parse(r.Tree)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		tree.Walk(func(nd *trees.Node) bool {
			r.Nodes = append(r.Nodes, trees.NodeScore{Label: nd.Label, Word: nd.Word, Relevance: 1 / float64(1+k)})
			k++
			return true
		})
		seen := map[int]bool{}
		for _, c := range r.Cells {
			if seen[c[0]] {
				continue
			}
			seen[c[0]] = true
			v := make([]float32, 49)
			for q := range v {
				x, y := q%7, q/7
				if c[0] == 1 {
					x = 6 - x
				}
				v[q] = float32(math.Exp(-float64(x*x+y*y) / 8))
			}
			r.Images = append(r.Images, report.Image{Image: c[0], Grid: 7, Relevance: v})
		}
		in.Readings = append(in.Readings, r)
	}
	return in
}

// solid is a w×h image of one colour.
func solid(w, h int, c color.Color) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Rect, image.NewUniform(c), image.Point{}, draw.Src)
	return img
}
