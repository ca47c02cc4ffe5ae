package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/lavascope/lavascope/torch"
)

// Init returns a randomly initialised CLIP of cfg with the scheme of HF's
// CLIPPreTrainedModel._init_weights (f = initializer_factor of the CLIPConfig,
// D and L the width and depth of the encoder a weight belongs to):
//
//	token and text position embeddings   normal, std 0.02·f
//	class embedding                      normal, std D^-½·f
//	patch conv, vision positions         normal, std initializer_range·f
//	q, k, v projections                  normal, std D^-½·(2L)^-½·f
//	attention out projection             normal, std D^-½·f
//	mlp fc1                              normal, std (2D)^-½·f
//	mlp fc2                              normal, std D^-½·(2L)^-½·f
//	visual/text projection               normal, std D^-½·f
//	LayerNorm weight, bias; Linear bias  1, 0, 0
//	logit_scale                          logit_scale_init_value
//
// The samples come from libtorch's CPU generator seeded with seed, and are
// then copied to o.Device in o.DType, so one seed gives the same weights on
// every device.
func Init(cfg *CLIPConfig, o Options, seed uint64) (*CLIP, error) {
	m, err := newCLIP(cfg, o)
	if err != nil {
		return nil, err
	}
	if err := torch.ManualSeed(seed); err != nil {
		m.Close()
		return nil, err
	}
	for _, p := range cfg.Params() {
		if err := m.initParam(p); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// initRule is how one parameter starts: normal(0, std), or the constant
// value when std is 0.
type initRule struct {
	std, value float64
}

// initRuleFor applies _init_weights to one parameter, by its HF name.
func initRuleFor(c *CLIPConfig, name string) (initRule, error) {
	f := c.InitializerFactor
	enc := func() (d, l float64) {
		if strings.HasPrefix(name, "text_model.") {
			return float64(c.Text.HiddenSize), float64(c.Text.NumHiddenLayers)
		}
		return float64(c.Vision.HiddenSize), float64(c.Vision.NumHiddenLayers)
	}
	isq := func(x float64) float64 { return 1 / math.Sqrt(x) }
	switch {
	case name == "logit_scale":
		return initRule{value: c.LogitScaleInitValue}, nil
	case name == "text_model.embeddings.token_embedding.weight",
		name == "text_model.embeddings.position_embedding.weight":
		return initRule{std: 0.02 * f}, nil
	case name == "vision_model.embeddings.class_embedding":
		return initRule{std: isq(float64(c.Vision.HiddenSize)) * f}, nil
	case name == "vision_model.embeddings.patch_embedding.weight",
		name == "vision_model.embeddings.position_embedding.weight":
		return initRule{std: c.Vision.InitializerRange * f}, nil
	case name == "visual_projection.weight":
		return initRule{std: isq(float64(c.Vision.HiddenSize)) * f}, nil
	case name == "text_projection.weight":
		return initRule{std: isq(float64(c.Text.HiddenSize)) * f}, nil
	case strings.Contains(name, "layer_norm") || strings.Contains(name, "layrnorm") || strings.Contains(name, "layernorm"):
		if strings.HasSuffix(name, ".weight") {
			return initRule{value: 1}, nil
		}
		return initRule{value: 0}, nil
	case strings.HasSuffix(name, ".bias"):
		return initRule{value: 0}, nil
	case strings.HasSuffix(name, "_proj.weight") && strings.Contains(name, ".self_attn."):
		d, l := enc()
		if strings.HasSuffix(name, "out_proj.weight") {
			return initRule{std: isq(d) * f}, nil
		}
		return initRule{std: isq(d) * isq(2*l) * f}, nil
	case strings.HasSuffix(name, ".mlp.fc1.weight"):
		d, _ := enc()
		return initRule{std: isq(2*d) * f}, nil
	case strings.HasSuffix(name, ".mlp.fc2.weight"):
		d, l := enc()
		return initRule{std: isq(d) * isq(2*l) * f}, nil
	}
	return initRule{}, fmt.Errorf("no initialisation rule for parameter %s", name)
}

func (m *CLIP) initParam(p ParamSpec) error {
	r, err := initRuleFor(m.cfg, p.Name)
	if err != nil {
		return err
	}
	dst := m.byName[p.Name]
	if r.std == 0 {
		if err := dst.Fill_(r.value); err != nil {
			return fmt.Errorf("initialising %s: %w", p.Name, err)
		}
		return nil
	}
	s := torch.NewScope()
	defer s.Close()
	src := s.Zeros(p.Shape, torch.Options{})
	if err := src.Normal_(0, r.std); err != nil {
		return fmt.Errorf("initialising %s: %w", p.Name, err)
	}
	if err := dst.Copy_(src); err != nil {
		return fmt.Errorf("initialising %s: %w", p.Name, err)
	}
	return nil
}
