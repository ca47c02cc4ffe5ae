package tokenizer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// clipBPEDir is the project's copy of OpenAI's CLIP vocabulary in HF layout
// (../shared/clip-bpe from the repository root), which must not be copied into
// the repository; tests that need it skip without it.
var clipBPEDir = absPath(filepath.Join("..", "..", "shared", "clip-bpe"))

// absPath makes p absolute, since some tests change the working directory.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

var (
	clipOnce sync.Once
	clipTok  *Tokenizer
	clipErr  error
)

func clipTokenizer(tb testing.TB) *Tokenizer {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(clipBPEDir, "vocab.json")); err != nil {
		tb.Skipf("CLIP vocabulary absent (%v)", err)
	}
	clipOnce.Do(func() { clipTok, clipErr = Load(clipBPEDir) })
	if clipErr != nil {
		tb.Fatal(clipErr)
	}
	return clipTok
}

// testVocab builds a byte-level vocabulary with the given merges ("a b" lines)
// and the two specials, the way CLIP's vocabulary is laid out.
func testVocab(tb testing.TB, merges ...string) *Tokenizer {
	tb.Helper()
	vocab := map[string]int{}
	add := func(s string) {
		if _, ok := vocab[s]; !ok {
			vocab[s] = len(vocab)
		}
	}
	for _, r := range byteToRune {
		add(string(r))
	}
	for _, r := range byteToRune {
		add(string(r) + endOfWord)
	}
	for _, m := range merges {
		a, b, _ := strings.Cut(m, " ")
		add(a + b)
	}
	add(startOfText)
	add(endOfText)
	vj, err := json.Marshal(vocab)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := New(vj, []byte("#version: 0.2\n"+strings.Join(merges, "\n")+"\n"))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

type parityRow struct {
	Text           string   `json:"text"`
	IDs            []int32  `json:"ids"`
	Tokens         []string `json:"tokens"`
	Context77      []int32  `json:"context77_openai_padding"`
	UntruncatedLen int      `json:"untruncated_len"`
}

func parityRows(t *testing.T) []parityRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(clipBPEDir, "expected_ids.json"))
	if err != nil {
		t.Skipf("parity data absent (%v)", err)
	}
	var doc struct {
		BOS, EOS int32
		Rows     []parityRow
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.BOS != 49406 || doc.EOS != 49407 || len(doc.Rows) == 0 {
		t.Fatalf("unexpected parity file: bos %d eos %d, %d rows", doc.BOS, doc.EOS, len(doc.Rows))
	}
	return doc.Rows
}

// TestParityOpenAI checks every row of OpenAI's reference output: the ids, the
// BPE strings, and the 77-context row (OpenAI pads with 0, lavascope's ids are
// unpadded).
func TestParityOpenAI(t *testing.T) {
	tok := clipTokenizer(t)
	for _, row := range parityRows(t) {
		full := tok.Encode(row.Text, 0)
		inner := full.IDs[1 : len(full.IDs)-1]
		if !slices.Equal(inner, row.IDs) {
			t.Errorf("%q:\n got  %v\n want %v", row.Text, inner, row.IDs)
			continue
		}
		if got := tok.Tokens(inner); !slices.Equal(got, row.Tokens) {
			t.Errorf("%q: tokens %q, want %q", row.Text, got, row.Tokens)
		}
		if len(inner) != row.UntruncatedLen {
			t.Errorf("%q: %d tokens, want %d", row.Text, len(inner), row.UntruncatedLen)
		}
		enc := tok.Encode(row.Text, 77)
		n := len(enc.IDs)
		if !slices.Equal(enc.IDs, row.Context77[:n]) || slices.ContainsFunc(row.Context77[n:], func(x int32) bool { return x != 0 }) {
			t.Errorf("%q: context 77 gives %v, want %v", row.Text, enc.IDs, row.Context77)
		}
		if enc.Truncated != (row.UntruncatedLen > 75) {
			t.Errorf("%q: truncated = %v with %d tokens", row.Text, enc.Truncated, row.UntruncatedLen)
		}
		if len(enc.Offsets) != n {
			t.Errorf("%q: %d offsets for %d ids", row.Text, len(enc.Offsets), n)
		}
	}
}

// TestReferenceCorners checks strings where Python's semantics are easy to
// miss against ids from OpenAI's simple_tokenizer.py (with the regex module,
// NFC standing in for ftfy): U+001C..U+001F stripped at the ends but kept
// inside, a special spelled with ſ tokenized as text, U+0345 dropped, final
// sigma, İ, legacy entities without ';', dropped control references.
func TestReferenceCorners(t *testing.T) {
	tok := clipTokenizer(t)
	for _, tc := range []struct {
		text string
		ids  []int32
	}{
		{"\x1cNP\x1c<|startoftext|>\x1c", []int32{6314, 216, 27, 347, 993, 6659, 4160, 91, 285}},
		{"a \x1c b", []int32{320, 472, 321}},
		{"<|ſtartoftext|>x", []int32{27, 91, 129, 123, 2002, 6659, 18169, 91, 285, 343}},
		{",\u0301\u0345n", []int32{11, 136, 479, 333}},
		{"x\u0345y", []int32{343, 344}},
		{"ΟΔΟΣ Σα", []int32{138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 365}},
		{"İstanbul", []int32{328, 16384, 11231}},
		{"&copy 2024 &ampx &#1;", []int32{5811, 273, 271, 273, 275, 261, 343}},
		{"Cafe\u0301\u00a0\u2003bar", []int32{15304, 2411}},
	} {
		enc := tok.Encode(tc.text, 0)
		if got := enc.IDs[1 : len(enc.IDs)-1]; !slices.Equal(got, tc.ids) {
			t.Errorf("%q: %v %q, want %v %q", tc.text, got, tok.Tokens(got), tc.ids, tok.Tokens(tc.ids))
		}
	}
}

// tokenBytes is the text a BPE string stands for.
func tokenBytes(tok string) string {
	var b []byte
	for _, r := range strings.TrimSuffix(tok, endOfWord) {
		c, _ := runeToByte(r)
		b = append(b, c)
	}
	return string(b)
}

// TestOffsetsExact checks that on text cleanup keeps byte for byte (the
// linearized-tree style), each token's span is exactly the token's text.
func TestOffsetsExact(t *testing.T) {
	tok := clipTokenizer(t)
	texts := []string{
		"(s (np (nnp danny)) (vp (vbd approached) (np (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag))))) (. .))",
		"(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (JJ green) (NN chair)) (PP (IN with) (NP (DT a) (JJ yellow) (NN bag)))) (. .))",
		"Danny looked at Andrei with a telescope.",
		"it's 2024, they'll say ((((s",
	}
	for _, text := range texts {
		enc := tok.Encode(text, 0)
		if enc.Offsets[0] != [2]int{0, 0} || enc.Offsets[len(enc.Offsets)-1] != [2]int{len(text), len(text)} {
			t.Errorf("%q: BOS/EOS offsets %v %v", text, enc.Offsets[0], enc.Offsets[len(enc.Offsets)-1])
		}
		for i := 1; i < len(enc.IDs)-1; i++ {
			o := enc.Offsets[i]
			if got, want := strings.ToLower(text[o[0]:o[1]]), tokenBytes(tok.Token(enc.IDs[i])); got != want {
				t.Errorf("%q: token %d %q has span %v = %q", text, i, tok.Token(enc.IDs[i]), o, got)
			}
		}
	}
	tree := texts[0]
	if n := len(tok.Encode(tree, 0).IDs) - 2; n != 56 {
		t.Errorf("the paper's tree has %d tokens, want 56", n)
	}
	// In the other reading the PP closes four brackets at once.
	tree = "(s (np (nnp danny)) (vp (vbd approached) (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag)))) (. .))"
	enc := tok.Encode(tree, 0)
	four, ok := tok.ID("))))</w>")
	if !ok {
		t.Fatal("no ))))</w> in the vocabulary")
	}
	var found bool
	for i, id := range enc.IDs {
		if id == four {
			found = true
			if o := enc.Offsets[i]; tree[o[0]:o[1]] != "))))" {
				t.Errorf("))))</w> spans %q", tree[o[0]:o[1]])
			}
		}
	}
	if !found {
		t.Error("no ))))</w> token in the tree")
	}
}

// TestCleanup checks OpenAI's cleanup and where each cleaned piece comes from.
func TestCleanup(t *testing.T) {
	tests := []struct {
		in, out string
		// spans: a cleaned substring and the original span it must map to.
		piece string
		span  [2]int
	}{
		{"Danny  Approached", "danny approached", "approached", [2]int{7, 17}},
		{"  a\tb \n", "a b", "b", [2]int{4, 5}},
		{"\u001ca\u001cb\u001f ", "a\u001cb", "b", [2]int{3, 4}},
		{"a\u00a0\u2003b", "a b", " ", [2]int{1, 6}},
		{"&amp;x", "&x", "&", [2]int{0, 5}},
		{"x&amp;lt;y", "x<y", "<", [2]int{1, 9}},
		{"&ampx", "&x", "&", [2]int{0, 4}},
		{"&ampx", "&x", "x", [2]int{4, 5}},
		{"&notit;", "¬it;", "¬", [2]int{0, 4}},
		{"&semi;", ";", ";", [2]int{0, 6}},
		{"&#1;a", "a", "a", [2]int{4, 5}},
		{"&#128;", "€", "€", [2]int{0, 6}},
		{"&#x1F642;!", "🙂!", "!", [2]int{9, 10}},
		{"&#99999999999;", "\uFFFD", "\uFFFD", [2]int{0, 14}},
		{"&#;&x;&", "&#;&x;&", "&x;", [2]int{3, 6}},
		{"Cafe\u0301 Bar", "café bar", "é", [2]int{3, 6}},
		{"Cafe\u0301 Bar", "café bar", "bar", [2]int{7, 10}},
		{"CAFÉ", "café", "é", [2]int{3, 5}},
		{"\u0130x", "i\u0307x", "x", [2]int{2, 3}},
		{"ΟΔΟΣ ΣΑ", "οδος σα", "ς", [2]int{6, 8}},
		{"a\xffb", "a\uFFFDb", "\uFFFD", [2]int{1, 2}},
		{"\u212a", "k", "k", [2]int{0, 3}},
		{"plain", "plain", "lai", [2]int{1, 4}},
	}
	for _, tt := range tests {
		c := cleanText(tt.in)
		if c.s != tt.out {
			t.Errorf("clean(%q) = %q, want %q", tt.in, c.s, tt.out)
			continue
		}
		i := strings.Index(c.s, tt.piece)
		if i < 0 {
			t.Fatalf("%q not in %q", tt.piece, c.s)
		}
		if got := c.span(i, i+len(tt.piece)); got != tt.span {
			t.Errorf("clean(%q): %q spans %v, want %v", tt.in, tt.piece, got, tt.span)
		}
	}
}

func TestPreTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"(np (np", []string{"(", "np", "(", "np"}},
		{"it's they'll", []string{"it", "'s", "they", "'ll"}},
		{"''s", []string{"''", "s"}},
		{"a.<|endoftext|>", []string{"a", ".<|", "endoftext", "|>"}},
		{"<|startoftext|>x<|endoftext|>", []string{"<|startoftext|>", "x", "<|endoftext|>"}},
		{"2024ab", []string{"2", "0", "2", "4", "ab"}},
		{"x'ſ", []string{"x", "'ſ"}},
		{"héllo wörld", []string{"héllo", "wörld"}},
		{"½x", []string{"½", "x"}},
		{"a\u0301b", []string{"a", "\u0301", "b"}},
		{",\u0301\u0345n", []string{",\u0301", "n"}},
		{"a\u001cb", []string{"a", "\u001c", "b"}},
	}
	for _, tt := range tests {
		var got []string
		for i := 0; i < len(tt.in); {
			s, e, _ := nextPiece(tt.in, i)
			if s == e {
				break
			}
			got = append(got, tt.in[s:e])
			i = e
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("pieces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBPEMergeRounds(t *testing.T) {
	tok := testVocab(t, "a a", "b c", "aa a", "a b", "ab c</w>")
	tests := []struct {
		word string
		want []string
	}{
		// One round merges the occurrences of a pair left to right without
		// overlap, so "aaa" is aa + a, and then the merge "aa a" applies.
		{"aaab", []string{"aaa", "b</w>"}},
		{"aaaa", []string{"aaa", "a</w>"}},
		{"abc", []string{"abc</w>"}},
		// "b c" (rank 1) wins over "a b" (rank 3).
		{"abcc", []string{"a", "bc", "c</w>"}},
		{"ab", []string{"a", "b</w>"}},
		{"x", []string{"x</w>"}},
	}
	for _, tt := range tests {
		w := tok.bpe(tt.word)
		got := tok.Tokens(w.ids)
		if !slices.Equal(got, tt.want) {
			t.Errorf("bpe(%q) = %q, want %q", tt.word, got, tt.want)
		}
		if w.ends[len(w.ends)-1] != int32(len(tt.word)) {
			t.Errorf("bpe(%q): ends %v", tt.word, w.ends)
		}
	}
}

// TestMergeLargeMatchesSmall checks the O(n log n) loop against OpenAI's loop on
// random words, with CLIP's merges when present and with a small table.
func TestMergeLargeMatchesSmall(t *testing.T) {
	toks := []*Tokenizer{testVocab(t, "a a", "b a", "a b", "aa a", "ab a", "ba b", "aa aa", "b b</w>", "a a</w>", "ab ab")}
	if _, err := os.Stat(filepath.Join(clipBPEDir, "vocab.json")); err == nil {
		toks = append(toks, clipTokenizer(t))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"ab", "()", "abcdefghijklmnopqrstuvwxyz", "eainorst"}
	for ti, tok := range toks {
		for range 3000 {
			alpha := alphabets[rng.IntN(len(alphabets))]
			n := 1 + rng.IntN(60)
			b := make([]byte, n)
			for i := range b {
				b[i] = alpha[rng.IntN(len(alpha))]
			}
			w := string(b)
			s1, e1 := initialSymbols(tok, w)
			s2, e2 := initialSymbols(tok, w)
			n1 := tok.mergeSmall(s1, e1)
			n2 := tok.mergeLarge(s2, e2)
			if !slices.Equal(s1[:n1], s2[:n2]) || !slices.Equal(e1[:n1], e2[:n2]) {
				t.Fatalf("tokenizer %d, %q: small %v %v, large %v %v", ti, w, s1[:n1], e1[:n1], s2[:n2], e2[:n2])
			}
		}
	}
}

func initialSymbols(tok *Tokenizer, w string) ([]int32, []int32) {
	s := make([]int32, len(w))
	e := make([]int32, len(w))
	for i := range len(w) {
		s[i], e[i] = tok.byteSym[w[i]], int32(i+1)
	}
	s[len(w)-1] = tok.byteEndSym[w[len(w)-1]]
	return s, e
}

func TestLongWordIsFast(t *testing.T) {
	tok := clipTokenizer(t)
	long := strings.Repeat("abcdefghij", 20000) // 200 kB, one word
	enc := tok.Encode(long, 77)
	if !enc.Truncated || len(enc.IDs) != 77 {
		t.Fatalf("got %d ids, truncated %v", len(enc.IDs), enc.Truncated)
	}
}

func TestTruncationAndContext(t *testing.T) {
	tok := testVocab(t)
	enc := tok.Encode("a b c d e", 4)
	if !enc.Truncated || len(enc.IDs) != 4 || enc.IDs[3] != tok.EOS() || enc.IDs[0] != tok.BOS() {
		t.Fatalf("context 4: %v truncated %v", enc.IDs, enc.Truncated)
	}
	if got := tok.Tokens(enc.IDs[1:3]); !slices.Equal(got, []string{"a</w>", "b</w>"}) {
		t.Errorf("kept %q", got)
	}
	if enc := tok.Encode("a b", 4); enc.Truncated || len(enc.IDs) != 4 {
		t.Errorf("exact fit: %v truncated %v", enc.IDs, enc.Truncated)
	}
	if enc := tok.Encode("a b", 1); len(enc.IDs) != 2 || !enc.Truncated {
		t.Errorf("context 1: %v", enc.IDs)
	}
	if enc := tok.Encode("", 77); len(enc.IDs) != 2 || enc.Truncated {
		t.Errorf("empty: %v", enc.IDs)
	}
}

func TestPack(t *testing.T) {
	tok := testVocab(t)
	encs := []Encoding{tok.Encode("a", 5), tok.Encode("b c", 5)}
	ids, err := tok.Pack(encs, 5)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := int64(tok.byteEndSym['a']), int64(tok.byteEndSym['b']), int64(tok.byteEndSym['c'])
	bos, eos := int64(tok.BOS()), int64(tok.EOS())
	want := []int64{bos, a, eos, eos, eos, bos, b, c, eos, eos}
	if !slices.Equal(ids, want) {
		t.Errorf("Pack = %v, want %v", ids, want)
	}
	if _, err := tok.Pack([]Encoding{tok.Encode("a b c d", 0)}, 3); err == nil {
		t.Error("Pack accepted a row longer than the context")
	}
}

func TestDecode(t *testing.T) {
	tok := clipTokenizer(t)
	for _, tt := range []struct{ in, want string }{
		{"(S (NP (NNP Danny)) (. .))", "( s ( np ( nnp danny )) (. .))"},
		{"a photo of a cat", "a photo of a cat"},
		{"&amp; &lt;b&gt; html", "& < b > html"},
		{"café  naïve", "café naïve"},
		{"emoji 🙂", "emoji 🙂"},
	} {
		enc := tok.Encode(tt.in, 0)
		ids := append(enc.IDs, tok.EOS(), tok.EOS())
		if got := tok.Decode(ids); got != tt.want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSaveLoadTokenizer(t *testing.T) {
	tok := testVocab(t, "a b", "ab c</w>", "< /")
	dir := t.TempDir()
	if err := tok.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"abc ab <</ &amp;", "x"} {
		if a, b := tok.Encode(s, 0), back.Encode(s, 0); !slices.Equal(a.IDs, b.IDs) {
			t.Errorf("%q: %v after save, %v before", s, b.IDs, a.IDs)
		}
	}
}

func TestLoadTokenizerErrors(t *testing.T) {
	vocab := `{"a": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}`
	tests := []struct {
		name, vocab, merges, want string
	}{
		{"bad json", `{"a": `, "", "vocab.json"},
		{"empty", `{}`, "", "empty vocabulary"},
		{"no bos", `{"a": 0, "<|endoftext|>": 2}`, "", "no <|startoftext|>"},
		{"negative id", `{"a": -1}`, "", "outside"},
		{"shared id", `{"a": 0, "b": 0}`, "", "share id 0"},
		{"bad merge", vocab, "#version: 0.2\na b c\n", "merges.txt:2"},
		{"one symbol", vocab, "a\n", "merges.txt:1"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "vocab.json"), []byte(tt.vocab), 0o644)
		os.WriteFile(filepath.Join(dir, "merges.txt"), []byte(tt.merges), 0o644)
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Errorf("empty folder: %v", err)
	}
}

func TestUnknownSymbolsAreUnk(t *testing.T) {
	// A vocabulary without the byte symbols of "é" maps them to <|endoftext|>.
	vj := `{"a</w>": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}`
	tok, err := New([]byte(vj), nil)
	if err != nil {
		t.Fatal(err)
	}
	enc := tok.Encode("a é", 0)
	if want := []int32{1, 0, 2, 2, 2}; !slices.Equal(enc.IDs, want) {
		t.Errorf("ids %v, want %v", enc.IDs, want)
	}
}

func TestEncodeConcurrent(t *testing.T) {
	tok := clipTokenizer(t)
	texts := benchTrees()
	want := make([][]int32, len(texts))
	for i, s := range texts {
		want[i] = tok.Encode(s, 77).IDs
	}
	// A fresh tokenizer, so that goroutines fill its cache concurrently.
	cold, err := Load(clipBPEDir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (i + g) % len(texts)
				if got := cold.Encode(texts[k], 77).IDs; !slices.Equal(got, want[k]) {
					errs <- fmt.Sprintf("goroutine %d: %q differs", g, texts[k])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "(s (np (nnp danny)) (. .))", "Café &amp; &#128; ΟΔΟΣ", "a\xff\u0301b  c", "<|endoftext|>'s 12"} {
		f.Add(s, 77)
	}
	tok := testVocab(f, "a b", "( s", "n p</w>", ") )", ")) ))</w>")
	f.Fuzz(func(t *testing.T, text string, context int) {
		context %= 100
		if context < 0 {
			context = -context
		}
		enc := tok.Encode(text, context)
		n := len(enc.IDs)
		if n < 2 || enc.IDs[0] != tok.BOS() || enc.IDs[n-1] != tok.EOS() || len(enc.Offsets) != n {
			t.Fatalf("ids %v, %d offsets", enc.IDs, len(enc.Offsets))
		}
		if context > 0 && n > max(context, 2) {
			t.Fatalf("%d ids for context %d", n, context)
		}
		prev := 0
		for _, o := range enc.Offsets {
			if o[0] < prev || o[1] < o[0] || o[1] > len(text) {
				t.Fatalf("offsets %v of %q", enc.Offsets, text)
			}
			prev = o[0]
		}
		c := cleanText(text)
		for i := 0; i < len(c.s); {
			s, e, special := nextPiece(c.s, i)
			if s == e {
				break
			}
			if special < 0 && e-s <= 200 {
				w := c.s[s:e]
				s1, e1 := initialSymbols(tok, w)
				s2, e2 := initialSymbols(tok, w)
				n1, n2 := tok.mergeSmall(s1, e1), tok.mergeLarge(s2, e2)
				if !slices.Equal(s1[:n1], s2[:n2]) {
					t.Fatalf("%q: merge loops differ", w)
				}
			}
			i = e
		}
	})
}

// benchTrees are linearized parse trees in the paper's style.
func benchTrees() []string {
	return []string{
		"(s (np (nnp danny)) (vp (vbd approached) (np (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag))))) (. .))",
		"(s (np (nnp danny)) (vp (vbd approached) (np (dt the) (jj green) (nn chair)) (pp (in with) (np (dt a) (jj yellow) (nn bag)))) (. .))",
		"(s (np (nnp andrei) (cc and) (nnp danny)) (vp (vbd moved) (np (dt the) (jj yellow) (nml (nn chair) (cc and) (nn bag)))) (. .))",
		"(s (np (nnp danny)) (vp (vbd looked) (pp (in at) (np (np (nnp andrei)) (pp (in with) (np (dt a) (nn telescope)))))) (. .))",
		"(s (np (nnp yevgeni)) (vp (vbd picked) (prt (rp up)) (np (dt the) (nn bag))))",
	}
}

// BenchmarkEncodeTrees measures tokenizer throughput on linearized trees with a
// warm word cache, the explorer's steady state.
func BenchmarkEncodeTrees(b *testing.B) {
	tok := clipTokenizer(b)
	trees := benchTrees()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tok.Encode(trees[i%len(trees)], DefaultContext)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "trees/s")
}

// BenchmarkEncodeTreesParallel is the same on every core.
func BenchmarkEncodeTreesParallel(b *testing.B) {
	tok := clipTokenizer(b)
	trees := benchTrees()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tok.Encode(trees[i%len(trees)], DefaultContext)
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "trees/s")
}

// BenchmarkEncodeUncached measures the BPE itself: every word of every tree,
// merged without the cache.
func BenchmarkEncodeUncached(b *testing.B) {
	tok := clipTokenizer(b)
	var words []string
	for _, tree := range benchTrees() {
		for i := 0; i < len(tree); {
			s, e, _ := nextPiece(tree, i)
			if s == e {
				break
			}
			words = append(words, tree[s:e])
			i = e
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tok.bpe(words[i%len(words)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "words/s")
}

func BenchmarkLoadTokenizer(b *testing.B) {
	clipTokenizer(b)
	for b.Loop() {
		if _, err := Load(clipBPEDir); err != nil {
			b.Fatal(err)
		}
	}
}
