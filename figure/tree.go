package figure

import (
	"fmt"
	"image/color"
	"math"

	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/trees"
)

// treeNode is a node of a reading's tree in preorder, with its depth and
// the preorder index of its parent (-1 for the root).
type treeNode struct {
	n      *trees.Node
	depth  int
	parent int
}

// preorder lists the nodes of the reading's tree in the order of the
// report's Nodes, and checks that the two agree.
func (l *layout) preorder(j int) ([]treeNode, error) {
	r := l.in.Readings[j]
	root, err := trees.Parse(r.Tree)
	if err != nil {
		return nil, fmt.Errorf("reading %s: tree: %w", letter(j), err)
	}
	var out []treeNode
	var walk func(n *trees.Node, depth, parent int)
	walk = func(n *trees.Node, depth, parent int) {
		k := len(out)
		out = append(out, treeNode{n: n, depth: depth, parent: parent})
		for _, c := range n.Children {
			walk(c, depth+1, k)
		}
	}
	walk(root, 0, -1)
	if len(out) != len(r.Nodes) {
		return nil, fmt.Errorf("reading %s: the tree has %d nodes, the report %d", letter(j), len(out), len(r.Nodes))
	}
	for k, t := range out {
		if t.n.Label != r.Nodes[k].Label {
			return nil, fmt.Errorf("reading %s: node %d is %q in the tree, %q in the report", letter(j), k, t.n.Label, r.Nodes[k].Label)
		}
	}
	return out, nil
}

// scaleTrees sets the top of the trees' colour scale: the largest
// |relevance| of a node over all readings, so that the readings' trees
// compare on one scale.
func (l *layout) scaleTrees() {
	for _, r := range l.in.Readings {
		for _, nd := range r.Nodes {
			if !math.IsNaN(nd.Relevance) {
				l.treeScale = max(l.treeScale, math.Abs(nd.Relevance))
			}
		}
	}
	if !(l.treeScale > 0) || math.IsInf(l.treeScale, 0) {
		l.treeScale = 1
	}
}

// treeColor is the colour of relevance v on the trees' scale: 0 to the
// scale on a sequential map, −scale to +scale around the middle of a
// diverging one.
func (l *layout) treeColor(v float64) color.RGBA {
	cm := l.in.Colormap
	u := v / l.treeScale
	if cm.Diverging() {
		u = 0.5 + 0.5*u
	}
	if math.IsNaN(u) {
		u = 0
	}
	return cm.At(float32(math.Max(0, math.Min(1, u))))
}

// ink is black or white, whichever reads better on c.
func ink(c color.RGBA) color.RGBA {
	if 0.2126*float64(c.R)+0.7152*float64(c.G)+0.0722*float64(c.B) < 128 {
		return white
	}
	return black
}

// tree draws the reading's tree top-down, one node a row, each label on a
// chip in its relevance's colour and the relevance as a percentage of the
// text's on the right. A node's relevance is that of its own tokens (its
// brackets, label and word), not of its subtree.
func (l *layout) tree(j int, x, y, cw float64) (float64, error) {
	nodes, err := l.preorder(j)
	if err != nil {
		return 0, err
	}
	r := l.in.Readings[j]
	const valueW = 64.0
	maxDepth, headW := 0, 0.0
	for _, t := range nodes {
		maxDepth = max(maxDepth, t.depth)
		w := measure(bold, treeFont, termtext.Sanitize(t.n.Label)) + 10
		if t.n.IsLeaf() {
			w += 6 + measure(regular, treeFont+1, termtext.Sanitize(t.n.Word))
		}
		headW = max(headW, w)
	}
	indent := 22.0
	if maxDepth > 0 {
		indent = math.Max(8, math.Min(indent, (cw-valueW-headW)/float64(maxDepth)))
	}
	h := l.para(x, y, cw, bold, 15, black, "Parse tree, each node coloured by its relevance")
	top := y + h + 6
	row := func(k int) float64 { return top + float64(k)*treeRow }
	for k, t := range nodes {
		nx := x + float64(t.depth)*indent
		ry := row(k)
		if t.parent >= 0 {
			// The elbow from the parent's chip down to this row.
			px := x + float64(nodes[t.parent].depth)*indent + 6
			l.fillRect(px, row(t.parent)+treeChipH, 1.2, ry+treeChipH/2-row(t.parent)-treeChipH, rule)
			l.fillRect(px, ry+treeChipH/2, nx-px, 1.2, rule)
		}
		rel := r.Nodes[k].Relevance
		c := l.treeColor(rel)
		label := termtext.Sanitize(t.n.Label)
		lw := measure(bold, treeFont, label) + 10
		l.fillRect(nx, ry, lw, treeChipH, c)
		l.label(nx+5, ry+treeChipH-5, bold, treeFont, ink(c), label)
		if t.n.IsLeaf() {
			room := x + cw - valueW - (nx + lw + 6)
			l.text(nx+lw+6, ry+treeChipH-4.5, regular, treeFont+1, black, anchorStart, ellipsize(regular, treeFont+1, math.Max(room, 12), termtext.Sanitize(t.n.Word)))
		}
		l.text(x+cw, ry+treeChipH-5, regular, 13, grey, anchorEnd, fmt.Sprintf("%.1f%%", 100*rel))
	}
	return top - y + float64(len(nodes))*treeRow, nil
}
