package figure

import (
	"bytes"
	"encoding/xml"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/report"
)

// update rewrites the golden files: go test ./figure -update.
var update = flag.Bool("update", false, "rewrite golden files under testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update if the change is meant):\n%s", name, got)
	}
}

func mustNew(t testing.TB, in Input) *Figure {
	t.Helper()
	fig, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	return fig
}

func svgOf(t testing.TB, fig *Figure) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := SVG(&b, fig); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// svgTexts returns the text of every <text> element, in order, read by a
// strict XML parser: the SVG must be well-formed for it.
func svgTexts(t *testing.T, data []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	var out []string
	in := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if tk.Name.Local == "script" || tk.Name.Local == "foreignObject" {
				t.Errorf("the SVG holds a <%s> element", tk.Name.Local)
			}
			if tk.Name.Local == "text" {
				in = true
				out = append(out, "")
			}
		case xml.EndElement:
			in = in && tk.Name.Local != "text"
		case xml.CharData:
			if in {
				out[len(out)-1] += string(tk)
			}
		}
	}
}

// TestSVGText: the words of the figure, in order, for each target.
func TestSVGText(t *testing.T) {
	p := testPair(t)
	for _, target := range report.Targets {
		texts := svgTexts(t, svgOf(t, mustNew(t, testInput(t, p, target))))
		if !strings.Contains(texts[0], p.Sentence) {
			t.Errorf("%s: the title is %q, want the sentence %q", target, texts[0], p.Sentence)
		}
		golden(t, "svg-text-"+target.String()+".golden", strings.Join(texts, "\n")+"\n")
	}
}

// TestLayoutGolden: where every shape lies, in logical units.
func TestLayoutGolden(t *testing.T) {
	fig := mustNew(t, testInput(t, testPair(t), report.TargetOwn))
	var b strings.Builder
	fmt.Fprintf(&b, "figure %d×%.0f\n", Width, fig.H)
	for _, it := range fig.items {
		switch it.kind {
		case kindRect:
			// The colour bar's 256 steps say nothing about the layout.
			if it.h == 20 && it.stroke == 0 && it.w < 4 {
				continue
			}
			fmt.Fprintf(&b, "rect %.1f %.1f %.1f %.1f stroke %.1f %s\n", it.x, it.y, it.w, it.h, it.stroke, hex(it.fill))
		case kindImage:
			fmt.Fprintf(&b, "image %.1f %.1f %.1f %.1f %v\n", it.x, it.y, it.w, it.h, it.img.Bounds().Size())
		case kindText:
			fmt.Fprintf(&b, "text %.1f %.1f size %.0f anchor %d %q\n", it.x, it.y, it.size, it.anchor, it.text)
		}
	}
	goldenNumbers(t, "layout-own.golden", b.String())
}

// goldenNumbers is golden for text with numbers in it: words must match,
// numbers within 0.15, so that a last-bit difference in floating point
// (fused multiply-adds on some CPUs) that flips a rounding of the printed
// tenths cannot fail it.
func goldenNumbers(t *testing.T, name, got string) {
	t.Helper()
	if *update {
		golden(t, name, got)
		return
	}
	want, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	if len(gl) != len(wl) {
		t.Fatalf("%s: %d lines, the golden file %d (rerun with -update if the change is meant)", name, len(gl), len(wl))
	}
	for i := range gl {
		gf, wf := strings.Fields(gl[i]), strings.Fields(wl[i])
		same := len(gf) == len(wf)
		for k := 0; same && k < len(gf); k++ {
			g, gerr := strconv.ParseFloat(gf[k], 64)
			w, werr := strconv.ParseFloat(wf[k], 64)
			if gerr == nil && werr == nil {
				same = math.Abs(g-w) <= 0.15
			} else {
				same = gf[k] == wf[k]
			}
		}
		if !same {
			t.Errorf("%s line %d: %q, golden %q (rerun with -update if the change is meant)", name, i+1, gl[i], wl[i])
		}
	}
}

// TestPNG: the PNG has the chosen width, the layout's height at that
// scale, and the evidence boxes' outlines in BoxColor.
func TestPNG(t *testing.T) {
	fig := mustNew(t, testInput(t, testPair(t), report.TargetOwn))
	for _, width := range []int{800, 1600, 2400} {
		var b bytes.Buffer
		if err := PNG(&b, fig, width); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(&b)
		if err != nil {
			t.Fatal(err)
		}
		s := float64(width) / Width
		if got := img.Bounds().Size(); got.X != width || got.Y < int(fig.H*s) || got.Y > int(fig.H*s)+1 {
			t.Errorf("width %d: the PNG is %v, want %d×%.0f", width, got, width, fig.H*s)
		}
		outlines := 0
		for _, it := range fig.items {
			if it.kind != kindRect || it.stroke != 3 || it.fill != BoxColor || it.w < 30 {
				continue
			}
			outlines++
			// The middle of the outline's left and bottom edges.
			for _, pt := range [][2]float64{{it.x, it.y + it.h/2}, {it.x + it.w/2, it.y + it.h}} {
				got := color.RGBAModel.Convert(img.At(int(pt[0]*s), int(pt[1]*s))).(color.RGBA)
				if got != BoxColor {
					t.Errorf("width %d: the box outline at %v is %v, want %v", width, pt, got, BoxColor)
				}
			}
		}
		if outlines < 2 {
			t.Errorf("width %d: %d box outlines drawn, want at least one per reading's image", width, outlines)
		}
	}
	if err := PNG(io.Discard, fig, 100); err == nil {
		t.Error("a PNG 100 pixels wide was drawn")
	}
}

// TestTwinPanels: with the twin target every panel of a reading shows the
// twin's image, whose logit it explains, and says so; the old explain
// figure put the reading's own image beside the twin's heatmap.
func TestTwinPanels(t *testing.T) {
	p := testPair(t)
	colours := []color.RGBA{{0xff, 0, 0, 0xff}, {0, 0, 0xff, 0xff}}
	for _, target := range []report.Target{report.TargetOwn, report.TargetTwin} {
		in := testInput(t, p, target)
		in.Images = []image.Image{solid(96, 96, colours[0]), solid(96, 96, colours[1])}
		fig := mustNew(t, in)
		img, err := Image(fig, Width)
		if err != nil {
			t.Fatal(err)
		}
		texts := strings.Join(svgTexts(t, svgOf(t, fig)), "\n")
		for j := range 2 {
			want := j
			if target == report.TargetTwin {
				want = 1 - j
			}
			n := 0
			for _, pn := range fig.panels {
				if pn.reading != j {
					continue
				}
				n++
				if pn.image != want {
					t.Errorf("%s: reading %d shows image %d, its target explains image %d", target, j, pn.image, want)
				}
				if pn.heat {
					continue
				}
				// The raw panel is the explained image, pixel for pixel,
				// on the panel and in the drawn figure.
				cx, cy := pn.rect.x+pn.rect.w/2, pn.rect.y+pn.rect.h/2
				if got := color.RGBAModel.Convert(img.At(int(cx), int(cy))).(color.RGBA); got != colours[want] {
					t.Errorf("%s: reading %d's raw panel is %v, image %d is %v", target, j, got, want, colours[want])
				}
				if got := color.RGBAModel.Convert(pn.img.At(10, 10)).(color.RGBA); got != colours[want] {
					t.Errorf("%s: reading %d's raw panel image is %v, want %v", target, j, got, colours[want])
				}
			}
			if n != 2 {
				t.Errorf("%s: reading %d has %d panels, want the image and its heatmap", target, j, n)
			}
			caption := "image " + letter(want) + " — its own"
			if target == report.TargetTwin {
				caption = "image " + letter(want) + " — the twin's"
			}
			if !strings.Contains(texts, caption+", with relevance") {
				t.Errorf("%s: no panel says %q", target, caption)
			}
		}
	}
}

// TestAllTarget: the all target shows each image of the pair with its
// heatmap, in each reading's column.
func TestAllTarget(t *testing.T) {
	fig := mustNew(t, testInput(t, testPair(t), report.TargetAll))
	seen := map[[2]int]bool{}
	for _, pn := range fig.panels {
		if !pn.heat {
			t.Errorf("reading %d shows image %d without its heatmap", pn.reading, pn.image)
		}
		seen[[2]int{pn.reading, pn.image}] = true
	}
	if len(seen) != 4 || len(fig.panels) != 4 {
		t.Errorf("panels %v, want both images in both columns", seen)
	}
}

// TestHostileText: text from a dataset cannot break out of the SVG's text
// or put control characters into it.
func TestHostileText(t *testing.T) {
	p := testPair(t)
	hostile := "<script>alert(1)</script> ]]> \"double\" 'single' & \x1b[2J\x00\x07\u202e\xff"
	p.Sentence = hostile
	p.ID = "p<1>&\"" + "\x1b]0;x\x07"
	p.Readings[0].Gloss = hostile
	p.Readings[1].Boxes[0].Label = hostile
	in := testInput(t, p, report.TargetOwn)
	data := svgOf(t, mustNew(t, in))
	for _, b := range data {
		if b < 0x20 && b != '\n' {
			t.Fatalf("the SVG holds the control byte %#x", b)
		}
	}
	if bytes.Contains(data, []byte("<script")) || bytes.Contains(data, []byte("]]>")) {
		t.Error("the SVG holds markup from the dataset")
	}
	texts := strings.Join(svgTexts(t, data), "\n")
	for _, want := range []string{`<script>alert(1)</script> ]]> "double" 'single' &`, `\x1b[2J\x00\x07\u202e\xff`, `pair p<1>&"\x1b]0;x\x07`} {
		if !strings.Contains(texts, want) {
			t.Errorf("the SVG's text lacks %q:\n%s", want, texts)
		}
	}
	if strings.ContainsRune(texts, '\u202e') || strings.ContainsRune(texts, 0x1b) {
		t.Error("a control character reached the SVG's text")
	}
	if err := PNG(io.Discard, mustNew(t, in), 800); err != nil {
		t.Fatal(err)
	}
}

// TestNewRejects: reports that do not fit the pair are an error, not a
// panic or a wrong figure.
func TestNewRejects(t *testing.T) {
	p := testPair(t)
	for name, spoil := range map[string]func(*Input){
		"one report":      func(in *Input) { in.Readings = in.Readings[:1] },
		"no images":       func(in *Input) { in.Images = nil },
		"image index":     func(in *Input) { in.Readings[0].Images[0].Image = 2 },
		"grid":            func(in *Input) { in.Readings[1].Images[0].Grid = 8 },
		"logits":          func(in *Input) { in.Readings[0].Logits = in.Readings[0].Logits[:1] },
		"nodes":           func(in *Input) { in.Readings[0].Nodes = in.Readings[0].Nodes[1:] },
		"another tree":    func(in *Input) { in.Readings[0].Tree = in.Readings[1].Tree },
		"swapped reports": func(in *Input) { in.Readings[0], in.Readings[1] = in.Readings[1], in.Readings[0] },
		"empty image":     func(in *Input) { in.Images[1] = image.NewRGBA(image.Rectangle{}) },
	} {
		in := testInput(t, p, report.TargetOwn)
		spoil(&in)
		if _, err := New(in); err == nil {
			t.Errorf("%s: a figure was laid out", name)
		}
	}
}

func TestParseFormats(t *testing.T) {
	for in, want := range map[string]string{"png": "png", "svg,png": "svg png", " PNG , svg ": "png svg"} {
		got, err := ParseFormats(in)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("ParseFormats(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "pdf", "png,png", "png,"} {
		if _, err := ParseFormats(in); err == nil {
			t.Errorf("ParseFormats(%q) took it", in)
		}
	}
}

// BenchmarkFigure times laying out one pair and drawing it as a PNG at the
// default width, and as an SVG.
func BenchmarkFigure(b *testing.B) {
	p := testPair(b)
	in := testInput(b, p, report.TargetOwn)
	b.Run("layout", func(b *testing.B) {
		for b.Loop() {
			mustNew(b, in)
		}
	})
	fig := mustNew(b, in)
	b.Run("png", func(b *testing.B) {
		for b.Loop() {
			if err := PNG(io.Discard, fig, DefaultWidth); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("svg", func(b *testing.B) {
		for b.Loop() {
			if err := SVG(io.Discard, fig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestWrite: the extension picks the format, and a figure that cannot be
// drawn leaves no file behind.
func TestWrite(t *testing.T) {
	fig := mustNew(t, testInput(t, testPair(t), report.TargetOwn))
	dir := t.TempDir()
	for _, name := range []string{"f.png", "f.svg"} {
		if err := Write(filepath.Join(dir, name), fig, 600); err != nil {
			t.Fatal(err)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "f.svg")); !bytes.HasPrefix(data, []byte("<?xml")) {
		t.Errorf("f.svg starts %q", data[:min(len(data), 20)])
	}
	if f, err := os.Open(filepath.Join(dir, "f.png")); err != nil {
		t.Fatal(err)
	} else {
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width != 600 {
			t.Errorf("f.png: %+v, %v; want 600 pixels wide", cfg, err)
		}
	}
	for _, c := range []struct {
		name  string
		width int
	}{{"g.pdf", 600}, {"g.png", 50000}} {
		if err := Write(filepath.Join(dir, c.name), fig, c.width); err == nil {
			t.Errorf("%s at %d pixels was written", c.name, c.width)
		}
		if _, err := os.Stat(filepath.Join(dir, c.name)); err == nil {
			t.Errorf("a failed write left %s", c.name)
		}
	}
}
