package tui_test

import (
	"encoding/json"
	"html"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/figure"
	"github.com/lavascope/lavascope/report"
)

// TestExport presses e in the pair view and reads back the figure (PNG and
// SVG) and the reports.
func TestExport(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, "exports")
	h := newHarness(t, options{w: 120, h: 36, exportDir: dir})
	h.keys("enter", "t", "e")
	if !strings.Contains(h.view(), "exported 4 files to ~/exports") {
		t.Fatalf("the export message does not say where:\n%s", h.view())
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
	if w := img.Bounds().Dx(); w != figure.DefaultWidth {
		t.Errorf("figure is %d pixels wide, want %d", w, figure.DefaultWidth)
	}
	svg, err := os.ReadFile(base + ".svg")
	if err != nil {
		t.Fatal(err)
	}
	text := html.UnescapeString(string(svg))
	for _, want := range []string{testPairs(1)[0].Sentence, "image B — the twin's, with relevance", "image A — the twin's, with relevance"} {
		if !strings.Contains(text, want) {
			t.Errorf("the SVG lacks %q", want)
		}
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

// TestExportKeepsFiles: a second e writes the next free name and leaves
// the first export, and any file in the way, as it was.
func TestExportKeepsFiles(t *testing.T) {
	dir := t.TempDir()
	// A stranger's file in the way of the second export's SVG.
	if err := os.WriteFile(filepath.Join(dir, "pp-000_chefer_last_own-2.svg"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, options{w: 120, h: 36, exportDir: dir})
	h.keys("enter", "e")
	first, err := os.ReadFile(filepath.Join(dir, "pp-000_chefer_last_own-r0.json"))
	if err != nil {
		t.Fatal(err)
	}
	h.keys("e", "e")
	got, _ := filepath.Glob(filepath.Join(dir, "*"))
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	want := []string{"pp-000_chefer_last_own-2.svg"}
	for _, b := range []string{"pp-000_chefer_last_own", "pp-000_chefer_last_own-3", "pp-000_chefer_last_own-4"} {
		want = append(want, b+"-r0.json", b+"-r1.json", b+".png", b+".svg")
	}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("three exports wrote\n%v\nwant\n%v", got, want)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "pp-000_chefer_last_own-2.svg")); string(data) != "mine" {
		t.Errorf("the file in the way now holds %q", data)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "pp-000_chefer_last_own-r0.json")); string(again) != string(first) {
		t.Error("a later export changed the first one's report")
	}
	var r report.Reading
	data, err := os.ReadFile(filepath.Join(dir, "pp-000_chefer_last_own-3-r1.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.Figure != "pp-000_chefer_last_own-3.png" {
		t.Errorf("the report of the second export names the figure %q", r.Figure)
	}
}
