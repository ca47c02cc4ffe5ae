package tokenizer

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Cleanup with byte offsets into the original text.

// mtext is text with, for each byte, the span of the original input it came
// from; lo and hi are nil when the text is the input byte for byte (possibly
// with ASCII letters lower-cased).
type mtext struct {
	s      string
	lo, hi []int32
}

func (m *mtext) at(i int) (lo, hi int32) {
	if m.lo == nil {
		return int32(i), int32(i + 1)
	}
	return m.lo[i], m.hi[i]
}

func (m *mtext) span(a, b int) [2]int {
	if m.lo == nil {
		return [2]int{a, b}
	}
	return [2]int{int(m.lo[a]), int(m.hi[b-1])}
}

// mbuilder writes the next stage of an mtext.
type mbuilder struct {
	src    *mtext
	b      []byte
	lo, hi []int32
}

func newBuilder(src *mtext) *mbuilder {
	n := len(src.s) + 8
	return &mbuilder{src: src, b: make([]byte, 0, n), lo: make([]int32, 0, n), hi: make([]int32, 0, n)}
}

// keep copies src bytes [i, j) unchanged.
func (w *mbuilder) keep(i, j int) {
	w.b = append(w.b, w.src.s[i:j]...)
	for k := i; k < j; k++ {
		lo, hi := w.src.at(k)
		w.lo = append(w.lo, lo)
		w.hi = append(w.hi, hi)
	}
}

// put writes s in place of src bytes [i, j) (i < j).
func (w *mbuilder) put(s string, i, j int) {
	lo, _ := w.src.at(i)
	_, hi := w.src.at(j - 1)
	w.b = append(w.b, s...)
	for range len(s) {
		w.lo = append(w.lo, lo)
		w.hi = append(w.hi, hi)
	}
}

// replace writes out in place of src bytes [i, j), keeping the whole runes
// that begin and end both unchanged as exact copies, so that only the part that
// really changed is mapped to a shared span.
func (w *mbuilder) replace(out string, i, j int) {
	in := w.src.s[i:j]
	if out == in {
		w.keep(i, j)
		return
	}
	if out == "" {
		return
	}
	oe, ie := len(out), len(in)
	for {
		r1, n1 := utf8.DecodeLastRuneInString(out[:oe])
		r2, n2 := utf8.DecodeLastRuneInString(in[:ie])
		if r1 != r2 || n1 != n2 || oe-n1 == 0 || ie-n2 == 0 {
			break
		}
		oe, ie = oe-n1, ie-n2
	}
	ob, ib := 0, 0
	for {
		r1, n1 := utf8.DecodeRuneInString(out[ob:oe])
		r2, n2 := utf8.DecodeRuneInString(in[ib:ie])
		if r1 != r2 || n1 != n2 || ob+n1 >= oe || ib+n2 >= ie {
			break
		}
		ob, ib = ob+n1, ib+n2
	}
	w.keep(i, i+ib)
	w.put(out[ob:oe], i+ib, i+ie)
	w.keep(i+ie, j)
}

func (w *mbuilder) text() *mtext { return &mtext{s: string(w.b), lo: w.lo, hi: w.hi} }

// cleanText applies OpenAI's cleanup: basic_clean (fix_text as NFC, html.unescape
// twice, strip), whitespace_clean, lower.
func cleanText(text string) mtext {
	if s, ok := cleanASCII(text); ok {
		return mtext{s: s}
	}
	m := &mtext{s: text}
	m = validUTF8(m)
	m = nfc(m)
	m = unescape(m)
	m = unescape(m)
	m = collapseSpace(m)
	return *lower(m)
}

// cleanASCII handles the common case, text that cleanup only lower-cases:
// ASCII without '&' whose only whitespace is single inner spaces (and without
// U+001C..U+001F, which Python strips at the ends).
func cleanASCII(text string) (string, bool) {
	upper := false
	for i := 0; i < len(text); i++ {
		b := text[i]
		switch {
		case b >= utf8.RuneSelf || b == '&':
			return "", false
		case b == ' ':
			if i == 0 || i == len(text)-1 || text[i-1] == ' ' {
				return "", false
			}
		case b < ' ' && isPySpace(rune(b)):
			return "", false
		case 'A' <= b && b <= 'Z':
			upper = true
		}
	}
	if !upper {
		return text, true
	}
	buf := []byte(text)
	for i, b := range buf {
		if 'A' <= b && b <= 'Z' {
			buf[i] = b + 'a' - 'A'
		}
	}
	return string(buf), true
}

// isPySpace is Python's str.isspace: Unicode White_Space plus U+001C..U+001F.
func isPySpace(r rune) bool { return unicode.IsSpace(r) || (0x1c <= r && r <= 0x1f) }

// validUTF8 replaces each byte that is not part of valid UTF-8 with U+FFFD;
// Python strings cannot hold such bytes.
func validUTF8(m *mtext) *mtext {
	if utf8.ValidString(m.s) {
		return m
	}
	w := newBuilder(m)
	for i := 0; i < len(m.s); {
		r, n := utf8.DecodeRuneInString(m.s[i:])
		if r == utf8.RuneError && n == 1 {
			w.put("\uFFFD", i, i+1)
		} else {
			w.keep(i, i+n)
		}
		i += n
	}
	return w.text()
}

func nfc(m *mtext) *mtext {
	if norm.NFC.IsNormalString(m.s) {
		return m
	}
	w := newBuilder(m)
	var it norm.Iter
	it.InitString(norm.NFC, m.s)
	for !it.Done() {
		start := it.Pos()
		seg := it.Next()
		end := it.Pos()
		if start < end {
			w.replace(string(seg), start, end)
		}
	}
	return w.text()
}

// unescape is Python's html.unescape. Named references go through Go's
// html.UnescapeString, which resolves a name exactly as Python does (the same
// WHATWG table, the same longest-prefix rule for legacy names without ';');
// numeric ones are decoded here because Python drops code points that HTML
// forbids (&#1; → "") where Go keeps them.
func unescape(m *mtext) *mtext {
	s := m.s
	if strings.IndexByte(s, '&') < 0 {
		return m
	}
	w := newBuilder(m)
	last := 0
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '&')
		if j < 0 {
			break
		}
		amp := i + j
		repl, n := charRef(s[amp:])
		if n == 0 {
			i = amp + 1
			continue
		}
		w.keep(last, amp)
		w.replace(repl, amp, amp+n)
		last = amp + n
		i = last
	}
	w.keep(last, len(s))
	return w.text()
}

// charRef matches Python's &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
// at the start of s (which begins with '&') and returns the replacement and the
// bytes matched (0: no match).
func charRef(s string) (string, int) {
	if len(s) < 2 {
		return "", 0
	}
	if s[1] == '#' {
		i, base := 2, 10
		if len(s) > 2 && (s[2] == 'x' || s[2] == 'X') {
			i, base = 3, 16
		}
		num, digits := 0, 0
		for ; i < len(s); i++ {
			d := digitVal(s[i], base)
			if d < 0 {
				break
			}
			digits++
			if num <= 0x10FFFF {
				num = num*base + d
			}
		}
		if digits == 0 {
			return "", 0
		}
		if i < len(s) && s[i] == ';' {
			i++
		}
		return numericRef(num), i
	}
	i, runes := 1, 0
	for i < len(s) && runes < 32 {
		r, n := utf8.DecodeRuneInString(s[i:])
		if strings.ContainsRune("\t\n\f <&#;", r) {
			break
		}
		i += n
		runes++
	}
	if runes == 0 {
		return "", 0
	}
	if i < len(s) && s[i] == ';' {
		i++
	}
	return html.UnescapeString(s[:i]), i
}

func digitVal(c byte, base int) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case base == 16 && 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case base == 16 && 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// numericRef is the numeric branch of Python's html._replace_charref.
func numericRef(num int) string {
	if num == 0 {
		return "\uFFFD"
	}
	if num == 0x0d {
		return "\r"
	}
	if 0x80 <= num && num <= 0x9f {
		return string(windows1252[num-0x80])
	}
	if (0xD800 <= num && num <= 0xDFFF) || num > 0x10FFFF {
		return "\uFFFD"
	}
	if (0x1 <= num && num <= 0x8) || num == 0xb || (0xe <= num && num <= 0x1f) || num == 0x7f ||
		(0xfdd0 <= num && num <= 0xfdef) || num&0xfffe == 0xfffe {
		return ""
	}
	return string(rune(num))
}

// windows1252 is what HTML (and Python's html.unescape) reads &#128;..&#159; as.
var windows1252 = [32]rune{
	0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
	0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
}

// collapseSpace is basic_clean's strip then whitespace_clean. The two differ:
// str.strip removes Python's isspace characters, U+001C..U+001F included,
// while whitespace_clean's \s (OpenAI imports the regex module as re) is
// Unicode White_Space, without them; so those four go at the ends only.
func collapseSpace(m *mtext) *mtext {
	left := strings.TrimLeftFunc(m.s, isPySpace)
	off := len(m.s) - len(left)
	s := strings.TrimRightFunc(left, isPySpace)
	w := newBuilder(m)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		j := i + n
		if unicode.IsSpace(r) {
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if !unicode.IsSpace(r) {
					break
				}
				j += n
			}
			w.put(" ", off+i, off+j)
		} else {
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if unicode.IsSpace(r) {
					break
				}
				j += n
			}
			w.keep(off+i, off+j)
		}
		i = j
	}
	return w.text()
}

// lower is Python's str.lower: the simple mapping, except U+0130 → "i̇" and Σ,
// which becomes ς at the end of a word.
func lower(m *mtext) *mtext {
	s := m.s
	w := newBuilder(m)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case 'A' <= r && r <= 'Z':
			w.put(string(r+'a'-'A'), i, i+n)
		case r == 0x130:
			w.put("i\u0307", i, i+n)
		case r == 0x3A3:
			if finalSigma(s, i, n) {
				w.put("ς", i, i+n)
			} else {
				w.put("σ", i, i+n)
			}
		default:
			if lr := unicode.ToLower(r); lr != r {
				w.put(string(lr), i, i+n)
			} else {
				w.keep(i, i+n)
			}
		}
		i += n
	}
	return w.text()
}

// finalSigma is Unicode's Final_Sigma condition as CPython tests it: a cased
// letter before (skipping case-ignorables) and none after.
func finalSigma(s string, i, n int) bool {
	before := false
	for j := i; j > 0; {
		r, k := utf8.DecodeLastRuneInString(s[:j])
		j -= k
		if !caseIgnorable(r) {
			before = isCased(r)
			break
		}
	}
	if !before {
		return false
	}
	for j := i + n; j < len(s); {
		r, k := utf8.DecodeRuneInString(s[j:])
		j += k
		if !caseIgnorable(r) {
			return !isCased(r)
		}
	}
	return true
}

func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

func caseIgnorable(r rune) bool {
	switch r {
	// Word_Break MidLetter, MidNumLet and Single_Quote.
	case '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
