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

// TestDataDemo checks that check and stats count the same pairs of the
// demo, all of them by default and one split with --split, and say which.
func TestDataDemo(t *testing.T) {
	for _, tc := range []struct {
		split, check, stats string
	}{
		{"", "demo: 1010 pairs, no problems (all splits counted)", "1010 pairs, 2020 readings (all splits counted)"},
		{"test", "demo: 101 pairs, no problems (split test counted; 1010 in all splits)", "101 pairs, 202 readings (split test counted; 1010 in all splits)"},
		{"train", "demo: 808 pairs, no problems (split train counted; 1010 in all splits)", "808 pairs, 1616 readings (split train counted"},
	} {
		args := []string{"--data", "demo"}
		if tc.split != "" {
			args = append(args, "--split", tc.split)
		}
		out, stderr, code := cmdtest.RunCLI(t, "", append([]string{"data", "check"}, args...)...)
		if code != 0 || !strings.Contains(out, tc.check) {
			t.Errorf("data check %v: exit %d, want %q\n%s%s", args, code, tc.check, out, stderr)
		}
		out, stderr, code = cmdtest.RunCLI(t, "", append([]string{"data", "stats"}, args...)...)
		if code != 0 || !strings.Contains(out, tc.stats) {
			t.Errorf("data stats %v: exit %d, want %q\n%s%s", args, code, tc.stats, out, stderr)
		}
	}
	for _, cmd := range []string{"check", "stats"} {
		_, stderr, code := cmdtest.RunCLI(t, "", "data", cmd, "--data", "demo", "--split", "tset")
		if code != 2 || !strings.Contains(stderr, `--split: "tset" is not one of train, val, test, all`) {
			t.Errorf("data %s --split tset: exit %d, %q", cmd, code, stderr)
		}
	}
}
