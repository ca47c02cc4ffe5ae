package importlava_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// lavaLayoutCorpus copies loader's corpus in LAVA's own layout (lava.json,
// images/, the split files splits-k1/ and splits-k2/) into a temporary
// folder.
func lavaLayoutCorpus(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "LAVA")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "..", "loader", "testdata", "lava-corpus"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestImportLAVALayoutCommand(t *testing.T) {
	corpus := lavaLayoutCorpus(t)
	out := filepath.Join(corpus, "pairs.jsonl")
	stdout, stderr, code := cmdtest.RunCLI(t, "", "import-lava", "--corpus", corpus, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"(LAVA's layout: readings grouped by contrastVariants): 4 groups",
		"skipped 5 of 12 entries:",
		`      3  no tree (key "syntactic_tree") (first: entry 2 (2,4))`,
		`      1  frame file not found (first: entry 11 (5,2): no file for "00052-00000-00100" in `,
		"      1  no contrasting reading with a tree and a frame (first: entry 10 (5,1))",
		"took the frame of 1 reading(s) from their first equivalent variant",
		"wrote 5 pairs to " + out + " (train 0, val 0, test 5)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	manifest, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"id":"lava-1-1-2","sentence":"Danny approached the chair with a bag","ambiguity":"pp-attachment","split":"test","readings":[{"tree":"(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag)))))","image":"images/00022-10090-10190.png","gloss":"approach(Danny, chair) & with(Danny, bag)"}`,
		`"id":"lava-2-1-2"`, `"image":"images/00031-00700-00800.png"`, `"id":"lava-3-1-2"`, `"id":"lava-3-1-3"`, `"id":"lava-3-2-3"`,
	} {
		if !strings.Contains(string(manifest), want) {
			t.Errorf("manifest lacks %s:\n%s", want, manifest)
		}
	}
	stdout, stderr, code = cmdtest.RunCLI(t, "", "data", "check", "--data", out, "--check-images")
	if code != 0 || !strings.Contains(stdout, "5 pairs, no problems") {
		t.Errorf("data check: exit %d\n%s%s", code, stdout, stderr)
	}

	// The authors' k = 2 split files put every pair in train and test.
	stdout, stderr, code = cmdtest.RunCLI(t, "", "import-lava", "--corpus", corpus, "--out", out, "--splits", filepath.Join(corpus, "splits-k2"))
	if code != 0 {
		t.Fatalf("--splits: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"5 pair(s) are in more than one split file: written once for each split",
		"1 pair(s) of the split files match no imported pair (first: " + filepath.Join(corpus, "splits-k2", "train.json") + ": item 0, pair 0)",
		"wrote 12 pairs to " + out + " (train 5, val 2, test 5)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--splits output lacks %q:\n%s", want, stdout)
		}
	}
	stdout, stderr, code = cmdtest.RunCLI(t, "", "data", "check", "--data", out)
	wantLeaks := []string{
		out + ":2: readings: leak: the same pair (the same trees and images) is also in train (line 1)",
		out + ":3: readings: leak: the same pair (the same trees and images) is also in train (line 1)",
		out + ":5: readings: leak: the same pair (the same trees and images) is also in train (line 4)",
		out + ":12: readings: leak: the same pair (the same trees and images) is also in train (line 10)",
		"12 good pairs; 7 problems on 7 lines",
	}
	for _, want := range wantLeaks {
		if code != 1 || !strings.Contains(stdout, want) {
			t.Errorf("data check on leaking splits: exit %d, output lacks %q:\n%s%s", code, want, stdout, stderr)
		}
	}
	stdout, stderr, code = cmdtest.RunCLI(t, "", "data", "check", "--data", out, "--allow-leakage")
	if code != 0 || !strings.Contains(stdout, "warning: "+out+":12: readings: leak:") || !strings.Contains(stdout, "12 pairs, no problems") {
		t.Errorf("--allow-leakage: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestImportLAVALayoutCommandBadInput(t *testing.T) {
	corpus := lavaLayoutCorpus(t)
	out := filepath.Join(corpus, "pairs.jsonl")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--split", "auto", "--splits", corpus}, "--split and --splits exclude each other"},
		{[]string{"--triples", "all"}, `--triples "all": want split or keep`},
		{[]string{"--split", "70/30"}, `split "70/30" is not one of train, val, test, auto, authors`},
		{[]string{"--splits", corpus}, corpus + ": none of train.json, val.json, tst.json"},
	} {
		_, stderr, code := cmdtest.RunCLI(t, "", append([]string{"import-lava", "--corpus", corpus, "--out", out}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, want 2 and %q:\n%s", c.args, code, c.want, stderr)
		}
	}
	if err := os.WriteFile(filepath.Join(corpus, "splits-k1", "val.json"), []byte(`[[[{"text": "a", "constree": 5, "vision": "x"}]]]`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := cmdtest.RunCLI(t, "", "import-lava", "--corpus", corpus, "--out", out, "--splits", filepath.Join(corpus, "splits-k1"))
	if want := "val.json: item 0, pair 0: has 1 reading(s)"; code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("bad split file: exit %d, want 2 and %q:\n%s", code, want, stderr)
	}
	if err := os.WriteFile(filepath.Join(corpus, "lava.json"), []byte(`[{"sentenceID": 1, "variantID": 1, "contrastVariants": "1,2", "text": "a", "syntactic_tree": "(S (X a))", "visualFilename": "x"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = cmdtest.RunCLI(t, "", "import-lava", "--corpus", corpus, "--out", out)
	if want := "lava.json: entry 0 (1,1): contrastVariants holds \"1,2\", not a list"; code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("bad lava.json: exit %d, want 2 and %q:\n%s", code, want, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed import wrote the manifest")
	}
}
