package loader

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAuthorsSplit(t *testing.T) {
	for _, c := range []struct{ n, train, val, test int }{{1000, 700, 100, 200}, {6, 4, 0, 2}, {15, 10, 2, 3}, {0, 0, 0, 0}} {
		got := authorsSplit(c.n, 3)
		count := map[string]int{}
		for _, s := range got {
			count[s]++
		}
		if count[SplitTrain] != c.train || count[SplitVal] != c.val || count[SplitTest] != c.test {
			t.Errorf("%d pairs: %v, want %d/%d/%d", c.n, count, c.train, c.val, c.test)
		}
	}
	a, b, other := authorsSplit(200, 1), authorsSplit(200, 1), authorsSplit(200, 2)
	if !slices.Equal(a, b) {
		t.Error("the same seed splits differently")
	}
	if slices.Equal(a, other) {
		t.Error("seeds 1 and 2 split alike")
	}
	// Not the first 70% in train: the pairs are shuffled.
	if slices.Equal(a[:140], slices.Repeat([]string{SplitTrain}, 140)) {
		t.Error("the split is not shuffled")
	}
}

func TestImportLAVAAuthorsSplit(t *testing.T) {
	pairs, _ := importLayout(t, LAVAOptions{Split: SplitAuthors, Seed: 7})
	again, _ := importLayout(t, LAVAOptions{Split: SplitAuthors, Seed: 7})
	if !slices.Equal(summary(pairs), summary(again)) {
		t.Errorf("the same seed gave\n%s\nthen\n%s", strings.Join(summary(pairs), "\n"), strings.Join(summary(again), "\n"))
	}
	want := authorsSplit(5, 7)
	for i, p := range pairs {
		if p.Split != want[i] {
			t.Errorf("pair %s in %s, want %s", p.ID, p.Split, want[i])
		}
	}
	auto, _ := importLayout(t, LAVAOptions{Split: SplitAuto})
	for _, p := range auto[2:] {
		if p.Split != auto[2].Split {
			t.Errorf("--split auto put the pairs of one sentence in %s and %s", auto[2].Split, p.Split)
		}
	}
}

func TestImportLAVASplitFiles(t *testing.T) {
	splits := func(dir string) string { return filepath.Join(layoutCorpus, dir) }
	// The k = 1 files hold each pair once; the pair of sentence 5, whose
	// frame is missing here, matches nothing.
	pairs, rep := importLayout(t, LAVAOptions{SplitsDir: splits("splits-k1")})
	want := []string{
		"lava-1-1-2 train pp-attachment: 00022-10090-10190 00022-10300-10400",
		"lava-2-1-2 test adjective-scope: 00031-00500-00600 00031-00700-00800",
		"lava-3-1-2 train pp-attachment: 00040-00100-00200 00040-00300-00400",
		"lava-3-1-3 test pp-attachment: 00040-00100-00200 00040-00500-00600",
		"lava-3-2-3 train pp-attachment: 00040-00300-00400 00040-00500-00600",
	}
	if got := summary(pairs); !slices.Equal(got, want) {
		t.Errorf("k=1:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rep.Splits) != 3 || rep.Unmatched != 1 || !strings.HasSuffix(rep.UnmatchedAt, "train.json: item 0, pair 0") || rep.Unsplit != 0 || rep.Leaked != 0 {
		t.Errorf("k=1 report %+v", rep)
	}

	// The triple kept whole takes the splits of its three pairs.
	kept, _ := importLayout(t, LAVAOptions{SplitsDir: splits("splits-k1"), KeepTriples: true})
	if got := summary(kept)[2:]; !slices.Equal(got, []string{
		"lava-3-1-2-3 train pp-attachment: 00040-00100-00200 00040-00300-00400 00040-00500-00600",
		"lava-3-1-2-3.test test pp-attachment: 00040-00100-00200 00040-00300-00400 00040-00500-00600",
	}) {
		t.Errorf("k=1, triples kept: %q", got)
	}

	// The k = 2 files split combinations of two pairs: every pair is in
	// train and test.
	pairs, rep = importLayout(t, LAVAOptions{SplitsDir: splits("splits-k2")})
	var ids []string
	for _, p := range pairs {
		ids = append(ids, p.ID)
	}
	wantIDs := []string{
		"lava-1-1-2", "lava-1-1-2.val", "lava-1-1-2.test",
		"lava-2-1-2", "lava-2-1-2.test",
		"lava-3-1-2", "lava-3-1-2.test",
		"lava-3-1-3", "lava-3-1-3.test",
		"lava-3-2-3", "lava-3-2-3.val", "lava-3-2-3.test",
	}
	if !slices.Equal(ids, wantIDs) || rep.Leaked != 5 || rep.Unmatched != 1 {
		t.Errorf("k=2: ids %q, report %+v", ids, rep)
	}
}

func TestImportLAVASplitFilesMissing(t *testing.T) {
	dir := t.TempDir()
	_, _, err := ImportLAVA(LAVAOptions{Corpus: layoutCorpus, OutDir: layoutCorpus, SplitsDir: dir})
	if err == nil || !strings.Contains(err.Error(), dir+": none of train.json, val.json, tst.json") {
		t.Errorf("no split files: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tst.json"), []byte(`[[[{"text": "a", "constree": "(S (X a))", "vision": "v1"}, {"text": "a", "constree": "(S (Y a))", "vision": "v2"}]]]`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = ImportLAVA(LAVAOptions{Corpus: layoutCorpus, OutDir: layoutCorpus, SplitsDir: dir})
	if err == nil || !strings.Contains(err.Error(), "none of the 1 pairs of the split files matches one of the 5 pairs") {
		t.Errorf("split files of another corpus: %v", err)
	}
	_, _, err = ImportLAVA(LAVAOptions{Corpus: layoutCorpus, OutDir: layoutCorpus, SplitsDir: dir, Split: SplitAuto})
	if err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("split mode and split files: %v", err)
	}
}

func TestReadSplitFile(t *testing.T) {
	reading := func(v string) string {
		return `{"text": "Danny left", "constree": "(S (NP (NNP Danny)) (VP (VBD left)))", "vision": "` + v + `", "sem": "leave(Danny)"}`
	}
	pair := "[" + reading("a") + ", " + reading("b") + "]"
	cases := []struct{ name, json, want string }{
		{"k=1", "[[" + pair + "]]", ""},
		{"k=2 with a repeat", "[[" + pair + ", [" + reading("b") + ", " + reading("a") + "]]]", ""},
		{"bare pairs", "[" + pair + "]", ""},
		{"not a list", `{"train": []}`, "tst.json: holds an object, not a list of tuples of pairs"},
		{"an item that is a number", `[3]`, "tst.json: item 0 is the number 3, not a list of pairs"},
		{"a reading without vision", `[[[{"text": "a", "constree": "(S (X a))"}, ` + reading("b") + `]]]`, "tst.json: item 0, pair 0: reading 0: no vision"},
		{"a tree that is not a string", `[[[{"text": "a", "constree": ["x"], "vision": "v"}, ` + reading("b") + `]]]`, "tst.json: item 0, pair 0: reading 0: constree is a list, not a non-empty string"},
		{"a pair of one", `[[[` + reading("a") + `]]]`, "tst.json: item 0, pair 0: has 1 reading(s); a pair needs two"},
		{"an empty tuple", `[[]]`, "tst.json: item 0 is an empty list"},
		{"cut short", "[[" + pair, "tst.json: "},
		{"more after the end", "[[" + pair + "]] []", "tst.json: more after the list ends"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var keys []string
			err := readSplitFile(strings.NewReader(c.json), "tst.json", func(key, _ string) { keys = append(keys, key) })
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := pairKey([]string{readingKey("Danny left", "(S (NP (NNP Danny))  (VP (VBD left)))", "b"), readingKey("Danny  left", "(S (NP (NNP Danny)) (VP (VBD left)))", "a")})
			for _, k := range keys {
				if k != want {
					t.Errorf("key %q, want %q", k, want)
				}
			}
			if len(keys) == 0 {
				t.Error("no pair read")
			}
		})
	}
}

func FuzzLAVASplitFile(f *testing.F) {
	for _, name := range []string{"splits-k1/train.json", "splits-k2/tst.json"} {
		data, err := os.ReadFile(filepath.Join(layoutCorpus, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`[[{"text": "a", "constree": "(S (X a))", "vision": "v"}, {"text": "a", "constree": "(S (X a))", "vision": 3}]]`))
	f.Add([]byte(`[[[]], 1, null]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		err := readSplitFile(bytes.NewReader(data), "train.json", func(key, where string) {
			n++
			if !strings.HasPrefix(where, "train.json: item ") || strings.Count(key, "\x1e") < 1 {
				t.Fatalf("pair %q at %q", key, where)
			}
		})
		if err != nil && !strings.HasPrefix(err.Error(), "train.json: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
