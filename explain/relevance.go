package explain

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lavascope/lavascope/torch"
)

// Method names a relevance method.
type Method string

// The relevance methods. Chefer is the reference; the others are the
// baselines its paper compares with, with the same outputs.
const (
	// Chefer propagates R ← R + cam·R from R = I over the layers from the
	// start layer on, cam = mean over heads of clamp(∇A ⊙ A, min 0).
	Chefer Method = "chefer"
	// Rollout is attention rollout (Abnar and Zuidema 2020) with the
	// residual identity: R ← Â·R over every layer, Â = 0.5·Ā + 0.5·I with
	// rows renormalised to sum 1, Ā the mean over heads.
	Rollout Method = "rollout"
	// Attention is the last layer's attention, mean over heads.
	Attention Method = "attention"
	// GradAttn is the last layer's mean over heads of clamp(∇A ⊙ A, min 0):
	// Chefer's map for that layer alone, without the identity.
	GradAttn Method = "gradattn"
)

// Methods lists the methods, the reference first.
var Methods = []Method{Chefer, Rollout, Attention, GradAttn}

// ParseMethod reads a method's name.
func ParseMethod(s string) (Method, error) {
	for _, m := range Methods {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(Methods))
	for i, m := range Methods {
		names[i] = string(m)
	}
	return "", fmt.Errorf("unknown relevance method %q (want one of %s)", s, strings.Join(names, ", "))
}

// NeedsGrad reports whether the method reads the gradients of the attention
// probabilities, so that the target's logit must be backpropagated.
func (m Method) NeedsGrad() bool { return m == Chefer || m == GradAttn }

// StartLayer is the first attention layer that Chefer's rule propagates
// through, counted from 0; a negative value counts from the end, as Python
// indices do. The reference notebook's default is the last layer.
type StartLayer int

const (
	// LastLayer uses the final layer only (the notebook's start_layer = -1).
	LastLayer StartLayer = -1
	// AllLayers uses every layer.
	AllLayers StartLayer = 0
)

// ParseStartLayer reads "last", "all" or a layer number (negative numbers
// count from the end).
func ParseStartLayer(s string) (StartLayer, error) {
	switch s {
	case "last":
		return LastLayer, nil
	case "all":
		return AllLayers, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("start layer %q: want last, all or a layer number", s)
	}
	return StartLayer(n), nil
}

// String is the form ParseStartLayer reads: last, all, or the number.
func (l StartLayer) String() string {
	switch l {
	case LastLayer:
		return "last"
	case AllLayers:
		return "all"
	}
	return strconv.Itoa(int(l))
}

// Index resolves l for an encoder of depth layers.
func (l StartLayer) Index(depth int) (int, error) {
	i := int(l)
	if i < 0 {
		i += depth
	}
	if i < 0 || i >= depth {
		return 0, fmt.Errorf("start layer %s is outside the encoder's %d layers", l, depth)
	}
	return i, nil
}

// Matrix computes the method's relevance matrix R [B,N,N] of one encoder
// from its per-layer attention probabilities probs[l] [B,H,N,N], first layer
// first, and, for the methods that need them, their gradients grads[l] with
// respect to the target (nil otherwise; entries of layers the method does
// not read may be nil too). start selects the layers of Chefer's
// rule; the other methods ignore it (rollout runs over every layer,
// attention and gradattn read the last one). Row q of R is the relevance of
// each position for the representation at position q: the class token's row
// for images, the end-of-text token's row for texts.
//
// R is float32 whatever dtype the probabilities have, and belongs to s. It
// is computed without recording autograd history.
func (m Method) Matrix(s *torch.Scope, probs, grads []*torch.Tensor, start StartLayer) (*torch.Tensor, error) {
	// The gradient methods read the gradients of layers first.. only; the
	// others may be nil.
	first := len(probs) - 1
	switch m {
	case Chefer:
		i, err := start.Index(len(probs))
		if err != nil {
			return nil, fmt.Errorf("%s relevance: %w", m, err)
		}
		first = i
	case Rollout, Attention, GradAttn:
	default:
		return nil, fmt.Errorf("unknown relevance method %q", string(m))
	}
	if !m.NeedsGrad() {
		first = len(probs)
	}
	n, err := checkMaps(probs, grads, first)
	if err != nil {
		return nil, fmt.Errorf("%s relevance: %w", m, err)
	}
	if m == Chefer {
		// One call for the whole rule: on a GPU its ~10 ops per layer cost
		// more in the binding than on the device.
		r := torch.GradWeightedRollout(probs[first:], grads[first:])
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("%s relevance: %w", m, err)
		}
		if err := r.MoveTo(s); err != nil {
			return nil, fmt.Errorf("%s relevance: %w", m, err)
		}
		return r, nil
	}
	var r *torch.Tensor
	err = torch.NoGrad(func() error {
		work := torch.NewScope()
		defer work.Close()
		a := func(l int) *torch.Tensor { return probs[l].In(work).Detach().ToDType(torch.Float32) }
		g := func(l int) *torch.Tensor { return grads[l].In(work).Detach().ToDType(torch.Float32) }
		// cam is the positive part of gradient × attention, mean over heads.
		cam := func(l int) *torch.Tensor { return g(l).Mul(a(l)).ClampMin(0).Mean([]int64{1}, false) }
		last := len(probs) - 1
		var out *torch.Tensor
		switch m {
		case Rollout:
			eye := identity(work, probs[0], n)
			out = eye
			for l := range probs {
				hat := a(l).Mean([]int64{1}, false).MulScalar(0.5).Add(eye.MulScalar(0.5))
				hat = hat.Div(hat.Sum([]int64{-1}, true))
				out = hat.BMM(out)
			}
		case Attention:
			out = a(last).Mean([]int64{1}, false)
		case GradAttn:
			out = cam(last)
		}
		out = out.Contiguous()
		if err := out.Err(); err != nil {
			return err
		}
		if err := out.MoveTo(s); err != nil {
			return err
		}
		r = out
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s relevance: %w", m, err)
	}
	return r, nil
}

// identity is I [B,N,N] (an expanded view) on like's device, float32.
func identity(s *torch.Scope, like *torch.Tensor, n int64) *torch.Tensor {
	b := like.Size(0)
	return s.Eye(n, torch.Options{Device: like.Device()}).Unsqueeze(0).Expand(b, n, n)
}

// checkMaps validates the shapes of the attention maps and of the
// gradients of layers from on, and returns N.
func checkMaps(probs, grads []*torch.Tensor, from int) (int64, error) {
	if len(probs) == 0 {
		return 0, errors.New("no attention maps (was the forward pass run with Capture?)")
	}
	if from < len(probs) && len(grads) != len(probs) {
		return 0, fmt.Errorf("%d gradients for %d attention maps", len(grads), len(probs))
	}
	var want []int64
	for l, p := range probs {
		if err := p.Err(); err != nil {
			return 0, fmt.Errorf("attention map %d: %w", l, err)
		}
		sh := p.Shape()
		if len(sh) != 4 || sh[2] != sh[3] {
			return 0, fmt.Errorf("attention map %d is %s: want [batch, heads, N, N]", l, p)
		}
		if want == nil {
			want = sh
		} else if !slices.Equal(sh, want) {
			return 0, fmt.Errorf("attention map %d is %s, layer 0 is %v", l, p, want)
		}
		if l >= from {
			if err := grads[l].Err(); err != nil {
				return 0, fmt.Errorf("gradient of attention map %d: %w", l, err)
			}
			if gs := grads[l].Shape(); !slices.Equal(gs, sh) {
				return 0, fmt.Errorf("gradient of attention map %d is %s, the map is %s", l, grads[l], p)
			}
		}
	}
	return want[2], nil
}
