package bench

import (
	"errors"
	"fmt"
	"math"

	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// Accuracy states how far m, computing in a lower precision, is from ref,
// the same weights in float32, on one synthetic pair: the largest
// difference of the 2×2 logits (against the largest logit), and of the
// relevance maps (Chefer, all layers, min–max normalised for images and
// sum-normalised for texts, as the explorer paints them). Both models must
// be fresh (not trained by Run) and on the same device. Call it on the
// models' torch worker.
func Accuracy(ref, m *model.CLIP, treeTokens int, seed uint64) (string, error) {
	return accuracy(ref, m, m.DType().String(), lowOps{}, treeTokens, seed)
}

// AccuracyMixed states, as Accuracy does, how far m under bf16 autocast
// (Options.Mixed) is from m in float32. Autocast is left off. Call it on
// m's torch worker.
func AccuracyMixed(m *model.CLIP, treeTokens int, seed uint64) (string, error) {
	return accuracy(m, m, "bf16-mixed", lowOps{mixed: true}, treeTokens, seed)
}

// lowOps says how the lower precision's side of a comparison computes.
type lowOps struct {
	// tf32 turns TF32 on for it (and leaves it on); mixed runs it under
	// bf16 autocast.
	tf32, mixed bool
	// replays runs it through the replays graphs would capture, in CUDA
	// graphs when graph is set.
	replays, graph bool
}

// AccuracyOptions states, as Accuracy does, how far m with TF32 matrix
// products (torch.SetAllowTF32, left on) and/or from CUDA graphs (the
// Static explainer and a replayed forward pass, as the bench rows run with
// Graphs) is from m in full float32 op by op. Call it on m's torch worker.
func AccuracyOptions(m *model.CLIP, tf32, graphs bool, treeTokens int, seed uint64) (string, error) {
	if graphs {
		if err := torch.CUDAGraphsUsable(m.Device()); err != nil {
			return "", err
		}
	}
	return accuracyOptions(m, tf32, graphs, graphs, treeTokens, seed)
}

// accuracyOptions is AccuracyOptions; replays runs m's side through the
// replays graphs would capture, in CUDA graphs when graph is set (tests
// run the replays without graphs where there is no CUDA).
func accuracyOptions(m *model.CLIP, tf32, replays, graph bool, treeTokens int, seed uint64) (string, error) {
	label := "f32"
	if tf32 {
		label += " with TF32"
	}
	if replays {
		label += " from CUDA graphs"
	}
	return accuracy(m, m, label, lowOps{tf32: tf32, replays: replays, graph: graph}, treeTokens, seed)
}

// accuracy compares m with ref; with low.tf32, TF32 is off for each
// computation of ref and on for each of m (and left on); with low.mixed,
// autocast likewise (and left off). With low.replays m's logits come from
// a replayed forward pass and its relevance from the Static explainer,
// captured in CUDA graphs when low.graph is set.
func accuracy(ref, m *model.CLIP, label string, low lowOps, treeTokens int, seed uint64) (_ string, err error) {
	replays, graph := low.replays, low.graph
	var restore func() error
	setLow := func(on bool) error {
		switch {
		case low.tf32:
			return torch.SetAllowTF32(on)
		case low.mixed && on && restore == nil:
			r, err := torch.Autocast(m.Device(), torch.BFloat16)
			restore = r
			return err
		case low.mixed && !on && restore != nil:
			r := restore
			restore = nil
			return r()
		}
		return nil
	}
	if low.mixed {
		defer func() { err = errors.Join(err, setLow(false)) }()
	}
	s := torch.NewScope()
	defer s.Close()
	cfg := ref.Config()
	width := cfg.Text.MaxPositionEmbeddings
	ids, err := model.SyntheticIDs(&cfg.Text, 2, treeTokens, width, seed)
	if err != nil {
		return "", err
	}
	if err := torch.ManualSeed(seed); err != nil {
		return "", err
	}
	size := int64(cfg.Vision.ImageSize)
	dev := ref.Device()
	px := s.Randn([]int64{2, int64(cfg.Vision.NumChannels), size, size}, torch.Options{Device: dev})
	idt := s.FromInt64(ids, 2, int64(width)).ToDevice(dev)
	logits := func(c *model.CLIP, low bool) ([]float32, error) {
		if err := setLow(low); err != nil {
			return nil, err
		}
		if low && replays {
			if _, err := c.CheckIDs(idt); err != nil {
				return nil, err
			}
			r, err := newScoreReplay(c, px, idt, graph)
			if err != nil {
				return nil, err
			}
			defer r.Close()
			if err := r.Run(); err != nil {
				return nil, err
			}
			return r.Outputs()[0].Float32s()
		}
		out, err := c.Forward(s, px, idt, model.ForwardOptions{})
		if err != nil {
			return nil, err
		}
		// Autocast leaves the logits in bf16.
		return out.LogitsPerImage.ToDType(torch.Float32).Float32s()
	}
	lr, err := logits(ref, false)
	if err != nil {
		return "", fmt.Errorf("float32 logits: %w", err)
	}
	lm, err := logits(m, true)
	if err != nil {
		return "", fmt.Errorf("%s logits: %w", label, err)
	}
	opt := explain.Options{Method: explain.Chefer, Start: explain.AllLayers}
	if err := setLow(false); err != nil {
		return "", err
	}
	rr, err := explain.Explain(ref, px, idt, explain.Own(2), opt)
	if err != nil {
		return "", fmt.Errorf("float32 relevance: %w", err)
	}
	if err := setLow(true); err != nil {
		return "", err
	}
	var rm []explain.Result
	if replays {
		var st *explain.Static
		if st, err = explain.NewStatic(m, 2, 2, treeTokens+2, explain.Own(2), opt, graph); err == nil {
			rm, err = st.Explain(px, idt)
			err = errors.Join(err, st.Close())
		}
	} else {
		rm, err = explain.Explain(m, px, idt, explain.Own(2), opt)
	}
	if err != nil {
		return "", fmt.Errorf("%s relevance: %w", label, err)
	}
	var img, txt float64
	for i := range rr {
		img = max(img, maxAbsDiff(rr[i].Images[0].Norm, rm[i].Images[0].Norm))
		txt = max(txt, maxAbsDiff(rr[i].Texts[0].Norm, rm[i].Texts[0].Norm))
	}
	var top float64
	for _, v := range lr {
		top = max(top, math.Abs(float64(v)))
	}
	return fmt.Sprintf("%s vs f32 on one pair: logits max |Δ| %.3g (largest |logit| %.3g); relevance max |Δ| image %.3g, text %.3g",
		label, maxAbsDiff(lr, lm), top, img, txt), nil
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range min(len(a), len(b)) {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}
