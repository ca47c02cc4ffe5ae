package trees

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/internal/termtext"
)

// MaxDepth is how deeply brackets may nest. Real parse trees stay far below
// it; the limit turns pathological input into an error instead of unbounded
// recursion.
const MaxDepth = 1000

// SyntaxError is a malformed tree. Line and Col are 1-based; Col counts
// characters, not bytes. Snippet shows the offending line with a caret under
// the position.
type SyntaxError struct {
	Line, Col int
	Offset    int // byte offset into the source
	Msg       string
	Snippet   string
}

func (e *SyntaxError) Error() string {
	s := fmt.Sprintf("%s at %d:%d", e.Msg, e.Line, e.Col)
	if e.Snippet != "" {
		s += "\n" + e.Snippet
	}
	return s
}

// Parse reads exactly one tree from src. An outer bracket that is unlabelled
// or labelled ROOT or TOP and holds a single constituent is removed.
func Parse(src string) (*Node, error) {
	p := &parser{src: src}
	p.skipSpace()
	if p.eof() {
		return nil, p.errorf(p.pos, "no tree: the input is empty")
	}
	t, err := p.top()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if !p.eof() {
		if p.src[p.pos] == '(' {
			return nil, p.errorf(p.pos, "a second tree starts here; expected one tree")
		}
		return nil, p.unexpected()
	}
	return t, nil
}

// ParseAll reads a sequence of trees separated by any whitespace, such as one
// tree per line. It fails when src holds no tree.
func ParseAll(src string) ([]*Node, error) {
	p := &parser{src: src}
	var ts []*Node
	for {
		p.skipSpace()
		if p.eof() {
			break
		}
		t, err := p.top()
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return nil, p.errorf(p.pos, "no tree: the input is empty")
	}
	return ts, nil
}

type parser struct {
	src string
	pos int
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) skipSpace() {
	for !p.eof() {
		r, size := utf8.DecodeRuneInString(p.src[p.pos:])
		if !unicode.IsSpace(r) {
			return
		}
		p.pos += size
	}
}

// top reads one tree at the current position, which is not at the end, and
// removes its wrapper.
func (p *parser) top() (*Node, error) {
	if p.src[p.pos] != '(' {
		return nil, p.unexpected()
	}
	t, err := p.tree(0)
	if err != nil {
		return nil, err
	}
	for (t.Label == "" || t.Label == "ROOT" || t.Label == "TOP") && len(t.Children) == 1 {
		t = t.Children[0]
	}
	return t, nil
}

// unexpected reports what stands at the current position where a tree or a
// bracket was expected.
func (p *parser) unexpected() error {
	if p.src[p.pos] == ')' {
		return p.errorf(p.pos, "unbalanced ')'")
	}
	at := p.pos
	w, err := p.atom()
	if err != nil {
		return err
	}
	return p.errorf(at, "expected '(' to start a tree, found %q", short(w))
}

// atom reads a label or a word: the run of characters up to whitespace or a
// bracket.
func (p *parser) atom() (string, error) {
	start := p.pos
	for !p.eof() {
		r, size := utf8.DecodeRuneInString(p.src[p.pos:])
		if r == '(' || r == ')' || unicode.IsSpace(r) {
			break
		}
		if r == utf8.RuneError && size == 1 {
			return "", p.errorf(p.pos, "invalid UTF-8 byte 0x%02x", p.src[p.pos])
		}
		if termtext.Unsafe(r) {
			return "", p.errorf(p.pos, "control character %U", r)
		}
		p.pos += size
	}
	return p.src[start:p.pos], nil
}

// tree reads a bracketed constituent starting at the '(' under the cursor.
func (p *parser) tree(depth int) (*Node, error) {
	open := p.pos
	if depth >= MaxDepth {
		return nil, p.errorf(open, "brackets nested deeper than %d levels", MaxDepth)
	}
	p.pos++
	p.skipSpace()
	if p.eof() {
		return nil, p.unclosed(open)
	}
	n := &Node{}
	switch p.src[p.pos] {
	case ')':
		return nil, p.errorf(open, "empty brackets '()'")
	case '(':
		if depth > 0 {
			return nil, p.errorf(open, "unlabelled bracket inside a tree; only the outermost bracket may lack a label")
		}
	default:
		label, err := p.atom()
		if err != nil {
			return nil, err
		}
		n.Label = label
	}
	for {
		p.skipSpace()
		if p.eof() {
			return nil, p.unclosed(open)
		}
		switch p.src[p.pos] {
		case ')':
			p.pos++
			return p.finish(n, open)
		case '(':
			if n.Word != "" {
				return nil, p.errorf(p.pos, "constituent after the word %q; a preterminal holds one word, e.g. (%s %s)", short(n.Word), short(n.Label), short(n.Word))
			}
			c, err := p.tree(depth + 1)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, c)
		default:
			at := p.pos
			w, err := p.atom()
			if err != nil {
				return nil, err
			}
			switch {
			case n.Label == "":
				return nil, p.errorf(at, "word %q in an unlabelled bracket", short(w))
			case len(n.Children) > 0:
				return nil, p.errorf(at, "word %q among constituents; a word needs its own preterminal, e.g. (NN %s)", short(w), short(w))
			case n.Word != "":
				return nil, p.errorf(at, "second word %q in (%s %s ...); a preterminal holds one word", short(w), short(n.Label), short(n.Word))
			}
			n.Word = w
		}
	}
}

func (p *parser) finish(n *Node, open int) (*Node, error) {
	switch {
	case n.Label != "" && n.Word == "" && len(n.Children) == 0:
		return nil, p.errorf(open, "constituent (%s) has no children", short(n.Label))
	case n.Label == "" && len(n.Children) != 1:
		return nil, p.errorf(open, "unlabelled outer bracket holds %d constituents; it may wrap only one", len(n.Children))
	}
	return n, nil
}

func (p *parser) unclosed(open int) error {
	return p.errorf(open, "unclosed '('")
}

// errorf builds a SyntaxError at byte offset off of the source.
func (p *parser) errorf(off int, format string, args ...any) error {
	lineStart := strings.LastIndexByte(p.src[:off], '\n') + 1
	lineEnd := strings.IndexByte(p.src[off:], '\n')
	if lineEnd < 0 {
		lineEnd = len(p.src)
	} else {
		lineEnd += off
	}
	col := utf8.RuneCountInString(p.src[lineStart:off]) + 1
	return &SyntaxError{
		Line:    strings.Count(p.src[:lineStart], "\n") + 1,
		Col:     col,
		Offset:  off,
		Msg:     fmt.Sprintf(format, args...),
		Snippet: snippet(strings.TrimSuffix(p.src[lineStart:lineEnd], "\r"), col),
	}
}

// short cuts s to a length that fits in an error message.
func short(s string) string {
	const limit = 32
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit-1]) + "…"
}

// snippetWidth bounds the source line shown in an error, in terminal cells.
const snippetWidth = 76

// snippet shows line with a caret under character col (1-based). Long lines
// are cut to a window around the caret; tabs and anything unsafe to print
// become single cells so that the caret stays under its character.
func snippet(line string, col int) string {
	var cells []string
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRuneInString(line[i:])
		switch {
		case r == '\t' || unicode.IsSpace(r):
			cells = append(cells, " ")
		case (r == utf8.RuneError && size == 1) || termtext.Unsafe(r):
			cells = append(cells, "\uFFFD")
		default:
			cells = append(cells, line[i:i+size])
		}
		i += size
	}
	caret := min(col-1, len(cells))
	start, end := 0, len(cells)
	if ansi.StringWidth(strings.Join(cells, "")) > snippetWidth {
		w := 0
		for start = caret; start > 0 && w+ansi.StringWidth(cells[start-1]) <= snippetWidth/2; start-- {
			w += ansi.StringWidth(cells[start-1])
		}
		for end = caret; end < len(cells) && w+ansi.StringWidth(cells[end]) <= snippetWidth; end++ {
			w += ansi.StringWidth(cells[end])
		}
	}
	var head string
	if start > 0 {
		head = "…"
	}
	tail := ""
	if end < len(cells) {
		tail = "…"
	}
	pad := ansi.StringWidth(head + strings.Join(cells[start:caret], ""))
	return "  " + head + strings.Join(cells[start:end], "") + tail + "\n  " + strings.Repeat(" ", pad) + "^"
}
