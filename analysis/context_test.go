package analysis

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/trees"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The paper's example, without adjectives: the bag goes with Danny (A, the
// PP under the VP) or with the chair (B, under a new NP).
const (
	treeA = "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag)))) (. .))"
	treeB = "(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag))))) (. .))"
)

// clipTokens splits a paper-style linearization as CLIP's BPE does for
// these trees: "(" apart from its label, a word apart from the run of
// closing brackets after it, which is one token ("))))"), and the start
// and end markers as empty ranges.
func clipTokens(text string) []report.Token {
	toks := []report.Token{{Token: "<|startoftext|>"}}
	add := func(s, e int) { toks = append(toks, report.Token{Token: text[s:e] + "</w>", Start: s, End: e}) }
	for i := 0; i < len(text); {
		if text[i] == ' ' {
			i++
			continue
		}
		j := i + 1
		switch text[i] {
		case '(':
		case ')':
			for j < len(text) && text[j] == ')' {
				j++
			}
		default:
			for j < len(text) && text[j] != ' ' && text[j] != ')' {
				j++
			}
		}
		add(i, j)
		i = j
	}
	return append(toks, report.Token{Token: "<|endoftext|>", Start: len(text), End: len(text)})
}

// reading builds reading j of the pair with relevance rel(k, token) on its
// text tokens, normalized to sum 1 as explain normalizes them.
func reading(t *testing.T, tree string, j int, rel func(k int, tok string) float64) *report.Reading {
	t.Helper()
	n, err := trees.Parse(tree)
	if err != nil {
		t.Fatal(err)
	}
	text := trees.Linearize(n, trees.StylePaper).Text
	toks := clipTokens(text)
	var sum float64
	for k := 1; k < len(toks)-1; k++ {
		sum += rel(k, strings.TrimSuffix(toks[k].Token, "</w>"))
	}
	for k := 1; k < len(toks)-1; k++ {
		v := rel(k, strings.TrimSuffix(toks[k].Token, "</w>")) / sum
		toks[k].Relevance, toks[k].Normalized = float32(v), float32(v)
	}
	return &report.Reading{Schema: report.Schema, Pair: "pp-0001", Reading: j, Ambiguity: "pp-attachment", Tree: tree, Text: text, Tokens: toks}
}

func uniform(int, string) float64 { return 1 }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestPaperExample: with uniform relevance the masses are token counts,
// worked out by hand. A has 44 text tokens, of which only "))))" (closing
// NN, NP, PP and VP at once) is missing from B; B has 46, of which "(",
// "np" opening the NP "the chair with a bag" and ")))))" are missing from
// A. The sites are the VP headed by "approached" and the NP headed by
// "chair"; the noun is "bag" in both.
func TestPaperExample(t *testing.T) {
	a, b := reading(t, treeA, 0, uniform), reading(t, treeB, 1, uniform)
	if len(a.Tokens) != 46 || len(b.Tokens) != 48 {
		t.Fatalf("tokens: %d and %d, want 44 and 46 text tokens with the markers", len(a.Tokens), len(b.Tokens))
	}
	if err := Pair([]*report.Reading{a, b}); err != nil {
		t.Fatal(err)
	}
	ca, cb := a.Analysis.Contrast, b.Analysis.Contrast
	tokens := func(r *report.Reading, idx []int) []string {
		var s []string
		for _, k := range idx {
			s = append(s, r.Tokens[k].Token)
		}
		return s
	}
	if got := strings.Join(tokens(a, ca.UniqueTokens), " "); got != "))))</w>" {
		t.Errorf("A's unique tokens %q, want ))))", got)
	}
	if got := strings.Join(tokens(b, cb.UniqueTokens), " "); got != "(</w> np</w> )))))</w>" {
		t.Errorf("B's unique tokens %q, want ( np )))))", got)
	}
	u, v := 1.0/44, 1.0/46
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"A unique", ca.Unique, u},
		{"A shared", ca.Shared, 43 * u},
		{"B unique", cb.Unique, 3 * v},
		{"B shared", cb.Shared, 43 * v},
		// "(vp" and a quarter of "))))", plus "(vbd approached )".
		{"A site", ca.Site.Mass, 2.25*u + 4*u},
		// "( np" and a fifth of ")))))", plus "(nn chair" and half of "))".
		{"B site", cb.Site.Mass, 2.2*v + 3.5*v},
		// "(nn bag" and a quarter of "))))" or a fifth of ")))))".
		{"A noun", ca.Noun.Mass, 3.25 * u},
		{"B noun", cb.Noun.Mass, 3.2 * v},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %.6f, want %.6f", c.name, c.got, c.want)
		}
	}
	if ca.Site.Label != "VP" || ca.Site.HeadWord != "approached" || cb.Site.Label != "NP" || cb.Site.HeadWord != "chair" ||
		cb.Site.Words != "the chair with a bag" {
		t.Errorf("sites %+v and %+v, want VP headed by approached, NP the chair with a bag headed by chair", *ca.Site, *cb.Site)
	}
	if ca.Noun.HeadWord != "bag" || cb.Noun.Head != 6 || ca.Twin != 1 || cb.Twin != 0 {
		t.Errorf("nouns %+v and %+v, want bag (word 6), twins 1 and 0", *ca.Noun, *cb.Noun)
	}
	if a.Analysis.Signed || a.Analysis.Style != trees.StylePaper {
		t.Errorf("signed %v style %s, want unsigned paper", a.Analysis.Signed, a.Analysis.Style)
	}
}

// TestAllOnTheClosingRun: a reading whose relevance sits wholly on the
// "))))" that its twin lacks has all of it unique; the same relevance on a
// shared word has none. Words and constituents then carry it where the
// brackets fold: a quarter to each constituent "))))" closes.
func TestAllOnTheClosingRun(t *testing.T) {
	on := func(want string) func(int, string) float64 {
		return func(_ int, tok string) float64 {
			if tok == want {
				return 1
			}
			return 0
		}
	}
	a, b := reading(t, treeA, 0, on("))))")), reading(t, treeB, 1, uniform)
	an, err := Of(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if c := an.Contrast; !near(c.Unique, 1) || !near(c.Shared, 0) || !near(c.Noun.Mass, 0.25) || !near(c.Site.Mass, 0.25) {
		t.Errorf("unique %v shared %v noun %v site %v, want 1, 0, 0.25, 0.25", c.Unique, c.Shared, c.Noun.Mass, c.Site.Mass)
	}
	top := an.Constituents[:3]
	for _, c := range top {
		if !near(c.Relevance, 0.25) {
			t.Errorf("top constituents %+v, want NP, PP, VP at 0.25 each", top)
		}
	}
	if w := an.Words[6]; w.Word != "bag" || w.Tag != "NN" || !near(w.Relevance, 0.25) {
		t.Errorf("word 6 = %+v, want bag NN 0.25", w)
	}
	a = reading(t, treeA, 0, on("chair"))
	if an, err = Of(a, b); err != nil {
		t.Fatal(err)
	}
	if c := an.Contrast; c.Unique != 0 || !near(c.Shared, 1) || c.Noun.Mass != 0 {
		t.Errorf("unique %v shared %v noun %v, want 0, 1, 0", c.Unique, c.Shared, c.Noun.Mass)
	}
}

// TestGolden pins the whole analysis of both readings of the paper's
// example, with relevance that rises along the text so that every value
// differs.
func TestGolden(t *testing.T) {
	rel := func(k int, _ string) float64 { return float64(k) }
	a, b := reading(t, treeA, 0, rel), reading(t, treeB, 1, rel)
	if err := Pair([]*report.Reading{a, b}); err != nil {
		t.Fatal(err)
	}
	// Six decimals keep the file the same on any machine.
	var buf bytes.Buffer
	for _, r := range []*report.Reading{a, b} {
		data, err := json.MarshalIndent(roundAll(t, r.Analysis), "", " ")
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(data, '\n'))
	}
	golden(t, "paper-example.golden", buf.Bytes())
}

// roundAll rounds every number of v's JSON to six decimals.
func roundAll(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(data, &x); err != nil {
		t.Fatal(err)
	}
	var walk func(x any) any
	walk = func(x any) any {
		switch v := x.(type) {
		case float64:
			return math.Round(v*1e6) / 1e6
		case []any:
			for i := range v {
				v[i] = walk(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = walk(v[k])
			}
		}
		return x
	}
	return walk(x)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the analysis; run go test -update and review the diff\ngot:\n%s", path, got)
	}
}

// TestNoMoveNoun: adjective scope has no moved constituent, so no site;
// the noun is the last noun of the span that holds the differences.
func TestNoMoveNoun(t *testing.T) {
	a := reading(t, "(S (NP (NNP Yevgeni)) (VP (VBD moved) (NP (DT the) (JJ green) (NX (NX (NN telescope)) (CC and) (NX (NN bag))))))", 0, uniform)
	b := reading(t, "(S (NP (NNP Yevgeni)) (VP (VBD moved) (NP (NP (DT the) (JJ green) (NN telescope)) (CC and) (NP (NN bag)))))", 1, uniform)
	an, err := Of(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if c := an.Contrast; c.Site != nil || c.Noun == nil || c.Noun.HeadWord != "bag" || c.Unique <= 0 {
		t.Errorf("contrast %+v, want no site, noun bag and some unique mass", c)
	}
}

// TestSigned: a negative token turns Signed on, words keep the sign and
// the masses are shares of the magnitudes.
func TestSigned(t *testing.T) {
	a := reading(t, treeA, 0, func(_ int, tok string) float64 {
		switch tok {
		case "bag":
			return -3
		case "))))":
			return 5
		}
		return 0
	})
	an, err := Of(a, reading(t, treeB, 1, uniform))
	if err != nil {
		t.Fatal(err)
	}
	if !an.Signed || an.Words[6].Relevance >= 0 {
		t.Fatalf("signed %v, bag %v: want signed with a negative bag", an.Signed, an.Words[6].Relevance)
	}
	// Normalized: bag -1.5, "))))" 2.5; magnitudes 4 in all.
	if c := an.Contrast; !near(c.Unique, 2.5/4) || !near(c.Noun.Mass, (1.5+2.5/4)/4) {
		t.Errorf("unique %v noun %v, want 0.625 and 0.53125", c.Unique, c.Noun.Mass)
	}
}

// TestErrors: a text that is no linearization of the tree, or twins over
// different words, are errors naming the reading.
func TestErrors(t *testing.T) {
	a := reading(t, treeA, 0, uniform)
	bad := *a
	bad.Text = strings.Replace(a.Text, "bag", "box", 1)
	if _, err := Of(&bad, nil); err == nil || !strings.Contains(err.Error(), "pair pp-0001 reading 0") {
		t.Errorf("bad text: %v", err)
	}
	other := reading(t, strings.Replace(treeB, "bag", "box", 1), 1, uniform)
	if _, err := Of(a, other); err == nil || !strings.Contains(err.Error(), "different words") {
		t.Errorf("different words: %v", err)
	}
	if an, err := Of(a, nil); err != nil || an.Contrast != nil || len(an.Words) != 8 {
		t.Errorf("no twin: %+v, %v", an, err)
	}
}

// checkAnalysis holds the properties every analysis has: masses in [0, 1],
// Unique + Shared = 1 when there is relevance, and words and constituents
// partitioning the relevance on the tree.
func checkAnalysis(t *testing.T, r *report.Reading, an report.Analysis) {
	t.Helper()
	var total float64
	for _, tk := range r.Tokens {
		if tk.End > tk.Start {
			total += float64(tk.Normalized)
		}
	}
	var parts float64
	for _, w := range an.Words {
		parts += w.Relevance
	}
	for _, c := range an.Constituents {
		parts += c.Relevance
	}
	if math.Abs(parts-total) > 1e-4*max(1, math.Abs(total)) {
		t.Errorf("words and constituents hold %v of %v", parts, total)
	}
	c := an.Contrast
	if c == nil {
		return
	}
	in := func(v float64) bool { return v >= 0 && v <= 1 }
	if !in(c.Unique) || !in(c.Shared) || (c.Site != nil && !in(c.Site.Mass)) || (c.Noun != nil && !in(c.Noun.Mass)) {
		t.Errorf("masses outside [0, 1]: %+v", c)
	}
	if total > 0 && !near(c.Unique+c.Shared, 1) {
		t.Errorf("unique %v + shared %v ≠ 1", c.Unique, c.Shared)
	}
}

// TestProperties checks checkAnalysis on random relevance over the pairs
// the tests know.
func TestProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pairs := [][2]string{{treeA, treeB},
		{"(S (NP (NNP Danny)) (VP (VBD looked) (PP (IN at) (NP (NNP Andrei))) (S (VP (VBG picking) (PRT (RP up)) (NP (DT the) (NN bag))))))",
			"(S (NP (NNP Danny)) (VP (VBD looked) (PP (IN at) (NP (NP (NNP Andrei)) (VP (VBG picking) (PRT (RP up)) (NP (DT the) (NN bag)))))))"}}
	for i := range 200 {
		p := pairs[i%len(pairs)]
		rel := func(int, string) float64 {
			if rng.IntN(4) == 0 {
				return 0
			}
			return rng.Float64()
		}
		rs := []*report.Reading{reading(t, p[0], 0, rel), reading(t, p[1], 1, rel)}
		if err := Pair(rs); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			checkAnalysis(t, r, *r.Analysis)
		}
	}
}

// FuzzOf feeds trees, token ranges and relevance that no tokenizer made:
// Of either refuses them or gives an analysis with the properties.
func FuzzOf(f *testing.F) {
	f.Add(treeA, treeB, []byte{1, 2, 3, 4, 0, 9})
	f.Add("(S (NP (-NONE- *)) (VP (VB go)))", "(S (VP (VB go)))", []byte{0, 0, 200, 7})
	f.Fuzz(func(t *testing.T, ta, tb string, seed []byte) {
		mk := func(tree string, j int) *report.Reading {
			n, err := trees.Parse(tree)
			if err != nil {
				return nil
			}
			text := trees.Linearize(n, trees.StylePaper).Text
			r := &report.Reading{Pair: "f", Reading: j, Tree: tree, Text: text}
			for k := 0; k+1 < len(seed); k += 2 {
				s := int(seed[k]) % (len(text) + 2)
				e := s + int(seed[k+1])%5
				r.Tokens = append(r.Tokens, report.Token{Start: s, End: e, Normalized: float32(int8(seed[k+1])) / 64})
			}
			return r
		}
		a, b := mk(ta, 0), mk(tb, 1)
		if a == nil || b == nil {
			return
		}
		an, err := Of(a, b)
		if err != nil {
			return
		}
		if an.Contrast == nil {
			t.Fatal("no contrast with a twin")
		}
		c := an.Contrast
		in := func(v float64) bool { return v >= 0 && v <= 1 }
		if !in(c.Unique) || !in(c.Shared) || (c.Site != nil && !in(c.Site.Mass)) || (c.Noun != nil && !in(c.Noun.Mass)) {
			t.Errorf("masses outside [0, 1]: %+v", c)
		}
	})
}
