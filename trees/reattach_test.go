package trees

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// reattachInputs are the trees of the golden file: the LAVA readings of
// lava_test.go, the synthetic generator's families in both readings, and
// shapes each rule must handle (a relative clause, a past participle, a
// flat NP, the coordination without a determiner, empty elements,
// function tags, and a ROOT wrapper over two constituents).
var reattachInputs = []struct{ name, tree string }{
	{"pp-look-a", "(S (NP (NNP Danny)) (VP (VBD looked) (PP (IN at) (NP (DT the) (JJ red) (NN chair))) (PP (IN with) (NP (DT a) (JJ blue) (NN bag)))) (. .))"},
	{"pp-look-b", "(S (NP (NNP Danny)) (VP (VBD looked) (PP (IN at) (NP (NP (DT the) (JJ red) (NN chair)) (PP (IN with) (NP (DT a) (JJ blue) (NN bag)))))) (. .))"},
	{"adj-synth-wide", "(S (NP (NNP Andrei)) (VP (VBD moved) (NP (DT the) (JJ green) (NX (NX (NN chair)) (CC and) (NX (NN bag))))) (. .))"},
	{"adj-synth-narrow", "(S (NP (NNP Andrei)) (VP (VBD moved) (NP (NP (DT the) (JJ green) (NN chair)) (CC and) (NP (NN bag)))) (. .))"},
	{"vp-watch-a", "(S (NP (NNP Yevgeni)) (VP (VBD watched) (NP (NNP Danny)) (S (VP (VBG picking) (PRT (RP up)) (NP (DT the) (NN bag))))) (. .))"},
	{"vp-watch-b", "(S (NP (NNP Yevgeni)) (VP (VBD watched) (NP (NP (NNP Danny)) (VP (VBG picking) (PRT (RP up)) (NP (DT the) (NN bag))))) (. .))"},
	{"issue-coord-wide", "(NP (JJ green) (NP (NN chair) (CC and) (NN bag)))"},
	{"issue-coord-narrow", "(NP (NP (JJ green) (NN chair)) (CC and) (NP (NN bag)))"},
	{"relative", "(S (NP (PRP I)) (VP (VBD saw) (NP (DT the) (NN man)) (PP (IN near) (NP (DT the) (NN door))) (SBAR (WHNP (WP who)) (S (VP (VBD waved))))) (. .))"},
	{"past-participle", "(S (NP (PRP She)) (VP (VBD found) (NP (NP (DT the) (NN letter)) (VP (VBN written) (PP (IN in) (NP (NN ink)))))))"},
	{"flat-np", "(S (NP (PRP He)) (VP (VBD saw) (NP (DT the) (NN dog) (PP (IN with) (NP (DT the) (NN telescope))))))"},
	{"three-conjuncts", "(NP (DT the) (JJ old) (NX (NX (NN chair)) (, ,) (NX (NN table)) (CC and) (NX (NN bag))))"},
	{"empty-elements", "(S (NP-SBJ (NNP Mary)) (VP (VBD put) (NP (NP (DT the) (NN book)) (-NONE- *T*-1)) (PP-LOC (IN on) (NP (DT the) (NN shelf)))))"},
	{"root-two", "(ROOT (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag))))"},
	{"nothing-moves", "(S (NP (NNP Danny)) (VP (VBD left)) (. .))"},
}

func init() {
	for _, p := range lavaPairs {
		reattachInputs = append(reattachInputs, struct{ name, tree string }{"lava-" + p.name + "-a", p.a}, struct{ name, tree string }{"lava-" + p.name + "-b", p.b})
	}
}

func describeMove(a Alternative, words []string) string {
	span := func(c Constituent) string {
		return fmt.Sprintf("%s %q", c.Label, strings.Join(words[c.Start:c.End], " "))
	}
	return fmt.Sprintf("%s: %s from %s to %s", a.Kind, span(a.Moved), span(a.From), span(a.To))
}

func TestReattachmentsGolden(t *testing.T) {
	var b strings.Builder
	for _, in := range reattachInputs {
		src := mustParse(t, in.tree)
		fmt.Fprintf(&b, "== %s\n%s\n", in.name, Format(src))
		alts := Reattachments(src)
		checkAlternatives(t, src, alts)
		for _, a := range alts {
			fmt.Fprintf(&b, "-> %s\n   %s\n", describeMove(a, src.Words()), Format(a.Tree))
		}
		b.WriteString("\n")
	}
	golden(t, "reattach.golden", b.String())
}

// TestReattachmentsReachOtherReading: for every LAVA-style pair, each
// reading's alternatives hold the other reading, and the move that gets
// there is the one Diff names.
func TestReattachmentsReachOtherReading(t *testing.T) {
	pairs := [][2]string{
		{reattachInputs[0].tree, reattachInputs[1].tree},
		{reattachInputs[2].tree, reattachInputs[3].tree},
		{reattachInputs[4].tree, reattachInputs[5].tree},
		{reattachInputs[6].tree, reattachInputs[7].tree},
	}
	for _, p := range lavaPairs {
		pairs = append(pairs, [2]string{p.a, p.b})
	}
	for _, p := range pairs {
		for k := range 2 {
			src, other := mustParse(t, p[k]), mustParse(t, p[1-k])
			var found *Alternative
			alts := Reattachments(src)
			for i := range alts {
				if Format(alts[i].Tree) == Format(other) {
					found = &alts[i]
				}
			}
			// A wide coordination is written (NX (NX (NN chair)) (CC and)
			// (NX (NN bag))) as in the PTB and the generator; readings
			// that write it otherwise, (NML (NN chair) (CC and) (NN bag)),
			// are found with the same brackets.
			for i := range alts {
				if found == nil && alts[i].Kind == MoveScope && brackets(alts[i].Tree) == brackets(other) {
					found = &alts[i]
				}
			}
			if found == nil {
				t.Errorf("no alternative of\n  %s\nis\n  %s", p[k], p[1-k])
				continue
			}
			d, err := Diff(src, found.Tree)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range d.Moves {
				if m.Start != found.Moved.Start || m.End != found.Moved.End || m.SiteA.Start != found.From.Start || m.SiteA.End != found.From.End ||
					m.SiteB.Start != found.To.Start || m.SiteB.End != found.To.End {
					t.Errorf("%s: Diff's move %s %s -> %s, the alternative's %s %s -> %s", p[k],
						spanString(m.Constituent), spanString(m.SiteA), spanString(m.SiteB),
						spanString(found.Moved), spanString(found.From), spanString(found.To))
				}
			}
		}
	}
}

// TestReattachmentsPure: the source is left as it was, and the results share
// no node with it or with each other.
func TestReattachmentsPure(t *testing.T) {
	for _, in := range reattachInputs {
		src := mustParse(t, in.tree)
		before := Format(src)
		alts := Reattachments(src)
		if Format(src) != before {
			t.Errorf("%s: the source changed to %s", in.name, Format(src))
		}
		owner := map[*Node]int{}
		src.Walk(func(n *Node) bool { owner[n] = -1; return true })
		for i, a := range alts {
			a.Tree.Walk(func(n *Node) bool {
				if o, ok := owner[n]; ok {
					t.Errorf("%s: alternative %d shares node (%s) with %d (-1: the source)", in.name, i, n.Label, o)
				}
				owner[n] = i
				return true
			})
		}
	}
}

// brackets lists t's word spans of two words or more, without labels, in
// preorder: the unlabelled bracketing that PARSEVAL compares.
func brackets(t *Node) string {
	x := indexTree(t)
	var b strings.Builder
	for _, n := range x.pre {
		if w := x.words[n]; w[1]-w[0] >= 2 {
			fmt.Fprintf(&b, "[%d,%d)", w[0], w[1])
		}
	}
	return b.String()
}

// leaves lists every preterminal, empty elements included.
func leaves(t *Node) []string {
	var out []string
	t.Walk(func(n *Node) bool {
		if n.IsLeaf() {
			out = append(out, n.Label+" "+n.Word)
		}
		return true
	})
	return out
}

// checkAlternatives holds the properties every result of Reattachments has:
// the same leaves in the same order, a tree that reads back as itself, none
// equal to the source or to another, and spans inside the sentence with the
// moved words inside both sites.
func checkAlternatives(t *testing.T, src *Node, alts []Alternative) {
	t.Helper()
	want := leaves(src)
	words := len(src.Words())
	seen := map[string]bool{Format(src): true}
	for i, a := range alts {
		f := Format(a.Tree)
		if seen[f] {
			t.Fatalf("alternative %d repeats the source or an earlier one: %s", i, f)
		}
		seen[f] = true
		if got := leaves(a.Tree); !slices.Equal(got, want) {
			t.Fatalf("alternative %d has the leaves %q, the source %q", i, got, want)
		}
		back, err := Parse(f)
		if err != nil {
			t.Fatalf("alternative %d does not parse back: %v\n%s", i, err, f)
		}
		if !reflect.DeepEqual(back, a.Tree) {
			t.Fatalf("alternative %d reads back as another tree:\n%s\n%s", i, f, Format(back))
		}
		if a.Kind < MovePP || a.Kind > MoveScope {
			t.Fatalf("alternative %d has kind %d", i, a.Kind)
		}
		m := a.Moved
		if m.Start < 0 || m.Start > m.End || m.End > words || m.Node == nil {
			t.Fatalf("alternative %d: moved span [%d,%d) of %d words", i, m.Start, m.End, words)
		}
		for _, s := range []Constituent{a.From, a.To} {
			if s.Start > m.Start || s.End < m.End || s.Node == nil || s.Label != s.Node.Label {
				t.Fatalf("alternative %d: site %s[%d,%d) does not hold the moved [%d,%d)", i, s.Label, s.Start, s.End, m.Start, m.End)
			}
		}
	}
}

// FuzzReattachments checks the properties of checkAlternatives on any tree
// that parses.
func FuzzReattachments(f *testing.F) {
	for _, in := range reattachInputs {
		f.Add(in.tree)
	}
	f.Add("(NP (NP (NP (NN a)) (PP (IN b))) (PP (IN c)))")
	f.Add("(X (NP (NP x) (PP (IN y))))")
	f.Add("(VP (VB go) (S (VP (VBG going) (SBAR (-NONE- 0)))))")
	f.Fuzz(func(t *testing.T, src string) {
		n, err := Parse(src)
		if err != nil {
			return
		}
		before := Format(n)
		alts := Reattachments(n)
		if Format(n) != before {
			t.Fatalf("the source changed: %s", Format(n))
		}
		checkAlternatives(t, n, alts)
	})
}
