package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/model/safetensors"
)

// fixtureDir is the Hugging Face reference checkpoint and its outputs; absolute,
// since some tests change the working directory.
var fixtureDir = absPath(filepath.Join("..", "testdata", "hf-clip-tiny"))

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func openFixture(t *testing.T, name string) *safetensors.File {
	t.Helper()
	s, err := safetensors.Open(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// writeShards splits the fixture checkpoint into two shards and an index in dir.
func writeShards(t *testing.T, dir string) map[string]string {
	t.Helper()
	src := openFixture(t, "checkpoint/model.safetensors")
	shards := map[string][]safetensors.Tensor{}
	weightMap := map[string]string{}
	for i, ti := range src.Tensors() {
		file := fmt.Sprintf("model-%05d-of-00002.safetensors", 1+i%2)
		b, _ := src.Bytes(ti.Name)
		shards[file] = append(shards[file], safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: b})
		weightMap[ti.Name] = file
	}
	for f, ts := range shards {
		if err := safetensors.Save(filepath.Join(dir, f), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	writeIndex(t, dir, weightMap)
	return weightMap
}

func writeIndex(t *testing.T, dir string, weightMap map[string]string) {
	t.Helper()
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, indexFile), idx, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestShardedWeights(t *testing.T) {
	dir := t.TempDir()
	writeShards(t, dir)
	w, err := OpenWeights(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	src := openFixture(t, "checkpoint/model.safetensors")
	if len(w.Names()) != 78 || len(w.Files) != 2 {
		t.Fatalf("%d tensors in %d files", len(w.Names()), len(w.Files))
	}
	for _, ti := range src.Tensors() {
		want, _ := src.Bytes(ti.Name)
		ref, ok := w.Tensor(ti.Name)
		if !ok {
			t.Fatalf("%s missing", ti.Name)
		}
		got := make([]byte, ref.End-ref.Begin)
		if err := ref.ReadInto(got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs (%v)", ti.Name, err)
		}
	}
}

func TestShardedWeightsErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(t *testing.T, dir string, wm map[string]string)
		want   string
	}{
		{"missing shard", func(t *testing.T, dir string, wm map[string]string) {
			os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors"))
		}, "model-00002-of-00002.safetensors: no such file"},
		{"listed but absent", func(t *testing.T, dir string, wm map[string]string) {
			wm["text_model.extra.weight"] = "model-00001-of-00002.safetensors"
			writeIndex(t, dir, wm)
		}, `tensor "text_model.extra.weight" is listed in`},
		{"not listed", func(t *testing.T, dir string, wm map[string]string) {
			delete(wm, "logit_scale")
			writeIndex(t, dir, wm)
		}, `tensor "logit_scale" is not listed in the index`},
		{"escaping name", func(t *testing.T, dir string, wm map[string]string) {
			wm["logit_scale"] = "../model.safetensors"
			writeIndex(t, dir, wm)
		}, "is not a file name in the checkpoint folder"},
		{"bad index", func(t *testing.T, dir string, wm map[string]string) {
			os.WriteFile(filepath.Join(dir, indexFile), []byte(`{"weight_map": [`), 0o644)
		}, indexFile},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		wm := writeShards(t, dir)
		tt.modify(t, dir, wm)
		w, err := OpenWeights(dir)
		if err == nil {
			w.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}
