package eval_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// TestEvalDemo is the check of the embedded demo: on its synthetic
// test split, text input scores exactly 50.00 by either tie rule and tree
// input clearly more; the retrieval covers the split's 202 readings and
// images, and with text input no pair's two readings can both rank first.
func TestEvalDemo(t *testing.T) {
	dev := torchtest.Device(t)
	acc := map[string]float64{}
	for _, input := range []string{"text", "tree"} {
		stdout, stderr, code := cmdtest.RunCLI(t, "", "eval", "--checkpoint", "demo", "--data", "demo", "--input", input, "--json", "--device", dev.String())
		if code != 0 {
			t.Fatalf("eval --input %s: exit %d: %s", input, code, stderr)
		}
		var r struct {
			Accuracy   float64 `json:"accuracy"`
			FirstIndex float64 `json:"accuracy_first_index"`
			Readings   int     `json:"readings"`
			Ties       int     `json:"ties"`
			Retrieval  struct {
				Readings, Images int
				TextToImage      model.Recall `json:"text_to_image"`
				ImageToText      model.Recall `json:"image_to_text"`
			} `json:"retrieval"`
		}
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatal(err)
		}
		if r.Readings != 202 {
			t.Errorf("%s input: %d readings, want the 202 of the 101 test pairs", input, r.Readings)
		}
		acc[input] = r.Accuracy
		t.Logf("%s input: %.2f%% (%d ties), first index %.2f%%, retrieval %+v", input, r.Accuracy, r.Ties, r.FirstIndex, r.Retrieval)
		ret := r.Retrieval
		if ret.Readings != 202 || ret.Images != 202 || ret.TextToImage.At10 < ret.TextToImage.At1 || ret.TextToImage.At10 == 0 {
			t.Errorf("%s input: retrieval %+v", input, ret)
		}
		if input == "text" && (r.FirstIndex != 50 || ret.TextToImage.At1 > 50 || ret.ImageToText.At1 > 50) {
			t.Errorf("text input: first-index accuracy %g, R@1 %g and %g; want 50, ≤ 50, ≤ 50", r.FirstIndex, ret.TextToImage.At1, ret.ImageToText.At1)
		}
	}
	if acc["text"] != 50 {
		t.Errorf("text input: %.4f%%, want exactly 50", acc["text"])
	}
	if acc["tree"] < 70 {
		t.Errorf("tree input: %.2f%%, want clearly above 50 (≥ 70)", acc["tree"])
	}
}

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
			_, stderr, code := cmdtest.RunCLI(t, "", args...)
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
