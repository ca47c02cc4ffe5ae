package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// layoutCorpus is a small corpus in LAVA's own layout: sentence 1 a pair,
// sentence 2 a pair whose second reading takes its frame and logical form
// from an equivalent variant without a tree, sentence 3 three contrasting
// readings, sentence 4 a semantic ambiguity without trees, sentence 5 a pair
// one of whose frames is missing. Its splits-k1 and splits-k2 folders hold
// split files written by make_splits.py the way the authors' filesplit.py
// writes them.
var layoutCorpus = filepath.Join("testdata", "lava-corpus")

// importLayout imports the corpus in place (frames under its images/).
func importLayout(t *testing.T, opts LAVAOptions) ([]Pair, LAVAReport) {
	t.Helper()
	opts.Corpus, opts.OutDir = layoutCorpus, layoutCorpus
	pairs, rep, err := ImportLAVA(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(pairs, "pairs.jsonl"); err != nil {
		t.Fatalf("imported pairs do not check: %v", err)
	}
	return pairs, rep
}

// summary is one line a pair: id, split, family, then each reading's frame.
func summary(pairs []Pair) []string {
	var out []string
	for _, p := range pairs {
		line := fmt.Sprintf("%s %s %s:", p.ID, p.Split, p.Ambiguity)
		for _, r := range p.Readings {
			line += " " + strings.TrimSuffix(strings.TrimPrefix(r.Image, "images/"), ".png")
		}
		out = append(out, line)
	}
	return out
}

func TestImportLAVALayout(t *testing.T) {
	pairs, rep := importLayout(t, LAVAOptions{})
	want := []string{
		"lava-1-1-2 test pp-attachment: 00022-10090-10190 00022-10300-10400",
		"lava-2-1-2 test adjective-scope: 00031-00500-00600 00031-00700-00800",
		"lava-3-1-2 test pp-attachment: 00040-00100-00200 00040-00300-00400",
		"lava-3-1-3 test pp-attachment: 00040-00100-00200 00040-00500-00600",
		"lava-3-2-3 test pp-attachment: 00040-00300-00400 00040-00500-00600",
	}
	if got := summary(pairs); !slices.Equal(got, want) {
		t.Errorf("pairs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !rep.Contrast || rep.Entries != 12 || rep.Groups != 4 || rep.Pairs != 5 || rep.Filled != 1 || rep.SkippedEntries() != 5 {
		t.Errorf("report %+v", rep)
	}
	wantSkips := []Skip{
		{Reason: `no tree (key "syntactic_tree")`, Count: 3, Unit: unitEntries, First: "entry 2 (2,4)"},
		{Reason: "frame file not found", Count: 1, Unit: unitEntries,
			First: fmt.Sprintf("entry 11 (5,2): no file for %q in %s", "00052-00000-00100", filepath.Join(layoutCorpus, "images"))},
		{Reason: "no contrasting reading with a tree and a frame", Count: 1, Unit: unitEntries, First: "entry 10 (5,1)"},
	}
	if !slices.Equal(rep.Skipped, wantSkips) {
		t.Errorf("skipped\n%+v\nwant\n%+v", rep.Skipped, wantSkips)
	}
	p := pairs[1]
	if p.Sentence != "Andrei picked up the yellow bag and chair" || p.Readings[1].Gloss != "pick_up(Andrei, chair) & pick_up(Andrei, bag) & yellow(bag)" {
		t.Errorf("the reading that takes from its equivalent variant: %+v", p)
	}
	if !strings.HasPrefix(p.Readings[1].Tree, "(S (NP (NNP Andrei)) (VP (VBD picked) (PRT (RP up)) (NP (NP") {
		t.Errorf("tree of reading 2,2: %s", p.Readings[1].Tree)
	}

	kept, rep := importLayout(t, LAVAOptions{KeepTriples: true})
	want = []string{want[0], want[1], "lava-3-1-2-3 test pp-attachment: 00040-00100-00200 00040-00300-00400 00040-00500-00600"}
	if got := summary(kept); !slices.Equal(got, want) || rep.Pairs != 3 {
		t.Errorf("--triples keep:\n%s", strings.Join(got, "\n"))
	}
}

// TestImportLAVAGrouping checks the authors' rule on the order of entries: a
// reading joins only a group whose founder it names.
func TestImportLAVAGrouping(t *testing.T) {
	tree := func(attach bool) string {
		if attach {
			return "(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag))))))"
		}
		return "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag)))))"
	}
	entry := func(v int, frame string, attach bool, contrast ...string) string {
		return fmt.Sprintf(`{"sentenceID": 7, "variantID": %d, "text": "Danny approached the chair with a bag", "syntactic_tree": %q, "visualFilename": %q, "contrastVariants": [%s]}`,
			v, tree(attach), frame, `"`+strings.Join(contrast, `", "`)+`"`)
	}
	// 7,3 contrasts only with 7,2, which joined 7,1's group: it founds a
	// group of its own, left alone.
	json := "[" + strings.Join([]string{
		entry(1, "00022-10090-10190", false, "7,2"),
		entry(2, "00022-10300-10400", true, "7,1", "7,3"),
		entry(3, "00031-00500-00600", false, "7,2"),
	}, ",") + "]"
	pairs, rep, err := importString(t, json, LAVAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(pairs); !slices.Equal(got, []string{"lava-7-1-2 test pp-attachment: 00022-10090-10190 00022-10300-10400"}) {
		t.Errorf("pairs %q", got)
	}
	if rep.Groups != 2 || len(rep.Skipped) != 1 || rep.Skipped[0].First != "entry 2 (7,3)" {
		t.Errorf("report %+v", rep)
	}
}

func TestImportLAVAUniqueIDs(t *testing.T) {
	entry := func(sid string, v int, frame string, attach bool) string {
		tree := "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag)))))"
		if attach {
			tree = "(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag))))))"
		}
		return fmt.Sprintf(`{"sentenceID": %q, "variantID": %d, "text": "Danny approached the chair with a bag", "syntactic_tree": %q, "visualFilename": %q, "contrastVariants": ["%s,%d"]}`,
			sid, v, tree, frame, sid, 3-v)
	}
	json := "[" + strings.Join([]string{
		entry("a b", 1, "00022-10090-10190", false), entry("a b", 2, "00022-10300-10400", true),
		entry("A_b", 1, "00031-00500-00600", false), entry("A_b", 2, "00031-00700-00800", true),
	}, ",") + "]"
	pairs, _, err := importString(t, json, LAVAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 2 || pairs[0].ID != "lava-a_b-1-2" || pairs[1].ID != "lava-A_b-1-2-2" {
		t.Errorf("pairs %q", summary(pairs))
	}
	if err := Validate(pairs, "pairs.jsonl"); err != nil {
		t.Error(err)
	}
}

// importString imports a lava.json given as text, in a copy of the corpus
// whose frames it can name.
func importString(t *testing.T, json string, opts LAVAOptions) ([]Pair, LAVAReport, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "images"), os.DirFS(filepath.Join(layoutCorpus, "images"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lava.json"), []byte(json), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Corpus, opts.OutDir = dir, dir
	return ImportLAVA(opts)
}

func TestImportLAVASkips(t *testing.T) {
	a := "(S (NP (NNP Danny)) (VP (VBD left)))"
	b := "(S (NP (NNP Danny)) (VP (VBD went)))"
	json := `[{"text": "Danny left", "visualFilename": "99999-0-1", "parse": "` + a + `"},
		{"text": "Danny left", "visualFilename": "00022-10090-10190", "parse": "` + a + `"},
		{"text": "Danny left", "visualFilename": "00022-10300-10400", "parse": "` + b + `"},
		{"text": "Danny left", "parse": null},
		{"text": "Danny left", "visualFilename": "", "parse": "(S (NP (NNP Danny)) (VP (VBD left) (ADVP (RB early))))"}]`
	pairs, rep, err := importString(t, json, LAVAOptions{Fields: parseKey})
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != 0 || rep.SkippedEntries() != 5 {
		t.Errorf("%d pairs, report %+v", len(pairs), rep)
	}
	var got []string
	for _, s := range rep.Skipped {
		got = append(got, fmt.Sprintf("%d %s: %s", s.Count, s.Reason, s.First))
	}
	want := []string{
		`1 no tree (key "parse"): entry 3`,
		`1 frame file not found: entry 0: no file for "99999-0-1" in ` + filepath.Join(filepath.Dir(rep.File), "images"),
		`1 no frame name (key "visualFilename"): entry 4`,
		`2 readings of one group whose trees' words differ: entry 1: "Danny left", but entry 2: "Danny went"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("skipped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestImportLAVABadInput(t *testing.T) {
	lava := func(fields string) string {
		return `[{"sentenceID": 1, "variantID": 1, "text": "Danny left", "syntactic_tree": "(S (NP (NNP Danny)) (VP (VBD left)))", "visualFilename": "00022-10090-10190", "contrastVariants": ["1,2"]},
			{"sentenceID": 1, "variantID": 2, "text": "Danny left", "syntactic_tree": "(S (NP (NNP Danny)) (VP (VBD left) (NP (NN x))))", "contrastVariants": ["1,1"]` + fields + `}]`
	}
	for _, c := range []struct{ name, json, want string }{
		{"not JSON", `[{"sentenceID": 1,`, "lava.json: neither one JSON value"},
		{"equivalent that is not there", lava(`, "equivalentVariants": ["1,9"]`), `lava.json: entry 1 (1,2): equivalentVariants[0] is "1,9", but no entry has that sentenceID,variantID`},
		{"equivalents not a list", lava(`, "equivalentVariants": "1,1"`), `lava.json: entry 1 (1,2): equivalentVariants holds "1,1", not a list`},
		{"contrast of numbers", lava(`, "contrastVariants": [1]`), `lava.json: entry 1 (1,2): contrastVariants[0] is 1, not "sentenceID,variantID"`},
		{"no variantID", `[{"sentenceID": 1, "text": "a", "syntactic_tree": "(S (X a))", "visualFilename": "x", "contrastVariants": []}]`,
			`lava.json: entry 0: no key "variantID"`},
		{"same id twice", `[{"sentenceID": 1, "variantID": 1, "contrastVariants": []}, {"sentenceID": 1, "variantID": 1, "visualFilename": "x", "text": "a", "syntactic_tree": "(S (X a))", "contrastVariants": []}]`,
			`lava.json: entry 1: sentenceID,variantID "1,1" is also that of entry 0 (1,1)`},
		{"tree of the wrong type", lava(`, "syntactic_tree": ["(S (X a))"]`), `lava.json: entry 1 (1,2): key "syntactic_tree" (the tree) holds a list of 1`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := importString(t, c.json, LAVAOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v\nwant it to say %q", err, c.want)
			}
		})
	}
}

// FuzzImportLAVA imports arbitrary lava.json text beside the fixture's
// frames: whatever it holds, the import returns an error or pairs that make
// a valid manifest, and no entry is both used and skipped.
func FuzzImportLAVA(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(layoutCorpus, "lava.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data, false)
	f.Add(data, true)
	f.Add([]byte(`[{"sentenceID": 1, "variantID": 1, "text": "a b", "syntactic_tree": "(S (X a) (Y b))", "visualFilename": "00022-10090-10190", "contrastVariants": ["1,2", "1,1"]},
		{"sentenceID": 1, "variantID": 2, "text": "a b", "syntactic_tree": "(S (Z (X a) (Y b)))", "contrastVariants": ["1,1"], "equivalentVariants": ["1,1"]}]`), false)
	dir := f.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "images"), os.DirFS(filepath.Join(layoutCorpus, "images"))); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, keep bool) {
		if err := os.WriteFile(filepath.Join(dir, "lava.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		pairs, rep, err := ImportLAVA(LAVAOptions{Corpus: dir, OutDir: dir, KeepTriples: keep, Split: SplitAuthors})
		if err != nil {
			return
		}
		if err := Validate(pairs, "pairs.jsonl"); err != nil {
			t.Fatalf("imported pairs do not check: %v", err)
		}
		used := map[string]bool{}
		for _, p := range pairs {
			for _, r := range p.Readings {
				used[r.Tree+"\x00"+r.Image] = true
			}
		}
		if rep.SkippedEntries()+len(used) > rep.Entries {
			t.Fatalf("%d entries, %d skipped and %d readings used", rep.Entries, rep.SkippedEntries(), len(used))
		}
	})
}
