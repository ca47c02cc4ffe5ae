// Package tokenizer is CLIP's byte-level BPE tokenizer, read from and
// written to Hugging Face's vocab.json and merges.txt, with the byte span of
// every token in the input text, and a learner of small vocabularies in the
// same layout. It follows OpenAI's reference (simple_tokenizer.py), the
// tokenization CLIP was trained with, in three layers, each in its file:
//
//   - text clean-up (clean.go): ftfy.fix_text (approximated by NFC, as the
//     project's parity data does; ftfy's other repairs such as mojibake or
//     curly quotes are not made), html.unescape twice, str.strip, runs of \s
//     collapsed to one space (with the regex module's \s, which unlike
//     str.strip leaves U+001C..U+001F), then Python's str.lower (with its full
//     mapping of U+0130 and the final-sigma rule);
//   - pre-tokenization (pretokenize.go) with the regex
//     <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     (case-insensitive), implemented by hand with the same leftmost-first
//     choice, including its quirks: U+0345 matches no alternative and is
//     dropped; "<|ſtartoftext|>" matches but is tokenized as text;
//   - BPE (bpe.go): bytes of each piece mapped to printable runes (GPT-2's
//     bytes_to_unicode), "</w>" on the last symbol, merges applied in rank
//     order, every occurrence of the best pair merged left to right in one
//     round.
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
//
// Reading and writing the vocabulary files is in vocab.go, learning a
// vocabulary in learn.go. The package knows nothing of models or tensors.
package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	startOfText = "<|startoftext|>"
	endOfText   = "<|endoftext|>"
	endOfWord   = "</w>"

	// DefaultContext is CLIP's text context length.
	DefaultContext = 77
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
