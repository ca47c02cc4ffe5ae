package main

import (
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSynthCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "synth")
	out, stderr, code := runCLI(t, "", "synth", "--out", dir, "--pairs", "10", "--seed", "2", "--contact-sheet", "--sheet-pairs", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "wrote 10 pairs") || !strings.Contains(out, "(train 8, val 1, test 1)") || !strings.Contains(out, "contact-sheet.png") {
		t.Errorf("output:\n%s", out)
	}
	manifest, err := os.ReadFile(filepath.Join(dir, "pairs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(manifest), "\n"); n != 10 {
		t.Errorf("manifest has %d lines", n)
	}
	f, err := os.Open(filepath.Join(dir, "contact-sheet.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("contact sheet: %v", err)
	}

	out, stderr, code = runCLI(t, "", "data", "check", "--data", filepath.Join(dir, "pairs.jsonl"), "--check-images")
	if code != 0 || !strings.Contains(out, "10 pairs, no problems") {
		t.Errorf("data check on synth output: exit %d\n%s%s", code, out, stderr)
	}
	out, _, code = runCLI(t, "", "data", "stats", "--data", filepath.Join(dir, "pairs.jsonl"))
	for _, want := range []string{"10 pairs, 20 readings", "pp-attachment", "total                 8       1       1      10", "evidence"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("data stats: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
}

func TestSynthCommandBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"synth", "--pairs", "3"},
		{"synth", "--out", dir, "--pairs", "0"},
		{"synth", "--out", dir, "--size", "10"},
		{"synth", "--out", dir, "--pairs", "many"},
		{"synth", "--out", dir, "--colour"},
	} {
		_, stderr, code := runCLI(t, "", args...)
		if code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

func TestDataCheckReportsAll(t *testing.T) {
	dir := t.TempDir()
	tree := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	lines := []string{
		`{"id":"a","sentence":"Danny approached the green chair with a yellow bag.","split":"test","readings":[{"tree":` + tree(ppA) + `,"image":"a.png"},{"tree":` + tree(ppB) + `,"image":"b.png"}]}`,
		`{"id":"a","sentence":"x","split":"dev","readings":[{"tree":"(S","image":"a.png"},{"tree":` + tree(ppB) + `,"image":"missing.png"}]}`,
		`not json`,
	}
	for _, name := range []string{"a.png", "b.png"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, image.NewRGBA(image.Rect(0, 0, 8, 8)))
		f.Close()
	}
	path := filepath.Join(dir, "m.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "", "data", "check", "--data", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		path + `:2: id: duplicate id "a" (first on line 1)`,
		path + `:2: split: "dev" is not one of train, val, test`,
		path + ":2: readings[0].tree: does not parse",
		path + ":2: readings[1].image: missing.png does not exist",
		path + ":3:2: invalid JSON",
		"1 good pairs; 5 problems on 2 lines",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "5 problems") {
		t.Errorf("stderr %q", stderr)
	}
	if _, stderr, code := runCLI(t, "", "data", "check", "--data", filepath.Join(dir, "nope.jsonl")); code != 2 || !strings.Contains(stderr, "nope.jsonl") {
		t.Errorf("missing manifest: exit %d, %q", code, stderr)
	}
}

func TestDataDemo(t *testing.T) {
	out, stderr, code := runCLI(t, "", "data", "check", "--data", "demo")
	if code != 0 || !strings.Contains(out, "demo: 101 pairs, no problems") {
		t.Errorf("exit %d\n%s%s", code, out, stderr)
	}
}

func TestImportLAVACommand(t *testing.T) {
	root := t.TempDir()
	corpus := filepath.Join(root, "corpus")
	if err := os.MkdirAll(filepath.Join(corpus, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"00022-10090-10190", "00022-10300-10400"} {
		f, err := os.Create(filepath.Join(corpus, "images", name+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		img := image.NewRGBA(image.Rect(0, 0, 32, 24))
		img.Set(2, 2, color.RGBA{255, 0, 0, 255})
		jpeg.Encode(f, img, nil)
		f.Close()
	}
	entry := func(frame, tree string) map[string]any {
		return map[string]any{"text": "Danny approached the green chair with a yellow bag.", "visualFilename": frame, "syntax": map[string]any{"ptb": tree}}
	}
	data, _ := json.Marshal([]any{entry("00022-10090-10190", ppA), entry("00022-10300-10400", ppB)})
	if err := os.WriteFile(filepath.Join(corpus, "lava.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(corpus, "pairs.jsonl")

	_, stderr, code := runCLI(t, "", "import-lava", "--corpus", root, "--out", out)
	if code != 2 || !strings.Contains(stderr, `has the key "syntactic_tree" for the tree`) || !strings.Contains(stderr, "syntax.ptb") {
		t.Errorf("misfit: exit %d\n%s", code, stderr)
	}
	_, stderr, code = runCLI(t, "", "import-lava", "--corpus", root, "--out", out, "--field", "tree")
	if code != 2 || !strings.Contains(stderr, "want FIELD=KEY") {
		t.Errorf("bad --field: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := runCLI(t, "", "import-lava", "--corpus", root, "--out", out, "--field", "tree=syntax.ptb")
	if code != 0 || !strings.Contains(stdout, "wrote 1 pairs") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = runCLI(t, "", "data", "check", "--data", out, "--check-images")
	if code != 0 {
		t.Errorf("imported manifest: exit %d\n%s%s", code, stdout, stderr)
	}
}
