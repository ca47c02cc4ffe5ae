package model

import (
	"errors"
	"fmt"

	"github.com/lavascope/lavascope/torch"
)

// CLIP is HF's CLIPModel on package torch: a vision encoder, a text encoder,
// their projections and the logit scale. Its parameters live in one
// long-lived, sealed torch scope, keyed by their Hugging Face names; Close
// frees them.
//
// A CLIP is not safe for concurrent use. Every call on it, and on the
// tensors it returns, must come from the goroutine that runs the model's
// torch calls (a torch.Worker's Do), because libtorch keeps grad mode per
// thread.
type CLIP struct {
	// Source is the folder the model was loaded from, empty for a freshly
	// initialised one. Save copies the tokenizer and preprocessor files from
	// it.
	Source string

	cfg    *CLIPConfig
	opts   Options
	params *torch.Scope
	names  []string // HF names, in the order of HF's named_parameters()
	byName map[string]*torch.Tensor

	vision     visionModel
	text       textModel
	visualProj *torch.Tensor
	textProj   *torch.Tensor
	logitScale *torch.Tensor
}

// Options choose where a model lives and the precision it computes in.
// The zero value is float32 on the CPU.
type Options struct {
	Device torch.Device
	// DType is the dtype of the parameters and of every activation:
	// Float32, Float16 or BFloat16 (Float64 also works, for checks).
	// Whatever the checkpoint stores is converted on load.
	DType torch.DType
}

func (o Options) validate() error {
	if !o.DType.IsFloat() {
		return fmt.Errorf("compute dtype %s is not a floating-point type (want f32, f16 or bf16)", o.DType)
	}
	return nil
}

// Param is one parameter of the model.
type Param struct {
	// Name is the Hugging Face name (text_model.encoder.layers.0.mlp.fc1.weight).
	Name string
	// Tensor belongs to the model's sealed scope: bind it to a scope with In
	// before an op whose operands are all parameters.
	Tensor *torch.Tensor
}

// newCLIP allocates the parameters of cfg, zeroed, and binds them to the
// encoders. The scope is sealed at once: loading and initialisation write
// with in-place ops, which a sealed scope allows.
func newCLIP(cfg *CLIPConfig, o Options) (*CLIP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	specs := cfg.Params()
	m := &CLIP{
		cfg:    cfg,
		opts:   o,
		params: torch.NewScope(),
		names:  make([]string, 0, len(specs)),
		byName: make(map[string]*torch.Tensor, len(specs)),
	}
	to := torch.Options{DType: o.DType, Device: o.Device}
	for _, p := range specs {
		m.names = append(m.names, p.Name)
		m.byName[p.Name] = m.params.Zeros(p.Shape, to)
	}
	if err := m.params.Err(); err != nil {
		m.params.Close()
		return nil, fmt.Errorf("allocating %d parameters (%s on %s): %w", len(specs), o.DType, o.Device, err)
	}
	m.params.Seal()
	m.bind()
	return m, nil
}

// bind points the encoders' fields at the parameters.
func (m *CLIP) bind() {
	p := func(name string) *torch.Tensor { return m.byName[name] }
	m.vision = newVisionModel(&m.cfg.Vision, p)
	m.text = newTextModel(&m.cfg.Text, p)
	m.visualProj = p("visual_projection.weight")
	m.textProj = p("text_projection.weight")
	m.logitScale = p("logit_scale")
}

// Config is the model's configuration. Treat it as read-only.
func (m *CLIP) Config() *CLIPConfig { return m.cfg }

// Device is where the parameters live.
func (m *CLIP) Device() torch.Device { return m.opts.Device }

// DType is the dtype the model computes in.
func (m *CLIP) DType() torch.DType { return m.opts.DType }

// Params lists every parameter in the order of HF's named_parameters().
func (m *CLIP) Params() []Param {
	ps := make([]Param, len(m.names))
	for i, n := range m.names {
		ps[i] = Param{Name: n, Tensor: m.byName[n]}
	}
	return ps
}

// Param returns the parameter with that HF name.
func (m *CLIP) Param(name string) (*torch.Tensor, bool) {
	t, ok := m.byName[name]
	return t, ok
}

// SetRequiresGrad turns gradient tracking of every parameter on (training)
// or off (inference and explanation, the state after Load and Init).
func (m *CLIP) SetRequiresGrad(on bool) error {
	for _, n := range m.names {
		if err := m.byName[n].SetRequiresGrad(on); err != nil {
			return fmt.Errorf("parameter %s: %w", n, err)
		}
	}
	return nil
}

// Close frees the parameters. Tensors returned by the model stay valid
// until their own scopes close.
func (m *CLIP) Close() error { return m.params.Close() }

// ForwardOptions choose what a forward pass records.
//
// CLIP has no dropout and no batch statistics, so training and evaluation
// compute the same function; these options only decide what autograd keeps.
type ForwardOptions struct {
	// Capture keeps every layer's post-softmax attention probabilities
	// [B,H,N,N] in the output with their gradient retained, so that after
	// ONE Backward each layer's probabilities and their gradient (Grad) are
	// both readable: what the relevance methods need. It implies Grad and
	// the explicit attention path. Parameters need not require grad: where
	// nothing upstream does, the probabilities are made leaves of the graph,
	// which leaves their gradient unchanged.
	Capture bool
	// Grad records the autograd graph (training). Without Grad and Capture
	// the pass runs under no-grad.
	Grad bool
	// Eager computes attention as HF's "eager" implementation does (explicit
	// softmax) even without Capture, one binding call per op: the reference
	// the fused encoder is checked against. By default each encoder runs in
	// one call (torch.PreLNEncoder, or PreLNEncoderCapture with Capture), and
	// attention without capture uses libtorch's scaled_dot_product_attention,
	// fused on libtorch ≥ 2.
	Eager bool
	// CheckedIDs says the caller has checked the ids with CheckIDs, so the
	// pass reads nothing back to the host: what capturing it in a CUDA graph
	// (torch.Replay) needs. An id outside the vocabulary would then fail on
	// the device.
	CheckedIDs bool
}

// CheckIDs checks that ids [T,N] are token ids the text encoder can take:
// an integer tensor of 1 to max_position_embeddings positions, every id
// inside the vocabulary. It reads the ids back to the host once and
// returns them, row by row, for a caller that needs them too. Forward calls
// it unless told that the caller did.
func (m *CLIP) CheckIDs(ids *torch.Tensor) ([]int64, error) { return m.text.checkIDs(ids) }

// Output is what a forward pass returns. Its tensors belong to the scope
// given to Forward. Image is nil when no pixels were given, Text when no ids
// were; the logits need both.
type Output struct {
	Image *ImageOutput
	Text  *TextOutput
	// LogitsPerImage [I,T] = exp(logit_scale) · image_embeds · text_embedsᵀ;
	// LogitsPerText [T,I] is its transpose (a view).
	LogitsPerImage *torch.Tensor
	LogitsPerText  *torch.Tensor
}

// ImageOutput is the vision side of a forward pass.
type ImageOutput struct {
	// Embeds [B,P] are the projected features, L2-normalised.
	Embeds *torch.Tensor
	// Pooled [B,P] are the projected features before normalisation
	// (transformers 5's pooler_output inside CLIPModel):
	// visual_projection(post_layernorm(LastHidden[:, 0])).
	Pooled *torch.Tensor
	// LastHidden [B,1+G²,D] is the encoder's output BEFORE post_layernorm
	// (HF's last_hidden_state); position 0 is the class token, then the
	// G×G patches row by row.
	LastHidden *torch.Tensor
	// Attentions holds, with Capture, each layer's attention probabilities
	// [B,H,1+G²,1+G²], first layer first; their Grad is set by Backward.
	Attentions []*torch.Tensor
}

// TextOutput is the text side of a forward pass.
type TextOutput struct {
	// Embeds [B,P] are the projected features, L2-normalised.
	Embeds *torch.Tensor
	// Pooled [B,P] are the projected features before normalisation:
	// text_projection(LastHidden[b, EOT[b]]).
	Pooled *torch.Tensor
	// LastHidden [B,N,D] is the encoder's output AFTER final_layer_norm.
	LastHidden *torch.Tensor
	// EOT [B] (int64) is the position each text is pooled at: the first
	// eos_token_id, or argmax(ids) for legacy configs (eos_token_id 2).
	EOT *torch.Tensor
	// Attentions holds, with Capture, each layer's causal attention
	// probabilities [B,H,N,N], first layer first.
	Attentions []*torch.Tensor
}

// Forward encodes a batch of images and a batch of texts and scores every
// image against every text. pixels [I,C,S,S] (any float dtype, any device)
// are preprocessed images; ids [T,N] (integer) are token ids with N at most
// max_position_embeddings. Either may be nil to encode only the other side.
// Inputs are converted to the model's device and dtype. The results belong
// to s; intermediate activations are freed before Forward returns (the
// autograd graph keeps what a backward pass needs).
func (m *CLIP) Forward(s *torch.Scope, pixels, ids *torch.Tensor, o ForwardOptions) (*Output, error) {
	if pixels == nil && ids == nil {
		return nil, inputErrorf("clip forward: no pixels and no ids")
	}
	if ids != nil && !o.CheckedIDs {
		// Before any encoder: reading the ids' range back waits for the
		// device, which then has nothing else queued to finish first.
		if _, err := m.text.checkIDs(ids); err != nil {
			return nil, err
		}
	}
	var out *Output
	pass := func() error {
		work := torch.NewScope()
		defer work.Close()
		res := &Output{}
		var err error
		if pixels != nil {
			if res.Image, err = m.vision.forward(work, pixels, m.visualProj, o, m.opts); err != nil {
				return err
			}
		}
		if ids != nil {
			if res.Text, err = m.text.forward(work, ids, m.textProj, o, m.opts); err != nil {
				return err
			}
		}
		if res.Image != nil && res.Text != nil {
			res.LogitsPerImage, res.LogitsPerText = m.Logits(res.Image.Embeds, res.Text.Embeds)
		}
		if err := work.Err(); err != nil {
			return fmt.Errorf("clip forward: %w", err)
		}
		if err := res.moveTo(s); err != nil {
			return fmt.Errorf("clip forward: %w", err)
		}
		out = res
		return nil
	}
	var err error
	if o.Grad || o.Capture {
		on, gerr := torch.GradEnabled()
		if gerr != nil {
			return nil, gerr
		}
		if !on {
			return nil, errors.New("clip forward: Grad and Capture need autograd, which is off here (inside torch.NoGrad)")
		}
		err = pass()
	} else {
		err = torch.NoGrad(pass)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EncodeImage runs the vision side only; see Forward.
func (m *CLIP) EncodeImage(s *torch.Scope, pixels *torch.Tensor, o ForwardOptions) (*ImageOutput, error) {
	if pixels == nil {
		return nil, errors.New("clip: EncodeImage needs pixels")
	}
	out, err := m.Forward(s, pixels, nil, o)
	if err != nil {
		return nil, err
	}
	return out.Image, nil
}

// EncodeText runs the text side only; see Forward.
func (m *CLIP) EncodeText(s *torch.Scope, ids *torch.Tensor, o ForwardOptions) (*TextOutput, error) {
	if ids == nil {
		return nil, errors.New("clip: EncodeText needs ids")
	}
	out, err := m.Forward(s, nil, ids, o)
	if err != nil {
		return nil, err
	}
	return out.Text, nil
}

// Logits scores normalised image embeddings [I,P] against normalised text
// embeddings [T,P], as CLIPModel does: logitsPerText = text·imageᵀ ·
// exp(logit_scale), logitsPerImage its transpose. The results belong to
// textEmbeds' scope; errors are sticky (read them from the results).
func (m *CLIP) Logits(imageEmbeds, textEmbeds *torch.Tensor) (perImage, perText *torch.Tensor) {
	return scaledLogits(m.logitScale.In(textEmbeds.Scope()).Exp(), imageEmbeds, textEmbeds)
}

// scaledLogits is Logits at the temperature scale (exp(logit_scale)).
func scaledLogits(scale, imageEmbeds, textEmbeds *torch.Tensor) (perImage, perText *torch.Tensor) {
	perText = textEmbeds.Matmul(imageEmbeds.T()).Mul(scale)
	return perText.T(), perText
}

// LogitScale is exp(logit_scale), the temperature of the logits.
func (m *CLIP) LogitScale() (float64, error) {
	s := torch.NewScope()
	defer s.Close()
	return m.logitScale.In(s).Exp().Item()
}

// tensors lists every tensor of the output.
func (o *Output) tensors() []*torch.Tensor {
	ts := []*torch.Tensor{o.LogitsPerImage, o.LogitsPerText}
	if o.Image != nil {
		ts = append(ts, o.Image.Embeds, o.Image.Pooled, o.Image.LastHidden)
		ts = append(ts, o.Image.Attentions...)
	}
	if o.Text != nil {
		ts = append(ts, o.Text.Embeds, o.Text.Pooled, o.Text.LastHidden, o.Text.EOT)
		ts = append(ts, o.Text.Attentions...)
	}
	return ts
}

// moveTo hands every tensor of the output to s.
func (o *Output) moveTo(s *torch.Scope) error {
	for _, t := range o.tensors() {
		if t == nil {
			continue
		}
		if err := t.MoveTo(s); err != nil {
			return err
		}
	}
	return nil
}

// InputError is the error of a forward pass given inputs the model cannot
// take (wrong shape, dtype or ids outside the vocabulary), as opposed to a
// failure while computing.
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

// l2Normalize divides each row by its Euclidean norm, as CLIPModel does
// (no epsilon, unlike F.normalize).
func l2Normalize(x *torch.Tensor) *torch.Tensor {
	return x.Div(x.Norm(2, []int64{-1}, true))
}
