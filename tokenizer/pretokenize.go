package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pre-tokenization: CLIP's regex, by hand.

const (
	clsSpace = iota
	clsLetter
	clsNumber
	clsOther
	// clsNone is what no alternative of the pattern matches, so the pattern
	// skips it as it skips spaces: only U+0345 COMBINING GREEK YPOGEGRAMMENI,
	// which IGNORECASE folds to ι, a letter, so that [^\s\p{L}\p{N}] refuses it,
	// while [\p{L}] does not take it either.
	clsNone
)

const ypogegrammeni = 0x345

var asciiClass = func() (c [128]uint8) {
	for b := range 128 {
		switch {
		case b == ' ':
			c[b] = clsSpace
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z':
			c[b] = clsLetter
		case '0' <= b && b <= '9':
			c[b] = clsNumber
		default:
			c[b] = clsOther
		}
	}
	return c
}()

// class classifies the rune at s[i] for the pattern. Cleaned text holds no
// White_Space but ' ' (U+001C..U+001F, which Python strips from the ends but
// the pattern's \s does not match, are punctuation here). Letters and numbers
// are those of Go's Unicode tables; characters assigned in later Unicode
// versions than Go's count as punctuation.
func class(s string, i int) (uint8, int) {
	if b := s[i]; b < utf8.RuneSelf {
		return asciiClass[b], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case unicode.IsLetter(r):
		return clsLetter, n
	case unicode.IsNumber(r):
		return clsNumber, n
	case r == ypogegrammeni:
		return clsNone, n
	}
	return clsOther, n
}

var contractions = []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// nextPiece finds the next match of CLIP's pattern at or after i in cleaned
// text: [start, end), and special 0 or 1 when it is <|startoftext|> or
// <|endoftext|> (else -1). start == end means there is none.
func nextPiece(s string, i int) (start, end, special int) {
	for i < len(s) {
		c, n := class(s, i)
		if c != clsSpace && c != clsNone {
			break
		}
		i += n
	}
	if i == len(s) {
		return i, i, -1
	}
	switch s[i] {
	case '<':
		if n := foldPrefix(s[i:], startOfText); n > 0 {
			return i, i + n, 0
		}
		if n := foldPrefix(s[i:], endOfText); n > 0 {
			return i, i + n, 1
		}
	case '\'':
		for _, c := range contractions {
			if n := foldPrefix(s[i:], c); n > 0 {
				return i, i + n, -1
			}
		}
	}
	cls, n := class(s, i)
	switch cls {
	case clsNumber:
		return i, i + n, -1
	case clsLetter:
		j := i + n
		for j < len(s) {
			c, m := class(s, j)
			if c != clsLetter {
				break
			}
			j += m
		}
		return i, j, -1
	}
	j := i + n
	for j < len(s) {
		c, m := class(s, j)
		if c != clsOther {
			break
		}
		j += m
	}
	return i, j, -1
}

// foldPrefix reports the byte length of the prefix of s that matches lit (ASCII)
// case-insensitively, or 0. The pattern is matched with IGNORECASE on
// lower-cased text, so the only fold left that matters is ſ (U+017F) ~ s.
func foldPrefix(s, lit string) int {
	j := 0
	for i := 0; i < len(lit); i++ {
		if j < len(s) && s[j] == lit[i] {
			j++
			continue
		}
		if lit[i] == 's' && strings.HasPrefix(s[j:], "ſ") {
			j += len("ſ")
			continue
		}
		return 0
	}
	return j
}
