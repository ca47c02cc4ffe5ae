package tui

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
	"path/filepath"

	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/trees"
)

// exportDoc is the JSON that e writes beside the PNG.
type exportDoc struct {
	Pair       string          `json:"pair"`
	Sentence   string          `json:"sentence"`
	Ambiguity  string          `json:"ambiguity,omitempty"`
	Checkpoint string          `json:"checkpoint"`
	Method     Method          `json:"method"`
	StartLayer string          `json:"start_layer"`
	Target     string          `json:"target"`
	ElapsedMS  float64         `json:"elapsed_ms"`
	Colormap   string          `json:"colormap"`
	Image      string          `json:"image"`
	Score      *exportScore    `json:"score,omitempty"`
	Readings   []exportReading `json:"readings"`
}

type exportScore struct {
	Logits  [][]float64 `json:"logits"`
	Probs   [][]float64 `json:"probs"`
	Picks   []int       `json:"picks"`
	Correct []bool      `json:"correct"`
	Margins []float64   `json:"margins"`
}

type exportReading struct {
	Tree       string            `json:"tree"`
	Gloss      string            `json:"gloss,omitempty"`
	Text       string            `json:"text"`
	Image      int               `json:"image"`
	Cells      [][2]int          `json:"cells"`
	Tokens     []Token           `json:"tokens"`
	Nodes      []trees.NodeScore `json:"nodes,omitempty"`
	Words      []trees.WordScore `json:"words,omitempty"`
	Unassigned float64           `json:"unassigned"`
	Patches    exportPatches     `json:"patches"`
	Error      string            `json:"error,omitempty"`
}

type exportPatches struct {
	W      int       `json:"w"`
	H      int       `json:"h"`
	Values []float32 `json:"values"`
}

// export writes the open pair's explanation: a PNG of both overlays with a
// colour bar, and a JSON of every number behind the view.
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
	// Linearizations are built here, on the UI goroutine that owns the
	// cache; the command only reads them.
	lins := make([]*trees.Linear, len(ex.exp.Readings))
	for j := range lins {
		lins[j] = pp.linear(j, m.engineStyle(k.ckpt))
	}
	dir, cm, imgs := m.opt.ExportDir, m.cmap, m.imgs
	pair := pp.pair
	return func() tea.Msg {
		files, err := writeExport(dir, pair, k, ex.exp, score, lins, cm, imgs)
		return exportMsg{files: files, err: err}
	}
}

func writeExport(dir string, pair *loader.Pair, k expKey, exp *Explanation, score *Score, lins []*trees.Linear, cm *explain.Colormap, imgs *imageCache) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := filepath.Join(dir, loader.FileName(fmt.Sprintf("%s_%s_%s_%s", pair.ID, k.method, k.layer, k.target)))
	doc := exportDoc{
		Pair: pair.ID, Sentence: pair.Sentence, Ambiguity: pair.Ambiguity, Checkpoint: k.ckpt,
		Method: k.method, StartLayer: k.layer, Target: k.target.String(),
		ElapsedMS: float64(exp.Elapsed.Microseconds()) / 1000, Colormap: cm.Name(), Image: filepath.Base(base + ".png"),
	}
	if score != nil {
		doc.Score = &exportScore{Logits: score.Logits, Probs: score.Probs, Picks: score.Picks, Correct: score.Correct, Margins: score.Margins}
	}
	var overlays []image.Image
	for j, rr := range exp.Readings {
		er := exportReading{Text: rr.Text, Image: rr.Image, Cells: rr.Cells, Tokens: rr.Tokens,
			Patches: exportPatches{W: rr.Patches.W, H: rr.Patches.H, Values: rr.Patches.V}}
		if j < len(pair.Readings) {
			er.Tree, er.Gloss = pair.Readings[j].Tree, pair.Readings[j].Gloss
		}
		if err := treeRelevance(&er, lins[j], rr); err != nil {
			er.Error = err.Error()
		}
		doc.Readings = append(doc.Readings, er)
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
	err = atomicfile.Write(base+".json", func(w io.Writer) error {
		data, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(termtext.JSON(data), '\n'))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", base+".json", err)
	}
	return []string{base + ".png", base + ".json"}, nil
}

// treeRelevance adds node and word relevance, through trees.Align, to an
// exported reading.
func treeRelevance(er *exportReading, lin *trees.Linear, rr ReadingRelevance) error {
	if lin == nil {
		return fmt.Errorf("the tree did not parse")
	}
	if lin.Text != rr.Text {
		return fmt.Errorf("the engine read %q, not the tree's %s linearization", rr.Text, lin.Style)
	}
	offs := make([][2]int, len(rr.Tokens))
	vals := make([]float64, len(rr.Tokens))
	for t, tok := range rr.Tokens {
		offs[t], vals[t] = [2]int{tok.Start, tok.End}, tok.Relevance
	}
	al, err := trees.Align(lin, offs)
	if err != nil {
		return err
	}
	rel, err := al.Aggregate(vals)
	if err != nil {
		return err
	}
	er.Nodes, er.Words = rel.Scores(lin.Tree)
	er.Unassigned = rel.Unassigned
	return nil
}
