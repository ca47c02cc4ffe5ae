package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
)

// CompanionFiles are the files of a HF CLIP folder besides the config and the
// weights (tokenizer and image preprocessor) that Save carries over from the
// source folder when it has them.
var CompanionFiles = []string{
	"vocab.json", "merges.txt", "preprocessor_config.json",
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
}

// Save writes the model to dir in Hugging Face layout, so that
// CLIPModel.from_pretrained(dir) reads it: model.safetensors (HF names, the
// model's dtype, format "pt" metadata), config.json (its dtype key set to
// the model's dtype), and the CompanionFiles found in m.Source. Each file
// is written atomically (temporary file, fsync, rename); config.json comes
// last, so a folder with a config has complete weights beside it.
func (m *CLIP) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tensors := make([]safetensors.Tensor, 0, len(m.names))
	for _, name := range m.names {
		t := m.byName[name]
		dt, err := storedDType(t.DType())
		if err != nil {
			return fmt.Errorf("saving %s: %w", name, err)
		}
		data, err := t.Bytes()
		if err != nil {
			return fmt.Errorf("saving %s: %w", name, err)
		}
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: dt, Shape: t.Shape(), Data: data})
	}
	if err := safetensors.Save(filepath.Join(dir, singleFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	if m.Source != "" {
		if err := copyCompanions(m.Source, dir); err != nil {
			return err
		}
	}
	cfg := m.savedConfig()
	delete(cfg.Extra, TokenizerKey)
	// A tokenizer lavascope cannot read (a test fixture's, without
	// <|startoftext|>) is carried over unrecorded, as before.
	if tok, err := tokenizer.Load(dir); err == nil {
		cfg.Extra[TokenizerKey], _ = json.Marshal(tok.Fingerprint())
	}
	return cfg.WriteConfig(filepath.Join(dir, "config.json"))
}

// TokenizerKey is the config.json key where Save records the fingerprint of
// the tokenizer saved beside the model (tokenizer.Tokenizer.Fingerprint), so
// that a tokenizer changed afterwards (two ids swapped) is refused when
// loaded. It is a key transformers keeps and ignores.
const TokenizerKey = "lavascope_tokenizer"

// savedConfig is the configuration with its dtype key matching the weights.
func (m *CLIP) savedConfig() *CLIPConfig {
	c := *m.cfg
	c.Extra = maps.Clone(m.cfg.Extra)
	if c.Extra == nil {
		c.Extra = map[string]json.RawMessage{}
	}
	name, _ := json.Marshal(hfDTypeName(m.opts.DType))
	// transformers 5 writes "dtype", earlier versions "torch_dtype".
	set := false
	for _, k := range []string{"dtype", "torch_dtype"} {
		if _, ok := c.Extra[k]; ok {
			c.Extra[k] = name
			set = true
		}
	}
	if !set {
		c.Extra["dtype"] = name
	}
	return &c
}

func hfDTypeName(d torch.DType) string {
	switch d {
	case torch.Float16:
		return "float16"
	case torch.BFloat16:
		return "bfloat16"
	case torch.Float64:
		return "float64"
	}
	return "float32"
}

// copyCompanions copies the CompanionFiles present in src into dst.
func copyCompanions(src, dst string) error {
	same, err := sameDir(src, dst)
	if err != nil || same {
		return err
	}
	for _, f := range CompanionFiles {
		data, err := os.ReadFile(filepath.Join(src, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := atomicfile.WriteBytes(filepath.Join(dst, f), data); err != nil {
			return err
		}
	}
	return nil
}

func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, fmt.Errorf("source folder: %w", err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
