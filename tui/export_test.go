package tui_test

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/report"
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

	for j := range 2 {
		data, err := os.ReadFile(base + "-r" + strconv.Itoa(j) + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var r report.Reading
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatal(err)
		}
		if r.Schema != report.Schema || r.Pair != "pp-000" || r.Reading != j || r.Method != "chefer" || r.Target != "twin" ||
			r.Checkpoint != "fake" || r.Figure != filepath.Base(base)+".png" || len(r.Logits) != 2 {
			t.Errorf("reading %d: header %+v", j, r)
		}
		if len(r.Cells) != 1 || r.Cells[0] != [2]int{1 - j, j} || len(r.Images) != 1 || r.Images[0].Image != 1-j {
			t.Errorf("reading %d explains cells %v, images %+v; the twin target is image %d", j, r.Cells, r.Images, 1-j)
		}
		// Nodes gather the normalised token relevance, which sums to 1.
		tokens, nodes := 0.0, r.Unassigned
		for _, tok := range r.Tokens {
			tokens += float64(tok.Normalized)
		}
		for _, n := range r.Nodes {
			nodes += n.Relevance
		}
		if math.Abs(tokens-nodes) > 1e-6 || math.Abs(tokens-1) > 1e-6 {
			t.Errorf("reading %d: node relevance plus unassigned is %v, normalised tokens sum to %v", j, nodes, tokens)
		}
		if r.Nodes[0].Label != "S" || r.Nodes[0].Start != 0 || r.Nodes[0].End != len(r.Words) {
			t.Errorf("reading %d: root %+v over %d words", j, r.Nodes[0], len(r.Words))
		}
		if im := r.Images[0]; im.Grid*im.Grid != len(im.Relevance) || len(im.Relevance) == 0 || len(im.Normalized) != len(im.Relevance) {
			t.Errorf("reading %d: patches %d×%d with %d values", j, im.Grid, im.Grid, len(im.Relevance))
		}
	}
}
