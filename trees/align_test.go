package trees

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// clipBPEDir holds OpenAI CLIP's vocabulary and reference tokenizations,
// shared beside the repository and not part of it.
var clipBPEDir = filepath.Join("..", "..", "shared", "clip-bpe")

type bpeRow struct {
	Text   string   `json:"text"`
	Tokens []string `json:"tokens"`
}

// loadBPERows reads the reference tokenizations; the test is skipped where
// the shared folder is absent.
func loadBPERows(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(clipBPEDir, "expected_ids.json"))
	if os.IsNotExist(err) {
		t.Skipf("%s is absent", clipBPEDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Rows []bpeRow `json:"rows"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("expected_ids.json: %v", err)
	}
	rows := map[string][]string{}
	for _, r := range doc.Rows {
		rows[r.Text] = r.Tokens
	}
	return rows
}

// byteDecoder inverts the byte-level BPE alphabet of GPT-2 and CLIP, which
// writes each byte as a printable rune.
var byteDecoder = func() map[rune]byte {
	m := map[rune]byte{}
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[rune(b)] = byte(b)
		} else {
			m[rune(256+n)] = byte(b)
			n++
		}
	}
	return m
}()

// bpeOffsets finds the byte range of each BPE token in text, as the
// tokenizer will report it: CLIP lower-cases, splits on whitespace and never
// lets a token cross a space.
func bpeOffsets(t *testing.T, text string, tokens []string) [][2]int {
	t.Helper()
	lower := strings.ToLower(text)
	var offs [][2]int
	pos := 0
	for i, tok := range tokens {
		var raw []byte
		for _, r := range strings.TrimSuffix(tok, "</w>") {
			b, ok := byteDecoder[r]
			if !ok {
				t.Fatalf("token %d %q: rune %q is not in the byte alphabet", i, tok, r)
			}
			raw = append(raw, b)
		}
		for pos < len(lower) && unicode.IsSpace(rune(lower[pos])) {
			pos++
		}
		if !strings.HasPrefix(lower[pos:], string(raw)) {
			t.Fatalf("token %d %q does not match the text at byte %d: %q", i, tok, pos, lower[pos:])
		}
		offs = append(offs, [2]int{pos, pos + len(raw)})
		pos += len(raw)
	}
	return offs
}

// describe names the parts a token covers, e.g. "close NN, close NP".
func describe(a *Alignment, tok int) string {
	var s []string
	for _, pi := range a.Parts[tok] {
		p := a.Linear.Parts[pi]
		s = append(s, p.Kind.String()+" "+p.Node.Label)
	}
	return strings.Join(s, ", ")
}

func TestAlignCLIPTokens(t *testing.T) {
	rows := loadBPERows(t)
	tests := []struct {
		tree  string
		style Style
		// want maps a token, by its text and occurrence ("))))#0"), to the
		// parts it must cover.
		want map[string]string
	}{
		{lavaPairs[0].a, StylePaper, map[string]string{
			"))))#0":  "close NN, close NP, close PP, close VP",
			"(.#0":    "open .",
			".#0":     "word .",
			"))#1":    "close NN, close NP",
			"))#2":    "close ., close S",
			"(#0":     "open S",
			"n#0":     "open NNP",
			"np#1":    "open NNP",
			"danny#0": "word NNP",
			"))#0":    "close NNP, close NP",
		}},
		{lavaPairs[0].b, StylePaper, map[string]string{
			"))#2":  "close NN, close NP",
			")))#0": "close PP, close NP, close VP",
			"np#3":  "open NP",
		}},
		{lavaPairs[0].a, StylePTB, map[string]string{
			"))))#0": "close NN, close NP, close PP, close VP",
			"v#0":    "open VBD",
			"bd#0":   "open VBD",
		}},
		{"(S (NP (NNP Andrei) (CC and) (NNP Danny)) (VP (VBD moved) (NP (DT the) (JJ yellow) (NML (NN chair) (CC and) (NN bag)))) (. .))", StylePaper, map[string]string{
			"ml#0":   "open NML",
			"))))#0": "close NN, close NML, close NP, close VP",
		}},
	}
	for _, tt := range tests {
		n := mustParse(t, tt.tree)
		l := Linearize(n, tt.style)
		tokens, ok := rows[l.Text]
		if !ok {
			t.Fatalf("no reference tokenization of %q", l.Text)
		}
		a, err := Align(l, bpeOffsets(t, l.Text, tokens))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		got := map[string]string{}
		for i := range tokens {
			text := l.Text[a.Offsets[i][0]:a.Offsets[i][1]]
			key := strings.ToLower(text) + "#" + strconv.Itoa(seen[strings.ToLower(text)])
			seen[strings.ToLower(text)]++
			got[key] = describe(a, i)
			if len(a.Parts[i]) == 0 {
				t.Errorf("%s: token %d %q covers no part", l.Text, i, text)
			}
		}
		for k, want := range tt.want {
			if got[k] != want {
				t.Errorf("%s %s: token %s covers %q, want %q", tt.style, l.Text, k, got[k], want)
			}
		}
		// Every byte of every part is under some token.
		covered := make([]bool, len(l.Text))
		for _, o := range a.Offsets {
			for b := o[0]; b < o[1]; b++ {
				covered[b] = true
			}
		}
		for b := range l.Text {
			if l.PartAt(b) >= 0 && !covered[b] {
				t.Errorf("%s: byte %d %q is under no token", l.Text, b, l.Text[b])
			}
		}
	}
}

func TestAggregate(t *testing.T) {
	n := mustParse(t, lavaPairs[0].a)
	l := Linearize(n, StylePaper)
	// "(s", "(np", "(nnp danny))": tokens by hand, plus an empty start marker,
	// one covering only a space, and one spanning "danny))".
	at := func(s string) [2]int {
		i := strings.Index(l.Text, s)
		if i < 0 {
			t.Fatalf("%q not in %q", s, l.Text)
		}
		return [2]int{i, i + len(s)}
	}
	offsets := [][2]int{{0, 0}, at("(s"), {2, 3}, at("(np"), at("(nnp"), at("danny))")}
	rel := []float64{10, 1, 100, 2, 4, 9}
	a, err := Align(l, offsets)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Aggregate(rel)
	if err != nil {
		t.Fatal(err)
	}
	nnp := n.Children[0].Children[0]
	want := map[*Node]float64{
		n:             1,
		n.Children[0]: 2 + 3, // "(np" and a third of "danny))"
		nnp:           4 + 3 + 3,
	}
	for node, w := range want {
		if got := r.Nodes[node]; math.Abs(got-w) > 1e-12 {
			t.Errorf("node %s relevance = %v, want %v", node.Label, got, w)
		}
	}
	if r.Words[0] != 3 {
		t.Errorf("word danny relevance = %v, want 3", r.Words[0])
	}
	if r.Unassigned != 110 {
		t.Errorf("unassigned = %v, want 110 (start marker and space)", r.Unassigned)
	}
	if len(r.Nodes) != 16 {
		t.Errorf("Nodes has %d entries, want all 16 nodes", len(r.Nodes))
	}
	if sum(r.Parts)+r.Unassigned != sum(rel) {
		t.Errorf("parts %v + unassigned %v != tokens %v", sum(r.Parts), r.Unassigned, sum(rel))
	}
	if _, err := a.Aggregate(rel[:2]); err == nil {
		t.Error("Aggregate with too few values succeeded")
	}

	nodes, words := r.Scores(n)
	if len(nodes) != 16 || len(words) != len(n.Words()) {
		t.Fatalf("Scores: %d nodes and %d words, want 16 and %d", len(nodes), len(words), len(n.Words()))
	}
	wantScores := []NodeScore{
		{Label: "S", Start: 0, End: len(n.Words()), Relevance: 1},
		{Label: "NP", Start: 0, End: 1, Relevance: 5},
		{Label: "NNP", Word: "Danny", Start: 0, End: 1, Relevance: 10},
		{Label: "VP", Start: 1, End: len(n.Words()) - 1},
	}
	for i, w := range wantScores {
		if g := nodes[i]; g.Label != w.Label || g.Word != w.Word || g.Start != w.Start || g.End != w.End || math.Abs(g.Relevance-w.Relevance) > 1e-12 {
			t.Errorf("Scores node %d = %+v, want %+v", i, g, w)
		}
	}
	if words[0] != (WordScore{Word: "Danny", Relevance: 3}) {
		t.Errorf("Scores word 0 = %+v, want Danny 3", words[0])
	}
}

func sum(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s
}

// TestAggregateConserves checks, on the real tokenization of every style,
// that relevance is neither lost nor made: parts plus unassigned equal the
// tokens, nodes and words are sums of parts.
func TestAggregateConserves(t *testing.T) {
	for _, p := range lavaPairs {
		n := mustParse(t, p.b)
		for s := StylePaper; s <= StyleWords; s++ {
			l := Linearize(n, s)
			var offs [][2]int
			// Whitespace-split tokens, then each cut in two, so that tokens
			// both span parts and share them.
			for _, f := range fieldOffsets(l.Text) {
				mid := (f[0] + f[1]) / 2
				offs = append(offs, [2]int{f[0], mid}, [2]int{mid, f[1]}, f)
			}
			a, err := Align(l, offs)
			if err != nil {
				t.Fatal(err)
			}
			rel := make([]float64, len(offs))
			for i := range rel {
				rel[i] = float64(i%7) - 2.5
			}
			r, err := a.Aggregate(rel)
			if err != nil {
				t.Fatal(err)
			}
			var nodes, words float64
			for _, v := range r.Nodes {
				nodes += v
			}
			for _, v := range r.Words {
				words += v
			}
			var wordParts float64
			for i, part := range l.Parts {
				if part.Kind == PartWord && part.Word >= 0 {
					wordParts += r.Parts[i]
				}
			}
			if d := sum(r.Parts) + r.Unassigned - sum(rel); math.Abs(d) > 1e-9 {
				t.Errorf("%s %s: relevance not conserved (off by %g)", p.name, s, d)
			}
			if d := nodes - sum(r.Parts); math.Abs(d) > 1e-9 {
				t.Errorf("%s %s: nodes sum differs from parts by %g", p.name, s, d)
			}
			if d := words - wordParts; math.Abs(d) > 1e-9 {
				t.Errorf("%s %s: words sum differs from word parts by %g", p.name, s, d)
			}
		}
	}
}

func fieldOffsets(s string) [][2]int {
	var out [][2]int
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, [2]int{start, i})
			}
			start = -1
		} else if start < 0 {
			start = i
		}
	}
	return out
}

func TestAlignErrors(t *testing.T) {
	l := Linearize(mustParse(t, "(NN bag)"), StylePaper)
	for _, o := range [][2]int{{-1, 2}, {3, 2}, {0, 9}} {
		if _, err := Align(l, [][2]int{{0, 1}, o}); err == nil || !strings.Contains(err.Error(), "token 1") {
			t.Errorf("Align with range %v: error = %v, want one naming token 1", o, err)
		}
	}
	a, err := Align(l, [][2]int{{0, 8}, {0, 0}, {8, 8}})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{0, 1, 2}, nil, nil}; !reflect.DeepEqual(a.Parts, want) {
		t.Errorf("Parts = %v, want %v", a.Parts, want)
	}
}

func TestUnmatchedTokensCLIP(t *testing.T) {
	rows := loadBPERows(t)
	tests := []struct {
		a, b         string
		onlyA, onlyB []string
	}{
		// The paper's finding: "))))" exists only in the VP-attachment reading.
		{lavaPairs[0].a, lavaPairs[0].b, []string{"))))"}, []string{"(", "np", "))", ")))"}},
		{
			"(S (NP (NNP Andrei) (CC and) (NNP Danny)) (VP (VBD moved) (NP (DT the) (JJ yellow) (NML (NN chair) (CC and) (NN bag)))) (. .))",
			"(S (NP (NNP Andrei) (CC and) (NNP Danny)) (VP (VBD moved) (NP (NP (DT the) (JJ yellow) (NN chair)) (CC and) (NP (NN bag)))) (. .))",
			[]string{"(", "n", "ml", ")", "))))"},
			[]string{"(", "np", "))", "(", "np", "))))"},
		},
	}
	for _, tt := range tests {
		ta, tb := mustParse(t, tt.a), mustParse(t, tt.b)
		d, err := Diff(ta, tb)
		if err != nil {
			t.Fatal(err)
		}
		la, lb := Linearize(ta, StylePaper), Linearize(tb, StylePaper)
		aa, err := Align(la, bpeOffsets(t, la.Text, rows[la.Text]))
		if err != nil {
			t.Fatal(err)
		}
		ab, err := Align(lb, bpeOffsets(t, lb.Text, rows[lb.Text]))
		if err != nil {
			t.Fatal(err)
		}
		onlyA, onlyB, err := d.UnmatchedTokens(aa, ab)
		if err != nil {
			t.Fatal(err)
		}
		texts := func(a *Alignment, idx []int) []string {
			var s []string
			for _, i := range idx {
				s = append(s, a.Linear.Text[a.Offsets[i][0]:a.Offsets[i][1]])
			}
			return s
		}
		if got := texts(aa, onlyA); !reflect.DeepEqual(got, tt.onlyA) {
			t.Errorf("tokens only in A = %q, want %q", got, tt.onlyA)
		}
		if got := texts(ab, onlyB); !reflect.DeepEqual(got, tt.onlyB) {
			t.Errorf("tokens only in B = %q, want %q", got, tt.onlyB)
		}
		if _, _, err := d.UnmatchedTokens(ab, aa); err == nil {
			t.Error("UnmatchedTokens with the alignments swapped succeeded")
		}
	}
}

func BenchmarkAlign(b *testing.B) {
	l := Linearize(mustParse(b, lavaPairs[0].b), StylePaper)
	offs := fieldOffsets(l.Text)
	rel := make([]float64, len(offs))
	for b.Loop() {
		a, err := Align(l, offs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := a.Aggregate(rel); err != nil {
			b.Fatal(err)
		}
	}
}
