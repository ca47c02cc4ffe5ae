package tokenizer

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// LearnBPE learns a byte-level BPE vocabulary from texts in the layout of
// OpenAI's CLIP vocabulary, so that the ordinary Tokenizer reads it: ids 0–255
// are the bytes (in GPT-2's bytes_to_unicode order), 256–511 the bytes ending
// a word ("</w>"), then one id per merge in merge order, then
// <|startoftext|> and <|endoftext|>, the largest id. Texts go through the
// tokenizer's own cleanup and pre-tokenization, so the words counted are the
// ones it will see.
//
// Merges are learned greedily: the most frequent adjacent pair of symbols
// (counted over every occurrence of every word) becomes one symbol, ties
// broken by the pair's text, until maxMerges merges are made or no pair occurs
// at least minCount times. The same texts give the same vocabulary.
func LearnBPE(texts []string, maxMerges, minCount int) (*Tokenizer, error) {
	if maxMerges < 0 {
		return nil, fmt.Errorf("learn bpe: merges must be ≥ 0, got %d", maxMerges)
	}
	if minCount < 1 {
		return nil, fmt.Errorf("learn bpe: the minimum count must be ≥ 1, got %d", minCount)
	}
	base := baseSymbols()
	byteTok, err := bpeTokenizer(base, nil)
	if err != nil {
		return nil, err
	}
	// Count words as sequences of byte symbols.
	counts := map[string]*learnWord{}
	var order []*learnWord
	for _, text := range texts {
		enc := byteTok.Encode(text, 0)
		var syms []string
		for _, id := range enc.IDs[1 : len(enc.IDs)-1] {
			if id >= int32(len(base)) {
				return nil, errors.New("learn bpe: texts may not contain <|startoftext|> or <|endoftext|>")
			}
			syms = append(syms, base[id])
			if id >= 256 {
				key := strings.Join(syms, " ")
				w := counts[key]
				if w == nil {
					w = &learnWord{syms: syms}
					counts[key] = w
					order = append(order, w)
				}
				w.n++
				syms = nil
			}
		}
	}
	var merges [][2]string
	for len(merges) < maxMerges {
		pairs := map[[2]string]int{}
		for _, w := range order {
			for i := 0; i+1 < len(w.syms); i++ {
				pairs[[2]string{w.syms[i], w.syms[i+1]}] += w.n
			}
		}
		var best [2]string
		bestN := 0
		for p, n := range pairs {
			if n > bestN || (n == bestN && cmp.Or(strings.Compare(p[0], best[0]), strings.Compare(p[1], best[1])) < 0) {
				best, bestN = p, n
			}
		}
		if bestN < minCount {
			break
		}
		merges = append(merges, best)
		for _, w := range order {
			w.merge(best)
		}
	}
	return bpeTokenizer(base, merges)
}

type learnWord struct {
	syms []string
	n    int
}

// merge joins every occurrence of the pair, left to right, as the
// tokenizer's merge rounds do.
func (w *learnWord) merge(p [2]string) {
	out := w.syms[:0]
	for i := 0; i < len(w.syms); i++ {
		if i+1 < len(w.syms) && w.syms[i] == p[0] && w.syms[i+1] == p[1] {
			out = append(out, p[0]+p[1])
			i++
			continue
		}
		out = append(out, w.syms[i])
	}
	w.syms = out
}

// baseSymbols are the 512 byte symbols in CLIP's vocabulary order: the
// printable bytes, then the others (bytes_to_unicode's order), each alone,
// then each with </w>.
func baseSymbols() []string {
	var order []int
	for b := range 256 {
		if byteToRune[b] == rune(b) {
			order = append(order, b)
		}
	}
	for b := range 256 {
		if byteToRune[b] != rune(b) {
			order = append(order, b)
		}
	}
	out := make([]string, 0, 512)
	for _, b := range order {
		out = append(out, string(byteToRune[b]))
	}
	for _, b := range order {
		out = append(out, string(byteToRune[b])+endOfWord)
	}
	return out
}

// bpeTokenizer builds the vocabulary of base symbols, merge results and
// the two specials, and the tokenizer that reads it.
func bpeTokenizer(base []string, merges [][2]string) (*Tokenizer, error) {
	ids := map[string]int{}
	var order []string
	add := func(s string) {
		if _, ok := ids[s]; !ok {
			ids[s] = len(order)
			order = append(order, s)
		}
	}
	for _, s := range base {
		add(s)
	}
	var m bytes.Buffer
	m.WriteString("#version: 0.2\n")
	for _, p := range merges {
		add(p[0] + p[1])
		fmt.Fprintf(&m, "%s %s\n", p[0], p[1])
	}
	add(startOfText)
	add(endOfText)
	var v bytes.Buffer
	v.WriteByte('{')
	for i, s := range order {
		if i > 0 {
			v.WriteByte(',')
		}
		key, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&v, "%s:%d", key, i)
	}
	v.WriteByte('}')
	return New(v.Bytes(), m.Bytes())
}
