package model

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/model/torchsave"
)

// Location is a resolved checkpoint: the folder that holds config.json and
// the tokenizer, and the file that holds the weights when they are not the
// folder's own safetensors (a torch.save state_dict, .pt, .pth or .bin).
type Location struct {
	Dir  string
	File string // "" for the safetensors (or pytorch_model.bin) in Dir
}

// String names the location in messages: the weight file, else the folder.
func (l Location) String() string {
	if l.File != "" {
		return l.File
	}
	return l.Dir
}

// Locate resolves a checkpoint argument. A folder or model id resolves as
// ResolveCheckpoint does (base is not used). A torch.save zip file (.pt,
// .pth, .bin) takes its config.json and tokenizer from base, a folder or
// model id resolved the same way, or when base is empty from the folder
// that holds the file. A legacy (pre-zip) pickle is a *PickleError.
func Locate(arg, base string) (Location, error) {
	st, err := os.Stat(arg)
	if err != nil && isPickle(arg) {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Location{}, fmt.Errorf("checkpoint %s: %w", arg, err)
	}
	if err == nil && !st.IsDir() && isPickle(arg) {
		if err := checkTorchZip(arg); err != nil {
			return Location{}, err
		}
		dir := filepath.Dir(arg)
		if base != "" {
			if dir, err = ResolveCheckpoint(base); err != nil {
				return Location{}, fmt.Errorf("--base: %w", err)
			}
		} else if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
			return Location{}, fmt.Errorf("%s holds weights only and %s has no config.json: give the model's folder or id (the one it was fine-tuned from) with --base", arg, dir)
		}
		return Location{Dir: dir, File: arg}, nil
	}
	dir, err := ResolveCheckpoint(arg)
	return Location{Dir: dir}, err
}

// checkTorchZip refuses a pickle file that is not a torch.save zip archive.
func checkTorchZip(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if !torchsave.IsZip(f) {
		return &PickleError{Path: path}
	}
	return nil
}

// OpenTorchWeights reads the state_dict of a torch.save zip file (see
// package torchsave): the object itself, or its "state_dict" or "model"
// entry, with a DataParallel "module." prefix removed.
func OpenTorchWeights(path string) (*Weights, error) {
	f, err := torchsave.Open(path)
	if errors.Is(err, torchsave.ErrLegacy) {
		return nil, &PickleError{Path: path}
	}
	if err != nil {
		return nil, err
	}
	sd, err := f.StateDict()
	if err != nil {
		f.Close()
		return nil, err
	}
	src := &torchSource{f: f, tensors: sd}
	w := &Weights{Files: []string{path}, closers: []func() error{f.Close}, tensors: make(map[string]TensorRef, len(sd))}
	for name, t := range sd {
		dt, err := safetensors.ParseDType(string(t.DType))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: tensor %s: %w", path, name, err)
		}
		info := safetensors.TensorInfo{Name: name, DType: dt, Shape: t.Shape, End: t.NumBytes()}
		w.tensors[name] = TensorRef{TensorInfo: info, File: path, src: src}
	}
	return w, nil
}

// torchSource reads the tensors of a torch.save file by name.
type torchSource struct {
	f       *torchsave.File
	tensors map[string]*torchsave.Tensor
}

func (s *torchSource) ReadInto(name string, dst []byte) error {
	t, ok := s.tensors[name]
	if !ok {
		return fmt.Errorf("%s: no tensor %q", s.f.Path, name)
	}
	if err := s.f.ReadInto(t, dst); err != nil {
		return fmt.Errorf("tensor %q: %w", name, err)
	}
	return nil
}
