package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lavascope/lavascope/internal/atomicfile"
)

// MaxVocabSize bounds the ids accepted from vocab.json, and so the size of
// a vocabulary: the id table is dense.
const MaxVocabSize = 1 << 24

// LoadTokenizer reads vocab.json and merges.txt (Hugging Face's layout) from dir.
func Load(dir string) (*Tokenizer, error) {
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
func New(vocabJSON, mergesTxt []byte) (*Tokenizer, error) {
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
		if id < 0 || id >= MaxVocabSize {
			return nil, fmt.Errorf("%s: token %q has id %d, outside [0, %d)", vname, tok, id, MaxVocabSize)
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
		if len(t.byRank) >= MaxVocabSize {
			return nil, fmt.Errorf("%s:%d: more than %d merges", mname, i+1, MaxVocabSize)
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
