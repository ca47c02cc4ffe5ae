package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMismatchedTokenizerRefused swaps two ids in a copy of the demo
// checkpoint's vocab.json. With <|endoftext|> one of them, the explorer,
// train and doctor refused it but eval and explain scored it (50.00
// instead of 81.68, exit 0); two ordinary tokens swapped fit the config
// and only the fingerprint Save records sees them. Every command that
// pairs the model with its tokenizer now exits 2 naming the mismatch.
func TestMismatchedTokenizerRefused(t *testing.T) {
	for _, tc := range []struct {
		a, b int
		want string
	}{
		{0, -1, "<|endoftext|> is id 0"},
		{10, 11, "vocab.json or merges.txt changed since the model was saved"},
	} {
		dir := swappedDemo(t, tc.a, tc.b)
		for _, args := range [][]string{
			{"eval", "--checkpoint", dir, "--data", "demo", "--device", "cpu"},
			{"explain", "--checkpoint", dir, "--data", "demo", "--device", "cpu", "--limit", "1", "--out", t.TempDir()},
		} {
			_, stderr, code := runCLI(t, "", args...)
			if code != 2 || !strings.Contains(stderr, "the tokenizer does not fit the model") || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s with ids %d and %d swapped: exit %d, want 2 naming the mismatch (%q):\n%s", args[0], tc.a, tc.b, code, tc.want, stderr)
			}
		}
	}
}

// swappedDemo copies the demo checkpoint with ids a and b of vocab.json
// swapped; b = -1 is <|endoftext|>.
func swappedDemo(t *testing.T, a, b int) string {
	t.Helper()
	dir := t.TempDir()
	src := "../../demo/model"
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "vocab.json" {
			var vocab map[string]int
			if err := json.Unmarshal(data, &vocab); err != nil {
				t.Fatal(err)
			}
			ta, tb := "", "<|endoftext|>"
			for tok, id := range vocab {
				if id == a {
					ta = tok
				}
				if id == b {
					tb = tok
				}
			}
			vocab[ta], vocab[tb] = vocab[tb], vocab[ta]
			if data, err = json.Marshal(vocab); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
