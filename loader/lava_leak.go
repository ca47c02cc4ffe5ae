package loader

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Leakage finds the pairs, and the sentences, that occur in more than one
// split of a manifest: a pair trained on and then tested on, as the authors'
// split files of 2-tuples make, or a sentence whose readings are split apart,
// as a split by pair does. Two lines hold the same pair when their readings
// have the same trees and images, whatever their ids.
type Leakage struct {
	name             string
	pairs, sentences map[string][]seenAt
}

type seenAt struct {
	line  int
	split string
}

// NewLeakage returns a Leakage for the manifest called name.
func NewLeakage(name string) *Leakage {
	return &Leakage{name: name, pairs: map[string][]seenAt{}, sentences: map[string][]seenAt{}}
}

// Add notes the pair on a line.
func (l *Leakage) Add(line int, p *Pair) {
	readings := make([]string, len(p.Readings))
	for i, r := range p.Readings {
		readings[i] = oneSpace(r.Tree) + "\x1f" + path.Clean(r.Image)
	}
	at := seenAt{line: line, split: p.Split}
	k := pairKey(readings)
	l.pairs[k] = append(l.pairs[k], at)
	s := oneSpace(p.Sentence)
	l.sentences[s] = append(l.sentences[s], at)
}

// Errors reports, at every line that holds a pair (or a sentence) seen first
// in another split, the lines of the other splits that hold it too; lines
// whose pair leaks are not reported again for their sentence. In line order.
func (l *Leakage) Errors() Errors {
	var out Errors
	reported := map[int]bool{}
	report := func(groups map[string][]seenAt, field string, msg func(others string) string) {
		for _, seen := range groups {
			for _, at := range seen {
				if at.split == seen[0].split || reported[at.line] {
					continue
				}
				reported[at.line] = true
				out = append(out, &Error{File: l.name, Line: at.line, Field: field, Err: errors.New(msg(otherSplits(seen, at.split)))})
			}
		}
	}
	report(l.pairs, "readings", func(others string) string {
		return "leak: the same pair (the same trees and images) is also in " + others
	})
	report(l.sentences, "sentence", func(others string) string {
		return "leak: the same sentence is also in " + others
	})
	slices.SortFunc(out, func(a, b *Error) int { return a.Line - b.Line })
	return out
}

// otherSplits says where else a pair is: "train (lines 3, 7) and val (line 9)".
func otherSplits(seen []seenAt, own string) string {
	var parts []string
	for _, s := range Splits {
		if s == own {
			continue
		}
		var lines []string
		for _, at := range seen {
			if at.split == s {
				lines = append(lines, strconv.Itoa(at.line))
			}
		}
		switch n := len(lines); {
		case n == 0:
			continue
		case n == 1:
			parts = append(parts, fmt.Sprintf("%s (line %s)", s, lines[0]))
		case n <= 5:
			parts = append(parts, fmt.Sprintf("%s (lines %s)", s, strings.Join(lines, ", ")))
		default:
			parts = append(parts, fmt.Sprintf("%s (lines %s and %d more)", s, strings.Join(lines[:5], ", "), n-5))
		}
	}
	return strings.Join(parts, " and ")
}
