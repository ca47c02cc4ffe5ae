package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/torch"
)

func TestSaveRoundTrip(t *testing.T) {
	dev := torchtest.Device(t)
	// A source folder with the companion files HF's processor writes.
	src := copyCheckpoint(t, nil)
	companions := map[string]string{
		"vocab.json":               `{"a</w>": 0}`,
		"merges.txt":               "#version: 0.2\n",
		"preprocessor_config.json": `{"crop_size": 224}`,
	}
	for f, c := range companions {
		if err := os.WriteFile(filepath.Join(src, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dt := range []torch.DType{torch.Float32, torch.BFloat16} {
		t.Run(dt.String(), func(t *testing.T) {
			m, err := Load(src, Options{Device: dev, DType: dt})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			out := filepath.Join(t.TempDir(), "saved")
			if err := m.Save(out); err != nil {
				t.Fatal(err)
			}
			entries, _ := os.ReadDir(out)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			wantNames := []string{"config.json", "merges.txt", "model.safetensors", "preprocessor_config.json", "vocab.json"}
			if !slices.Equal(names, wantNames) {
				t.Errorf("saved %v, want %v (no temporary files)", names, wantNames)
			}
			for f, c := range companions {
				if b, _ := os.ReadFile(filepath.Join(out, f)); string(b) != c {
					t.Errorf("%s: %q, want %q", f, b, c)
				}
			}
			var cfg map[string]any
			b, _ := os.ReadFile(filepath.Join(out, "config.json"))
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			if want := hfDTypeName(dt); cfg["dtype"] != want {
				t.Errorf("config dtype %v, want %s", cfg["dtype"], want)
			}
			st, err := safetensors.Open(filepath.Join(out, singleFile))
			if err != nil {
				t.Fatal(err)
			}
			if st.Metadata["format"] != "pt" {
				t.Errorf("metadata %v: transformers wants format pt", st.Metadata)
			}
			wantDT, _ := storedDType(dt)
			for _, ti := range st.Tensors() {
				if ti.DType != wantDT {
					t.Errorf("%s stored as %s, want %s", ti.Name, ti.DType, wantDT)
				}
			}
			st.Close()
			back, err := Load(out, Options{Device: dev, DType: dt})
			if err != nil {
				t.Fatal(err)
			}
			defer back.Close()
			if back.Source != out {
				t.Errorf("source %q", back.Source)
			}
			for _, p := range m.Params() {
				q, _ := back.Param(p.Name)
				a, err1 := p.Tensor.Float32s()
				b, err2 := q.Float32s()
				if err1 != nil || err2 != nil || !slices.Equal(a, b) {
					t.Fatalf("%s changed in the round trip (%v, %v)", p.Name, err1, err2)
				}
			}
			// Saving over the folder it was loaded from keeps its files.
			if err := back.Save(out); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(filepath.Join(out, "vocab.json")); string(b) != companions["vocab.json"] {
				t.Errorf("vocab.json after saving in place: %q", b)
			}
		})
	}
}

func TestInitScheme(t *testing.T) {
	dev := torchtest.Device(t)
	cfg, err := NamedConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.InitializerFactor = 1.5
	m, err := Init(cfg, Options{Device: dev}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f := 1.5
	wantStd := map[string]float64{
		"text_model.embeddings.token_embedding.weight":            0.02 * f,
		"text_model.embeddings.position_embedding.weight":         0.02 * f,
		"vision_model.embeddings.class_embedding":                 f / 8, // 64^-½
		"vision_model.embeddings.patch_embedding.weight":          0.02 * f,
		"vision_model.embeddings.position_embedding.weight":       0.02 * f,
		"vision_model.encoder.layers.0.self_attn.q_proj.weight":   f / 8 / 2, // (2·2)^-½
		"text_model.encoder.layers.1.self_attn.k_proj.weight":     f / 8 / 2,
		"text_model.encoder.layers.1.self_attn.out_proj.weight":   f / 8,
		"vision_model.encoder.layers.1.mlp.fc1.weight":            f / 8 / 1.4142135623730951, // (2·64)^-½
		"text_model.encoder.layers.0.mlp.fc2.weight":              f / 8 / 2,
		"visual_projection.weight":                                f / 8,
		"text_projection.weight":                                  f / 8,
		"vision_model.encoder.layers.0.self_attn.v_proj.weight":   f / 8 / 2,
		"vision_model.encoder.layers.0.self_attn.out_proj.weight": f / 8,
	}
	wantConst := map[string]float64{
		"logit_scale":                                         2.6592,
		"text_model.final_layer_norm.weight":                  1,
		"text_model.final_layer_norm.bias":                    0,
		"vision_model.pre_layrnorm.weight":                    1,
		"vision_model.post_layernorm.bias":                    0,
		"text_model.encoder.layers.0.mlp.fc1.bias":            0,
		"vision_model.encoder.layers.1.self_attn.q_proj.bias": 0,
		"vision_model.encoder.layers.1.layer_norm2.weight":    1,
	}
	for name, std := range wantStd {
		p, _ := m.Param(name)
		v, err := p.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		var mean, sq float64
		for _, x := range v {
			mean += x / float64(len(v))
			sq += x * x / float64(len(v))
		}
		got := math.Sqrt(sq - mean*mean)
		// The sample standard deviation of n normal draws is off by about
		// std/√(2n); allow five of those, and at least 10% for small tensors.
		tol := max(5/math.Sqrt(2*float64(len(v))), 0.1)
		if math.Abs(got/std-1) > tol || math.Abs(mean) > 5*std/math.Sqrt(float64(len(v))) {
			t.Errorf("%s: mean %.3g std %.4g, want 0 and %.4g", name, mean, got, std)
		}
	}
	for name, c := range wantConst {
		p, _ := m.Param(name)
		v, err := p.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range v {
			if math.Abs(x-c) > 1e-6 {
				t.Fatalf("%s: %g, want %g", name, x, c)
			}
		}
	}
	for _, p := range cfg.Params() {
		if _, err := initRuleFor(cfg, p.Name); err != nil {
			t.Error(err)
		}
	}
	// Seeds: the same seed gives the same weights, another seed others.
	same, err := Init(cfg, Options{Device: dev}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	other, err := Init(cfg, Options{Device: dev}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	name := "vision_model.encoder.layers.1.mlp.fc2.weight"
	a, _ := m.Param(name)
	b, _ := same.Param(name)
	c, _ := other.Param(name)
	av, _ := a.Float32s()
	bv, _ := b.Float32s()
	cv, _ := c.Float32s()
	if !slices.Equal(av, bv) || slices.Equal(av, cv) {
		t.Errorf("seeds: same seed equal %v, other seed equal %v", slices.Equal(av, bv), slices.Equal(av, cv))
	}
}
