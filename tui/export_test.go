package tui_test

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExport presses e in the pair view and reads back the PNG and JSON.
func TestExport(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, options{w: 120, h: 36, exportDir: dir})
	h.keys("enter", "t", "e")
	if !strings.Contains(h.view(), "exported") {
		t.Fatalf("no export message:\n%s", h.view())
	}
	base := filepath.Join(dir, "pp-000_chefer_last_twin")
	f, err := os.Open(base + ".png")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Two 64-pixel overlays, 8-pixel gaps, and the colour bar.
	if w := img.Bounds().Dx(); w <= 2*64+2*8 {
		t.Errorf("figure is %d pixels wide, want both overlays and a colour bar", w)
	}

	data, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Pair, Method, Target, Checkpoint string
		Score                            struct{ Logits [][]float64 }
		Readings                         []struct {
			Image  int
			Cells  [][2]int
			Tokens []struct {
				Start, End int
				Relevance  float64
			}
			Nodes []struct {
				Label      string
				Start, End int
				Relevance  float64
			}
			Words      []struct{ Relevance float64 }
			Unassigned float64
			Patches    struct {
				W, H   int
				Values []float32
			}
			Error string
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Pair != "pp-000" || doc.Method != "chefer" || doc.Target != "twin" || doc.Checkpoint != "fake" || len(doc.Score.Logits) != 2 {
		t.Errorf("header %+v", doc)
	}
	if len(doc.Readings) != 2 {
		t.Fatalf("%d readings", len(doc.Readings))
	}
	for j, r := range doc.Readings {
		if r.Error != "" {
			t.Errorf("reading %d: %s", j, r.Error)
		}
		if r.Image != 1-j || len(r.Cells) != 1 || r.Cells[0] != [2]int{1 - j, j} {
			t.Errorf("reading %d explains image %d, cells %v; the twin target is image %d", j, r.Image, r.Cells, 1-j)
		}
		tokens, nodes := 0.0, r.Unassigned
		for _, tok := range r.Tokens {
			tokens += tok.Relevance
		}
		for _, n := range r.Nodes {
			nodes += n.Relevance
		}
		if math.Abs(tokens-nodes) > 1e-9 {
			t.Errorf("reading %d: node relevance plus unassigned is %v, tokens sum to %v", j, nodes, tokens)
		}
		if r.Nodes[0].Label != "S" || r.Nodes[0].Start != 0 || r.Nodes[0].End != len(r.Words) {
			t.Errorf("reading %d: root %+v over %d words", j, r.Nodes[0], len(r.Words))
		}
		if r.Patches.W*r.Patches.H != len(r.Patches.Values) || len(r.Patches.Values) == 0 {
			t.Errorf("reading %d: patches %d×%d with %d values", j, r.Patches.W, r.Patches.H, len(r.Patches.Values))
		}
	}
}
