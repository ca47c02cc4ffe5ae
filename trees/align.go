package trees

import "fmt"

// Alignment ties tokens of a linearization to the parts they overlap.
type Alignment struct {
	Linear *Linear
	// Offsets are the tokens' byte ranges [start, end) into Linear.Text.
	Offsets [][2]int
	// Parts lists, for each token, the indices into Linear.Parts of the
	// parts it overlaps, in text order. It is empty for a token that
	// overlaps only separators or no bytes at all.
	Parts [][]int
}

// Align maps each token, given by its byte range [start, end) into l.Text, to
// the parts of l it overlaps. Tokens may overlap each other; an empty range
// (a start or end of text marker) overlaps nothing.
func Align(l *Linear, offsets [][2]int) (*Alignment, error) {
	a := &Alignment{Linear: l, Offsets: offsets, Parts: make([][]int, len(offsets))}
	for ti, o := range offsets {
		if o[0] < 0 || o[1] < o[0] || o[1] > len(l.Text) {
			return nil, fmt.Errorf("align token %d: byte range [%d,%d) is not within the %d-byte %s linearization", ti, o[0], o[1], len(l.Text), l.Style)
		}
		var ps []int
		for i := o[0]; i < o[1]; i++ {
			// Bytes of one part are contiguous, so comparing with the last
			// part seen is enough to list each part once.
			if p := int(l.at[i]); p >= 0 && (len(ps) == 0 || ps[len(ps)-1] != p) {
				ps = append(ps, p)
			}
		}
		a.Parts[ti] = ps
	}
	return a, nil
}

// Relevance is per-token relevance gathered onto a tree; see the package
// documentation for the rule.
type Relevance struct {
	// Parts is indexed like Linear.Parts.
	Parts []float64
	// Nodes holds every node of the tree: the sum over its own parts.
	Nodes map[*Node]float64
	// Words is indexed like Node.Words() of the tree.
	Words []float64
	// Unassigned is the relevance of tokens that overlap no part.
	Unassigned float64
}

// Aggregate gathers per-token relevance onto parts, nodes and words: sums,
// with a token that overlaps k parts giving each 1/k of its relevance.
func (a *Alignment) Aggregate(tokens []float64) (*Relevance, error) {
	if len(tokens) != len(a.Parts) {
		return nil, fmt.Errorf("aggregate relevance: %d values for %d tokens", len(tokens), len(a.Parts))
	}
	l := a.Linear
	r := &Relevance{
		Parts: make([]float64, len(l.Parts)),
		Nodes: make(map[*Node]float64),
		Words: make([]float64, l.words),
	}
	for ti, ps := range a.Parts {
		if len(ps) == 0 {
			r.Unassigned += tokens[ti]
			continue
		}
		share := tokens[ti] / float64(len(ps))
		for _, p := range ps {
			r.Parts[p] += share
		}
	}
	l.Tree.Walk(func(n *Node) bool {
		r.Nodes[n] = 0
		return true
	})
	for pi, p := range l.Parts {
		r.Nodes[p.Node] += r.Parts[pi]
		if p.Kind == PartWord && p.Word >= 0 {
			r.Words[p.Word] += r.Parts[pi]
		}
	}
	return r, nil
}

// NodeScore is one node's relevance, with the words it spans, in the form
// exported figures list it.
type NodeScore struct {
	Label string `json:"label"`
	Word  string `json:"word,omitempty"`
	// Start and End are the node's words [Start, End), indices into Words().
	Start     int     `json:"start"`
	End       int     `json:"end"`
	Relevance float64 `json:"relevance"`
}

// WordScore is one word's relevance.
type WordScore struct {
	Word      string  `json:"word"`
	Relevance float64 `json:"relevance"`
}

// Scores lists the relevance of every node of root in preorder, with its word
// span, and of every word. root must be the tree r was aggregated over.
func (r *Relevance) Scores(root *Node) ([]NodeScore, []WordScore) {
	var nodes []NodeScore
	word := 0
	var walk func(n *Node)
	walk = func(n *Node) {
		i := len(nodes)
		nodes = append(nodes, NodeScore{Label: n.Label, Word: n.Word, Relevance: r.Nodes[n]})
		start := word
		if n.IsLeaf() && n.Label != EmptyLabel {
			word++
		}
		for _, c := range n.Children {
			walk(c)
		}
		nodes[i].Start, nodes[i].End = start, word
	}
	walk(root)
	words := root.Words()
	ws := make([]WordScore, 0, len(r.Words))
	for i, v := range r.Words {
		ws = append(ws, WordScore{Word: words[i], Relevance: v})
	}
	return nodes, ws
}
