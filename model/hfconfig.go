// Package model is CLIP as Hugging Face transformers defines it: the
// configuration (config.json), the weights by HF names (safetensors files,
// sharded or not, read by package safetensors, or a torch.save file),
// checkpoint folders and the HF cache, and the vision and text encoders with
// attention capture, loss, training and evaluation on package torch; the
// tokenizer is package tokenizer. What HF's CLIPModel.from_pretrained reads,
// lavascope reads; what lavascope writes, HF reads back.
package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/tokenizer"
)

// TextConfig is HF's CLIPTextConfig.
type TextConfig struct {
	VocabSize             int
	HiddenSize            int
	IntermediateSize      int
	ProjectionDim         int // unused by CLIPModel, which reads CLIPConfig.ProjectionDim
	NumHiddenLayers       int
	NumAttentionHeads     int
	MaxPositionEmbeddings int
	HiddenAct             string
	LayerNormEps          float64
	AttentionDropout      float64
	InitializerRange      float64
	InitializerFactor     float64
	PadTokenID            int
	BOSTokenID            int
	EOSTokenID            int
	// Extra holds the keys lavascope does not read, written back unchanged.
	Extra map[string]json.RawMessage
}

// VisionConfig is HF's CLIPVisionConfig.
type VisionConfig struct {
	HiddenSize        int
	IntermediateSize  int
	ProjectionDim     int // unused by CLIPModel, which reads CLIPConfig.ProjectionDim
	NumHiddenLayers   int
	NumAttentionHeads int
	NumChannels       int
	ImageSize         int
	PatchSize         int
	HiddenAct         string
	LayerNormEps      float64
	AttentionDropout  float64
	InitializerRange  float64
	InitializerFactor float64
	Extra             map[string]json.RawMessage
}

// CLIPConfig is HF's CLIPConfig, the content of a CLIP checkpoint's config.json.
type CLIPConfig struct {
	Text                TextConfig
	Vision              VisionConfig
	ProjectionDim       int
	LogitScaleInitValue float64
	InitializerFactor   float64
	Extra               map[string]json.RawMessage
}

// DefaultTextConfig is CLIPTextConfig() in transformers.
func DefaultTextConfig() TextConfig {
	return TextConfig{
		VocabSize: 49408, HiddenSize: 512, IntermediateSize: 2048, ProjectionDim: 512,
		NumHiddenLayers: 12, NumAttentionHeads: 8, MaxPositionEmbeddings: 77,
		HiddenAct: "quick_gelu", LayerNormEps: 1e-5, AttentionDropout: 0,
		InitializerRange: 0.02, InitializerFactor: 1,
		PadTokenID: 1, BOSTokenID: 49406, EOSTokenID: 49407,
	}
}

// DefaultVisionConfig is CLIPVisionConfig() in transformers.
func DefaultVisionConfig() VisionConfig {
	return VisionConfig{
		HiddenSize: 768, IntermediateSize: 3072, ProjectionDim: 512,
		NumHiddenLayers: 12, NumAttentionHeads: 12, NumChannels: 3,
		ImageSize: 224, PatchSize: 32, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		AttentionDropout: 0, InitializerRange: 0.02, InitializerFactor: 1,
	}
}

// DefaultConfig is CLIPConfig() in transformers.
func DefaultConfig() *CLIPConfig {
	return &CLIPConfig{
		Text: DefaultTextConfig(), Vision: DefaultVisionConfig(),
		ProjectionDim: 512, LogitScaleInitValue: 2.6592, InitializerFactor: 1,
	}
}

// ConfigNames lists the names NamedConfig knows.
var ConfigNames = []string{"vit-b-32", "vit-b-16", "vit-l-14", "vit-l-14-336", "tiny"}

// NamedConfig returns a built-in configuration:
//
//   - vit-b-32: openai/clip-vit-base-patch32's config.json. Its text config keeps
//     the hub's legacy bos_token_id 0 and eos_token_id 2, so the text encoder pools
//     at argmax(input_ids), which is the first <|endoftext|> (49407, the largest
//     id) of the OpenAI tokenizer's output, as HF does for that model.
//   - vit-b-16, vit-l-14, vit-l-14-336: openai/clip-vit-base-patch16,
//     openai/clip-vit-large-patch14 and openai/clip-vit-large-patch14-336 the
//     same way: 16-pixel patches (a 14×14 grid); a vision tower of width 1024,
//     24 layers, 16 heads in 14-pixel patches (16×16 at 224 pixels, 24×24 at
//     336) with a text tower of width 768 and 12 heads, projected to 768.
//   - tiny: the dimensions of testdata/hf-clip-tiny (width 64, 2 layers, 4 heads,
//     MLP 128, 224-pixel images in 32-pixel patches, projection 32) with the full
//     CLIP vocabulary and its <|startoftext|>/<|endoftext|> ids, so that it runs
//     on real tokenizer output; for tests and quick CPU experiments.
func NamedConfig(name string) (*CLIPConfig, error) {
	c := DefaultConfig()
	switch name {
	case "vit-b-32":
		c.Text.BOSTokenID, c.Text.EOSTokenID = 0, 2
	case "vit-b-16":
		c.Text.BOSTokenID, c.Text.EOSTokenID = 0, 2
		c.Vision.PatchSize = 16
	case "vit-l-14", "vit-l-14-336":
		c.Text.BOSTokenID, c.Text.EOSTokenID = 0, 2
		c.ProjectionDim, c.Text.ProjectionDim, c.Vision.ProjectionDim = 768, 768, 768
		c.Text.HiddenSize, c.Text.IntermediateSize, c.Text.NumAttentionHeads = 768, 3072, 12
		c.Vision.HiddenSize, c.Vision.IntermediateSize = 1024, 4096
		c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads, c.Vision.PatchSize = 24, 16, 14
		if name == "vit-l-14-336" {
			c.Vision.ImageSize = 336
		}
	case "tiny":
		c.ProjectionDim = 32
		c.Text.HiddenSize, c.Text.IntermediateSize = 64, 128
		c.Text.NumHiddenLayers, c.Text.NumAttentionHeads = 2, 4
		c.Vision.HiddenSize, c.Vision.IntermediateSize = 64, 128
		c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads = 2, 4
	default:
		return nil, fmt.Errorf("no built-in config %q (have %v)", name, ConfigNames)
	}
	return c, nil
}

// ConfigFromArg returns a built-in configuration by name or reads a config.json.
func ConfigFromArg(arg string) (*CLIPConfig, error) {
	if slices.Contains(ConfigNames, arg) {
		return NamedConfig(arg)
	}
	return ReadConfig(arg)
}

// ReadConfig reads a CLIP config.json.
func ReadConfig(path string) (*CLIPConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// field binds a JSON key to a Go value (*int, *float64 or *string).
type field struct {
	key string
	ptr any
}

func (t *TextConfig) fields() []field {
	return []field{
		{"vocab_size", &t.VocabSize}, {"hidden_size", &t.HiddenSize},
		{"intermediate_size", &t.IntermediateSize}, {"projection_dim", &t.ProjectionDim},
		{"num_hidden_layers", &t.NumHiddenLayers}, {"num_attention_heads", &t.NumAttentionHeads},
		{"max_position_embeddings", &t.MaxPositionEmbeddings}, {"hidden_act", &t.HiddenAct},
		{"layer_norm_eps", &t.LayerNormEps}, {"attention_dropout", &t.AttentionDropout},
		{"initializer_range", &t.InitializerRange}, {"initializer_factor", &t.InitializerFactor},
		{"pad_token_id", &t.PadTokenID}, {"bos_token_id", &t.BOSTokenID}, {"eos_token_id", &t.EOSTokenID},
	}
}

func (v *VisionConfig) fields() []field {
	return []field{
		{"hidden_size", &v.HiddenSize}, {"intermediate_size", &v.IntermediateSize},
		{"projection_dim", &v.ProjectionDim}, {"num_hidden_layers", &v.NumHiddenLayers},
		{"num_attention_heads", &v.NumAttentionHeads}, {"num_channels", &v.NumChannels},
		{"image_size", &v.ImageSize}, {"patch_size", &v.PatchSize}, {"hidden_act", &v.HiddenAct},
		{"layer_norm_eps", &v.LayerNormEps}, {"attention_dropout", &v.AttentionDropout},
		{"initializer_range", &v.InitializerRange}, {"initializer_factor", &v.InitializerFactor},
	}
}

func (c *CLIPConfig) fields() []field {
	return []field{
		{"projection_dim", &c.ProjectionDim}, {"logit_scale_init_value", &c.LogitScaleInitValue},
		{"initializer_factor", &c.InitializerFactor},
	}
}

// decodeFields sets each field present (and not null) in obj, leaving the
// defaults for the rest, and returns the keys it did not use.
func decodeFields(obj map[string]json.RawMessage, fields []field, prefix string) (map[string]json.RawMessage, error) {
	extra := make(map[string]json.RawMessage)
	for k, v := range obj {
		extra[k] = v
	}
	for _, f := range fields {
		raw, ok := obj[f.key]
		if !ok {
			continue
		}
		delete(extra, f.key)
		if string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		var err error
		switch p := f.ptr.(type) {
		case *int:
			var v int64
			if v, err = jsonInt(raw); err == nil {
				*p = int(v)
			}
			if err != nil {
				return nil, fmt.Errorf("%s%s: want an integer, got %s", prefix, f.key, raw)
			}
		case *float64:
			if err = json.Unmarshal(raw, p); err != nil {
				return nil, fmt.Errorf("%s%s: want a number, got %s", prefix, f.key, raw)
			}
		case *string:
			if err = json.Unmarshal(raw, p); err != nil {
				return nil, fmt.Errorf("%s%s: want a string, got %s", prefix, f.key, raw)
			}
		}
	}
	return extra, nil
}

// jsonInt reads a JSON integer; strings and fractions are errors.
func jsonInt(raw json.RawMessage) (int64, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return 0, err
	}
	n, ok := x.(json.Number)
	if !ok {
		return 0, fmt.Errorf("not a number")
	}
	return strconv.ParseInt(string(n), 10, 64)
}

func object(raw json.RawMessage, what string) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object: %w", what, err)
	}
	if obj == nil {
		obj = map[string]json.RawMessage{}
	}
	return obj, nil
}

// ParseConfig reads the content of a CLIP config.json. Absent (or null) keys
// take transformers' defaults; text_config_dict and vision_config_dict, written
// by old transformers versions, replace text_config and vision_config the way
// CLIPConfig.__init__ does.
func ParseConfig(data []byte) (*CLIPConfig, error) {
	top, err := object(data, "config")
	if err != nil {
		return nil, err
	}
	c := DefaultConfig()
	if raw, ok := top["model_type"]; ok {
		var mt string
		if json.Unmarshal(raw, &mt) != nil || mt != "clip" {
			return nil, fmt.Errorf("model_type is %s, not \"clip\": not a CLIP model config", raw)
		}
	}
	sub := func(key string) (map[string]json.RawMessage, error) {
		obj := map[string]json.RawMessage{}
		if raw, ok := top[key]; ok && string(bytes.TrimSpace(raw)) != "null" {
			if obj, err = object(raw, key); err != nil {
				return nil, err
			}
		}
		// A *_config_dict holds a whole config: its absent keys take the
		// defaults, not the values of *_config.
		if raw, ok := top[key+"_dict"]; ok && string(bytes.TrimSpace(raw)) != "null" {
			d, err := object(raw, key+"_dict")
			if err != nil {
				return nil, err
			}
			var keys []field
			if key == "text_config" {
				keys = (&TextConfig{}).fields()
			} else {
				keys = (&VisionConfig{}).fields()
			}
			for _, f := range keys {
				delete(obj, f.key)
			}
			for k, v := range d {
				obj[k] = v
			}
		}
		return obj, nil
	}
	tobj, err := sub("text_config")
	if err != nil {
		return nil, err
	}
	if c.Text.Extra, err = decodeFields(tobj, c.Text.fields(), "text_config."); err != nil {
		return nil, err
	}
	vobj, err := sub("vision_config")
	if err != nil {
		return nil, err
	}
	if c.Vision.Extra, err = decodeFields(vobj, c.Vision.fields(), "vision_config."); err != nil {
		return nil, err
	}
	rest := make(map[string]json.RawMessage)
	for k, v := range top {
		switch k {
		case "text_config", "vision_config", "text_config_dict", "vision_config_dict":
		default:
			rest[k] = v
		}
	}
	if c.Extra, err = decodeFields(rest, c.fields(), ""); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Activations the encoders implement.
var hiddenActs = []string{"quick_gelu", "gelu"}

// Validate checks that the configuration describes a CLIP lavascope can build.
func (c *CLIPConfig) Validate() error {
	t, v := &c.Text, &c.Vision
	// The upper bounds are far beyond any CLIP (ViT-bigG: width 1664, 48
	// layers); they keep a corrupt config from asking for absurd allocations.
	const width, layers = 1 << 16, 1 << 10
	for _, chk := range []struct {
		key string
		v   int
		max int
	}{
		{"projection_dim", c.ProjectionDim, width},
		{"text_config.vocab_size", t.VocabSize, tokenizer.MaxVocabSize}, {"text_config.hidden_size", t.HiddenSize, width},
		{"text_config.intermediate_size", t.IntermediateSize, 4 * width}, {"text_config.num_hidden_layers", t.NumHiddenLayers, layers},
		{"text_config.num_attention_heads", t.NumAttentionHeads, width}, {"text_config.max_position_embeddings", t.MaxPositionEmbeddings, 1 << 20},
		{"vision_config.hidden_size", v.HiddenSize, width}, {"vision_config.intermediate_size", v.IntermediateSize, 4 * width},
		{"vision_config.num_hidden_layers", v.NumHiddenLayers, layers}, {"vision_config.num_attention_heads", v.NumAttentionHeads, width},
		{"vision_config.num_channels", v.NumChannels, 1 << 10}, {"vision_config.image_size", v.ImageSize, 1 << 16},
		{"vision_config.patch_size", v.PatchSize, 1 << 16},
	} {
		if chk.v <= 0 || chk.v > chk.max {
			return fmt.Errorf("%s: must be in [1, %d], got %d", chk.key, chk.max, chk.v)
		}
	}
	if t.HiddenSize%t.NumAttentionHeads != 0 {
		return fmt.Errorf("text_config: hidden_size %d is not divisible by num_attention_heads %d", t.HiddenSize, t.NumAttentionHeads)
	}
	if v.HiddenSize%v.NumAttentionHeads != 0 {
		return fmt.Errorf("vision_config: hidden_size %d is not divisible by num_attention_heads %d", v.HiddenSize, v.NumAttentionHeads)
	}
	if v.PatchSize > v.ImageSize {
		return fmt.Errorf("vision_config: patch_size %d is larger than image_size %d", v.PatchSize, v.ImageSize)
	}
	if n := v.NumPatches(); n > 1<<20 {
		return fmt.Errorf("vision_config: %d patches (image_size %d, patch_size %d) is too many", n, v.ImageSize, v.PatchSize)
	}
	for _, a := range []struct{ key, act string }{{"text_config.hidden_act", t.HiddenAct}, {"vision_config.hidden_act", v.HiddenAct}} {
		if !slices.Contains(hiddenActs, a.act) {
			return fmt.Errorf("%s: %q is not supported (want one of %v)", a.key, a.act, hiddenActs)
		}
	}
	if t.LayerNormEps <= 0 || v.LayerNormEps <= 0 {
		return fmt.Errorf("layer_norm_eps must be positive (text %g, vision %g)", t.LayerNormEps, v.LayerNormEps)
	}
	if t.EOSTokenID < 0 || t.EOSTokenID >= t.VocabSize {
		return fmt.Errorf("text_config.eos_token_id: %d is outside the vocabulary [0, %d)", t.EOSTokenID, t.VocabSize)
	}
	// Each key within its bound still multiplies to petabytes (hidden size
	// 65536 over 1024 layers): without this, a model was allocated tensor
	// by tensor until the allocator failed, after a long wait
	// (docs/performance.md, "Figures behind comments").
	if n := c.NumParams(); n > MaxParams {
		return fmt.Errorf("the config describes %.3g parameters (%s in float32), more than lavascope's limit of %.3g (%s): the largest CLIP, ViT-bigG/14, has 2.5e9",
			n, gigabytes(4*n), float64(MaxParams), gigabytes(4*MaxParams))
	}
	return nil
}

// MaxParams is the most parameters a config may describe: twice the largest
// CLIP released (ViT-bigG/14, 2.5e9), 20 GB in float32.
const MaxParams = 5e9

// NumParams is the number of parameters the config describes, as a float64 so
// that no config can overflow it.
func (c *CLIPConfig) NumParams() float64 {
	var n float64
	for _, p := range c.Params() {
		e := 1.0
		for _, d := range p.Shape {
			e *= float64(d)
		}
		n += e
	}
	return n
}

// gigabytes writes a byte count in decimal GB, or TB from 1000 GB on.
func gigabytes(b float64) string {
	if b >= 1e12 {
		return fmt.Sprintf("%.1f TB", b/1e12)
	}
	return fmt.Sprintf("%.1f GB", b/1e9)
}

// PoolsAtArgmax reports whether the text encoder pools at argmax(input_ids)
// rather than at the first eos_token_id: HF does so when eos_token_id is 2, the
// value of legacy configs such as openai/clip-vit-base-patch32's.
func (t *TextConfig) PoolsAtArgmax() bool { return t.EOSTokenID == 2 }

// NumPatches is the number of image patches, (image_size / patch_size)².
func (v *VisionConfig) NumPatches() int {
	g := v.ImageSize / v.PatchSize
	return g * g
}

// encodeFields merges the fields over the extra keys.
func encodeFields(extra map[string]json.RawMessage, fields []field) map[string]any {
	out := make(map[string]any, len(extra)+len(fields))
	for k, v := range extra {
		out[k] = v
	}
	for _, f := range fields {
		switch p := f.ptr.(type) {
		case *int:
			out[f.key] = *p
		case *float64:
			out[f.key] = json.Number(pyFloat(*p))
		case *string:
			out[f.key] = *p
		}
	}
	return out
}

// pyFloat formats a finite float as Python's repr does (1.0, 0.02, 1e-05), so
// that a written config.json reads like one transformers wrote.
func pyFloat(f float64) string {
	if f == 0 {
		return "0.0"
	}
	if e := math.Floor(math.Log10(math.Abs(f))); e < -4 || e >= 16 {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// JSON returns the configuration as HF writes config.json: sorted keys, two
// spaces of indent, model_type and architectures filled in when absent. Keys
// lavascope does not read are written back as they were read.
func (c *CLIPConfig) JSON() ([]byte, error) {
	tc, vc, cc := c.Text, c.Vision, *c
	text := encodeFields(tc.Extra, tc.fields())
	vision := encodeFields(vc.Extra, vc.fields())
	top := encodeFields(cc.Extra, cc.fields())
	setDefault := func(m map[string]any, k string, v any) {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	setDefault(text, "model_type", "clip_text_model")
	setDefault(vision, "model_type", "clip_vision_model")
	setDefault(top, "model_type", "clip")
	setDefault(top, "architectures", []string{"CLIPModel"})
	top["text_config"] = text
	top["vision_config"] = vision
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteConfig writes config.json to path atomically.
func (c *CLIPConfig) WriteConfig(path string) error {
	b, err := c.JSON()
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, b)
}

// ParamSpec is one parameter of CLIPModel: its HF name and shape.
type ParamSpec struct {
	Name  string
	Shape []int64
}

// Params lists CLIPModel's parameters for this configuration, with HF names, in
// the order of HF's named_parameters().
func (c *CLIPConfig) Params() []ParamSpec {
	var ps []ParamSpec
	add := func(name string, shape ...int) {
		s := make([]int64, len(shape))
		for i, d := range shape {
			s[i] = int64(d)
		}
		ps = append(ps, ParamSpec{Name: name, Shape: s})
	}
	encoder := func(prefix string, layers, h, inter int) {
		for i := range layers {
			l := fmt.Sprintf("%s.encoder.layers.%d.", prefix, i)
			for _, p := range []string{"k_proj", "v_proj", "q_proj", "out_proj"} {
				add(l+"self_attn."+p+".weight", h, h)
				add(l+"self_attn."+p+".bias", h)
			}
			add(l+"layer_norm1.weight", h)
			add(l+"layer_norm1.bias", h)
			add(l+"mlp.fc1.weight", inter, h)
			add(l+"mlp.fc1.bias", inter)
			add(l+"mlp.fc2.weight", h, inter)
			add(l+"mlp.fc2.bias", h)
			add(l+"layer_norm2.weight", h)
			add(l+"layer_norm2.bias", h)
		}
	}
	t, v := &c.Text, &c.Vision
	add("logit_scale")
	add("text_model.embeddings.token_embedding.weight", t.VocabSize, t.HiddenSize)
	add("text_model.embeddings.position_embedding.weight", t.MaxPositionEmbeddings, t.HiddenSize)
	encoder("text_model", t.NumHiddenLayers, t.HiddenSize, t.IntermediateSize)
	add("text_model.final_layer_norm.weight", t.HiddenSize)
	add("text_model.final_layer_norm.bias", t.HiddenSize)
	add("vision_model.embeddings.class_embedding", v.HiddenSize)
	add("vision_model.embeddings.patch_embedding.weight", v.HiddenSize, v.NumChannels, v.PatchSize, v.PatchSize)
	add("vision_model.embeddings.position_embedding.weight", v.NumPatches()+1, v.HiddenSize)
	add("vision_model.pre_layrnorm.weight", v.HiddenSize)
	add("vision_model.pre_layrnorm.bias", v.HiddenSize)
	encoder("vision_model", v.NumHiddenLayers, v.HiddenSize, v.IntermediateSize)
	add("vision_model.post_layernorm.weight", v.HiddenSize)
	add("vision_model.post_layernorm.bias", v.HiddenSize)
	add("visual_projection.weight", c.ProjectionDim, v.HiddenSize)
	add("text_projection.weight", c.ProjectionDim, t.HiddenSize)
	return ps
}
