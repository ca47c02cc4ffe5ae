package data_test

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

func TestDataCheckReportsAll(t *testing.T) {
	dir := t.TempDir()
	tree := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	lines := []string{
		`{"id":"a","sentence":"Danny approached the green chair with a yellow bag.","split":"test","readings":[{"tree":` + tree(cmdtest.PPA) + `,"image":"a.png"},{"tree":` + tree(cmdtest.PPB) + `,"image":"b.png"}]}`,
		`{"id":"a","sentence":"x","split":"dev","readings":[{"tree":"(S","image":"a.png"},{"tree":` + tree(cmdtest.PPB) + `,"image":"missing.png"}]}`,
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
	out, stderr, code := cmdtest.RunCLI(t, "", "data", "check", "--data", path)
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
	if _, stderr, code := cmdtest.RunCLI(t, "", "data", "check", "--data", filepath.Join(dir, "nope.jsonl")); code != 2 || !strings.Contains(stderr, "nope.jsonl") {
		t.Errorf("missing manifest: exit %d, %q", code, stderr)
	}
}

func TestDataDemo(t *testing.T) {
	out, stderr, code := cmdtest.RunCLI(t, "", "data", "check", "--data", "demo")
	if code != 0 || !strings.Contains(out, "demo: 101 pairs, no problems") {
		t.Errorf("exit %d\n%s%s", code, out, stderr)
	}
}
