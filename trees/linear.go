package trees

import (
	"fmt"
	"strings"
)

// Style is a way of writing a tree as one string for the text encoder.
type Style uint8

const (
	// StylePaper is the seed paper's input: lower-cased labels and words, POS
	// tags kept, single spaces.
	StylePaper Style = iota
	// StylePTB is the canonical bracketing in its original case.
	StylePTB
	// StyleNoPOS keeps the lower-cased phrase brackets but writes each word
	// bare, without its POS tag.
	StyleNoPOS
	// StyleWords is the plain sentence in its original case, with Penn
	// Treebank bracket and quote tokens turned back into characters and no
	// space before punctuation: the text baseline.
	StyleWords
)

var styleNames = [...]string{StylePaper: "paper", StylePTB: "ptb", StyleNoPOS: "nopos", StyleWords: "words"}

// StyleNames lists the names ParseStyle accepts.
func StyleNames() []string { return append([]string(nil), styleNames[:]...) }

func (s Style) String() string {
	if int(s) < len(styleNames) {
		return styleNames[s]
	}
	return fmt.Sprintf("Style(%d)", s)
}

// ParseStyle returns the style named name: paper, ptb, nopos or words.
func ParseStyle(name string) (Style, error) {
	for i, n := range styleNames {
		if n == name {
			return Style(i), nil
		}
	}
	return 0, fmt.Errorf("unknown linearization style %q (want one of %s)", name, strings.Join(styleNames[:], ", "))
}

// MarshalText writes the style's name.
func (s Style) MarshalText() ([]byte, error) {
	if int(s) >= len(styleNames) {
		return nil, fmt.Errorf("invalid linearization style %d", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a style's name.
func (s *Style) UnmarshalText(b []byte) error {
	v, err := ParseStyle(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// PartKind says which piece of a node a byte of a linearization belongs to.
type PartKind uint8

const (
	// PartOpen is an opening bracket with its label: "(np".
	PartOpen PartKind = iota + 1
	// PartWord is a leaf's word.
	PartWord
	// PartClose is a closing bracket.
	PartClose
)

var partNames = [...]string{PartOpen: "open", PartWord: "word", PartClose: "close"}

func (k PartKind) String() string {
	if k >= PartOpen && k <= PartClose {
		return partNames[k]
	}
	return fmt.Sprintf("PartKind(%d)", k)
}

// MarshalText writes the kind's name: open, word or close.
func (k PartKind) MarshalText() ([]byte, error) {
	if k < PartOpen || k > PartClose {
		return nil, fmt.Errorf("invalid part kind %d", k)
	}
	return []byte(k.String()), nil
}

// Part is a run of bytes [Start, End) of a linearization that belongs to one
// piece of one node.
type Part struct {
	Start, End int
	Node       *Node
	Kind       PartKind
	// Word is the index of the word in Node.Words() of the whole tree for a
	// word part, and -1 for brackets and for the words of empty elements.
	Word int
}

// Linear is a tree written in one style, with the node and part of every byte.
type Linear struct {
	Text  string
	Style Style
	Tree  *Node
	// Parts are in text order and do not overlap; the bytes between them are
	// single spaces.
	Parts []Part
	// words is the number of words of Tree.
	words int
	// at maps each byte of Text to its index in Parts, -1 for a separator.
	at []int32
}

// PartAt returns the index in l.Parts of the part that byte i of l.Text
// belongs to, or -1 when the byte is a separator or i is out of range.
func (l *Linear) PartAt(i int) int {
	if i < 0 || i >= len(l.at) {
		return -1
	}
	return int(l.at[i])
}

// Linearize writes t in style s.
func Linearize(t *Node, s Style) *Linear {
	b := &linearizer{l: &Linear{Style: s, Tree: t}, lower: s == StylePaper || s == StyleNoPOS}
	if s == StyleWords {
		b.sentence(t)
	} else {
		b.node(t)
	}
	l := b.l
	l.Text = b.text.String()
	l.at = make([]int32, len(l.Text))
	for i := range l.at {
		l.at[i] = -1
	}
	for pi, p := range l.Parts {
		for i := p.Start; i < p.End; i++ {
			l.at[i] = int32(pi)
		}
	}
	return l
}

type linearizer struct {
	l     *Linear
	text  strings.Builder
	lower bool
}

func (b *linearizer) part(s string, n *Node, k PartKind, word int) {
	start := b.text.Len()
	b.text.WriteString(s)
	b.l.Parts = append(b.l.Parts, Part{Start: start, End: b.text.Len(), Node: n, Kind: k, Word: word})
}

func (b *linearizer) cased(s string) string {
	if b.lower {
		return strings.ToLower(s)
	}
	return s
}

// word writes a leaf's word part, numbering it unless it is an empty element.
func (b *linearizer) word(n *Node) {
	idx := -1
	if !n.isEmptyElement() {
		idx = b.l.words
		b.l.words++
	}
	b.part(b.cased(n.Word), n, PartWord, idx)
}

func (b *linearizer) node(n *Node) {
	if n.IsLeaf() && b.l.Style == StyleNoPOS {
		b.word(n)
		return
	}
	b.part("("+b.cased(n.Label), n, PartOpen, -1)
	if n.IsLeaf() {
		b.text.WriteByte(' ')
		b.word(n)
	}
	for _, c := range n.Children {
		b.text.WriteByte(' ')
		b.node(c)
	}
	b.part(")", n, PartClose, -1)
}

// sentence writes the words of t as running text.
func (b *linearizer) sentence(t *Node) {
	prev := ""
	t.Walk(func(n *Node) bool {
		if !n.IsLeaf() || n.isEmptyElement() {
			return true
		}
		w := n.Word
		if b.l.words > 0 && !noSpaceBefore(w) && !noSpaceAfter(prev) {
			b.text.WriteByte(' ')
		}
		text := w
		if g, ok := ptbGlyphs[strings.ToUpper(w)]; ok {
			text = g
		}
		b.part(text, n, PartWord, b.l.words)
		b.l.words++
		prev = w
		return true
	})
}

// ptbGlyphs undoes the Penn Treebank's escaping of brackets and quotes.
var ptbGlyphs = map[string]string{
	"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}",
	"``": "\"", "''": "\"",
}

func noSpaceBefore(w string) bool {
	switch strings.ToUpper(w) {
	case ".", ",", ":", ";", "!", "?", "%", "...", "-RRB-", "-RSB-", "-RCB-", "N'T":
		return true
	}
	return strings.HasPrefix(w, "'")
}

func noSpaceAfter(w string) bool {
	switch strings.ToUpper(w) {
	case "-LRB-", "-LSB-", "-LCB-", "``", "$", "#":
		return true
	}
	return false
}
