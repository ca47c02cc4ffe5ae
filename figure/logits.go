package figure

import (
	"fmt"
	"math"
	"strings"
)

// logits lists reading j's logits against the pair's images, marking the
// image it picks and the cells its target explains, and says whether the
// reading is right.
func (l *layout) logits(j int, x, y, cw float64) float64 {
	r := l.in.Readings[j]
	h := l.para(x, y, cw, bold, 15, black, "Logits of text "+letter(j)+" against each image")
	h += 4
	pick, best := -1, math.Inf(-1)
	for i, v := range r.Logits {
		switch {
		case v > best:
			pick, best = i, v
		case v == best:
			pick = -1
		}
	}
	explained := map[int]bool{}
	for _, c := range r.Cells {
		if c[1] == j {
			explained[c[0]] = true
		}
	}
	for i, v := range r.Logits {
		base := y + h + 16
		l.text(x, base, regular, 15, black, anchorStart, "image "+letter(i)+" — "+l.whose(i, j))
		var marks []string
		if i == pick {
			marks = append(marks, "picked")
		}
		if explained[i] {
			marks = append(marks, "explained")
		}
		value := fmt.Sprintf("%.3f", v)
		if len(marks) > 0 {
			l.text(x+cw-110, base, italic, 13, grey, anchorEnd, strings.Join(marks, ", "))
		}
		st := regular
		if i == pick {
			st = bold
		}
		l.text(x+cw, base, st, 15, black, anchorEnd, value)
		h += 22
	}
	verdict, c := "", green
	switch {
	case r.Correct:
		verdict = fmt.Sprintf("right: its own image scores highest, by %.3f", r.Logits[j]-secondBest(r.Logits, j))
	case pick < 0:
		verdict, c = "wrong: a tie for the highest logit", red
	default:
		verdict, c = fmt.Sprintf("wrong: image %s scores %.3f above its own", letter(pick), best-r.Logits[j]), red
	}
	h += 4
	h += l.para(x, y+h, cw, bold, 15, c, verdict)
	return h
}

// secondBest is the highest logit other than logits[j].
func secondBest(logits []float64, j int) float64 {
	v := math.Inf(-1)
	for i, x := range logits {
		if i != j {
			v = math.Max(v, x)
		}
	}
	return v
}

// colorBar draws the one colour bar of the figure across the middle, with
// what its ends mean for the heatmaps and for the trees, and the key to
// the boxes.
func (l *layout) colorBar(inner float64) {
	cm := l.in.Colormap
	const bw, bh = 720.0, 20.0
	x := margin + (inner-bw)/2
	l.y += l.para(x, l.y, bw, bold, 15, black, "Colour scale ("+cm.Name()+")")
	l.y += 4
	const steps = 256
	for k := range steps {
		u := float32(k) / (steps - 1)
		l.fillRect(x+bw*float64(k)/steps, l.y, bw/steps+0.6, bh, cm.At(u))
	}
	l.strokeRect(x, l.y, bw, bh, 1, grey)
	l.y += bh + 16
	tree := 100 * l.treeScale
	if cm.Diverging() {
		l.text(x, l.y, regular, 13, black, anchorStart, fmt.Sprintf("image −max|R| · tree −%.1f%%", tree))
		l.text(x+bw/2, l.y, regular, 13, black, anchorMiddle, "0")
		l.text(x+bw, l.y, regular, 13, black, anchorEnd, fmt.Sprintf("image +max|R| · tree +%.1f%%", tree))
	} else {
		l.text(x, l.y, regular, 13, black, anchorStart, "image min · tree 0%")
		l.text(x+bw, l.y, regular, 13, black, anchorEnd, fmt.Sprintf("image max · tree %.1f%%", tree))
	}
	l.y += 10
	l.y += l.para(margin, l.y, inner, regular, 13, grey,
		"Heatmaps: each image's patch relevance, upsampled and scaled to its own range (the scale under each panel). "+
			"Tree: each node's share of the text's relevance (the tokens of its own brackets, label and word, "+
			"normalised over the text), coloured up to the largest in the figure.")
	l.y += 8
	l.strokeRect(margin, l.y+2, 22, 14, 3, BoxColor)
	l.text(margin+32, l.y+14, regular, 13, grey, anchorStart, "evidence box of the manifest: where the two readings' images differ")
	l.y += 20
}
