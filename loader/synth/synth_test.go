package synth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/trees"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.sha256")

// hashDir returns the SHA-256 of every file under dir, by relative path.
func hashDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		rel, _ := filepath.Rel(dir, path)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Pairs: 12, Seed: 7}
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if n, err := Write(dir, cfg); err != nil || n != 12 {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	ha, hb := hashDir(t, a), hashDir(t, b)
	if len(ha) != 1+2*12 {
		t.Errorf("wrote %d files, want 25", len(ha))
	}
	if !reflect.DeepEqual(ha, hb) {
		t.Errorf("two runs with seed 7 differ")
	}
	// The hashes are also pinned in a golden file, so that a change of output
	// (a new Go version's PNG encoder, a new drawing) is noticed and made on
	// purpose with -update.
	var lines []string
	for name, sum := range ha {
		lines = append(lines, sum+"  "+name)
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "golden.sha256")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output for seed 7 differs from %s (run go test -update if the change is intended)", golden)
	}
	c := t.TempDir()
	if _, err := Write(c, Config{Pairs: 12, Seed: 8}); err != nil {
		t.Fatal(err)
	}
	hc := hashDir(t, c)
	same := 0
	for name, sum := range ha {
		if hc[name] == sum {
			same++
		}
	}
	if same > 0 {
		t.Errorf("seeds 7 and 8 share %d identical files", same)
	}
}

// The test split made alone is the test split of the whole set, pixel for
// pixel: the demo builds it on the fly.
func TestSplitAlone(t *testing.T) {
	all, err := Generate(Config{Pairs: 40, Seed: 3, Size: 96})
	if err != nil {
		t.Fatal(err)
	}
	test, err := Generate(Config{Pairs: 40, Seed: 3, Size: 96, Split: loader.SplitTest})
	if err != nil {
		t.Fatal(err)
	}
	want := loader.FilterSplit(all, loader.SplitTest)
	if len(test) != 4 || !reflect.DeepEqual(test, want) {
		t.Errorf("test split alone: %d pairs, differs from the filtered whole", len(test))
	}
	fams := map[string]bool{}
	for _, p := range test {
		fams[p.Ambiguity] = true
	}
	if len(fams) != 3 {
		t.Errorf("test split of 40 has families %v, want all three", fams)
	}
}

func TestPairsValidate(t *testing.T) {
	for _, size := range []int{MinSize, DefaultSize, 300} {
		pairs, err := Generate(Config{Pairs: 60, Seed: 11, Size: size})
		if err != nil {
			t.Fatal(err)
		}
		if err := loader.Validate(pairs, fmt.Sprintf("synth-%d", size)); err != nil {
			t.Errorf("size %d: %v", size, err)
		}
		for _, p := range pairs {
			// The sentence is the trees' words.
			n, err := trees.Parse(p.Readings[0].Tree)
			if err != nil {
				t.Fatal(err)
			}
			words := strings.Join(n.Words(), " ")
			if words != p.Sentence {
				t.Errorf("%s: sentence %q, tree words %q", p.ID, p.Sentence, words)
			}
			if p.Readings[0].Tree == p.Readings[1].Tree {
				t.Errorf("%s: both readings have the same tree", p.ID)
			}
			for _, r := range p.Readings {
				if b := r.Pixels.Bounds(); b.Dx() != size || b.Dy() != size {
					t.Errorf("%s: image %v, want %dx%d", p.ID, b, size, size)
				}
			}
		}
	}
}

// Every difference between the two images of a pair lies inside the evidence
// boxes, and every evidence box holds a good share of differing pixels.
func TestEvidenceBoxes(t *testing.T) {
	pairs, err := Generate(Config{Pairs: 300, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	minShare := 1.0
	for _, p := range pairs {
		a, b := p.Readings[0].Pixels.(*image.RGBA), p.Readings[1].Pixels.(*image.RGBA)
		var ev []image.Rectangle
		for _, r := range p.Readings {
			if len(r.BoxesWithRole(loader.RoleEvidence)) == 0 {
				t.Errorf("%s: a reading without evidence", p.ID)
			}
			for _, bx := range r.BoxesWithRole(loader.RoleEvidence) {
				ev = append(ev, bx.Rect())
			}
		}
		differs := func(x, y int) bool {
			i := a.PixOffset(x, y)
			return !bytes.Equal(a.Pix[i:i+3], b.Pix[i:i+3])
		}
		outside := 0
		for y := range a.Rect.Dy() {
			for x := range a.Rect.Dx() {
				if !differs(x, y) {
					continue
				}
				in := false
				for _, r := range ev {
					in = in || image.Pt(x, y).In(r)
				}
				if !in {
					outside++
				}
			}
		}
		if outside > 0 {
			t.Errorf("%s: %d differing pixels outside the evidence boxes", p.ID, outside)
		}
		for _, r := range ev {
			n := 0
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					if differs(x, y) {
						n++
					}
				}
			}
			share := float64(n) / float64(r.Dx()*r.Dy())
			minShare = min(minShare, share)
			if share < 0.2 {
				t.Errorf("%s: evidence box %v has only %.0f%% differing pixels", p.ID, r, 100*share)
			}
		}
	}
	t.Logf("least share of differing pixels in an evidence box: %.2f", minShare)
}

// No single pixel tells the readings apart: for each family, the best rule
// "the image whose pixel (x,y) channel c is larger shows reading 0" is right
// for few more pairs than chance.
func TestNoFixedPixelAnswers(t *testing.T) {
	const n = 1200
	pairs, err := Generate(Config{Pairs: n, Seed: 9, Size: 112})
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range Families {
		var gt, lt []int32
		count := 0
		for _, p := range pairs {
			if p.Ambiguity != fam {
				continue
			}
			count++
			a, b := p.Readings[0].Pixels.(*image.RGBA), p.Readings[1].Pixels.(*image.RGBA)
			if gt == nil {
				gt, lt = make([]int32, len(a.Pix)), make([]int32, len(a.Pix))
			}
			for i := range a.Pix {
				if a.Pix[i] > b.Pix[i] {
					gt[i]++
				} else if a.Pix[i] < b.Pix[i] {
					lt[i]++
				}
			}
		}
		best := 0.0
		for i := range gt {
			// Ties are a coin flip; a rule may use either direction.
			acc := (float64(count) + float64(abs(int(gt[i]-lt[i])))) / float64(2*count)
			best = max(best, acc)
		}
		t.Logf("%s: %d pairs, best single-pixel rule accuracy %.3f", fam, count, best)
		if best > 0.62 {
			t.Errorf("%s: a single pixel picks the right image in %.0f%% of pairs", fam, 100*best)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{Pairs: -1}, {Pairs: 1, Size: 10}, {Pairs: 1, Split: "dev"}} {
		if _, err := Generate(c); err == nil {
			t.Errorf("Generate(%+v) succeeded", c)
		}
	}
}

func TestContactSheet(t *testing.T) {
	pairs, err := Generate(Config{Pairs: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ perRow, minW, minH int }{{1, 2 * DefaultSize, 3 * DefaultSize}, {3, 6 * DefaultSize, DefaultSize}} {
		sheet := ContactSheet(pairs, c.perRow)
		if b := sheet.Bounds(); b.Dx() < c.minW || b.Dy() < c.minH || b.Dx() > c.minW+200 {
			t.Errorf("%d a row: sheet is %v for 3 pairs of 224² images", c.perRow, b)
		}
	}
}

// BenchmarkGenerate makes pairs at 224² in memory on one goroutine, as the
// demo does; pairs/s is the figure to read.
func BenchmarkGenerate(b *testing.B) {
	i := 0
	for b.Loop() {
		Make(1, i, DefaultSize)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkWrite also encodes both PNGs and the manifest line, as `lavascope
// synth` does.
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		p := Make(1, i, DefaultSize)
		if err := loader.WriteImages(dir, &p); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}
