package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
)

// TestEvalDemo is the check of the embedded demo: on its synthetic
// test split, text input scores exactly 50.00 and tree input clearly more.
func TestEvalDemo(t *testing.T) {
	dev := torchtest.Device(t)
	acc := map[string]float64{}
	for _, input := range []string{"text", "tree"} {
		stdout, stderr, code := runCLI(t, "", "eval", "--checkpoint", "demo", "--data", "demo", "--input", input, "--json", "--device", dev.String())
		if code != 0 {
			t.Fatalf("eval --input %s: exit %d: %s", input, code, stderr)
		}
		var r struct {
			Accuracy float64 `json:"accuracy"`
			Readings int     `json:"readings"`
			Ties     int     `json:"ties"`
		}
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		if r.Readings != 202 {
			t.Errorf("%s input: %d readings, want the 202 of the 101 test pairs", input, r.Readings)
		}
		acc[input] = r.Accuracy
		t.Logf("%s input: %.2f%% (%d ties)", input, r.Accuracy, r.Ties)
	}
	if acc["text"] != 50 {
		t.Errorf("text input: %.4f%%, want exactly 50", acc["text"])
	}
	if acc["tree"] < 70 {
		t.Errorf("tree input: %.2f%%, want clearly above 50 (≥ 70)", acc["tree"])
	}
}

// TestMismatchedTokenizerRefused swaps <|endoftext|> with another id in a
// copy of the demo checkpoint's vocab.json: the explorer, train and doctor
// refused it, eval and explain scored it (50.00 instead of 81.68, exit 0).
// Every command that pairs the model with its tokenizer now exits 2.
func TestMismatchedTokenizerRefused(t *testing.T) {
	dir := t.TempDir()
	src := "../../demo/model"
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "vocab.json" {
			var vocab map[string]int
			if err := json.Unmarshal(b, &vocab); err != nil {
				t.Fatal(err)
			}
			for tok, id := range vocab {
				if id == 0 {
					vocab[tok], vocab["<|endoftext|>"] = vocab["<|endoftext|>"], 0
					break
				}
			}
			if b, err = json.Marshal(vocab); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"eval", "--checkpoint", dir, "--data", "demo", "--device", "cpu"},
		{"explain", "--checkpoint", dir, "--data", "demo", "--device", "cpu", "--limit", "1", "--out", t.TempDir()},
	} {
		_, stderr, code := runCLI(t, "", args...)
		if code != 2 || !strings.Contains(stderr, "the tokenizer does not fit the model") || !strings.Contains(stderr, "<|endoftext|> is id 0") {
			t.Errorf("%s with a mismatched tokenizer: exit %d, want 2 naming the mismatch:\n%s", args[0], code, stderr)
		}
	}
}
