package main

import (
	"encoding/json"
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
