package analysis

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
)

// Of reads r's token relevance in context and, when twin is not nil,
// against twin, the other reading of r's pair (the same words, read in the
// same style). See the package documentation for every rule.
func Of(r, twin *report.Reading) (report.Analysis, error) {
	a, err := parse(r)
	if err != nil {
		return report.Analysis{}, err
	}
	out := report.Analysis{Style: a.lin.Style}
	signed := make([]float64, len(r.Tokens))
	abs := make([]float64, len(r.Tokens))
	for k, t := range r.Tokens {
		v := float64(t.Normalized)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return report.Analysis{}, fmt.Errorf("%s: token %d has relevance %v", name(r), k, v)
		}
		signed[k], abs[k] = v, math.Abs(v)
		if v < 0 {
			out.Signed = true
		}
	}
	val, err := a.al.Aggregate(signed)
	if err != nil {
		return report.Analysis{}, fmt.Errorf("%s: %w", name(r), err)
	}
	mag := val
	if out.Signed {
		if mag, err = a.al.Aggregate(abs); err != nil {
			return report.Analysis{}, fmt.Errorf("%s: %w", name(r), err)
		}
	}
	var total float64
	for _, v := range mag.Parts {
		total += v
	}
	share := func(v float64) float64 {
		if total > 0 {
			return v / total
		}
		return 0
	}

	var d *trees.TreeDiff
	var move *trees.Move
	if twin != nil {
		b, err := parse(twin)
		if err != nil {
			return report.Analysis{}, err
		}
		if b.lin.Style != a.lin.Style {
			return report.Analysis{}, fmt.Errorf("%s reads the %s linearization and its twin %s the %s one", name(r), a.lin.Style, name(twin), b.lin.Style)
		}
		if d, err = trees.Diff(a.tree, b.tree); err != nil {
			return report.Analysis{}, fmt.Errorf("%s against %s: %w", name(r), name(twin), err)
		}
		only, _, err := d.UnmatchedTokens(a.al, b.al)
		if err != nil {
			return report.Analysis{}, fmt.Errorf("%s against %s: %w", name(r), name(twin), err)
		}
		c := &report.Contrast{Twin: twin.Reading, UniqueTokens: only}
		if c.UniqueTokens == nil {
			c.UniqueTokens = []int{}
		}
		var unique float64
		for _, k := range only {
			unique += abs[k]
		}
		if total > 0 {
			c.Unique = min(1, unique/total)
			c.Shared = 1 - c.Unique
		}
		if len(d.Moves) > 0 {
			move = &d.Moves[0]
			site := move.SiteA
			h := a.head(site.Node)
			c.Site = a.focus(site.Label, site.Start, site.End, h, share(mag.Nodes[site.Node]+mag.Nodes[h]))
		}
		if n := a.noun(d, move); n != nil {
			i := a.word[n]
			c.Noun = a.focus(n.Label, i, i+1, n, share(mag.Nodes[n]))
		}
		out.Contrast = c
	}

	words := a.tree.Words()
	out.Words = []report.WordContext{}
	out.Constituents = []report.Constituent{}
	var subtree func(n *trees.Node) float64
	subtree = func(n *trees.Node) float64 {
		s := val.Nodes[n]
		for _, c := range n.Children {
			s += subtree(c)
		}
		return s
	}
	a.tree.Walk(func(n *trees.Node) bool {
		if n.IsLeaf() {
			if i, ok := a.word[n]; ok {
				out.Words = append(out.Words, report.WordContext{Index: i, Word: words[i], Tag: n.Label, Relevance: val.Nodes[n]})
			}
			return true
		}
		s := a.span[n]
		c := report.Constituent{Label: n.Label, Start: s[0], End: s[1], Words: strings.Join(words[s[0]:s[1]], " "),
			Relevance: val.Nodes[n], Subtree: subtree(n)}
		if d != nil {
			c.Only = d.Counterpart(n) == nil
		}
		if move != nil {
			c.Moved, c.Site = n == move.Node, n == move.SiteA.Node
		}
		out.Constituents = append(out.Constituents, c)
		return true
	})
	slices.SortStableFunc(out.Constituents, func(x, y report.Constituent) int {
		return cmp.Compare(math.Abs(y.Relevance), math.Abs(x.Relevance))
	})
	return out, nil
}

// Pair analyses every reading of one pair against its twin, the next
// reading (the last against the first), as report.TargetTwin pairs them,
// and stores the result in each reading's Analysis.
func Pair(rs []*report.Reading) error {
	as := make([]report.Analysis, len(rs))
	for j, r := range rs {
		var twin *report.Reading
		if len(rs) > 1 {
			twin = rs[(j+1)%len(rs)]
		}
		a, err := Of(r, twin)
		if err != nil {
			return err
		}
		as[j] = a
	}
	for j, r := range rs {
		r.Analysis = &as[j]
	}
	return nil
}

// name is how messages name a reading.
func name(r *report.Reading) string {
	return fmt.Sprintf("pair %s reading %d", r.Pair, r.Reading)
}

// parsed is a reading's tree, the linearization the model read and its
// tokens' alignment to it.
type parsed struct {
	tree *trees.Node
	lin  *trees.Linear
	al   *trees.Alignment
	// word is the word index of each preterminal that is a word, span
	// every node's word span.
	word map[*trees.Node]int
	span map[*trees.Node][2]int
}

func parse(r *report.Reading) (*parsed, error) {
	t, err := trees.Parse(r.Tree)
	if err != nil {
		return nil, fmt.Errorf("%s: tree: %w", name(r), err)
	}
	p := &parsed{tree: t, word: map[*trees.Node]int{}, span: map[*trees.Node][2]int{}}
	// The report does not name its style; the text the model read does.
	for _, s := range trees.StyleNames() {
		st, err := trees.ParseStyle(s)
		if err != nil {
			return nil, err
		}
		if l := trees.Linearize(t, st); l.Text == r.Text {
			p.lin = l
			break
		}
	}
	if p.lin == nil {
		return nil, fmt.Errorf("%s: text %q is no linearization of its tree", name(r), r.Text)
	}
	offs := make([][2]int, len(r.Tokens))
	for k, tk := range r.Tokens {
		offs[k] = [2]int{tk.Start, tk.End}
	}
	if p.al, err = trees.Align(p.lin, offs); err != nil {
		return nil, fmt.Errorf("%s: %w", name(r), err)
	}
	pos := 0
	var walk func(n *trees.Node)
	walk = func(n *trees.Node) {
		start := pos
		if n.IsLeaf() && n.Label != trees.EmptyLabel {
			p.word[n] = pos
			pos++
		}
		for _, c := range n.Children {
			walk(c)
		}
		p.span[n] = [2]int{start, pos}
	}
	walk(t)
	return p, nil
}

// focus describes a piece of the tree headed by the preterminal h (nil
// when it has no word).
func (p *parsed) focus(label string, start, end int, h *trees.Node, mass float64) *report.Focus {
	words := p.tree.Words()
	f := &report.Focus{Label: label, Start: start, End: end, Words: strings.Join(words[start:end], " "), Head: -1, Mass: mass}
	if i, ok := p.word[h]; ok {
		f.Head, f.HeadWord = i, words[i]
	}
	return f
}

// noun finds the ambiguous noun's preterminal in p's tree (tree A of d).
func (p *parsed) noun(d *trees.TreeDiff, move *trees.Move) *trees.Node {
	if move != nil {
		var np *trees.Node
		move.Node.Walk(func(n *trees.Node) bool {
			if np == nil && !n.IsLeaf() && base(n.Label) == "NP" {
				np = n
			}
			return np == nil
		})
		if np == nil {
			np = move.Node
		}
		return p.head(np)
	}
	if d.DivergenceA == nil {
		return nil
	}
	var last *trees.Node
	d.DivergenceA.Node.Walk(func(n *trees.Node) bool {
		if _, ok := p.word[n]; ok && strings.HasPrefix(n.Label, "NN") {
			last = n
		}
		return true
	})
	return last
}

// head descends from n by the head rules of the package documentation to
// a preterminal that is a word, or nil when n spans no word.
func (p *parsed) head(n *trees.Node) *trees.Node {
	for n != nil && !n.IsLeaf() {
		n = p.headChild(n)
	}
	if _, ok := p.word[n]; !ok {
		return nil
	}
	return n
}

func (p *parsed) headChild(n *trees.Node) *trees.Node {
	// Only children that span a word can head.
	var kids []*trees.Node
	for _, c := range n.Children {
		if s := p.span[c]; s[1] > s[0] {
			kids = append(kids, c)
		}
	}
	if len(kids) == 0 {
		return nil
	}
	first := func(ok func(string) bool) *trees.Node {
		for _, c := range kids {
			if ok(base(c.Label)) {
				return c
			}
		}
		return nil
	}
	is := func(labels ...string) func(string) bool {
		return func(l string) bool { return slices.Contains(labels, l) }
	}
	prefix := func(pre string) func(string) bool {
		return func(l string) bool { return strings.HasPrefix(l, pre) }
	}
	var h *trees.Node
	switch base(n.Label) {
	case "NP", "NX", "NML", "WHNP":
		for i := len(kids) - 1; i >= 0 && h == nil; i-- {
			if l := base(kids[i].Label); strings.HasPrefix(l, "NN") || is("NX", "NML", "PRP", "CD")(l) {
				h = kids[i]
			}
		}
		if h == nil {
			h = first(is("NP"))
		}
		if h == nil {
			h = kids[len(kids)-1]
		}
	case "VP":
		if h = first(func(l string) bool { return strings.HasPrefix(l, "VB") || l == "MD" || l == "TO" }); h == nil {
			h = first(is("VP"))
		}
	case "PP", "WHPP":
		h = first(is("IN", "TO", "RP"))
	case "S", "SQ", "SINV", "SBAR", "SBARQ":
		if h = first(is("VP")); h == nil {
			h = first(prefix("S"))
		}
	case "ADJP":
		h = first(prefix("JJ"))
	case "ADVP":
		h = first(prefix("RB"))
	}
	if h == nil {
		h = kids[0]
	}
	return h
}

// base is a label without its function tags and indices: NP-SBJ=2 is NP;
// -NONE- and -LRB- stay whole.
func base(label string) string {
	if i := strings.IndexAny(label, "-="); i > 0 {
		return label[:i]
	}
	return label
}
