package model

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/lavascope/lavascope/internal/atomicfile"
)

// The CLIP tokenizer follows OpenAI's reference (simple_tokenizer.py), the
// tokenization CLIP was trained with:
//
//   - cleanup: ftfy.fix_text (approximated by NFC, as the project's parity data
//     does; ftfy's other repairs such as mojibake or curly quotes are not made),
//     html.unescape twice, str.strip, runs of \s collapsed to one space (with
//     the regex module's \s, which unlike str.strip leaves U+001C..U+001F), then
//     Python's str.lower (with its full mapping of U+0130 and the final-sigma
//     rule);
//   - pre-tokenization with the regex
//     <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     (case-insensitive), implemented by hand with the same leftmost-first
//     choice, including its quirks: U+0345 matches no alternative and is
//     dropped; "<|ſtartoftext|>" matches but is tokenized as text;
//   - bytes of each piece mapped to printable runes (GPT-2's bytes_to_unicode),
//     "</w>" on the last symbol, merges applied in rank order, every occurrence
//     of the best pair merged left to right in one round.
//
// Letters and numbers are those of Go's Unicode tables (15.0); characters
// assigned in later versions count as punctuation, where a newer regex module
// would see letters. Against a port of the reference run with the regex module
// on 46,000 random strings built from these corners (entities, whitespace
// classes, combining marks, Greek, Hangul, CJK, emoji, long words) the ids were
// identical.
//
// Hugging Face's CLIPTokenizer without ftfy gives the same ids on ordinary
// text except that it does not unescape HTML entities ("&amp;" stays four
// characters); lavascope unescapes, as OpenAI does.

const (
	startOfText = "<|startoftext|>"
	endOfText   = "<|endoftext|>"
	endOfWord   = "</w>"

	// DefaultContext is CLIP's text context length.
	DefaultContext = 77

	// Words longer than smallWord bytes use the O(n log n) merge loop; shorter
	// ones the simple quadratic one, which is faster at that size.
	smallWord = 64
	// Only words up to cachedWord bytes are cached, and the cache is cleared when
	// it reaches maxCachedWords, so memory stays bounded on any input stream.
	cachedWord     = 64
	maxCachedWords = 1 << 16
	// maxVocabID bounds the ids accepted from vocab.json (the id table is dense).
	maxVocabID = 1 << 24
)

// Tokenizer is CLIP's byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocab  map[string]int32
	tokens []string // id → token; "" where vocab.json has no entry

	// Symbols are vocabulary ids; merge results missing from the vocabulary get
	// ids above maxID and are reported as unk.
	maxID      int32
	merges     map[uint64]merge // pair key → rank and result
	byRank     []rankPair       // rank → pair and result, for the large-word loop
	mergeLines []string         // merges.txt lines in rank order, for Save
	byteSym    [256]int32
	byteEndSym [256]int32

	bos, eos, unk int32

	cache wordCache
}

// wordCache maps words to their BPE. Hits read an immutable map through an
// atomic pointer, so concurrent encoders share no written memory; new words go
// to a locked map that is copied over the read map once it has missed as many
// times as it has entries (the scheme of sync.Map, without boxing the keys).
type wordCache struct {
	read   atomic.Pointer[map[string]bpeWord]
	mu     sync.Mutex
	dirty  map[string]bpeWord // every entry, read's included
	misses int
}

func (c *wordCache) get(w string) (bpeWord, bool) {
	if m := c.read.Load(); m != nil {
		if bw, ok := (*m)[w]; ok {
			return bw, true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	bw, ok := c.dirty[w]
	c.missLocked()
	return bw, ok
}

func (c *wordCache) put(w string, bw bpeWord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dirty) >= maxCachedWords {
		c.dirty = nil
		c.read.Store(nil)
	}
	if c.dirty == nil {
		c.dirty = make(map[string]bpeWord)
	}
	c.dirty[strings.Clone(w)] = bw
}

func (c *wordCache) missLocked() {
	c.misses++
	if c.misses >= len(c.dirty) {
		m := maps.Clone(c.dirty)
		c.read.Store(&m)
		c.misses = 0
	}
}

type merge struct{ rank, sym int32 }

type rankPair struct{ a, b, sym int32 }

// bpeWord is the BPE of one word: ids[i] covers bytes [ends[i-1], ends[i]) of it.
type bpeWord struct{ ids, ends []int32 }

// Encoding is the tokenization of one text.
type Encoding struct {
	// IDs are BOS, the tokens, and EOS, unpadded.
	IDs []int32
	// Offsets holds, per id, the byte span [start, end) of the input text it came
	// from. BOS is [0,0] and EOS [len(text), len(text)]. Where cleanup keeps the
	// bytes (always for ASCII text without '&' or runs of whitespace, the
	// linearized-tree style, whose letters it only lower-cases), spans are
	// exact: text[start:end], lower-cased, is the token's text, and a token that
	// splits a multi-byte character starts or ends inside it. Where cleanup
	// changes a character (an entity, a whitespace run, NFC composition, a
	// lower-casing that changes length), every token holding part of the result
	// spans the whole original stretch, so neighbouring tokens may share a span;
	// starts never decrease.
	Offsets [][2]int
	// Truncated reports that tokens were dropped to fit the context: OpenAI's
	// truncation keeps BOS, the first context-2 tokens, and EOS.
	Truncated bool
}

// LoadTokenizer reads vocab.json and merges.txt (Hugging Face's layout) from dir.
func LoadTokenizer(dir string) (*Tokenizer, error) {
	vpath := filepath.Join(dir, "vocab.json")
	mpath := filepath.Join(dir, "merges.txt")
	vocab, err := os.ReadFile(vpath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	merges, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := newTokenizer(vocab, merges, vpath, mpath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

// NewTokenizer builds a tokenizer from the contents of vocab.json and merges.txt.
func NewTokenizer(vocabJSON, mergesTxt []byte) (*Tokenizer, error) {
	return newTokenizer(vocabJSON, mergesTxt, "vocab.json", "merges.txt")
}

func newTokenizer(vocabJSON, mergesTxt []byte, vname, mname string) (*Tokenizer, error) {
	t := &Tokenizer{}
	if err := json.Unmarshal(vocabJSON, &t.vocab); err != nil {
		return nil, fmt.Errorf("%s: %w", vname, err)
	}
	if len(t.vocab) == 0 {
		return nil, fmt.Errorf("%s: empty vocabulary", vname)
	}
	t.maxID = -1
	for tok, id := range t.vocab {
		if id < 0 || id >= maxVocabID {
			return nil, fmt.Errorf("%s: token %q has id %d, outside [0, %d)", vname, tok, id, maxVocabID)
		}
		t.maxID = max(t.maxID, id)
	}
	t.tokens = make([]string, t.maxID+1)
	for tok, id := range t.vocab {
		if prev := t.tokens[id]; prev != "" {
			a, b := min(prev, tok), max(prev, tok)
			return nil, fmt.Errorf("%s: tokens %q and %q share id %d", vname, a, b, id)
		}
		t.tokens[id] = tok
	}
	var ok bool
	if t.bos, ok = t.vocab[startOfText]; !ok {
		return nil, fmt.Errorf("%s: no %s token", vname, startOfText)
	}
	if t.eos, ok = t.vocab[endOfText]; !ok {
		return nil, fmt.Errorf("%s: no %s token", vname, endOfText)
	}
	// Hugging Face's CLIPTokenizer uses <|endoftext|> for unknown symbols.
	t.unk = t.eos

	extra := make(map[string]int32)
	sym := func(s string) int32 {
		if id, ok := t.vocab[s]; ok {
			return id
		}
		if id, ok := extra[s]; ok {
			return id
		}
		id := t.maxID + 1 + int32(len(extra))
		extra[s] = id
		return id
	}
	for b := range 256 {
		r := string(byteToRune[b])
		t.byteSym[b] = sym(r)
		t.byteEndSym[b] = sym(r + endOfWord)
	}

	t.merges = make(map[uint64]merge)
	lines := bytes.Split(mergesTxt, []byte("\n"))
	for i, line := range lines {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 || (i == 0 && bytes.HasPrefix(line, []byte("#version"))) {
			continue
		}
		a, b, ok := strings.Cut(string(line), " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("%s:%d: want two symbols separated by one space, got %q", mname, i+1, line)
		}
		if len(t.byRank) >= maxVocabID {
			return nil, fmt.Errorf("%s:%d: more than %d merges", mname, i+1, maxVocabID)
		}
		rank := int32(len(t.byRank))
		sa, sb, sm := sym(a), sym(b), sym(a+b)
		// A repeated pair takes its last rank, as dict(zip(merges, range(...))) does.
		t.merges[pairKey(sa, sb)] = merge{rank: rank, sym: sm}
		t.byRank = append(t.byRank, rankPair{a: sa, b: sb, sym: sm})
		t.mergeLines = append(t.mergeLines, string(line))
	}
	return t, nil
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// BOS returns the id of <|startoftext|>.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the id of <|endoftext|>, which also pads (see Pack).
func (t *Tokenizer) EOS() int32 { return t.eos }

// VocabSize returns the number of ids the embedding needs: the largest id plus one.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Token returns the BPE string of id ("danny</w>", "(</w>", "<|endoftext|>"), or
// "" for an id the vocabulary lacks.
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// Tokens maps ids to their BPE strings.
func (t *Tokenizer) Tokens(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.Token(id)
	}
	return out
}

// ID returns the id of a BPE string.
func (t *Tokenizer) ID(token string) (int32, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// Encode tokenizes text: BOS, the BPE tokens, EOS. A positive context limits the
// result to context ids (values below 2 count as 2, room for BOS and EOS);
// context 0 keeps every token.
func (t *Tokenizer) Encode(text string, context int) Encoding {
	c := cleanText(text)
	limit := -1
	if context > 0 {
		limit = max(context, 2) - 2
	}
	n := len(c.s)/2 + 2
	if limit >= 0 {
		n = min(n, limit+2)
	}
	enc := Encoding{IDs: make([]int32, 0, n), Offsets: make([][2]int, 0, n)}
	enc.IDs = append(enc.IDs, t.bos)
	enc.Offsets = append(enc.Offsets, [2]int{0, 0})
	s := c.s
	count := 0
scan:
	for i := 0; i < len(s); {
		start, end, special := nextPiece(s, i)
		i = end
		if start == end {
			break
		}
		// A special spelled with ſ matches the pattern case-insensitively but,
		// as in OpenAI's code, only the exact string is the special token.
		if special >= 0 && s[start:end] == [2]string{startOfText, endOfText}[special] {
			if count == limit {
				enc.Truncated = true
				break
			}
			id := t.bos
			if special == 1 {
				id = t.eos
			}
			enc.IDs = append(enc.IDs, id)
			enc.Offsets = append(enc.Offsets, c.span(start, end))
			count++
			continue
		}
		w := t.word(s[start:end])
		prev := int32(0)
		for k, id := range w.ids {
			if count == limit {
				enc.Truncated = true
				break scan
			}
			enc.IDs = append(enc.IDs, id)
			enc.Offsets = append(enc.Offsets, c.span(start+int(prev), start+int(w.ends[k])))
			prev = w.ends[k]
			count++
		}
	}
	enc.IDs = append(enc.IDs, t.eos)
	enc.Offsets = append(enc.Offsets, [2]int{len(text), len(text)})
	return enc
}

// Pack lays encodings out as a row-major [len(encs), context] matrix of int64
// ids, the layout of input_ids. Rows are padded with EOS, as Hugging Face's
// tokenizer does (OpenAI pads with 0); the text encoder pools at the first EOS,
// so the padding never reaches the pooled feature.
func (t *Tokenizer) Pack(encs []Encoding, context int) ([]int64, error) {
	out := make([]int64, len(encs)*context)
	for i, e := range encs {
		if len(e.IDs) > context {
			return nil, fmt.Errorf("pack: text %d has %d ids, more than the context of %d", i, len(e.IDs), context)
		}
		row := out[i*context : (i+1)*context]
		for j := range row {
			if j < len(e.IDs) {
				row[j] = int64(e.IDs[j])
			} else {
				row[j] = int64(t.eos)
			}
		}
	}
	return out, nil
}

// Decode turns ids back into text as Hugging Face's decode with
// skip_special_tokens does: BOS and EOS (and so EOS padding) are skipped, "</w>"
// becomes a space, byte sequences that are not UTF-8 (a character split by
// truncation) become U+FFFD, and the ends are trimmed. Unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int32) string {
	var text strings.Builder
	for _, id := range ids {
		if id == t.bos || id == t.eos {
			continue
		}
		text.WriteString(t.Token(id))
	}
	var raw []byte
	for _, r := range text.String() {
		if b, ok := runeToByte(r); ok {
			raw = append(raw, b)
		} else {
			raw = utf8.AppendRune(raw, r)
		}
	}
	s := strings.ToValidUTF8(string(raw), "\uFFFD")
	return strings.TrimSpace(strings.ReplaceAll(s, endOfWord, " "))
}

// Fingerprint names the tokenizer's content: every token with its id and
// every merge in rank order, so that rewriting the files (as transformers'
// save_pretrained does, with other spacing and key order) keeps it, and
// two ids swapped do not.
func (t *Tokenizer) Fingerprint() string {
	h := sha256.New()
	for id, tok := range t.tokens {
		if tok != "" {
			fmt.Fprintf(h, "%d %q\n", id, tok)
		}
	}
	h.Write([]byte("merges\n"))
	for _, l := range t.mergeLines {
		fmt.Fprintf(h, "%q\n", l)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Save writes vocab.json and merges.txt into dir, each atomically.
func (t *Tokenizer) Save(dir string) error {
	var v bytes.Buffer
	v.WriteByte('{')
	first := true
	for id, tok := range t.tokens {
		if tok == "" {
			continue
		}
		if !first {
			v.WriteString(", ")
		}
		first = false
		key, err := jsonString(tok)
		if err != nil {
			return err
		}
		fmt.Fprintf(&v, "%s: %d", key, id)
	}
	v.WriteString("}\n")
	if err := atomicfile.WriteBytes(filepath.Join(dir, "vocab.json"), v.Bytes()); err != nil {
		return err
	}
	var m bytes.Buffer
	m.WriteString("#version: 0.2\n")
	for _, l := range t.mergeLines {
		m.WriteString(l)
		m.WriteByte('\n')
	}
	return atomicfile.WriteBytes(filepath.Join(dir, "merges.txt"), m.Bytes())
}

func jsonString(s string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// word returns the BPE of one pre-tokenized piece, from the cache when it can.
func (t *Tokenizer) word(w string) bpeWord {
	if len(w) > cachedWord {
		return t.bpe(w)
	}
	if bw, ok := t.cache.get(w); ok {
		return bw
	}
	bw := t.bpe(w)
	t.cache.put(w, bw)
	return bw
}

// bpe merges the byte symbols of w (non-empty) and maps the result to vocabulary ids.
func (t *Tokenizer) bpe(w string) bpeWord {
	n := len(w)
	buf := make([]int32, 2*n)
	syms, ends := buf[:n], buf[n:]
	for i := range n {
		syms[i] = t.byteSym[w[i]]
		ends[i] = int32(i + 1)
	}
	syms[n-1] = t.byteEndSym[w[n-1]]
	if n <= smallWord {
		n = t.mergeSmall(syms, ends)
	} else {
		n = t.mergeLarge(syms, ends)
	}
	out := make([]int32, 2*n)
	ids, oends := out[:n], out[n:]
	for i := range n {
		ids[i] = syms[i]
		if syms[i] > t.maxID || t.tokens[syms[i]] == "" {
			ids[i] = t.unk
		}
	}
	copy(oends, ends[:n])
	return bpeWord{ids: ids, ends: oends}
}

// mergeSmall is OpenAI's loop: find the pair of lowest rank, merge each of its
// occurrences left to right, repeat. It returns the new length.
func (t *Tokenizer) mergeSmall(syms, ends []int32) int {
	n := len(syms)
	for n > 1 {
		best, at := merge{rank: -1}, -1
		for i := 0; i+1 < n; i++ {
			if m, ok := t.merges[pairKey(syms[i], syms[i+1])]; ok && (at < 0 || m.rank < best.rank) {
				best, at = m, i
			}
		}
		if at < 0 {
			break
		}
		a, b := syms[at], syms[at+1]
		w := at
		for i := at; i < n; w++ {
			if i+1 < n && syms[i] == a && syms[i+1] == b {
				syms[w], ends[w] = best.sym, ends[i+1]
				i += 2
			} else {
				syms[w], ends[w] = syms[i], ends[i]
				i++
			}
		}
		n = w
	}
	return n
}

// mergeLarge gives mergeSmall's result in O(n log n): a heap of the ranks
// present, and for each rank the positions where its pair starts. Popping a
// rank is one round of OpenAI's loop; its positions, sorted, are merged left
// to right, skipping those a merge of the same round consumed or changed.
func (t *Tokenizer) mergeLarge(syms, ends []int32) int {
	n := len(syms)
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	next[n-1] = -1
	alive := make([]bool, n)
	for i := range alive {
		alive[i] = true
	}
	at := make(map[int32][]int32)
	var ranks rankHeap
	add := func(p int32) {
		if p < 0 || next[p] < 0 {
			return
		}
		q := next[p]
		m, ok := t.merges[pairKey(syms[p], syms[q])]
		if !ok {
			return
		}
		if len(at[m.rank]) == 0 {
			heap.Push(&ranks, m.rank)
		}
		at[m.rank] = append(at[m.rank], p)
	}
	for i := range n - 1 {
		add(int32(i))
	}
	for ranks.Len() > 0 {
		r := heap.Pop(&ranks).(int32)
		pos := at[r]
		delete(at, r)
		slices.Sort(pos)
		rp := t.byRank[r]
		for _, p := range pos {
			q := next[p]
			if !alive[p] || q < 0 || syms[p] != rp.a || syms[q] != rp.b {
				continue
			}
			syms[p], ends[p] = rp.sym, ends[q]
			alive[q] = false
			next[p] = next[q]
			if next[q] >= 0 {
				prev[next[q]] = p
			}
			add(prev[p])
			add(p)
		}
	}
	w := 0
	for i := int32(0); i >= 0; i = next[i] {
		syms[w], ends[w] = syms[i], ends[i]
		w++
	}
	return w
}

type rankHeap []int32

func (h rankHeap) Len() int           { return len(h) }
func (h rankHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h rankHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)        { *h = append(*h, x.(int32)) }
func (h *rankHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// byteToRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the others to U+0100 onwards, so every byte is a visible rune.
var byteToRune = func() (m [256]rune) {
	n := 0
	for b := range 256 {
		if ('!' <= b && b <= '~') || ('¡' <= b && b <= '¬') || ('®' <= b && b <= 'ÿ') {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}()

var runeToByteTable = func() (m [324]int16) {
	for i := range m {
		m[i] = -1
	}
	for b, r := range byteToRune {
		m[r] = int16(b)
	}
	return m
}()

func runeToByte(r rune) (byte, bool) {
	if r < 0 || int(r) >= len(runeToByteTable) || runeToByteTable[r] < 0 {
		return 0, false
	}
	return byte(runeToByteTable[r]), true
}

// Pre-tokenization.

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
