package model

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/model/safetensors"
)

func TestReadFixtureConfig(t *testing.T) {
	c, err := ReadConfig(filepath.Join(fixtureDir, "checkpoint", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ProjectionDim != 32 || c.LogitScaleInitValue != 2.6592 {
		t.Errorf("top level: %+v", c)
	}
	tc, vc := c.Text, c.Vision
	if tc.VocabSize != 1000 || tc.HiddenSize != 64 || tc.NumHiddenLayers != 2 || tc.NumAttentionHeads != 4 ||
		tc.BOSTokenID != 498 || tc.EOSTokenID != 499 || tc.HiddenAct != "quick_gelu" || tc.ProjectionDim != 512 {
		t.Errorf("text config: %+v", tc)
	}
	if vc.HiddenSize != 64 || vc.PatchSize != 32 || vc.ImageSize != 224 || vc.NumPatches() != 49 {
		t.Errorf("vision config: %+v", vc)
	}
	if tc.PoolsAtArgmax() {
		t.Error("eos_token_id 499 must pool at the first EOS, not argmax")
	}
	if string(c.Extra["transformers_version"]) != `"5.17.0"` {
		t.Errorf("extra keys: %v", c.Extra)
	}
}

// TestParamsMatchFixture checks the expected parameter list against what HF's
// save_pretrained wrote for the same config.
func TestParamsMatchFixture(t *testing.T) {
	c, err := ReadConfig(filepath.Join(fixtureDir, "checkpoint", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := openFixture(t, "checkpoint/model.safetensors")
	stored := map[string][]int64{}
	for _, ti := range s.Tensors() {
		stored[ti.Name] = ti.Shape
	}
	params := c.Params()
	if len(params) != len(stored) {
		t.Errorf("%d params, checkpoint has %d tensors", len(params), len(stored))
	}
	for _, p := range params {
		if shape, ok := stored[p.Name]; !ok || !slices.Equal(shape, p.Shape) {
			t.Errorf("%s %v: checkpoint has %v (present %v)", p.Name, p.Shape, shape, ok)
		}
	}
}

func numParams(c *CLIPConfig) int64 {
	var n int64
	for _, p := range c.Params() {
		n += safetensors.TensorInfo{Shape: p.Shape}.NumElements()
	}
	return n
}

func TestParamCounts(t *testing.T) {
	c, err := NamedConfig("vit-b-32")
	if err != nil {
		t.Fatal(err)
	}
	// HF reports 151,277,313 parameters for openai/clip-vit-base-patch32.
	if n := numParams(c); n != 151_277_313 {
		t.Errorf("vit-b-32 has %d parameters, want 151277313", n)
	}
	// torchinfo on a 3-layer variant with a 4940-token vocabulary: 36,347,393.
	c.Text.NumHiddenLayers, c.Vision.NumHiddenLayers, c.Text.VocabSize = 3, 3, 4940
	if n := numParams(c); n != 36_347_393 {
		t.Errorf("3-layer variant has %d parameters, want 36347393", n)
	}
	// HF's counts of the hub models (CLIPModel.num_parameters()).
	for name, want := range map[string]int64{
		"vit-b-16": 149_620_737, "vit-l-14": 427_616_513, "vit-l-14-336": 427_944_193,
	} {
		c, err := NamedConfig(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if n := numParams(c); n != want {
			t.Errorf("%s has %d parameters, want %d", name, n, want)
		}
	}
	tiny, _ := NamedConfig("tiny")
	if err := tiny.Validate(); err != nil {
		t.Error(err)
	}
	fix, _ := ReadConfig(filepath.Join(fixtureDir, "checkpoint", "config.json"))
	// tiny has the fixture's dimensions, with the full vocabulary.
	fix.Text.VocabSize, fix.Text.BOSTokenID, fix.Text.EOSTokenID = 49408, 49406, 49407
	fix.Extra, fix.Text.Extra, fix.Vision.Extra = nil, nil, nil
	if tiny.Text.Extra, tiny.Vision.Extra = nil, nil; !reflect.DeepEqual(tiny, fix) {
		t.Errorf("tiny = %+v\nfixture = %+v", tiny, fix)
	}
	if _, err := NamedConfig("vit-h-14"); err == nil {
		t.Error("unknown name accepted")
	}
}

// hubConfig is openai/clip-vit-base-patch32's config.json, abridged (the keys
// PretrainedConfig adds to every config are cut but for a few).
const hubConfig = `{
  "_name_or_path": "openai/clip-vit-base-patch32",
  "architectures": ["CLIPModel"],
  "initializer_factor": 1.0,
  "logit_scale_init_value": 2.6592,
  "model_type": "clip",
  "projection_dim": 512,
  "text_config": {
    "_name_or_path": "", "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
    "eos_token_id": 2, "hidden_act": "quick_gelu", "hidden_size": 512,
    "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 2048, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 8,
    "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 512, "vocab_size": 49408
  },
  "text_config_dict": null,
  "transformers_version": null,
  "vision_config": {
    "attention_dropout": 0.0, "bos_token_id": null, "dropout": 0.0, "eos_token_id": null,
    "hidden_act": "quick_gelu", "hidden_size": 768, "image_size": 224, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
    "model_type": "clip_vision_model", "num_attention_heads": 12, "num_hidden_layers": 12,
    "patch_size": 32, "projection_dim" : 512
  },
  "vision_config_dict": null
}`

func TestHubConfigIsViTB32(t *testing.T) {
	c, err := ParseConfig([]byte(hubConfig))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := NamedConfig("vit-b-32")
	c.Extra, c.Text.Extra, c.Vision.Extra = nil, nil, nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("hub config = %+v\nvit-b-32 = %+v", c, want)
	}
	if !c.Text.PoolsAtArgmax() {
		t.Error("the hub's eos_token_id 2 pools at argmax")
	}
}

func TestDefaultsForAbsentKeys(t *testing.T) {
	c, err := ParseConfig([]byte(`{"text_config": {"hidden_size": 256, "num_attention_heads": 4, "eos_token_id": null}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Text.HiddenSize, want.Text.NumAttentionHeads = 256, 4
	c.Extra, c.Text.Extra, c.Vision.Extra = nil, nil, nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
}

func TestConfigDictOverrides(t *testing.T) {
	// text_config_dict is a whole config: its absent keys are defaults, not
	// text_config's values.
	c, err := ParseConfig([]byte(`{"text_config": {"hidden_size": 256, "vocab_size": 100, "eos_token_id": 99, "note": 1},
		"text_config_dict": {"vocab_size": 300, "eos_token_id": 5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Text.VocabSize != 300 || c.Text.HiddenSize != 512 || c.Text.EOSTokenID != 5 || string(c.Text.Extra["note"]) != "1" {
		t.Errorf("text config %+v", c.Text)
	}
	b, _ := c.JSON()
	if strings.Contains(string(b), "config_dict") {
		t.Errorf("the *_config_dict keys were written back:\n%s", b)
	}
}

func TestConfigJSONRoundTrip(t *testing.T) {
	for _, src := range []string{hubConfig, `{}`} {
		c, err := ParseConfig([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("%v in\n%s", err, b)
		}
		// model_type and architectures are added on write.
		for _, k := range []string{"model_type", "architectures"} {
			delete(back.Extra, k)
			delete(c.Extra, k)
		}
		delete(back.Text.Extra, "model_type")
		delete(c.Text.Extra, "model_type")
		delete(back.Vision.Extra, "model_type")
		delete(c.Vision.Extra, "model_type")
		if !reflect.DeepEqual(normalizeExtra(c), normalizeExtra(back)) {
			t.Errorf("round trip differs:\n%+v\n%+v", c, back)
		}
		var top map[string]any
		json.Unmarshal(b, &top)
		if top["model_type"] != "clip" || top["text_config"].(map[string]any)["model_type"] != "clip_text_model" {
			t.Errorf("written config lacks model types:\n%s", b)
		}
	}
	c, _ := ParseConfig([]byte(hubConfig))
	path := filepath.Join(t.TempDir(), "config.json")
	if err := c.WriteConfig(path); err != nil {
		t.Fatal(err)
	}
	back, err := ReadConfig(path)
	if err != nil || back.Text.EOSTokenID != 2 || string(back.Extra["_name_or_path"]) != `"openai/clip-vit-base-patch32"` {
		t.Errorf("ReadConfig after WriteConfig: %+v, %v", back, err)
	}
}

// normalizeExtra re-encodes raw JSON values so that formatting differences
// (indent, spaces) do not count.
func normalizeExtra(c *CLIPConfig) *CLIPConfig {
	cp := *c
	norm := func(m map[string]json.RawMessage) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		for k, v := range m {
			var x any
			json.Unmarshal(v, &x)
			b, _ := json.Marshal(x)
			out[k] = b
		}
		return out
	}
	cp.Extra, cp.Text.Extra, cp.Vision.Extra = norm(c.Extra), norm(c.Text.Extra), norm(c.Vision.Extra)
	return &cp
}

func TestPyFloat(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{{1, "1.0"}, {0, "0.0"}, {1e-5, "1e-05"}, {0.02, "0.02"}, {2.6592, "2.6592"}, {-0.0001, "-0.0001"}, {1e16, "1e+16"}, {123456789, "123456789.0"}} {
		if got := pyFloat(tc.f); got != tc.want {
			t.Errorf("pyFloat(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

// hugeConfig keeps every key within its bound, and describes 211 TB of
// float32 parameters.
const hugeConfig = `{"text_config": {"hidden_size": 65536, "intermediate_size": 65536, "num_hidden_layers": 1024, "num_attention_heads": 1},
	"vision_config": {"hidden_size": 65536, "intermediate_size": 65536, "num_hidden_layers": 1024, "num_attention_heads": 1}}`

func TestConfigErrors(t *testing.T) {
	tests := []struct{ json, want string }{
		{`[1]`, "want a JSON object"},
		{`{"model_type": "siglip"}`, `model_type is "siglip", not "clip"`},
		{`{"projection_dim": "512"}`, "projection_dim: want an integer"},
		{`{"text_config": {"hidden_size": 64.5}}`, "text_config.hidden_size: want an integer"},
		{`{"text_config": 3}`, "text_config: want a JSON object"},
		{`{"vision_config": {"layer_norm_eps": "x"}}`, "vision_config.layer_norm_eps: want a number"},
		{`{"vision_config": {"hidden_act": 1}}`, "vision_config.hidden_act: want a string"},
		{`{"vision_config": {"hidden_act": "relu"}}`, `vision_config.hidden_act: "relu" is not supported`},
		{`{"text_config": {"hidden_size": 100}}`, "not divisible by num_attention_heads 8"},
		{`{"vision_config": {"patch_size": 0}}`, "vision_config.patch_size: must be in [1, 65536], got 0"},
		{`{"text_config": {"num_hidden_layers": 100000000}}`, "text_config.num_hidden_layers: must be in [1, 1024]"},
		{`{"vision_config": {"image_size": 65536, "patch_size": 2}}`, "too many"},
		{`{"vision_config": {"patch_size": 448}}`, "larger than image_size"},
		{`{"text_config": {"eos_token_id": 49408}}`, "outside the vocabulary"},
		{hugeConfig, "5.28e+13 parameters (211.1 TB in float32), more than lavascope's limit of 5e+09 (20.0 GB)"},
	}
	for _, tt := range tests {
		_, err := ParseConfig([]byte(tt.json))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.json, err, tt.want)
		}
	}
	if _, err := ReadConfig(filepath.Join(t.TempDir(), "config.json")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestConfigFromArg(t *testing.T) {
	c, err := ConfigFromArg("tiny")
	if err != nil || c.Text.HiddenSize != 64 {
		t.Errorf("tiny: %+v %v", c, err)
	}
	c, err = ConfigFromArg(filepath.Join(fixtureDir, "checkpoint", "config.json"))
	if err != nil || c.Text.VocabSize != 1000 {
		t.Errorf("file: %+v %v", c, err)
	}
	if _, err := ConfigFromArg("nope.json"); err == nil {
		t.Error("missing file accepted")
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(hubConfig))
	f.Add([]byte(`{"text_config_dict": {"vocab_size": 10, "eos_token_id": 3}, "vision_config": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		b, err := c.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("written config does not parse: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(back.Params(), c.Params()) {
			t.Fatal("parameters differ after a round trip")
		}
	})
}
