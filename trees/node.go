package trees

import "strings"

// EmptyLabel is the Penn Treebank label of empty elements (traces and null
// elements such as *T*-1); their leaves are not words of the sentence.
const EmptyLabel = "-NONE-"

// Node is a constituent. A leaf is a preterminal: a POS tag in Label and its
// word in Word, with no children. Every other node has a Label and at least one
// child, and an empty Word.
type Node struct {
	Label    string  `json:"label"`
	Word     string  `json:"word,omitempty"`
	Children []*Node `json:"children,omitempty"`
}

// IsLeaf reports whether n is a preterminal.
func (n *Node) IsLeaf() bool { return len(n.Children) == 0 }

// isEmptyElement reports whether n is a leaf that stands for no word.
func (n *Node) isEmptyElement() bool { return n.IsLeaf() && n.Label == EmptyLabel }

// Words returns the words of the sentence in order: the words of the leaves,
// leaving out empty elements (label -NONE-).
func (n *Node) Words() []string {
	var ws []string
	n.Walk(func(m *Node) bool {
		if m.IsLeaf() && !m.isEmptyElement() {
			ws = append(ws, m.Word)
		}
		return true
	})
	return ws
}

// Walk calls fn on n and its descendants in preorder; when fn returns false
// Walk does not descend into that node's children.
func (n *Node) Walk(fn func(*Node) bool) {
	if !fn(n) {
		return
	}
	for _, c := range n.Children {
		c.Walk(fn)
	}
}

// Format returns the canonical one-line bracketing of n: single spaces, no
// wrapper, e.g. (S (NP (NNP Danny)) (VP (VBD left)) (. .)). For every tree
// that Parse returns, Parse(Format(t)) is equal to t.
func Format(n *Node) string {
	var b strings.Builder
	format(&b, n)
	return b.String()
}

func format(b *strings.Builder, n *Node) {
	b.WriteByte('(')
	b.WriteString(n.Label)
	if n.IsLeaf() {
		b.WriteByte(' ')
		b.WriteString(n.Word)
	}
	for _, c := range n.Children {
		b.WriteByte(' ')
		format(b, c)
	}
	b.WriteByte(')')
}
