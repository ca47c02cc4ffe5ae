package tui

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strconv"

	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/analysis"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/report"
)

// export writes the open pair's explanation: a PNG of both overlays with a
// colour bar, and per reading its report (package report), the record that
// `lavascope explain` writes too.
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
		return exportMsg{files: files, err: err}
	}
}

// Export writes exp, the explanation of pair scored as score, into dir as
// the e key does, relevance painted in cm; ds holds the pair's images. It
// is the e key without a screen, for front ends and tests that drive an
// engine themselves.
func Export(dir string, ds *loader.Dataset, pair *loader.Pair, exp *Explanation, score *Score, cm *explain.Colormap) ([]string, error) {
	k := expKey{ckpt: exp.Checkpoint, pair: pair.ID, method: exp.Request.Method, layer: exp.Request.StartLayer, target: exp.Request.Target}
	return writeExport(dir, pair, k, exp, score, cm, newImageCache(ds))
}

func writeExport(dir string, pair *loader.Pair, k expKey, exp *Explanation, score *Score, cm *explain.Colormap, imgs *imageCache) ([]string, error) {
	if score == nil {
		return nil, fmt.Errorf("export %s: the pair is not scored yet", pair.ID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, loader.FileName(fmt.Sprintf("%s_%s_%s_%s", pair.ID, k.method, k.layer, k.target)))
	var overlays []image.Image
	reports := make([]report.Reading, len(exp.Readings))
	for j, rr := range exp.Readings {
		if rr.Report == nil {
			return nil, fmt.Errorf("export %s: the engine gave no report for reading %s", pair.ID, letter(j))
		}
		rep := *rr.Report
		rep.Figure, rep.Colormap = filepath.Base(base+".png"), cm.Name()
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
		if rr.Image < 0 || rr.Image >= len(pair.Readings) {
			return nil, fmt.Errorf("export %s: reading %s explains image %d of %d", pair.ID, letter(j), rr.Image, len(pair.Readings))
		}
		img, err := imgs.get(&pair.Readings[rr.Image])
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", pair.ID, err)
		}
		ov, err := explain.Overlay(img, rr.Patches, explain.OverlayOptions{Colormap: cm, Signed: cm.Diverging()})
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", pair.ID, err)
		}
		overlays = append(overlays, ov)
	}
	ptrs := make([]*report.Reading, len(reports))
	for j := range reports {
		ptrs[j] = &reports[j]
	}
	if err := analysis.Pair(ptrs); err != nil {
		return nil, fmt.Errorf("export %s: %w", pair.ID, err)
	}
	h := 0
	for _, o := range overlays {
		h = max(h, o.Bounds().Dy())
	}
	bar, err := explain.ColorBar(cm, 12, max(h, 32), "low", "high")
	if err != nil {
		return nil, err
	}
	fig := explain.HStack(8, color.White, append(overlays, bar)...)
	if err := explain.WritePNG(base+".png", fig); err != nil {
		return nil, err
	}
	files := []string{base + ".png"}
	for j := range reports {
		name := base + "-r" + strconv.Itoa(j) + ".json"
		if err := atomicfile.Write(name, reports[j].Write); err != nil {
			return nil, fmt.Errorf("export %s: %w", name, err)
		}
		files = append(files, name)
	}
	return files, nil
}
