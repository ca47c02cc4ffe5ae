package pipeline

import (
	"encoding/csv"
	"fmt"
	"image"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lavascope/lavascope/analysis"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/figure"
	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/report"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// ExplainOptions are the settings of an explain run, parsed.
type ExplainOptions struct {
	// Checkpoint names the weights in the reports.
	Checkpoint string
	Method     explain.Method
	Start      explain.StartLayer
	// TextStart is the text encoder's start layer, nil when Start's.
	TextStart *explain.StartLayer
	Target    report.Target
	Style     trees.Style
	Colormap  *explain.Colormap
	// Metrics computes the faithfulness metrics of each reading's own
	// logit.
	Metrics bool
	// Out is the folder the figures, reports and CSV files go to.
	Out string
	// FigureWidth is the width of the PNG figures in pixels; 0 means
	// figure.DefaultWidth.
	FigureWidth int
	// FigureFormats are the figure files written per pair, "png" and/or
	// "svg"; the reports name the first. Empty means both.
	FigureFormats []string
	// Show, when set, also shows each figure (in the terminal).
	Show func(w io.Writer, fig image.Image) error
}

// Explainer explains the pairs of a split chunk by chunk, writing a figure
// per pair and a report per reading, and the CSV files over all of them at the end.
type Explainer struct {
	m      *model.CLIP
	tok    *tokenizer.Tokenizer
	prep   loader.PreprocessConfig
	split  model.Split
	opt    ExplainOptions
	w      *torch.Worker
	stdout io.Writer

	rows []readingRow
	all  []explain.Metrics
}

// NewExplainer explains pairs of split with m on w, whose images are
// preprocessed by prep, printing a line per reading and the summary to
// stdout.
func NewExplainer(m *model.CLIP, tok *tokenizer.Tokenizer, prep loader.PreprocessConfig, split model.Split, w *torch.Worker, stdout io.Writer, opt ExplainOptions) *Explainer {
	return &Explainer{m: m, tok: tok, prep: prep, split: split, w: w, stdout: stdout, opt: opt}
}

// explained is one pair of a chunk, prepared for the model.
type explained struct {
	pair   loader.Pair
	images []image.Image
	texts  []string
	// rows[j] is the batch row of reading j's text, cols[i] the batch
	// column of image i.
	rows, cols []int
}

// readingRow is a line of readings.csv.
type readingRow struct {
	pair, ambiguity string
	reading         int
	own, twin       float64
	m               *explain.Metrics
	an              analysis.Row
}

// Chunk explains the pairs at indices idx of the split in one batch, laid
// out by model.Inputs as evaluation and the explorer lay theirs out.
func (r *Explainer) Chunk(idx []int) error {
	var pairs []*explained
	var cur *explained
	// The decoded images stay for the figures and the evidence boxes.
	in := model.NewInputs(r.tok, r.m.Config().Text.MaxPositionEmbeddings, func(p *loader.Pair, k int) ([]float32, error) {
		rd := &p.Readings[k]
		img, err := r.split.Image(rd)
		if err != nil {
			return nil, fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, k, rd.Image, err)
		}
		px, err := loader.Preprocess(img, r.prep)
		if err != nil {
			return nil, fmt.Errorf("pair %s: readings[%d].image %s: %w", p.ID, k, rd.Image, err)
		}
		cur.images = append(cur.images, img)
		return px, nil
	})
	for _, i := range idx {
		p, err := r.split.Pair(i)
		if err != nil {
			return err
		}
		if len(p.Readings) < 2 {
			return fmt.Errorf("pair %s has %d readings; explain needs two or more", p.ID, len(p.Readings))
		}
		cur = &explained{pair: p}
		if cur.texts, err = model.ReadingTexts(&p, r.opt.Style); err != nil {
			return err
		}
		for k := range p.Readings {
			col, err := in.Image(&cur.pair, k)
			if err != nil {
				return err
			}
			cur.cols = append(cur.cols, col)
			cur.rows = append(cur.rows, in.Text(cur.texts[k]))
		}
		pairs = append(pairs, cur)
	}
	if err := in.Pack(); err != nil {
		return err
	}
	// The targets drawn, and each reading's own logit for the metrics.
	var targets, own []explain.Target
	for _, ep := range pairs {
		for j := range ep.pair.Readings {
			targets = append(targets, ep.target(r.opt.Target.Cells(j, len(ep.pair.Readings))))
			own = append(own, ep.target(report.TargetOwn.Cells(j, len(ep.pair.Readings))))
		}
	}
	var drawn, owned []explain.Result
	var logits []float64
	size := int64(r.m.Config().Vision.ImageSize)
	err := r.w.Do(func() error {
		s := torch.NewScope()
		defer s.Close()
		px := s.FromFloat32(in.Pixels(), int64(in.Images()), 3, size, size)
		tx := s.FromInt64(in.IDs(), int64(in.Texts()), int64(in.Width()))
		opt := explain.Options{Method: r.opt.Method, Start: r.opt.Start, TextStart: r.opt.TextStart}
		var err error
		if drawn, err = explain.Explain(r.m, px, tx, targets, opt); err != nil {
			return err
		}
		owned = drawn
		if r.opt.Target != report.TargetOwn && r.opt.Metrics {
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
		if !r.opt.Metrics {
			return nil
		}
		return r.measure(s, px, tx, pairs, owned)
	})
	if err != nil {
		return err
	}
	k := 0
	for _, ep := range pairs {
		n := len(ep.pair.Readings)
		if err := r.write(ep, in, drawn[k:k+n], logits); err != nil {
			return err
		}
		k += n
	}
	return nil
}

// target is cells of ep in batch indices.
func (ep *explained) target(cells [][2]int) explain.Target {
	t := make(explain.Target, len(cells))
	for k, c := range cells {
		t[k] = explain.Cell{Image: ep.cols[c[0]], Text: ep.rows[c[1]]}
	}
	return t
}

// measure computes the metrics of every reading of the chunk from its own
// explanation and keeps them for write; it runs on the torch worker.
func (r *Explainer) measure(s *torch.Scope, px, tx *torch.Tensor, pairs []*explained, owned []explain.Result) error {
	k := 0
	for _, ep := range pairs {
		n := len(ep.pair.Readings)
		for j := range n {
			in := MeasureInput{Own: ep.cols[j], Twin: ep.cols[(j+1)%n], Row: ep.rows[j], Result: &owned[k], Prep: r.prep}
			k++
			if boxes := ep.pair.Readings[j].BoxesWithRole(loader.RoleEvidence); len(boxes) > 0 {
				in.Boxes, in.Bounds = boxes, ep.images[j].Bounds()
			}
			mt, err := Measure(r.m, px, tx, in)
			if err != nil {
				return fmt.Errorf("pair %s reading %d: %w", ep.pair.ID, j, err)
			}
			r.all = append(r.all, *mt)
		}
	}
	return nil
}

// MeasureInput names one reading in a batch laid out by model.Inputs.
type MeasureInput struct {
	// Own and Twin are the batch indices of the reading's image and its
	// twin's, Row that of its text.
	Own, Twin, Row int
	// Result is the explanation of the reading's own logit.
	Result *explain.Result
	// Boxes are the reading's evidence boxes in the pixels of its decoded
	// image, whose bounds are Bounds; without boxes there is no pointing
	// game.
	Boxes  []loader.Box
	Bounds image.Rectangle
	Prep   loader.PreprocessConfig
}

// Measure computes the faithfulness metrics of one reading from the
// explanation of its own logit, as `explain --metrics` writes them: the
// perturbation curves of its image, the token deletions of its text and,
// where it has evidence boxes, the pointing game. px and tx are the batch's
// images and texts; it runs on the torch worker.
func Measure(m *model.CLIP, px, tx *torch.Tensor, in MeasureInput) (*explain.Metrics, error) {
	own, twin, ids := px.Select(0, int64(in.Own)), px.Select(0, int64(in.Twin)), tx.Select(0, int64(in.Row))
	img, txt := in.Result.Image(in.Own), in.Result.Text(in.Row)
	if img == nil || txt == nil {
		return nil, fmt.Errorf("measure: no relevance for image %d and text %d", in.Own, in.Row)
	}
	var mt explain.Metrics
	var err error
	if mt.Perturbation, err = explain.Perturb(m, own, twin, ids, img.Raw, nil); err != nil {
		return nil, err
	}
	mt.Margin = mt.Perturbation.Positive.Margins[0]
	if mt.Text, err = explain.DeleteTokens(m, own, twin, ids, txt.Raw, txt.EOT, nil); err != nil {
		return nil, err
	}
	if len(in.Boxes) == 0 {
		return &mt, nil
	}
	g, err := explain.NewGeometry(in.Bounds.Dx(), in.Bounds.Dy(), in.Prep)
	if err != nil {
		return nil, err
	}
	cover, err := g.PatchCoverage(img.Grid, shiftBoxes(in.Boxes, in.Bounds.Min))
	if err != nil {
		return nil, err
	}
	pg, err := explain.PointingGame(img.Raw, cover)
	if err != nil {
		return nil, err
	}
	mt.Pointing = &pg
	return &mt, nil
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

// write saves the pair ep: a report per reading, the pair's figure, and
// a CSV row per reading; drawn[j] is reading j's explanation.
func (r *Explainer) write(ep *explained, in *model.Inputs, drawn []explain.Result, logits []float64) error {
	p := &ep.pair
	n := len(p.Readings)
	name := figure.Name(p.ID, r.opt.Method, r.opt.Start, r.opt.Target)
	formats := r.opt.FigureFormats
	if len(formats) == 0 {
		formats = []string{"png", "svg"}
	}
	docs := make([]report.Reading, n)
	for j := range n {
		x := Explained{Pair: p, J: j, Text: ep.texts[j], Enc: in.Encoding(ep.rows[j]), Row: ep.rows[j], Cols: ep.cols,
			Cells: r.opt.Target.Cells(j, n), Result: &drawn[j]}
		for i := range n {
			x.Logits = append(x.Logits, logits[ep.cols[i]*in.Texts()+ep.rows[j]])
		}
		doc, err := x.Report(r.tok, r.settings(), r.opt.Style)
		if err != nil {
			return err
		}
		doc.Figure, doc.Colormap = name+"."+formats[0], r.opt.Colormap.Name()
		if r.opt.Metrics {
			doc.Metrics = &r.all[len(r.rows)+j]
		}
		docs[j] = doc
	}
	// Each reading's analysis reads its twin's report.
	ptrs := make([]*report.Reading, n)
	for j := range docs {
		ptrs[j] = &docs[j]
	}
	if err := analysis.Pair(ptrs); err != nil {
		return err
	}
	fig, err := figure.New(figure.Input{Pair: p, Readings: docs, Images: ep.images, Prep: r.prep, Colormap: r.opt.Colormap})
	if err != nil {
		return err
	}
	for _, f := range formats {
		if err := figure.Write(filepath.Join(r.opt.Out, name+"."+f), fig, r.opt.FigureWidth); err != nil {
			return err
		}
	}
	for j := range n {
		doc := &docs[j]
		ownL, twinL := doc.Logits[j], doc.Logits[(j+1)%n]
		if err := atomicfile.Write(filepath.Join(r.opt.Out, loader.FileName(p.ID)+"-r"+strconv.Itoa(j)+".json"), doc.Write); err != nil {
			return err
		}
		r.rows = append(r.rows, readingRow{pair: termtext.Sanitize(p.ID), ambiguity: termtext.Sanitize(p.Ambiguity), reading: j, own: ownL, twin: twinL,
			m: doc.Metrics, an: analysis.RowOf(doc)})
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
		if c := doc.Analysis.Contrast; c != nil {
			line += fmt.Sprintf("  unique %.2f", c.Unique)
		}
		fmt.Fprintln(r.stdout, termtext.Lines(line+"  "+filepath.Join(r.opt.Out, doc.Figure)))
	}
	if r.opt.Show != nil {
		img, err := figure.Image(fig, r.opt.FigureWidth)
		if err != nil {
			return err
		}
		return r.opt.Show(r.stdout, img)
	}
	return nil
}

// Rows are the readings explained so far as package analysis aggregates
// them, in the order they were written.
func (r *Explainer) Rows() []analysis.Row {
	out := make([]analysis.Row, len(r.rows))
	for i, row := range r.rows {
		out[i] = row.an
	}
	return out
}

// settings are the run's settings as its reports write them.
func (r *Explainer) settings() report.Settings {
	return report.Settings{Checkpoint: r.opt.Checkpoint, Method: r.opt.Method, Start: r.opt.Start, TextStart: r.opt.TextStart, Target: r.opt.Target}
}

// Finish writes readings.csv and summary.csv and prints the summary.
func (r *Explainer) Finish() error {
	ks := explain.DefaultKs
	header := []string{"pair", "reading", "ambiguity", "method", "start_layer", "target", "own_logit", "twin_logit", "margin", "correct",
		"auc_positive", "auc_negative", "pointing_hit", "pointing_chance", "mass", "chance_mass"}
	for _, k := range ks {
		header = append(header, fmt.Sprintf("top%d_delta", k))
	}
	for _, k := range ks {
		header = append(header, fmt.Sprintf("bottom%d_delta", k))
	}
	header = append(header, contrastHeader...)
	start := "-"
	if r.opt.Method == explain.Chefer {
		start = r.opt.Start.String()
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	rows := [][]string{header}
	for _, row := range r.rows {
		rec := []string{row.pair, strconv.Itoa(row.reading), row.ambiguity, string(r.opt.Method), start, r.opt.Target.String(),
			f(row.own), f(row.twin), f(row.own - row.twin), strconv.FormatBool(row.own > row.twin)}
		if mt := row.m; mt == nil {
			rec = append(rec, make([]string, 6+2*len(ks))...)
		} else {
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
		}
		rows = append(rows, append(rec, contrastRecord(row.an)...))
	}
	if err := writeCSV(filepath.Join(r.opt.Out, "readings.csv"), rows); err != nil {
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
	fmt.Fprintf(r.stdout, "\n%d readings, %d with the own image above the twin; method %s", len(r.rows), correct, r.opt.Method)
	if r.opt.Method == explain.Chefer {
		fmt.Fprintf(r.stdout, ", start layer %s", r.opt.Start)
		if r.opt.TextStart != nil {
			fmt.Fprintf(r.stdout, " (text %s)", r.opt.TextStart)
		}
	}
	fmt.Fprintln(r.stdout)
	if r.opt.Metrics {
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
	if err := writeCSV(filepath.Join(r.opt.Out, "summary.csv"), sum); err != nil {
		return err
	}
	fmt.Fprintf(r.stdout, "wrote %s\n", termtext.Sanitize(r.opt.Out))
	return nil
}

// contrastHeader names the columns of contrastRecord.
var contrastHeader = []string{"unique_mass", "shared_mass", "unique_chance", "unique_tokens", "site", "site_mass", "noun", "noun_mass"}

// contrastRecord is a reading's contrast with its twin in readings.csv:
// the masses of package analysis, the unique tokens' text separated by
// spaces, the site's label and words and the noun; blank where undefined.
func contrastRecord(row analysis.Row) []string {
	out := make([]string, len(contrastHeader))
	c := row.Contrast
	if c == nil {
		return out
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	out[0], out[1], out[2], out[3] = f(c.Unique), f(c.Shared), f(c.Chance), termtext.Sanitize(strings.Join(row.UniqueTokens, " "))
	if s := c.Site; s != nil {
		out[4], out[5] = termtext.Sanitize(s.Label+" "+s.Words), f(s.Mass)
	}
	if n := c.Noun; n != nil {
		out[6], out[7] = termtext.Sanitize(n.HeadWord), f(n.Mass)
	}
	return out
}

func writeCSV(path string, rows [][]string) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		return csv.NewWriter(w).WriteAll(rows)
	})
}
