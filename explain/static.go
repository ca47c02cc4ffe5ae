package explain

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// Static explains the same targets for batches of one shape again and
// again (the explorer's pair after pair): what Explain computes, with the
// device work fixed once. On a GPU it can capture that work in a CUDA graph
// (torch.Replay), which replays the forward pass, the backward pass and
// the relevance rule with one launch instead of hundreds of kernels each
// paid for on the host.
//
// Its texts have a fixed width: every text's end of text must fall inside
// it (positions after the last end of text do not change any result, the
// mask being causal). Static does not keep whole matrices
// (Options.Matrices).
type Static struct {
	m       *model.CLIP
	targets []Target
	round   []int
	layout  layout
	// px [images,C,S,S] and ids [texts,width] are the static inputs, in
	// the scope replay owns; their shapes are the batches'.
	px, ids *torch.Tensor
	replay  *torch.Replay
}

// NewStatic prepares the relevance of targets for images [images,C,S,S]
// and texts [texts, ≤width] on the model's device, in one pass: targets
// that share an image or a text, which Explain splits into rounds, are
// refused. With graph it captures the work in a CUDA graph, which needs a
// CUDA device and a shim with CUDA graphs; NewStatic then fails with an
// error saying why, and the caller may fall back to graph = false, which
// runs the same work op by op each time.
func NewStatic(m *model.CLIP, images, texts, width int, targets []Target, opt Options, graph bool) (*Static, error) {
	if opt.Method == "" {
		opt.Method = Chefer
	}
	if _, err := ParseMethod(string(opt.Method)); err != nil {
		return nil, err
	}
	if opt.Matrices {
		return nil, errors.New("explain: Static does not keep whole matrices")
	}
	cfg := m.Config()
	if images < 1 || texts < 1 || width < 2 || width > cfg.Text.MaxPositionEmbeddings {
		return nil, fmt.Errorf("explain: static batch of %d images and %d texts of width %d: want at least one of each and a width of 2 to %d", images, texts, width, cfg.Text.MaxPositionEmbeddings)
	}
	if len(targets) == 0 {
		return nil, errors.New("explain: no targets")
	}
	if err := checkTargets(targets, images, texts); err != nil {
		return nil, err
	}
	rounds := planRounds(targets, opt.Method.NeedsGrad())
	if len(rounds) != 1 {
		return nil, fmt.Errorf("explain: the targets share images or texts, which takes %d passes; a static explainer makes one", len(rounds))
	}
	st := &Static{
		m: m, targets: append([]Target(nil), targets...), round: rounds[0],
	}
	st.layout = newLayout(st.targets, st.round)
	dev, dt := m.Device(), m.DType()
	s := torch.NewScope()
	size := int64(cfg.Vision.ImageSize)
	st.px = s.Zeros([]int64{int64(images), int64(cfg.Vision.NumChannels), size, size}, torch.Options{Device: dev, DType: dt})
	// Zeros are valid ids, and where the end of text is looked for by
	// argmax (legacy configs) a text of zeros pools at position 0.
	st.ids = s.Zeros([]int64{int64(texts), int64(width)}, torch.Options{Device: dev, DType: torch.Int64})
	imgIdx := rowIndex(s, st.layout.imgs, dev)
	txtIdx := rowIndex(s, st.layout.txts, dev)
	var w *torch.Tensor
	if opt.Method.NeedsGrad() {
		w = st.layout.weight(s, m, st.targets, st.round)
	}
	if err := s.Err(); err != nil {
		return nil, errors.Join(fmt.Errorf("explain: static inputs: %w", err), s.Close())
	}
	// A graph replays whole: nothing may stop it between stages.
	opt.Interrupt = nil
	work := func(ws *torch.Scope) ([]*torch.Tensor, error) {
		px := st.px.In(ws).IndexSelect(0, imgIdx)
		tx := st.ids.In(ws).IndexSelect(0, txtIdx)
		out, err := roundWork(ws, m, px, tx, w, opt.Method, opt, model.ForwardOptions{Capture: true, CheckedIDs: true})
		if err != nil {
			return nil, err
		}
		return out.tensors(), nil
	}
	r, err := torch.NewReplay(dev, graph, s, work)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	st.replay = r
	return st, nil
}

// Explain computes the relevance of the targets given to NewStatic for
// pixels [images,C,S,S] and ids [texts,N], as Explain would. ids may be
// wider or narrower than the static width as long as every end of text
// falls inside it.
func (st *Static) Explain(pixels, ids *torch.Tensor) ([]Result, error) {
	if st.replay == nil {
		return nil, errors.New("explain: static explainer is closed")
	}
	if pixels == nil || ids == nil {
		return nil, errors.New("explain: need both pixels and ids")
	}
	if want := st.px.Shape(); !slices.Equal(pixels.Shape(), want) {
		return nil, fmt.Errorf("explain: pixels %s: want %s", pixels, strings.ReplaceAll(fmt.Sprint(want), " ", ", "))
	}
	texts, width := st.ids.Size(0), int(st.ids.Size(1))
	sh := ids.Shape()
	if len(sh) != 2 || sh[0] != texts {
		return nil, fmt.Errorf("explain: ids %s: want %d texts", ids, texts)
	}
	n := int(sh[1])
	v, err := st.m.CheckIDs(ids)
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	if extent := textExtent(st.m, v, n); extent > width {
		return nil, fmt.Errorf("explain: a text ends at position %d, beyond the static width %d", extent-1, width)
	}
	s := torch.NewScope()
	defer s.Close()
	fit := ids.In(s)
	if n > width {
		fit = fit.Narrow(1, 0, int64(width))
	} else if n < width {
		pad := s.Zeros([]int64{texts, int64(width - n)}, torch.Options{Device: ids.Device(), DType: ids.DType()})
		fit = torch.Cat([]*torch.Tensor{fit, pad}, 1)
	}
	if err := st.px.Copy_(pixels); err != nil {
		return nil, fmt.Errorf("explain: pixels: %w", err)
	}
	if err := st.ids.Copy_(fit); err != nil {
		return nil, fmt.Errorf("explain: ids: %w", err)
	}
	if err := st.replay.Run(); err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	results := make([]Result, len(st.targets))
	if err := st.layout.results(roundOutputOf(st.replay.Outputs()), st.targets, st.round, n, false, results); err != nil {
		return nil, err
	}
	return results, nil
}

// Graphed reports whether the work replays a CUDA graph.
func (st *Static) Graphed() bool { return st.replay != nil && st.replay.Graphed() }

// Close frees the graph and the static tensors.
func (st *Static) Close() error {
	if st.replay == nil {
		return nil
	}
	err := st.replay.Close()
	st.replay = nil
	return err
}
