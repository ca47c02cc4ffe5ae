package model

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/model/safetensors"
)

// Convert writes the checkpoint at loc (a torch.save file with its base, or
// any folder OpenLocation reads) to out as a Hugging Face CLIP folder:
// model.safetensors with the tensors in their stored dtype (the buffers HF
// ignores left out), the CompanionFiles of loc.Dir, and its config.json
// last, each file atomically. It needs no libtorch. A non-empty out is
// refused unless force. It returns the number of tensors written.
func Convert(loc Location, out string, force bool) (int, error) {
	ck, err := OpenLocation(loc)
	if err != nil {
		return 0, err
	}
	defer ck.Close()
	if !force {
		if err := checkEmptyDir(out); err != nil {
			return 0, err
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	var tensors []safetensors.Tensor
	for _, name := range ck.Weights.Names() {
		if slices.Contains(ignoredBuffers, name) {
			continue
		}
		ref, _ := ck.Weights.Tensor(name)
		data, err := ref.Bytes()
		if err != nil {
			return 0, err
		}
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: ref.DType, Shape: ref.Shape, Data: data})
	}
	if err := safetensors.Save(filepath.Join(out, singleFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return 0, err
	}
	if err := copyCompanions(loc.Dir, out); err != nil {
		return 0, err
	}
	cfg, err := os.ReadFile(filepath.Join(loc.Dir, "config.json"))
	if err != nil {
		return 0, err
	}
	return len(tensors), atomicfile.WriteBytes(filepath.Join(out, "config.json"), cfg)
}

// checkEmptyDir refuses a folder that exists and holds anything.
func checkEmptyDir(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err == nil {
		return fmt.Errorf("%s exists and is not empty (--force writes into it)", dir)
	} else if err != io.EOF {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}
