package trees

import (
	"fmt"
	"strings"
)

// Candidate is one structure that a reading of a sentence is compared with
// when probing which structure a model sees: the reading's own tree, a tree
// one re-attachment away, or another reading's tree.
type Candidate struct {
	Tree *Node
	// Text is Tree linearized in the probe's style: what a text encoder
	// reads.
	Text string
	// Reading is the index of the reading whose tree this is, -1 for an
	// alternative that is no reading's.
	Reading int
	// Move is how Tree differs from the probed reading's tree: nil for that
	// tree, and for another reading's tree that no single re-attachment
	// reaches.
	Move *Alternative
}

// Candidates lists reading r's structures among the readings' trees ts: its
// tree, its Reattachments, then the other readings' trees that are none of
// these. A structure that reads the same text as an earlier one is left
// out: a model cannot tell them apart. of[k] is the index of reading k's
// tree among them; reachable says that every other reading's tree is one of
// the reattachments.
func Candidates(ts []*Node, r int, style Style) (cs []Candidate, of []int, reachable bool) {
	reachable = true
	of = make([]int, len(ts))
	texts := map[string]int{}
	readingOf := map[string]int{}
	for k := len(ts) - 1; k >= 0; k-- {
		readingOf[Format(ts[k])] = k
	}
	add := func(t *Node, move *Alternative) {
		text := Linearize(t, style).Text
		if _, ok := texts[text]; ok {
			return
		}
		c := Candidate{Tree: t, Text: text, Reading: -1, Move: move}
		if k, ok := readingOf[Format(t)]; ok {
			c.Reading = k
		}
		texts[text] = len(cs)
		cs = append(cs, c)
	}
	add(ts[r], nil)
	for _, a := range Reattachments(ts[r]) {
		add(a.Tree, &a)
	}
	for k, t := range ts {
		text := Linearize(t, style).Text
		if _, ok := texts[text]; !ok {
			reachable = false
			add(t, nil)
		}
		of[k] = texts[text]
	}
	return cs, of, reachable
}

// Describe says what the alternative moved, in the sentence's words, such
// as `PP "with a telescope": NP → VP "saw the man with a telescope"`.
func (a *Alternative) Describe(words []string) string {
	span := func(c Constituent) string {
		if c.Start < 0 || c.End > len(words) || c.Start > c.End {
			return c.Label
		}
		return fmt.Sprintf("%s %q", c.Label, strings.Join(words[c.Start:c.End], " "))
	}
	if a.Kind == MoveScope {
		return fmt.Sprintf("%s scope: %s from %s to %s", a.Moved.Label, quoteWords(a.Moved, words), span(a.From), span(a.To))
	}
	return fmt.Sprintf("%s %s: %s → %s", a.Moved.Label, quoteWords(a.Moved, words), a.From.Label, span(a.To))
}

func quoteWords(c Constituent, words []string) string {
	if c.Start < 0 || c.End > len(words) || c.Start > c.End {
		return ""
	}
	return fmt.Sprintf("%q", strings.Join(words[c.Start:c.End], " "))
}
