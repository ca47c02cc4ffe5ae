package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
	"github.com/lavascope/lavascope/tui/graphics"
)

type explainFlags struct {
	pair, split, target, out, style, show string
	limit, batch                          int
	metrics, allowOutside                 bool
}

// newExplainCmd builds `lavascope explain`.
func newExplainCmd(a *app) *cobra.Command {
	{
		var f explainFlags
		cmd := &cobra.Command{
			Use:   "explain --checkpoint DIR --data FILE [--pair ID | --split test] --out DIR",
			Short: "Write relevance heatmaps, token relevance and faithfulness metrics for readings",
			Long: `explain computes, for every reading of the chosen pairs, where the model looked
when it scored the reading's tree against an image, and how far to trust it.

--method chefer (default) is the rule of Chefer et al. (2021) as the CLIP
notebook of Transformer-MM-Explainability computes it; --start-layer last (the
notebook's default), all or a number selects its layers. The baselines are
rollout (attention rollout over every layer), attention (the last layer's
attention) and gradattn (the last layer's gradient × attention); they ignore
--start-layer. --start-layer-text gives the text encoder its own start layer
(the notebook's start_layer_text; by default --start-layer's). A negative
number counts from the end: -1 is the last layer, -2 the last two. The
notebook reads -1 as the last layer too, but any other negative number takes
every layer (its loop skips the layers below the number).

--target own explains each reading's text against its own image, twin against
the other reading's image, all the sum over the pair's images.

Per reading it writes to --out:
  PAIR-rJ.png    the image(s) of the target with the patch relevance overlaid
                 (--colormap), beside the image itself, and a colour bar
  PAIR-rJ.json   logits, token relevance with the tokens' text (raw, and
                 normalised over the tokens between start and end of text as
                 the notebook shows it), node and word relevance on the tree
                 (the normalised token relevance gathered by trees.Align: a
                 token over k parts gives each 1/k), the patch grid (raw and
                 min–max normalised), and the metrics
and over all readings readings.csv (one row each) and summary.csv (means).

The metrics (skip them with --metrics=false) measure the explanation of each
reading's own logit, whatever --target draws: perturbation curves (patches of
the own image removed most relevant first and least relevant first, 0% to 90%,
margin own − twin and its area under the curve), the pointing game and the
share of relevance inside the reading's evidence boxes, and the margin change
when its most and least relevant 1, 2, 3 tokens are dropped from the text.

--checkpoint demo and --data demo name the embedded model and synthetic data.`,
			Example: `  lavascope explain --checkpoint demo --data demo --split test --limit 10 --out explained/
  lavascope explain --checkpoint ckpt/best --data pairs.jsonl --pair pp-0007 --target all --out /tmp/x --show auto`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runExplain(cmd, a, f)
			},
		}
		fs := cmd.Flags()
		config.AddFlags(fs, "checkpoint", "base", "data", "method", "start_layer", "start_layer_text", "colormap")
		fs.StringVar(&f.pair, "pair", "", "explain only the pair with this id")
		fs.StringVar(&f.split, "split", loader.SplitTest, "split to explain: train, val, test, or all (a manifest only)")
		fs.IntVar(&f.limit, "limit", 0, "explain at most this many pairs (0: all)")
		fs.StringVar(&f.target, "target", "own", "logit to explain for each reading: own, twin or all")
		fs.StringVar(&f.out, "out", "", "folder to write PNG, JSON and CSV files into (created if missing)")
		fs.StringVar(&f.style, "style", trees.StylePaper.String(), "linearization the model reads: "+strings.Join(trees.StyleNames(), ", "))
		fs.BoolVar(&f.metrics, "metrics", true, "compute the faithfulness metrics")
		fs.IntVar(&f.batch, "batch-pairs", 8, "pairs per forward and backward pass (speed and memory only)")
		fs.StringVar(&f.show, "show", "", "also print each figure in the terminal: auto, sixel, kitty or blocks")
		fs.BoolVar(&f.allowOutside, "allow-outside", false, "accept images outside the manifest's folder (by path or symbolic link)")
		return cmd
	}
}

// explainSettings are the parsed flags.
type explainSettings struct {
	method  explain.Method
	start   explain.StartLayer
	target  string
	style   trees.Style
	cmap    *explain.Colormap
	show    graphics.Mode
	showing bool

	// textStart is the text encoder's start layer, nil when start's.
	textStart *explain.StartLayer
}

func parseExplainFlags(a *app, f explainFlags) (explainSettings, error) {
	var st explainSettings
	var err error
	if f.out == "" {
		return st, errors.New("--out DIR is required")
	}
	if st.method, err = explain.ParseMethod(a.cfg.Method); err != nil {
		return st, fmt.Errorf("--method: %w", err)
	}
	if st.start, err = explain.ParseStartLayer(a.cfg.StartLayer); err != nil {
		return st, fmt.Errorf("--start-layer: %w", err)
	}
	if a.cfg.StartLayerText != "" {
		ts, err := explain.ParseStartLayer(a.cfg.StartLayerText)
		if err != nil {
			return st, fmt.Errorf("--start-layer-text: %w", err)
		}
		st.textStart = &ts
	}
	switch f.target {
	case "own", "twin", "all":
		st.target = f.target
	default:
		return st, fmt.Errorf("--target %q: want own, twin or all", f.target)
	}
	if st.style, err = trees.ParseStyle(f.style); err != nil {
		return st, fmt.Errorf("--style: %w", err)
	}
	if st.cmap, err = explain.ColormapNamed(a.cfg.Colormap); err != nil {
		return st, fmt.Errorf("--colormap: %w", err)
	}
	if f.show != "" {
		if st.show, err = graphics.ParseMode(f.show); err != nil {
			return st, fmt.Errorf("--show: %w", err)
		}
		st.showing = true
	}
	if f.limit < 0 {
		return st, fmt.Errorf("--limit must be ≥ 0, got %d", f.limit)
	}
	if f.batch < 1 {
		return st, fmt.Errorf("--batch-pairs must be ≥ 1, got %d", f.batch)
	}
	return st, nil
}

func runExplain(cmd *cobra.Command, a *app, f explainFlags) error {
	st, err := parseExplainFlags(a, f)
	if err != nil {
		return withExit(exitUsage, err)
	}
	split, idx, err := explainPairs(a.cfg.Data, f.split, f.pair, f.limit, loader.Options{AllowOutside: f.allowOutside})
	if err != nil {
		return withExit(exitUsage, err)
	}
	loc, tok, err := openTokenizer("--checkpoint", a.cfg.Checkpoint, a.cfg.Base, true)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return withExit(exitUsage, fmt.Errorf("--out: %w", err))
	}
	w, m, done, err := loadModel(a, cmd.ErrOrStderr(), loc)
	if err != nil {
		return err
	}
	defer done()
	prep, err := model.PreprocessFor(m)
	if err != nil {
		return withExit(exitUsage, err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	run := &explainRun{
		m: m, tok: tok, prep: prep, split: split, st: st, metrics: f.metrics,
		out: f.out, w: w, stdout: cmd.OutOrStdout(),
		checkpoint: a.cfg.Checkpoint,
	}
	for lo := 0; lo < len(idx); lo += f.batch {
		if err := ctx.Err(); err != nil {
			return withExit(exitInterrupted, errors.New("interrupted"))
		}
		if err := run.chunk(idx[lo:min(lo+f.batch, len(idx))]); err != nil {
			return inputExit(err)
		}
	}
	return run.finish()
}

// explainRun holds what every chunk of pairs needs, and the rows so far.
type explainRun struct {
	m          *model.CLIP
	tok        *tokenizer.Tokenizer
	prep       loader.PreprocessConfig
	split      model.Split
	st         explainSettings
	metrics    bool
	out        string
	w          *torch.Worker
	stdout     io.Writer
	checkpoint string

	rows []readingRow
	all  []explain.Metrics
}

// explainPair is one pair of a chunk, prepared for the model.
type explainPair struct {
	pair     loader.Pair
	images   []image.Image
	texts    []string
	encs     []tokenizer.Encoding
	img, txt int // index of its first image and text in the chunk
}

// readingRow is a line of readings.csv.
type readingRow struct {
	pair, ambiguity string
	reading         int
	own, twin       float64
	m               *explain.Metrics
}

// chunk explains the pairs at indices idx of the split in one batch.
func (r *explainRun) chunk(idx []int) error {
	ctxLen := r.m.Config().Text.MaxPositionEmbeddings
	var pairs []*explainPair
	var pix []float32
	var encs []tokenizer.Encoding
	size := r.m.Config().Vision.ImageSize
	for _, i := range idx {
		p, err := r.split.Pair(i)
		if err != nil {
			return err
		}
		if len(p.Readings) < 2 {
			return fmt.Errorf("pair %s has %d readings; explain needs two or more", p.ID, len(p.Readings))
		}
		ep := &explainPair{pair: p, img: len(pix) / (3 * size * size), txt: len(encs)}
		if ep.texts, err = model.ReadingTexts(&p, r.st.style); err != nil {
			return err
		}
		for k := range p.Readings {
			rd := &p.Readings[k]
			img, err := r.split.Image(rd)
			if err != nil {
				return fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, k, rd.Image, err)
			}
			px, err := loader.Preprocess(img, r.prep)
			if err != nil {
				return fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, k, rd.Image, err)
			}
			ep.images = append(ep.images, img)
			pix = append(pix, px...)
			enc := r.tok.Encode(ep.texts[k], ctxLen)
			ep.encs = append(ep.encs, enc)
			encs = append(encs, enc)
		}
		pairs = append(pairs, ep)
	}
	ids, err := r.tok.Pack(encs, ctxLen)
	if err != nil {
		return err
	}
	// The targets drawn, and each reading's own logit for the metrics.
	var targets, own []explain.Target
	for _, ep := range pairs {
		n := len(ep.pair.Readings)
		for j := range n {
			targets = append(targets, cells(r.st.target, ep, j))
			own = append(own, cells("own", ep, j))
		}
	}
	var drawn, owned []explain.Result
	var logits []float64
	err = r.w.Do(func() error {
		s := torch.NewScope()
		defer s.Close()
		px := s.FromFloat32(pix, int64(len(pix)/(3*size*size)), 3, int64(size), int64(size))
		tx := s.FromInt64(ids, int64(len(encs)), int64(ctxLen))
		opt := explain.Options{Method: r.st.method, Start: r.st.start, TextStart: r.st.textStart}
		var err error
		if drawn, err = explain.Explain(r.m, px, tx, targets, opt); err != nil {
			return err
		}
		owned = drawn
		if r.st.target != "own" && r.metrics {
			if owned, err = explain.Explain(r.m, px, tx, own, opt); err != nil {
				return err
			}
		}
		var out *model.Output
		if out, err = r.m.Forward(s, px, tx, model.ForwardOptions{}); err != nil {
			return err
		}
		if logits, err = out.LogitsPerImage.Float64s(); err != nil {
			return err
		}
		if !r.metrics {
			return nil
		}
		return r.measure(s, px, tx, pairs, owned)
	})
	if err != nil {
		return err
	}
	k := 0
	for _, ep := range pairs {
		for j := range ep.pair.Readings {
			if err := r.write(ep, j, drawn[k], owned[k], logits, len(encs)); err != nil {
				return err
			}
			k++
		}
	}
	return nil
}

// cells is the target of reading j of ep, in chunk indices.
func cells(target string, ep *explainPair, j int) explain.Target {
	n := len(ep.pair.Readings)
	switch target {
	case "twin":
		return explain.Target{{Image: ep.img + (j+1)%n, Text: ep.txt + j}}
	case "all":
		t := make(explain.Target, n)
		for i := range n {
			t[i] = explain.Cell{Image: ep.img + i, Text: ep.txt + j}
		}
		return t
	}
	return explain.Target{{Image: ep.img + j, Text: ep.txt + j}}
}

// measure computes the metrics of every reading of the chunk from its own
// explanation and keeps them for write; it runs on the torch worker.
func (r *explainRun) measure(s *torch.Scope, px, tx *torch.Tensor, pairs []*explainPair, owned []explain.Result) error {
	k := 0
	for _, ep := range pairs {
		n := len(ep.pair.Readings)
		for j := range n {
			res := &owned[k]
			k++
			ownI, twinI, t := ep.img+j, ep.img+(j+1)%n, ep.txt+j
			own, twin, ids := px.Select(0, int64(ownI)), px.Select(0, int64(twinI)), tx.Select(0, int64(t))
			img, txt := res.Image(ownI), res.Text(t)
			var mt explain.Metrics
			var err error
			if mt.Perturbation, err = explain.Perturb(r.m, own, twin, ids, img.Raw, nil); err != nil {
				return fmt.Errorf("pair %s reading %d: %w", ep.pair.ID, j, err)
			}
			mt.Margin = mt.Perturbation.Positive.Margins[0]
			if mt.Text, err = explain.DeleteTokens(r.m, own, twin, ids, txt.Raw, txt.EOT, nil); err != nil {
				return fmt.Errorf("pair %s reading %d: %w", ep.pair.ID, j, err)
			}
			if boxes := ep.pair.Readings[j].BoxesWithRole(loader.RoleEvidence); len(boxes) > 0 {
				b := ep.images[j].Bounds()
				g, err := explain.NewGeometry(b.Dx(), b.Dy(), r.prep)
				if err != nil {
					return err
				}
				cover, err := g.PatchCoverage(img.Grid, shiftBoxes(boxes, b.Min))
				if err != nil {
					return err
				}
				pg, err := explain.PointingGame(img.Raw, cover)
				if err != nil {
					return fmt.Errorf("pair %s reading %d: %w", ep.pair.ID, j, err)
				}
				mt.Pointing = &pg
			}
			r.all = append(r.all, mt)
		}
	}
	return nil
}

// shiftBoxes expresses boxes relative to an image whose bounds start at
// min (decoded images start at 0, 0; a sub-image may not).
func shiftBoxes(boxes []loader.Box, min image.Point) []loader.Box {
	if min == (image.Point{}) {
		return boxes
	}
	out := make([]loader.Box, len(boxes))
	for i, b := range boxes {
		b.X0, b.X1, b.Y0, b.Y1 = b.X0-min.X, b.X1-min.X, b.Y0-min.Y, b.Y1-min.Y
		out[i] = b
	}
	return out
}

// explainDoc is the JSON written per reading.
type explainDoc struct {
	Pair       string            `json:"pair"`
	Reading    int               `json:"reading"`
	Sentence   string            `json:"sentence"`
	Ambiguity  string            `json:"ambiguity,omitempty"`
	Tree       string            `json:"tree"`
	Gloss      string            `json:"gloss,omitempty"`
	Text       string            `json:"text"`
	Checkpoint string            `json:"checkpoint"`
	Method     explain.Method    `json:"method"`
	StartLayer string            `json:"start_layer"`
	Target     string            `json:"target"`
	Cells      [][2]int          `json:"cells"`
	Logit      float64           `json:"logit"`
	Logits     []float64         `json:"logits"`
	Correct    bool              `json:"correct"`
	Truncated  bool              `json:"truncated,omitempty"`
	Tokens     []explainToken    `json:"tokens"`
	Nodes      []trees.NodeScore `json:"nodes"`
	Words      []trees.WordScore `json:"words"`
	Unassigned float64           `json:"unassigned"`
	Images     []explainImage    `json:"images"`
	Figure     string            `json:"figure"`
	Metrics    *explain.Metrics  `json:"metrics,omitempty"`

	// StartLayerText is the text encoder's start layer, when it differs.
	StartLayerText string `json:"start_layer_text,omitempty"`
}

type explainToken struct {
	Token string `json:"token"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	// Relevance is the method's value; Normalized its share of the tokens
	// between start and end of text (0 for those two).
	Relevance  float32 `json:"relevance"`
	Normalized float32 `json:"normalized"`
}

type explainImage struct {
	Image      int       `json:"image"`
	File       string    `json:"file,omitempty"`
	Grid       int       `json:"grid"`
	Relevance  []float32 `json:"relevance"`
	Normalized []float32 `json:"normalized"`
}

// write saves reading j of ep: figure, JSON, and its CSV row.
func (r *explainRun) write(ep *explainPair, j int, drawn, owned explain.Result, logits []float64, nt int) error {
	p := &ep.pair
	rd := &p.Readings[j]
	n := len(p.Readings)
	t := ep.txt + j
	doc := explainDoc{
		Pair: p.ID, Reading: j, Sentence: p.Sentence, Ambiguity: p.Ambiguity, Tree: rd.Tree, Gloss: rd.Gloss,
		Text: ep.texts[j], Checkpoint: r.checkpoint, Method: r.st.method, Target: r.st.target,
		Logit: drawn.Logit, Truncated: ep.encs[j].Truncated,
	}
	doc.StartLayer = "-"
	if r.st.method == explain.Chefer {
		doc.StartLayer = r.st.start.String()
		if r.st.textStart != nil {
			doc.StartLayerText = r.st.textStart.String()
		}
	}
	for _, c := range drawn.Target {
		doc.Cells = append(doc.Cells, [2]int{c.Image - ep.img, c.Text - ep.txt})
	}
	for i := range n {
		doc.Logits = append(doc.Logits, logits[(ep.img+i)*nt+t])
	}
	ownL, twinL := doc.Logits[j], doc.Logits[(j+1)%n]
	doc.Correct = ownL > twinL
	for i, l := range doc.Logits {
		if i != j && l >= ownL {
			doc.Correct = false
		}
	}
	if err := r.tokens(&doc, ep, j, drawn.Text(t)); err != nil {
		return fmt.Errorf("pair %s reading %d: %w", p.ID, j, err)
	}
	base := loader.FileName(p.ID) + "-r" + strconv.Itoa(j)
	doc.Figure = base + ".png"
	fig, err := r.figure(ep, j, &drawn, &doc)
	if err != nil {
		return fmt.Errorf("pair %s reading %d: %w", p.ID, j, err)
	}
	if err := explain.WritePNG(filepath.Join(r.out, doc.Figure), fig); err != nil {
		return err
	}
	row := readingRow{pair: termtext.Sanitize(p.ID), ambiguity: termtext.Sanitize(p.Ambiguity), reading: j, own: ownL, twin: twinL}
	if r.metrics {
		doc.Metrics = &r.all[len(r.rows)]
		row.m = doc.Metrics
	}
	data, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(r.out, base+".json"), func(w io.Writer) error {
		_, err := w.Write(append(termtext.JSON(data), '\n'))
		return err
	}); err != nil {
		return err
	}
	r.rows = append(r.rows, row)
	mark := "wrong"
	if doc.Correct {
		mark = "right"
	}
	line := fmt.Sprintf("%s r%d  %s  margin %+.3f", termtext.Sanitize(p.ID), j, mark, ownL-twinL)
	if mt := doc.Metrics; mt != nil && mt.Pointing != nil {
		hit := "miss"
		if mt.Pointing.Hit {
			hit = "hit"
		}
		line += fmt.Sprintf("  pointing %s  mass %.2f", hit, mt.Pointing.Mass)
	}
	fmt.Fprintln(r.stdout, termtext.Lines(line+"  "+filepath.Join(r.out, doc.Figure)))
	if r.st.showing {
		return graphics.Write(r.stdout, fig, r.st.show, 80, 16)
	}
	return nil
}

// tokens fills the token, node and word relevance of doc. Node and word
// relevance gather the normalised token relevance through trees.Align.
func (r *explainRun) tokens(doc *explainDoc, ep *explainPair, j int, tr *explain.TextRelevance) error {
	enc := ep.encs[j]
	vals := make([]float64, len(enc.IDs))
	for k, id := range enc.IDs {
		tok := explainToken{Token: r.tok.Token(id), Start: enc.Offsets[k][0], End: enc.Offsets[k][1], Relevance: tr.Raw[k]}
		if k >= 1 && k < tr.EOT {
			tok.Normalized = tr.Norm[k-1]
		}
		vals[k] = float64(tok.Normalized)
		doc.Tokens = append(doc.Tokens, tok)
	}
	tree, err := trees.Parse(ep.pair.Readings[j].Tree)
	if err != nil {
		return err
	}
	lin := trees.Linearize(tree, r.st.style)
	al, err := trees.Align(lin, enc.Offsets)
	if err != nil {
		return err
	}
	rel, err := al.Aggregate(vals)
	if err != nil {
		return err
	}
	doc.Nodes, doc.Words = rel.Scores(tree)
	doc.Unassigned = rel.Unassigned
	return nil
}

// figure draws the reading's own image, then each image of the target with
// its relevance over it, and a colour bar. Images are shown as the model saw
// them: the region of the file that the centre crop keeps.
func (r *explainRun) figure(ep *explainPair, j int, res *explain.Result, doc *explainDoc) (image.Image, error) {
	crop := func(i int) (image.Image, error) {
		img := ep.images[i]
		b := img.Bounds()
		g, err := explain.NewGeometry(b.Dx(), b.Dy(), r.prep)
		if err != nil {
			return nil, err
		}
		x0, y0 := g.ToSource(0, 0)
		x1, y1 := g.ToSource(float64(g.W), float64(g.H))
		rect := image.Rect(int(x0+0.5), int(y0+0.5), int(x1+0.5), int(y1+0.5)).Add(b.Min).Intersect(b)
		if si, ok := img.(interface {
			SubImage(image.Rectangle) image.Image
		}); ok && !rect.Empty() {
			return si.SubImage(rect), nil
		}
		return img, nil
	}
	own, err := crop(j)
	if err != nil {
		return nil, err
	}
	parts := []image.Image{own}
	for _, im := range res.Images {
		i := im.Index - ep.img
		src, err := crop(i)
		if err != nil {
			return nil, err
		}
		grid, err := explain.NewGrid(im.Grid, im.Grid, im.Raw)
		if err != nil {
			return nil, err
		}
		ov, err := explain.Overlay(src, grid, explain.OverlayOptions{Colormap: r.st.cmap, Signed: r.st.cmap.Diverging()})
		if err != nil {
			return nil, err
		}
		parts = append(parts, ov)
		doc.Images = append(doc.Images, explainImage{
			Image: i, File: ep.pair.Readings[i].Image, Grid: im.Grid, Relevance: im.Raw, Normalized: im.Norm,
		})
	}
	h := own.Bounds().Dy()
	bar, err := explain.ColorBar(r.st.cmap, 12, max(h, 32), "low", "high")
	if err != nil {
		return nil, err
	}
	return explain.HStack(8, color.White, append(parts, bar)...), nil
}

// finish writes readings.csv and summary.csv and prints the summary.
func (r *explainRun) finish() error {
	ks := explain.DefaultKs
	header := []string{"pair", "reading", "ambiguity", "method", "start_layer", "target", "own_logit", "twin_logit", "margin", "correct",
		"auc_positive", "auc_negative", "pointing_hit", "pointing_chance", "mass", "chance_mass"}
	for _, k := range ks {
		header = append(header, fmt.Sprintf("top%d_delta", k))
	}
	for _, k := range ks {
		header = append(header, fmt.Sprintf("bottom%d_delta", k))
	}
	start := "-"
	if r.st.method == explain.Chefer {
		start = r.st.start.String()
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	rows := [][]string{header}
	for _, row := range r.rows {
		rec := []string{row.pair, strconv.Itoa(row.reading), row.ambiguity, string(r.st.method), start, r.st.target,
			f(row.own), f(row.twin), f(row.own - row.twin), strconv.FormatBool(row.own > row.twin)}
		mt := row.m
		blank := make([]string, 6+2*len(ks))
		if mt == nil {
			rows = append(rows, append(rec, blank...))
			continue
		}
		rec = append(rec, f(mt.Perturbation.Positive.AUC), f(mt.Perturbation.Negative.AUC))
		if p := mt.Pointing; p != nil {
			rec = append(rec, strconv.FormatBool(p.Hit), f(p.Chance), f(p.Mass), f(p.ChanceMass))
		} else {
			rec = append(rec, "", "", "", "")
		}
		for _, d := range mt.Text.Top {
			rec = append(rec, f(d.Delta))
		}
		for _, d := range mt.Text.Bottom {
			rec = append(rec, f(d.Delta))
		}
		rows = append(rows, rec)
	}
	if err := writeCSV(filepath.Join(r.out, "readings.csv"), rows); err != nil {
		return err
	}
	correct := 0
	for _, row := range r.rows {
		if row.own > row.twin {
			correct++
		}
	}
	sum := [][]string{{"metric", "value", "n"}, {"readings", strconv.Itoa(len(r.rows)), strconv.Itoa(len(r.rows))},
		{"accuracy", f(float64(correct) / float64(len(r.rows))), strconv.Itoa(len(r.rows))}}
	fmt.Fprintf(r.stdout, "\n%d readings, %d with the own image above the twin; method %s", len(r.rows), correct, r.st.method)
	if r.st.method == explain.Chefer {
		fmt.Fprintf(r.stdout, ", start layer %s", r.st.start)
		if r.st.textStart != nil {
			fmt.Fprintf(r.stdout, " (text %s)", r.st.textStart)
		}
	}
	fmt.Fprintln(r.stdout)
	if r.metrics {
		s := explain.Summarize(r.all)
		pn, tn := strconv.Itoa(s.Perturbed), strconv.Itoa(s.TextDeleted)
		sum = append(sum,
			[]string{"mean_margin", f(s.MeanMargin), strconv.Itoa(s.Readings)},
			[]string{"auc_positive", f(s.AUCPositive), pn},
			[]string{"auc_negative", f(s.AUCNegative), pn},
			[]string{"pointing_accuracy", f(s.PointingAccuracy), strconv.Itoa(s.Pointed)},
			[]string{"pointing_chance", f(s.PointingChance), strconv.Itoa(s.Pointed)},
			[]string{"mass", f(s.Mass), strconv.Itoa(s.Pointed)},
			[]string{"chance_mass", f(s.ChanceMass), strconv.Itoa(s.Pointed)})
		for i, k := range s.Ks {
			sum = append(sum, []string{fmt.Sprintf("top%d_delta", k), f(s.TopDelta[i]), tn})
		}
		for i, k := range s.Ks {
			sum = append(sum, []string{fmt.Sprintf("bottom%d_delta", k), f(s.BottomDelta[i]), tn})
		}
		fmt.Fprintf(r.stdout, "perturbation AUC of the margin: most relevant first %.3f, least relevant first %.3f\n", s.AUCPositive, s.AUCNegative)
		if s.Pointed > 0 {
			fmt.Fprintf(r.stdout, "pointing game: %.3f (%d/%d), random placement %.3f; relevance in the evidence %.3f, uniform %.3f\n",
				s.PointingAccuracy, s.PointingHits, s.Pointed, s.PointingChance, s.Mass, s.ChanceMass)
		}
		for i, k := range s.Ks {
			fmt.Fprintf(r.stdout, "dropping %d token(s): most relevant %+.3f, least relevant %+.3f margin\n", k, s.TopDelta[i], s.BottomDelta[i])
		}
	}
	if err := writeCSV(filepath.Join(r.out, "summary.csv"), sum); err != nil {
		return err
	}
	fmt.Fprintf(r.stdout, "wrote %s\n", termtext.Sanitize(r.out))
	return nil
}

func writeCSV(path string, rows [][]string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return csv.NewWriter(w).WriteAll(rows)
	})
}
