package synth_test

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

func TestSynthCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "synth")
	out, stderr, code := cmdtest.RunCLI(t, "", "synth", "--out", dir, "--pairs", "10", "--seed", "2", "--contact-sheet", "--sheet-pairs", "3")
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

	out, stderr, code = cmdtest.RunCLI(t, "", "data", "check", "--data", filepath.Join(dir, "pairs.jsonl"), "--check-images")
	if code != 0 || !strings.Contains(out, "10 pairs, no problems") {
		t.Errorf("data check on synth output: exit %d\n%s%s", code, out, stderr)
	}
	out, _, code = cmdtest.RunCLI(t, "", "data", "stats", "--data", filepath.Join(dir, "pairs.jsonl"))
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
		_, stderr, code := cmdtest.RunCLI(t, "", args...)
		if code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}
