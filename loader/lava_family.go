package loader

import (
	"strings"

	"github.com/lavascope/lavascope/trees"
)

// treeFamily names the family of ambiguity that separates two readings'
// trees, for corpora that name none (LAVA's lava.json does not): a
// constituent attached at different sites is an attachment ambiguity named
// after it (pp-attachment, vp-attachment, ...); otherwise a difference that
// spans a coordination is adjective-scope when an adjective precedes the
// conjunction inside it, coordination when not. Empty when the trees are
// equal, do not parse, or differ in another way.
func treeFamily(a, b string) string {
	ta, err := trees.Parse(a)
	if err != nil {
		return ""
	}
	tb, err := trees.Parse(b)
	if err != nil {
		return ""
	}
	d, err := trees.Diff(ta, tb)
	if err != nil || d.Equal() {
		return ""
	}
	if len(d.Moves) > 0 {
		label := strings.ToLower(baseLabel(d.Moves[0].Label))
		if label == "" {
			return ""
		}
		return label + "-attachment"
	}
	for _, div := range []*trees.Constituent{d.DivergenceA, d.DivergenceB} {
		if div == nil {
			continue
		}
		adjective, conjunction := false, false
		div.Node.Walk(func(n *trees.Node) bool {
			switch {
			case !n.IsLeaf():
			case n.Label == "CC":
				conjunction = true
				return false
			case !conjunction && strings.HasPrefix(n.Label, "JJ"):
				adjective = true
			}
			return !conjunction
		})
		switch {
		case conjunction && adjective:
			return "adjective-scope"
		case conjunction:
			return "coordination"
		}
	}
	return ""
}

// baseLabel drops a Penn Treebank label's function tags and indices:
// PP-LOC-2 and NP=1 are PP and NP; -NONE- stays.
func baseLabel(l string) string {
	if strings.HasPrefix(l, "-") {
		return l
	}
	if i := strings.IndexAny(l, "-="); i > 0 {
		return l[:i]
	}
	return l
}
