package eval_test

import (
	"encoding/json"
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
