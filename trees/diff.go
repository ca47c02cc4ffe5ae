package trees

import (
	"fmt"
	"strconv"
	"strings"
)

// Constituent is a node with its word span [Start, End), indices into the
// tree's Words().
type Constituent struct {
	Label string `json:"label"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	Node  *Node  `json:"-"`
}

// Move is a constituent that the two trees attach at different sites and
// whose removal makes them identical: the attachment an ambiguity is about.
type Move struct {
	// Constituent is the moved constituent as it stands in tree A; B is the
	// same constituent in tree B.
	Constituent
	B *Node `json:"-"`
	// SiteA and SiteB are its attachment sites: its lowest ancestor in each
	// tree whose span is wider than its own.
	SiteA Constituent `json:"site_a"`
	SiteB Constituent `json:"site_b"`
}

// TreeDiff is what separates two trees over the same words.
type TreeDiff struct {
	A, B  *Node
	Words []string
	// OnlyA and OnlyB are the labelled spans of one tree that the other
	// lacks, in preorder.
	OnlyA, OnlyB []Constituent
	// DivergenceA and DivergenceB are the smallest constituent, present in
	// both trees, that holds every difference; nil when the trees are equal
	// or differ at the root.
	DivergenceA, DivergenceB *Constituent
	// Moves are the moved constituents, in preorder of A.
	Moves []Move

	info  map[*Node]spanInfo
	match map[*Node]*Node // both directions
	order map[*Node]int   // preorder index within its own tree
	inA   map[*Node]bool
}

type spanInfo struct {
	parent     *Node
	start, end int
}

// Diff compares a and b, which must have the same words and share no nodes.
func Diff(a, b *Node) (*TreeDiff, error) {
	wa, wb := a.Words(), b.Words()
	if err := sameWords(wa, wb); err != nil {
		return nil, err
	}
	d := &TreeDiff{A: a, B: b, Words: wa, info: map[*Node]spanInfo{}, match: map[*Node]*Node{}, order: map[*Node]int{}, inA: map[*Node]bool{}}
	preA := d.index(a)
	for _, n := range preA {
		d.inA[n] = true
	}
	preB := d.index(b)
	for _, n := range preB {
		if d.inA[n] {
			return nil, fmt.Errorf("trees share the node (%s ...); diff two separately parsed trees", n.Label)
		}
	}

	type key struct {
		label, word string
		start, end  int
	}
	keyOf := func(n *Node) key {
		k := key{label: n.Label, start: d.info[n].start, end: d.info[n].end}
		if n.isEmptyElement() {
			k.word = n.Word
		}
		return k
	}
	inB := map[key][]*Node{}
	for _, n := range preB {
		inB[keyOf(n)] = append(inB[keyOf(n)], n)
	}
	for _, n := range preA {
		k := keyOf(n)
		if q := inB[k]; len(q) > 0 {
			d.match[n], d.match[q[0]] = q[0], n
			inB[k] = q[1:]
		}
	}
	for _, n := range preA {
		if d.match[n] == nil {
			d.OnlyA = append(d.OnlyA, d.constituent(n))
		}
	}
	for _, n := range preB {
		if d.match[n] == nil {
			d.OnlyB = append(d.OnlyB, d.constituent(n))
		}
	}
	d.findDivergence(preA, preB)
	d.findMoves(preA)
	return d, nil
}

// sameWords explains where two word sequences part.
func sameWords(a, b []string) error {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Errorf("trees have different words: word %d is %q in A and %q in B (%s)", i+1, short(a[i]), short(b[i]), context(a, i))
		}
	}
	if len(a) != len(b) {
		i := min(len(a), len(b))
		long, which := a, "A"
		if len(b) > len(a) {
			long, which = b, "B"
		}
		return fmt.Errorf("trees have different words: A has %d words and B %d; %s goes on with %q after word %d (%s)", len(a), len(b), which, short(long[i]), i, context(long, i))
	}
	return nil
}

// context shows the words around index i, for error messages.
func context(ws []string, i int) string {
	lo, hi := max(0, i-3), min(len(ws), i+4)
	var parts []string
	for _, w := range ws[lo:hi] {
		parts = append(parts, short(w))
	}
	s := strings.Join(parts, " ")
	if lo > 0 {
		s = "… " + s
	}
	if hi < len(ws) {
		s += " …"
	}
	return strconv.Quote(s)
}

// index records parents and spans of t's nodes and returns them in preorder.
func (d *TreeDiff) index(t *Node) []*Node {
	var pre []*Node
	pos := 0
	var walk func(n, parent *Node)
	walk = func(n, parent *Node) {
		d.order[n] = len(pre)
		pre = append(pre, n)
		start := pos
		if n.IsLeaf() && !n.isEmptyElement() {
			pos++
		}
		for _, c := range n.Children {
			walk(c, n)
		}
		d.info[n] = spanInfo{parent: parent, start: start, end: pos}
	}
	walk(t, nil)
	return pre
}

func (d *TreeDiff) constituent(n *Node) Constituent {
	s := d.info[n]
	return Constituent{Label: n.Label, Start: s.start, End: s.end, Node: n}
}

// Counterpart returns the node of the other tree that corresponds to n, a
// node of A or of B, or nil when there is none.
func (d *TreeDiff) Counterpart(n *Node) *Node { return d.match[n] }

// Equal reports whether the two trees have the same constituents.
func (d *TreeDiff) Equal() bool { return len(d.OnlyA) == 0 && len(d.OnlyB) == 0 }

// Span returns the word span [start, end) of n, a node of A or of B.
func (d *TreeDiff) Span(n *Node) (start, end int, ok bool) {
	s, ok := d.info[n]
	return s.start, s.end, ok
}

func (d *TreeDiff) isAncestor(anc, n *Node) bool {
	for p := d.info[n].parent; p != nil; p = d.info[p].parent {
		if p == anc {
			return true
		}
	}
	return false
}

func (d *TreeDiff) findDivergence(preA, preB []*Node) {
	var unA, unB []*Node
	for _, c := range d.OnlyA {
		unA = append(unA, c.Node)
	}
	for _, c := range d.OnlyB {
		unB = append(unB, c.Node)
	}
	if len(unA)+len(unB) == 0 {
		return
	}
	// Climb from one difference; the first matched ancestor that holds all
	// differences on both sides is the divergence.
	from, own, other := unA, unA, unB
	if len(unA) == 0 {
		from, own, other = unB, unB, unA
	}
	holdsAll := func(anc *Node, ns []*Node) bool {
		for _, n := range ns {
			if !d.isAncestor(anc, n) {
				return false
			}
		}
		return true
	}
	for c := d.info[from[0]].parent; c != nil; c = d.info[c].parent {
		cp := d.match[c]
		if cp == nil || !holdsAll(c, own) || !holdsAll(cp, other) {
			continue
		}
		ca, cb := d.constituent(c), d.constituent(cp)
		if len(unA) == 0 {
			ca, cb = cb, ca
		}
		d.DivergenceA, d.DivergenceB = &ca, &cb
		return
	}
}

// site returns n's lowest ancestor whose span is wider than n's.
func (d *TreeDiff) site(n *Node) *Node {
	s := d.info[n]
	for p := s.parent; p != nil; p = d.info[p].parent {
		if ps := d.info[p]; ps.start != s.start || ps.end != s.end {
			return p
		}
	}
	return nil
}

func (d *TreeDiff) findMoves(preA []*Node) {
	if d.Equal() {
		return
	}
	for _, na := range preA {
		nb := d.match[na]
		if nb == nil || d.info[na].start == d.info[na].end {
			continue
		}
		sa, sb := d.site(na), d.site(nb)
		if sa == nil || sb == nil || d.match[sa] == sb {
			continue
		}
		if Format(na) != Format(nb) {
			continue
		}
		ra, rb := without(d.A, na), without(d.B, nb)
		if ra == nil || rb == nil || Format(ra) != Format(rb) {
			continue
		}
		d.Moves = append(d.Moves, Move{Constituent: d.constituent(na), B: nb, SiteA: d.constituent(sa), SiteB: d.constituent(sb)})
	}
}

// without returns a copy of n with cut removed, constituents left empty
// dropped and X-over-X unary chains merged, or nil when nothing is left.
func without(n, cut *Node) *Node {
	if n == cut {
		return nil
	}
	if n.IsLeaf() {
		return n
	}
	var kids []*Node
	for _, c := range n.Children {
		if k := without(c, cut); k != nil {
			kids = append(kids, k)
		}
	}
	switch {
	case len(kids) == 0:
		return nil
	case len(kids) == 1 && !kids[0].IsLeaf() && kids[0].Label == n.Label:
		return kids[0]
	}
	return &Node{Label: n.Label, Children: kids}
}

// UnmatchedParts returns the indices into l.Parts of the parts with no
// counterpart in the other tree: the brackets of constituents that only l's
// tree has. l must be a linearization of d.A or d.B.
func (d *TreeDiff) UnmatchedParts(l *Linear) ([]int, error) {
	if l.Tree != d.A && l.Tree != d.B {
		return nil, fmt.Errorf("unmatched parts: the linearization is of neither tree of the diff")
	}
	var out []int
	for i, p := range l.Parts {
		if d.match[p.Node] == nil && !(p.Kind == PartWord && p.Word >= 0) {
			out = append(out, i)
		}
	}
	return out, nil
}

// UnmatchedTokens returns the indices of the tokens of a (aligned to a
// linearization of d.A) and of b (of d.B, in the same style) that have no
// counterpart in the other: no token there has the same text and covers the
// corresponding parts. A "))))" that closes four constituents in A, where B
// closes the same four with "))" and ")))", has none. Tokens that cover no
// part are never reported.
func (d *TreeDiff) UnmatchedTokens(a, b *Alignment) (onlyA, onlyB []int, err error) {
	if a.Linear.Tree != d.A || b.Linear.Tree != d.B {
		return nil, nil, fmt.Errorf("unmatched tokens: the alignments must be of tree A and tree B of the diff, in that order")
	}
	if a.Linear.Style != b.Linear.Style {
		return nil, nil, fmt.Errorf("unmatched tokens: linearizations differ in style (%s and %s)", a.Linear.Style, b.Linear.Style)
	}
	// A part is named by its counterpart in B where it has one, so that
	// corresponding tokens of A and B get the same signature.
	id := func(n *Node) string {
		if !d.inA[n] {
			return "b" + strconv.Itoa(d.order[n])
		}
		if m := d.match[n]; m != nil {
			return "b" + strconv.Itoa(d.order[m])
		}
		return "a" + strconv.Itoa(d.order[n])
	}
	signature := func(al *Alignment, t int) string {
		o := al.Offsets[t]
		var s strings.Builder
		s.WriteString(al.Linear.Text[o[0]:o[1]])
		for _, pi := range al.Parts[t] {
			p := al.Linear.Parts[pi]
			if p.Kind == PartWord && p.Word >= 0 {
				fmt.Fprintf(&s, "\x00w%d", p.Word)
			} else {
				fmt.Fprintf(&s, "\x00%s.%d", id(p.Node), p.Kind)
			}
		}
		return s.String()
	}
	unmatched := func(x, y *Alignment) []int {
		have := map[string]bool{}
		for t := range y.Parts {
			if len(y.Parts[t]) > 0 {
				have[signature(y, t)] = true
			}
		}
		var out []int
		for t := range x.Parts {
			if len(x.Parts[t]) > 0 && !have[signature(x, t)] {
				out = append(out, t)
			}
		}
		return out
	}
	return unmatched(a, b), unmatched(b, a), nil
}
