package main

import (
	"encoding/csv"
	"encoding/json"
	"html"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/tokenizer"
)

// explainFixture writes synthetic pairs with 64-pixel images and an
// untrained small CLIP (4×4 patches) with a vocabulary learned from them.
func explainFixture(t *testing.T) (ckpt, data string) {
	t.Helper()
	torchtest.Require(t)
	dir := t.TempDir()
	if _, err := synth.Write(dir, synth.Config{Pairs: 30, Seed: 4, Size: 64}); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(dir, synth.ManifestName)
	ds, err := loader.Load(data, loader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, p := range ds.Pairs {
		ts, err := model.ReadingTexts(&p, 0)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, ts...)
	}
	tok, err := tokenizer.LearnBPE(texts, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.NamedConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Vision.ImageSize, cfg.Vision.PatchSize = 64, 16
	cfg.Text.VocabSize = tok.VocabSize()
	cfg.Text.BOSTokenID, cfg.Text.EOSTokenID, cfg.Text.PadTokenID = int(tok.BOS()), int(tok.EOS()), int(tok.EOS())
	m, err := model.Init(cfg, model.Options{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ckpt = filepath.Join(dir, "ckpt")
	if err := m.Save(ckpt); err != nil {
		t.Fatal(err)
	}
	if err := tok.Save(ckpt); err != nil {
		t.Fatal(err)
	}
	pp := loader.DefaultPreprocessConfig()
	pp.ShortestEdge, pp.CropWidth, pp.CropHeight = 64, 64, 64
	if err := model.WritePreprocessConfig(ckpt, pp); err != nil {
		t.Fatal(err)
	}
	return ckpt, data
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestExplainCommand(t *testing.T) {
	ckpt, data := explainFixture(t)
	out := filepath.Join(t.TempDir(), "out")
	stdout, stderr, code := runCLI(t, "", "explain", "--checkpoint", ckpt, "--data", data, "--split", "test",
		"--limit", "2", "--batch-pairs", "1", "--out", out, "--device", "cpu", "--start-layer", "all", "--figure-width", "800")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "4 readings") || !strings.Contains(stdout, "pointing game") {
		t.Errorf("stdout lacks the summary:\n%s", stdout)
	}
	rows := readCSV(t, filepath.Join(out, "readings.csv"))
	if len(rows) != 5 {
		t.Fatalf("readings.csv has %d rows, want a header and 4", len(rows))
	}
	var doc report.Reading
	for _, row := range rows[1:] {
		base := filepath.Join(out, row[0]+"-r"+row[1])
		raw, err := os.ReadFile(base + ".json")
		if err != nil {
			t.Fatal(err)
		}
		doc = report.Reading{}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		// One figure per pair, named by pair, method, start layer and target.
		if want := row[0] + "_chefer_all_own.png"; doc.Figure != want {
			t.Errorf("%s: the report names the figure %q, want %q", base, doc.Figure, want)
		}
		f, err := os.Open(filepath.Join(out, doc.Figure))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != 800 || b.Dy() < 400 {
			t.Errorf("%s is %v, want 800 pixels wide", doc.Figure, b)
		}
		svg, err := os.ReadFile(filepath.Join(out, strings.TrimSuffix(doc.Figure, ".png")+".svg"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(html.UnescapeString(string(svg)), doc.Sentence) {
			t.Errorf("the SVG of %s does not hold the sentence %q", base, doc.Sentence)
		}
		if doc.Method != "chefer" || doc.StartLayer != "all" || doc.Target != "own" || len(doc.Cells) != 1 {
			t.Errorf("%s: method %s start %s target %s cells %v", base, doc.Method, doc.StartLayer, doc.Target, doc.Cells)
		}
		if len(doc.Tokens) < 3 || doc.Tokens[0].Token != "<|startoftext|>" || len(doc.Nodes) == 0 || len(doc.Words) == 0 {
			t.Errorf("%s: %d tokens (first %+v), %d nodes, %d words", base, len(doc.Tokens), doc.Tokens[0], len(doc.Nodes), len(doc.Words))
		}
		var norm, nodes float64
		for _, tk := range doc.Tokens {
			norm += float64(tk.Normalized)
		}
		for _, n := range doc.Nodes {
			nodes += n.Relevance
		}
		// The normalised token relevance sums to 1, and the nodes share it
		// out with the unassigned tokens.
		if d := norm - 1; d > 1e-4 || d < -1e-4 {
			t.Errorf("%s: normalised token relevance sums to %g", base, norm)
		}
		if d := nodes + doc.Unassigned - norm; d > 1e-4 || d < -1e-4 {
			t.Errorf("%s: nodes %g + unassigned %g != tokens %g", base, nodes, doc.Unassigned, norm)
		}
		if len(doc.Images) != 1 || len(doc.Images[0].Relevance) != 16 || doc.Images[0].Grid != 4 {
			t.Errorf("%s: images %+v", base, doc.Images)
		}
		mt := doc.Metrics
		if mt == nil || mt.Perturbation == nil || len(mt.Perturbation.Positive.Margins) != 10 || mt.Text == nil || mt.Pointing == nil {
			t.Fatalf("%s: metrics %+v", base, mt)
		}
		own, twin := doc.Logits[doc.Reading], doc.Logits[1-doc.Reading]
		if d := mt.Margin - (own - twin); d > 1e-4 || d < -1e-4 {
			t.Errorf("%s: metrics margin %g, logits say %g", base, mt.Margin, own-twin)
		}
		// The contrast with the twin, in the report and in its CSV row.
		an := doc.Analysis
		if an == nil || an.Contrast == nil || an.Contrast.Twin != 1-doc.Reading || len(an.Words) != len(doc.Words) {
			t.Fatalf("%s: analysis %+v", base, an)
		}
		if c := an.Contrast; math.Abs(c.Unique+c.Shared-1) > 1e-6 || row[slices.Index(rows[0], "unique_mass")] != strconv.FormatFloat(c.Unique, 'g', 6, 64) {
			t.Errorf("%s: unique %g shared %g, CSV row %v", base, c.Unique, c.Shared, row)
		}
	}
	sum := readCSV(t, filepath.Join(out, "summary.csv"))
	if len(sum) < 10 || sum[0][0] != "metric" || sum[1][0] != "readings" || sum[1][1] != "4" {
		t.Errorf("summary.csv: %v", sum)
	}
}

func TestExplainTargetsAndMethods(t *testing.T) {
	ckpt, data := explainFixture(t)
	for _, tc := range []struct {
		args   []string
		images int
		start  string
	}{
		{[]string{"--target", "all", "--method", "rollout"}, 2, "-"},
		{[]string{"--target", "twin", "--method", "gradattn", "--metrics=false", "--figure-format", "svg"}, 1, "-"},
		{[]string{"--target", "own", "--colormap", "diverging", "--show", "blocks"}, 1, "last"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"explain", "--checkpoint", ckpt, "--data", data, "--pair", "pp-00009", "--out", out, "--device", "cpu"}, tc.args...)
		stdout, stderr, code := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		for j := range 2 {
			raw, err := os.ReadFile(filepath.Join(out, "pp-00009-r"+string(rune('0'+j))+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var doc report.Reading
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Images) != tc.images || len(doc.Cells) != tc.images || doc.StartLayer != tc.start {
				t.Errorf("%v reading %d: %d images, cells %v, start %q", tc.args, j, len(doc.Images), doc.Cells, doc.StartLayer)
			}
			if tc.images == 1 && strings.Contains(strings.Join(tc.args, " "), "twin") && doc.Images[0].Image != 1-j {
				t.Errorf("%v reading %d: explained image %d, want the twin", tc.args, j, doc.Images[0].Image)
			}
			if (doc.Metrics == nil) != strings.Contains(strings.Join(tc.args, " "), "metrics=false") {
				t.Errorf("%v: metrics %v", tc.args, doc.Metrics)
			}
		}
		if strings.Contains(strings.Join(tc.args, " "), "twin") {
			// Only the SVG, and each reading's panels show the twin's
			// image and say so.
			if _, err := os.Stat(filepath.Join(out, "pp-00009_gradattn_last_twin.png")); err == nil {
				t.Error("--figure-format svg wrote a PNG")
			}
			svg, err := os.ReadFile(filepath.Join(out, "pp-00009_gradattn_last_twin.svg"))
			if err != nil {
				t.Fatal(err)
			}
			text := html.UnescapeString(string(svg))
			for _, want := range []string{"image B — the twin's", "image B — the twin's, with relevance", "image A — the twin's, with relevance"} {
				if !strings.Contains(text, want) {
					t.Errorf("the twin figure lacks %q", want)
				}
			}
			if strings.Contains(text, "its own, with relevance") {
				t.Error("the twin figure shows a heatmap over a reading's own image")
			}
		}
		if strings.Contains(strings.Join(tc.args, " "), "blocks") && !strings.Contains(stdout, "▀") {
			t.Errorf("--show blocks printed no half blocks")
		}
	}
}

func TestExplainErrors(t *testing.T) {
	ckpt, data := explainFixture(t)
	out := filepath.Join(t.TempDir(), "out")
	base := []string{"explain", "--checkpoint", ckpt, "--data", data, "--device", "cpu"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no out", nil, "--out"},
		{"bad target", []string{"--out", out, "--target", "mine"}, "--target"},
		{"bad method", []string{"--out", out, "--method", "lime"}, "lime"},
		{"bad start", []string{"--out", out, "--start-layer", "first"}, "first"},
		{"start beyond depth", []string{"--out", out, "--start-layer", "7", "--limit", "1"}, "start layer 7"},
		{"no such pair", []string{"--out", out, "--pair", "pp-99999"}, "no pair \"pp-99999\""},
		{"bad split", []string{"--out", out, "--split", "dev"}, "--split"},
		{"bad show", []string{"--out", out, "--show", "x11"}, "--show"},
		{"bad figure width", []string{"--out", out, "--figure-width", "10"}, "--figure-width"},
		{"bad figure format", []string{"--out", out, "--figure-format", "pdf"}, "--figure-format"},
		{"bad data", []string{"--out", out, "--data", filepath.Join(out, "missing.jsonl")}, "missing.jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCLI(t, "", append(append([]string{}, base...), tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", code, stderr, tc.want)
			}
		})
	}
}

// TestExplainStartLayerText: --start-layer-text moves the text's relevance
// and leaves the image's as it was (within 1e-5 relative), and the JSON
// records it.
func TestExplainStartLayerText(t *testing.T) {
	dev := torchtest.Device(t)
	type doc struct {
		StartLayer     string `json:"start_layer"`
		StartLayerText string `json:"start_layer_text"`
		Tokens         []struct {
			Relevance float64 `json:"relevance"`
		} `json:"tokens"`
		Images []struct {
			Relevance []float64 `json:"relevance"`
		} `json:"images"`
	}
	read := func(extra ...string) doc {
		out := t.TempDir()
		args := append([]string{"explain", "--checkpoint", "demo", "--data", "demo", "--pair", "pp-00009", "--metrics=false",
			"--out", out, "--device", dev.String()}, extra...)
		if _, stderr, code := runCLI(t, "", args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		b, err := os.ReadFile(filepath.Join(out, "pp-00009-r0.json"))
		if err != nil {
			t.Fatal(err)
		}
		var d doc
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	base, text := read(), read("--start-layer-text", "all")
	if base.StartLayerText != "" || text.StartLayer != "last" || text.StartLayerText != "all" {
		t.Errorf("start layers recorded: %q/%q, then %q/%q", base.StartLayer, base.StartLayerText, text.StartLayer, text.StartLayerText)
	}
	maxRel := func(a, b []float64) float64 {
		scale, worst := 0.0, 0.0
		for _, v := range a {
			scale = max(scale, math.Abs(v))
		}
		for i := range a {
			worst = max(worst, math.Abs(a[i]-b[i])/scale)
		}
		return worst
	}
	img := maxRel(base.Images[0].Relevance, text.Images[0].Relevance)
	var tb, tt []float64
	for i := range base.Tokens {
		tb, tt = append(tb, base.Tokens[i].Relevance), append(tt, text.Tokens[i].Relevance)
	}
	tok := maxRel(tb, tt)
	t.Logf("image relevance moved by %.3g, token relevance by %.3g (relative to the largest)", img, tok)
	if img > 1e-5 {
		t.Errorf("--start-layer-text moved the image's relevance by %.3g", img)
	}
	if tok < 1e-3 {
		t.Errorf("--start-layer-text all left the text's relevance as the last layer's (%.3g)", tok)
	}
}
