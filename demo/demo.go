// Package demo is lavascope's embedded default: a tiny CLIP that lavascope
// trained from scratch on synthetic LAVA-style pairs (loader/synth) with tree
// input, its own small BPE vocabulary learned from the same corpus, and the
// synthetic splits it is shown on. `--checkpoint demo` and `--data demo` name
// them; nothing is downloaded.
//
// The model folder is a Hugging Face CLIP checkpoint (224-pixel images in
// 32-pixel patches, so the heatmap grid is 7×7 as for ViT-B/32) with the
// trainer_state.json of the run that made it, which records the command
// line; scripts/demo-model.sh (`make demo-model`) rebuilds it.
package demo

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/tokenizer"
)

// files holds the checkpoint folder, under model/.
//
//go:embed model
var files embed.FS

// each calls fn with the path (relative to the checkpoint folder) and the
// content of every embedded file, in lexical order.
func each(fn func(name string, data []byte) error) error {
	return fs.WalkDir(files, "model", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return fn(path.Base(p), data)
	})
}

var (
	once    sync.Once
	dir     string
	dirErr  error
	cacheFn = os.UserCacheDir
)

// Checkpoint returns a folder holding the embedded checkpoint, for the code
// that reads checkpoints from disk. The files are written once into the
// user's cache folder (or the temporary folder), under a name made of their
// hash, so every version of lavascope has its own copy and a copy is only
// used when complete.
func Checkpoint() (string, error) {
	once.Do(func() { dir, dirErr = extract() })
	return dir, dirErr
}

// ResolveCheckpoint resolves a checkpoint argument as every command takes it:
// Name is the embedded model, anything else a Hugging Face folder or a model
// id in the HF cache (model.ResolveCheckpoint).
func ResolveCheckpoint(arg string) (string, error) {
	if arg == Name {
		return Checkpoint()
	}
	return model.ResolveCheckpoint(arg)
}

// Locate resolves a checkpoint argument and its --base as every command
// takes them: Name, as either, is the embedded model; anything else goes to
// model.Locate.
func Locate(arg, base string) (model.Location, error) {
	if arg == Name || base == Name {
		dir, err := Checkpoint()
		if err != nil || arg == Name {
			return model.Location{Dir: dir}, err
		}
		base = dir
	}
	return model.Locate(arg, base)
}

func extract() (string, error) {
	sum, err := digest()
	if err != nil {
		return "", err
	}
	base, err := cacheFn()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	root := filepath.Join(base, "lavascope")
	dst := filepath.Join(root, "demo-"+sum)
	if complete(dst) {
		return dst, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("demo checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".demo-tmp-")
	if err != nil {
		return "", fmt.Errorf("demo checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	err = each(func(name string, data []byte) error {
		return os.WriteFile(filepath.Join(tmp, name), data, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("demo checkpoint: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		// Another process may have written the same folder meanwhile.
		if complete(dst) {
			return dst, nil
		}
		return "", fmt.Errorf("demo checkpoint: %w", err)
	}
	return dst, nil
}

// digest hashes the embedded files' names and contents.
func digest() (string, error) {
	h := sha256.New()
	err := each(func(name string, data []byte) error {
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// complete reports whether dir holds every embedded file at its size.
func complete(dir string) bool {
	err := each(func(name string, data []byte) error {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if st.Size() != int64(len(data)) {
			return fs.ErrInvalid
		}
		return nil
	})
	return err == nil
}

// Load opens the embedded model with o, and its tokenizer.
func Load(o model.Options) (*model.CLIP, *tokenizer.Tokenizer, error) {
	dir, err := Checkpoint()
	if err != nil {
		return nil, nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("demo tokenizer: %w", err)
	}
	m, err := model.Load(dir, o)
	if err != nil {
		return nil, nil, fmt.Errorf("demo model: %w", err)
	}
	return m, tok, nil
}
