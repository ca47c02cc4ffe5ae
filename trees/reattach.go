package trees

import (
	"fmt"
	"slices"
	"strings"
)

// MoveKind names what an Alternative re-attaches.
type MoveKind uint8

const (
	// MovePP re-attaches a prepositional phrase.
	MovePP MoveKind = iota + 1
	// MoveClause re-attaches a subordinate or relative clause (SBAR, RRC).
	MoveClause
	// MoveParticiple re-attaches a participial clause: a VP headed by VBG or
	// VBN inside a noun phrase, (S (VP (VBG …) …)) inside a verb phrase.
	MoveParticiple
	// MoveScope changes which conjuncts of a coordination the premodifiers
	// before it scope over: all of them, or the first alone.
	MoveScope
)

var moveKindNames = [...]string{MovePP: "pp", MoveClause: "clause", MoveParticiple: "participle", MoveScope: "scope"}

func (k MoveKind) String() string {
	if k >= MovePP && k <= MoveScope {
		return moveKindNames[k]
	}
	return fmt.Sprintf("MoveKind(%d)", k)
}

// MarshalText writes the kind's name: pp, clause, participle or scope.
func (k MoveKind) MarshalText() ([]byte, error) {
	if k < MovePP || k > MoveScope {
		return nil, fmt.Errorf("invalid move kind %d", k)
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads a kind's name as MarshalText writes it.
func (k *MoveKind) UnmarshalText(b []byte) error {
	for i := MovePP; i <= MoveScope; i++ {
		if string(b) == moveKindNames[i] {
			*k = i
			return nil
		}
	}
	return fmt.Errorf("unknown move kind %q (want pp, clause, participle or scope)", b)
}

// Alternative is a tree over the same leaves, in the same order, as the tree
// it was made from, with one constituent attached elsewhere.
type Alternative struct {
	Tree *Node    `json:"-"`
	Kind MoveKind `json:"kind"`
	// Moved is what moved, as it stands in the source tree. For MoveScope it
	// is the run of premodifiers, labelled with their labels joined by
	// spaces ("DT JJ"), and its Node is the first of them.
	Moved Constituent `json:"moved"`
	// From is Moved's attachment site in the source tree and To its site in
	// Tree: its lowest ancestor whose word span is wider than its own (as
	// in Diff), or the root when there is none.
	From Constituent `json:"from"`
	To   Constituent `json:"to"`
}

// MaxAlternatives bounds what Reattachments returns: a real sentence has a
// handful of alternatives, and a pathological tree (hundreds of nested PPs)
// would otherwise have tens of thousands, each as large as the tree.
const MaxAlternatives = 100

// Reattachments returns the trees that differ from t by one re-attachment,
// each once, none equal to t, in preorder of what moves, at most
// MaxAlternatives of them. t is not changed and shares no node with the
// results, nor do the results with each other.
//
// A PP, a clause or a participial clause moves when it is not the first
// child of its parent: it is cut out (an adjunction node left with one child
// of its own category, as (NP (NP the chair)), is merged) and attached to
// each other NP or VP whose leaves end just before it, so that the leaves
// keep their order: a node on the right edge of what precedes it, the
// parent's ancestors included when it was the last child. Under an NP it is
// adjoined, (NP (NP the chair) (PP with a bag)); under a VP it becomes the
// VP's last child. A participial clause is a bare VP under an NP and (S (VP
// …)) under a VP.
//
// A coordination's scope changes between (NP (DT the) (JJ yellow) (NX (NX
// (NN chair)) (CC and) (NX (NN bag)))), where the premodifiers scope over
// every conjunct, and (NP (NP (DT the) (JJ yellow) (NN chair)) (CC and) (NP
// (NN bag))), where they belong to the first conjunct alone.
func Reattachments(t *Node) []Alternative {
	x := indexTree(t)
	seen := map[string]bool{Format(t): true}
	var out []Alternative
	// Two moves rarely make the same tree, but a tree built to make many
	// would otherwise be copied and printed for each of them.
	tries := 8 * MaxAlternatives
	add := func(a Alternative) bool {
		tries--
		if f := Format(a.Tree); !seen[f] && levels(a.Tree) <= MaxDepth {
			seen[f] = true
			out = append(out, a)
		}
		return len(out) < MaxAlternatives && tries > 0
	}
	for _, n := range x.pre {
		if kind, ok := x.movable(n); ok && !x.reattach(n, kind, add) {
			break
		}
		if base(n.Label) == "NP" && !n.IsLeaf() {
			if a, ok := x.widen(n); ok && !add(a) {
				break
			}
			if a, ok := x.narrow(n); ok && !add(a) {
				break
			}
		}
	}
	return out
}

// indexed is a tree with each node's parent and spans.
type indexed struct {
	root   *Node
	pre    []*Node
	parent map[*Node]*Node
	// leaves counts every leaf, empty elements included, so that sites
	// found by it keep the empty elements in place too; words counts the
	// words, for the spans an Alternative reports.
	leaves, words map[*Node][2]int
	// endingAt lists, in preorder, the nodes whose leaves end at a position.
	endingAt map[int][]*Node
}

func indexTree(t *Node) *indexed {
	x := &indexed{root: t, parent: map[*Node]*Node{}, leaves: map[*Node][2]int{}, words: map[*Node][2]int{}, endingAt: map[int][]*Node{}}
	leaf, word := 0, 0
	var walk func(n *Node)
	walk = func(n *Node) {
		x.pre = append(x.pre, n)
		l0, w0 := leaf, word
		if n.IsLeaf() {
			leaf++
			if !n.isEmptyElement() {
				word++
			}
		}
		for _, c := range n.Children {
			x.parent[c] = n
			walk(c)
		}
		x.leaves[n], x.words[n] = [2]int{l0, leaf}, [2]int{w0, word}
	}
	walk(t)
	for _, n := range x.pre {
		e := x.leaves[n][1]
		x.endingAt[e] = append(x.endingAt[e], n)
	}
	return x
}

func (x *indexed) constituent(n *Node) Constituent {
	s := x.words[n]
	return Constituent{Label: n.Label, Start: s[0], End: s[1], Node: n}
}

// site is n's lowest ancestor with a wider word span, or the root.
func (x *indexed) site(n *Node) Constituent {
	s := x.words[n]
	for p := x.parent[n]; p != nil; p = x.parent[p] {
		if x.words[p] != s {
			return x.constituent(p)
		}
	}
	return x.constituent(x.root)
}

// base is a label without its function tags and indices: NP-SBJ=2 is NP.
// Labels that start with '-' (-NONE-, -LRB-) are kept whole.
func base(label string) string {
	if i := strings.IndexAny(label, "-="); i > 0 {
		return label[:i]
	}
	return label
}

// participleHead reports whether n is a VP whose first preterminal child is
// a gerund or a past participle.
func participleHead(n *Node) bool {
	if base(n.Label) != "VP" {
		return false
	}
	for _, c := range n.Children {
		if c.IsLeaf() {
			return c.Label == "VBG" || c.Label == "VBN"
		}
	}
	return false
}

// movable says whether n can move and as what.
func (x *indexed) movable(n *Node) (MoveKind, bool) {
	p := x.parent[n]
	if p == nil || n.IsLeaf() || p.Children[0] == n {
		return 0, false
	}
	if w := x.words[n]; w[0] == w[1] {
		return 0, false
	}
	switch l := base(n.Label); {
	case l == "PP":
		return MovePP, true
	case l == "SBAR" || l == "RRC":
		return MoveClause, true
	case participleHead(n) && base(p.Label) == "NP":
		return MoveParticiple, true
	case l == "S" && len(n.Children) == 1 && participleHead(n.Children[0]) && base(p.Label) == "VP":
		return MoveParticiple, true
	}
	return 0, false
}

// reattach passes on each tree with n cut out and attached at another site,
// until add returns false; it returns add's last answer.
func (x *indexed) reattach(n *Node, kind MoveKind, add func(Alternative) bool) bool {
	p := x.parent[n]
	// Where n goes, the leaves before it must end: on the right edge of its
	// left sibling, or, when n is the last child, at p and the ancestors
	// that n ends too.
	var hosts []*Node
	if p.Children[len(p.Children)-1] == n {
		for a := p; a != nil && x.leaves[a][1] == x.leaves[n][1]; a = x.parent[a] {
			hosts = append(hosts, a)
		}
		slices.Reverse(hosts)
	}
	hosts = append(hosts, x.endingAt[x.leaves[n][0]]...)
	// The site n leaves is p, or the sibling p merges with.
	merged := (*Node)(nil)
	if len(p.Children) == 2 && base(p.Children[0].Label) == base(p.Label) {
		merged = p.Children[0]
	}
	for _, h := range hosts {
		hb := base(h.Label)
		if h.IsLeaf() || h == p || h == merged || (hb != "NP" && hb != "VP") {
			continue
		}
		var moved *Node
		alt := x.copyEdited(func(orig, c *Node) *Node {
			switch orig {
			case n:
				return nil
			case p:
				if merged != nil {
					c.Word, c.Children = c.Children[0].Word, c.Children[0].Children
				}
			}
			if orig != h {
				return c
			}
			moved = clone(n)
			if hb == "NP" {
				if kind == MoveParticiple && base(moved.Label) == "S" {
					moved = moved.Children[0]
				}
				return &Node{Label: c.Label, Children: []*Node{{Label: base(c.Label), Children: c.Children}, moved}}
			}
			if kind == MoveParticiple && base(moved.Label) == "VP" {
				moved = &Node{Label: "S", Children: []*Node{moved}}
			}
			c.Children = append(c.Children, moved)
			return c
		})
		if !add(Alternative{Tree: alt, Kind: kind, Moved: x.constituent(n), From: x.site(n), To: indexTree(alt).site(moved)}) {
			return false
		}
	}
	return true
}

// copyEdited copies the tree bottom-up, passing each node and its copy (its
// children already copied and edited) to edit, which returns what stands in
// its place, nil for nothing. The outer brackets that Parse removes are
// removed from the result, so that it reads back as itself.
func (x *indexed) copyEdited(edit func(orig, c *Node) *Node) *Node {
	var cp func(n *Node) *Node
	cp = func(n *Node) *Node {
		c := &Node{Label: n.Label, Word: n.Word}
		for _, k := range n.Children {
			if kc := cp(k); kc != nil {
				c.Children = append(c.Children, kc)
			}
		}
		return edit(n, c)
	}
	t := cp(x.root)
	for (t.Label == "" || t.Label == "ROOT" || t.Label == "TOP") && len(t.Children) == 1 {
		t = t.Children[0]
	}
	return t
}

// conjunct reports whether a child of a coordination is one of its
// conjuncts rather than a conjunction or punctuation.
func conjunct(n *Node) bool {
	switch base(n.Label) {
	case "CC", "CONJP", ",", ":", ";", ".", "``", "''", "-LRB-", "-RRB-", "HYPH":
		return false
	}
	return true
}

// coordination reports whether n's children coordinate two or more
// conjuncts with a conjunction, the first child being a conjunct.
func coordination(n *Node) bool {
	if n.IsLeaf() || !conjunct(n.Children[0]) {
		return false
	}
	cc, conj := false, 0
	for _, c := range n.Children {
		if conjunct(c) {
			conj++
		} else if l := base(c.Label); l == "CC" || l == "CONJP" {
			cc = true
		}
	}
	return cc && conj >= 2
}

// content is what a conjunct holds: its children, or itself when it is a
// preterminal.
func content(n *Node) []*Node {
	if n.IsLeaf() {
		return []*Node{n}
	}
	return n.Children
}

// narrow turns an NP whose premodifiers scope over a coordination, its last
// child, into one whose first conjunct alone has them.
func (x *indexed) narrow(n *Node) (Alternative, bool) {
	if len(n.Children) < 2 || !coordination(n.Children[len(n.Children)-1]) {
		return Alternative{}, false
	}
	var first *Node
	alt := x.copyEdited(func(orig, c *Node) *Node {
		if orig != n {
			return c
		}
		pre, coord := c.Children[:len(c.Children)-1], c.Children[len(c.Children)-1]
		first = &Node{Label: "NP", Children: append(slices.Clip(pre), content(coord.Children[0])...)}
		kids := []*Node{first}
		for _, k := range coord.Children[1:] {
			if conjunct(k) {
				k = &Node{Label: "NP", Children: content(k)}
			}
			kids = append(kids, k)
		}
		return &Node{Label: c.Label, Children: kids}
	})
	return x.scope(alt, n.Children[:len(n.Children)-1], n, first), true
}

// widen turns an NP that coordinates noun phrases, the first a head noun
// with premodifiers, into one whose premodifiers scope over every conjunct.
func (x *indexed) widen(n *Node) (Alternative, bool) {
	if !coordination(n) {
		return Alternative{}, false
	}
	f := n.Children[0]
	if base(f.Label) != "NP" || len(f.Children) < 2 || !f.Children[len(f.Children)-1].IsLeaf() {
		return Alternative{}, false
	}
	for _, k := range n.Children {
		if conjunct(k) && base(k.Label) != "NP" {
			return Alternative{}, false
		}
	}
	var wide *Node
	alt := x.copyEdited(func(orig, c *Node) *Node {
		if orig != n {
			return c
		}
		cf := c.Children[0]
		pre, head := cf.Children[:len(cf.Children)-1], cf.Children[len(cf.Children)-1]
		coord := &Node{Label: "NX", Children: []*Node{{Label: "NX", Children: content(head)}}}
		for _, k := range c.Children[1:] {
			if conjunct(k) {
				k = &Node{Label: "NX", Children: content(k)}
			}
			coord.Children = append(coord.Children, k)
		}
		wide = &Node{Label: c.Label, Children: append(slices.Clip(pre), coord)}
		return wide
	})
	return x.scope(alt, f.Children[:len(f.Children)-1], f, wide), true
}

// scope describes alt, a change of scope of the premodifiers pre, which
// stand under from in the source and under to in alt.
func (x *indexed) scope(alt *Node, pre []*Node, from, to *Node) Alternative {
	var labels []string
	for _, m := range pre {
		labels = append(labels, m.Label)
	}
	moved := Constituent{Label: strings.Join(labels, " "), Start: x.words[pre[0]][0], End: x.words[pre[len(pre)-1]][1], Node: pre[0]}
	return Alternative{Tree: alt, Kind: MoveScope, Moved: moved, From: x.constituent(from), To: indexTree(alt).constituent(to)}
}

func clone(n *Node) *Node {
	c := &Node{Label: n.Label, Word: n.Word}
	if len(n.Children) > 0 {
		c.Children = make([]*Node, len(n.Children))
		for i, k := range n.Children {
			c.Children[i] = clone(k)
		}
	}
	return c
}

// levels is how deeply t's brackets nest.
func levels(t *Node) int {
	d := 0
	for _, c := range t.Children {
		d = max(d, levels(c))
	}
	return d + 1
}
