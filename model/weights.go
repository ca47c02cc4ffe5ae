package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/lavascope/lavascope/model/safetensors"
)

// The tensors of a checkpoint folder: one safetensors file, a sharded set,
// or a torch.save file (see torchfile.go).

const (
	singleFile = "model.safetensors"
	indexFile  = "model.safetensors.index.json"
)

// TensorRef is one tensor of a checkpoint: its description, its file, and a way
// to read its raw little-endian bytes.
type TensorRef struct {
	safetensors.TensorInfo
	// File is the file that holds it (safetensors or torch.save).
	File string
	src  tensorSource
}

// tensorSource reads a tensor's contiguous little-endian bytes by name.
type tensorSource interface {
	ReadInto(name string, dst []byte) error
}

// ReadInto reads the tensor's bytes into dst, which must be exactly its size
// (End - Begin), for instance the memory of a freshly allocated tensor.
func (r TensorRef) ReadInto(dst []byte) error { return r.src.ReadInto(r.Name, dst) }

// Bytes returns the tensor's bytes.
func (r TensorRef) Bytes() ([]byte, error) {
	b := make([]byte, r.End-r.Begin)
	return b, r.ReadInto(b)
}

// Float32s returns the tensor's values converted to float32.
func (r TensorRef) Float32s() ([]float32, error) {
	b, err := r.Bytes()
	if err != nil {
		return nil, err
	}
	v, err := safetensors.DecodeFloat32s(r.DType, b)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", r.File, r.Name, err)
	}
	return v, nil
}

// Weights are the tensors of a checkpoint: model.safetensors, the shards
// listed by model.safetensors.index.json, or a torch.save file.
type Weights struct {
	// Files are the files read, for messages.
	Files   []string
	closers []func() error
	tensors map[string]TensorRef
}

// OpenWeights opens the safetensors weights of a checkpoint folder.
func OpenWeights(dir string) (*Weights, error) {
	single := filepath.Join(dir, singleFile)
	index := filepath.Join(dir, indexFile)
	if _, err := os.Stat(single); err == nil {
		w := &Weights{tensors: make(map[string]TensorRef)}
		if err := w.add(single, nil); err != nil {
			return nil, err
		}
		return w, nil
	}
	if _, err := os.Stat(index); err == nil {
		return openSharded(dir, index)
	}
	return nil, fmt.Errorf("%s: no %s or %s", dir, singleFile, indexFile)
}

func openSharded(dir, index string) (*Weights, error) {
	data, err := os.ReadFile(index)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: empty or missing weight_map", index)
	}
	shards := make(map[string]map[string]bool)
	for name, file := range idx.WeightMap {
		if file == "" || filepath.Base(file) != file || file == "." || file == ".." {
			return nil, fmt.Errorf("%s: tensor %q: shard %q is not a file name in the checkpoint folder", index, name, file)
		}
		if shards[file] == nil {
			shards[file] = make(map[string]bool)
		}
		shards[file][name] = true
	}
	files := make([]string, 0, len(shards))
	for f := range shards {
		files = append(files, f)
	}
	slices.Sort(files)
	w := &Weights{tensors: make(map[string]TensorRef)}
	for _, f := range files {
		if err := w.add(filepath.Join(dir, f), shards[f]); err != nil {
			w.Close()
			return nil, fmt.Errorf("%w (listed in %s)", err, index)
		}
	}
	for name, file := range idx.WeightMap {
		if _, ok := w.tensors[name]; !ok {
			w.Close()
			return nil, fmt.Errorf("%s: tensor %q is listed in %s but absent from it", filepath.Join(dir, file), name, index)
		}
	}
	return w, nil
}

// add opens one file; want, when set, is the set of names the index gives it.
func (w *Weights) add(path string, want map[string]bool) error {
	s, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	w.closers = append(w.closers, s.Close)
	w.Files = append(w.Files, path)
	for _, t := range s.Tensors() {
		if want != nil && !want[t.Name] {
			return fmt.Errorf("%s: tensor %q is not listed in the index", path, t.Name)
		}
		if prev, dup := w.tensors[t.Name]; dup {
			return fmt.Errorf("tensor %q is in both %s and %s", t.Name, prev.File, path)
		}
		w.tensors[t.Name] = TensorRef{TensorInfo: t, File: path, src: s}
	}
	return nil
}

// Tensors returns every tensor by name.
func (w *Weights) Tensors() map[string]TensorRef { return maps.Clone(w.tensors) }

// Tensor returns one tensor.
func (w *Weights) Tensor(name string) (TensorRef, bool) {
	r, ok := w.tensors[name]
	return r, ok
}

// Names lists the tensor names, sorted.
func (w *Weights) Names() []string {
	names := make([]string, 0, len(w.tensors))
	for n := range w.tensors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Close closes every file.
func (w *Weights) Close() error {
	var errs []error
	for _, c := range w.closers {
		errs = append(errs, c())
	}
	w.closers = nil
	return errors.Join(errs...)
}
