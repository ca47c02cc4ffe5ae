package tui

import (
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/analysis"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/figure"
	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
)

// export writes the open pair's explanation: the figure that `lavascope
// explain` draws (package figure) as PNG and SVG, and per reading its
// report (package report), the record that `lavascope explain` writes too.
func (m *Model) export() tea.Cmd {
	pp := m.prepare(m.cur)
	k := m.currentKey(pp.pair.ID)
	ex, ok := m.exps[k]
	if !ok || ex.err != nil {
		m.setFlash(true, "nothing to export yet: %s is not explained with these settings", clean(pp.pair.ID))
		return nil
	}
	var score *Score
	if s, ok := m.scores[k.ckpt][pp.pair.ID]; ok {
		score = &s
	}
	dir, cm, imgs := m.opt.ExportDir, m.cmap, m.imgs
	pair := pp.pair
	return func() tea.Msg {
		files, err := writeExport(dir, pair, k, ex.exp, score, cm, imgs)
		if err != nil {
			return exportMsg{err: err}
		}
		// The status bar says "exported " and this one entry: a count and
		// the folder are what fits, and tell where to look.
		return exportMsg{files: []string{fmt.Sprintf("%d files to %s", len(files), homeAbbrev(dir))}}
	}
}

// homeAbbrev writes a path under the home folder as ~/...
func homeAbbrev(path string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(home, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		if rel == "." {
			return "~"
		}
		return "~" + string(filepath.Separator) + rel
	}
	return path
}

// Export writes exp, the explanation of pair scored as score, into dir as
// the e key does, relevance painted in cm; ds holds the pair's images. It
// is the e key without a screen, for front ends and tests that drive an
// engine themselves. It returns the files written: the figure's PNG and
// SVG, then each reading's report.
func Export(dir string, ds *loader.Dataset, pair *loader.Pair, exp *Explanation, score *Score, cm *explain.Colormap) ([]string, error) {
	k := expKey{ckpt: exp.Checkpoint, pair: pair.ID, method: exp.Request.Method, layer: exp.Request.StartLayer, target: exp.Request.Target}
	return writeExport(dir, pair, k, exp, score, cm, newImageCache(ds))
}

func writeExport(dir string, pair *loader.Pair, k expKey, exp *Explanation, score *Score, cm *explain.Colormap, imgs *imageCache) ([]string, error) {
	if score == nil {
		return nil, fmt.Errorf("export %s: the pair is not scored yet", pair.ID)
	}
	reports := make([]report.Reading, len(exp.Readings))
	for j, rr := range exp.Readings {
		if rr.Report == nil {
			return nil, fmt.Errorf("export %s: the engine gave no report for reading %s", pair.ID, letter(j))
		}
		rep := *rr.Report
		rep.Colormap = cm.Name()
		logits := make([]float64, len(score.Logits))
		for i, row := range score.Logits {
			if j >= len(row) {
				return nil, fmt.Errorf("export %s: the score has no logits for reading %s", pair.ID, letter(j))
			}
			logits[i] = row[j]
		}
		if err := rep.SetLogits(logits); err != nil {
			return nil, fmt.Errorf("export %s: %w", pair.ID, err)
		}
		reports[j] = rep
	}
	images := make([]image.Image, len(pair.Readings))
	for i := range pair.Readings {
		img, err := imgs.get(&pair.Readings[i])
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", pair.ID, err)
		}
		images[i] = img
	}
	ptrs := make([]*report.Reading, len(reports))
	for j := range reports {
		ptrs[j] = &reports[j]
	}
	if err := analysis.Pair(ptrs); err != nil {
		return nil, fmt.Errorf("export %s: %w", pair.ID, err)
	}
	// The engine does not say how its model preprocesses; CLIP's default
	// keeps the same centre square as any square crop of the shorter side.
	fig, err := figure.New(figure.Input{Pair: pair, Readings: reports, Images: images, Prep: loader.DefaultPreprocessConfig(), Colormap: cm})
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", pair.ID, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export %s: %w", pair.ID, err)
	}
	files, err := reserve(dir, figure.Name(pair.ID, k.method, k.layer, k.target), len(reports))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", pair.ID, err)
	}
	done := false
	defer func() {
		if !done {
			for _, f := range files {
				os.Remove(f)
			}
		}
	}()
	for _, f := range files[:2] {
		if err := figure.Write(f, fig, figure.DefaultWidth); err != nil {
			return nil, fmt.Errorf("export %s: %w", pair.ID, err)
		}
	}
	for j := range reports {
		reports[j].Figure = filepath.Base(files[0])
		if err := atomicfile.Write(files[2+j], reports[j].Write); err != nil {
			return nil, fmt.Errorf("export %s: %w", files[2+j], err)
		}
	}
	done = true
	return files, nil
}

// maxExports bounds the numbered names tried for one figure.
const maxExports = 10000

// reserve claims the names of an export of n reports in dir: BASE.png,
// BASE.svg and BASE-rJ.json, or BASE-2..., the first whose files all do
// not exist yet. Each is created empty and exclusively, so that an export
// never replaces a file, even one made by another explorer meanwhile; the
// writes then rename over these placeholders.
func reserve(dir, base string, n int) ([]string, error) {
	for k := 1; k <= maxExports; k++ {
		b := base
		if k > 1 {
			b += "-" + strconv.Itoa(k)
		}
		names := []string{b + ".png", b + ".svg"}
		for j := range n {
			names = append(names, b+"-r"+strconv.Itoa(j)+".json")
		}
		var made []string
		taken := false
		for _, name := range names {
			path := filepath.Join(dir, name)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, fs.ErrExist) {
				taken = true
				break
			}
			if err != nil {
				for _, p := range made {
					os.Remove(p)
				}
				return nil, err
			}
			f.Close()
			made = append(made, path)
		}
		if !taken {
			return made, nil
		}
		for _, p := range made {
			os.Remove(p)
		}
	}
	return nil, fmt.Errorf("%s: %d exports of %s already; move some away", dir, maxExports, base)
}
