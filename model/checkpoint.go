package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/tokenizer"
)

// A checkpoint argument is a Hugging Face CLIP folder (config.json,
// model.safetensors or a sharded index, vocab.json, merges.txt), a snapshot
// folder of the HF cache (the same files, as links into blobs/), a cache repo
// folder (models--org--name), or a model id such as openai/clip-vit-base-patch32
// (optionally @revision) looked up in the local HF cache. lavascope never
// downloads.

// modelID matches HF repo ids: "name" or "org/name", with an optional @revision.
var modelID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?(@[A-Za-z0-9._/-]+)?$`)

// HubCacheDirs lists, in the order huggingface_hub gives them precedence, the
// folders that may hold the HF hub cache: $HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE,
// $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub and ~/.cache/huggingface/hub.
func HubCacheDirs() []string {
	var dirs []string
	add := func(d string) {
		if d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	add(os.Getenv("HF_HUB_CACHE"))
	add(os.Getenv("HUGGINGFACE_HUB_CACHE"))
	if h := os.Getenv("HF_HOME"); h != "" {
		add(filepath.Join(h, "hub"))
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		add(filepath.Join(x, "huggingface", "hub"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		add(filepath.Join(home, ".cache", "huggingface", "hub"))
	}
	return dirs
}

// ResolveCheckpoint turns a checkpoint argument into a folder. It does not
// check what the folder holds (OpenCheckpoint does); a pickle file given
// directly is refused (Locate takes torch.save files). When nothing is found
// the error says where it looked.
func ResolveCheckpoint(arg string) (string, error) {
	if arg == "" {
		return "", errors.New("no checkpoint given")
	}
	st, err := os.Stat(arg)
	if err == nil {
		if !st.IsDir() {
			switch {
			case isPickle(arg):
				if err := checkTorchZip(arg); err != nil {
					return "", err
				}
				return "", fmt.Errorf("%s is a torch.save file of weights only; here give the folder (or model id) with config.json and the tokenizer", arg)
			case strings.HasSuffix(arg, ".safetensors"):
				return filepath.Dir(arg), nil
			}
			return "", fmt.Errorf("checkpoint %s is a file; give the folder that holds config.json and model.safetensors", arg)
		}
		if isCacheRepo(arg) {
			return snapshot(arg, "main")
		}
		return arg, nil
	}
	looked := []string{fmt.Sprintf("%s (no such folder)", arg)}
	id, rev, _ := strings.Cut(arg, "@")
	if rev == "" {
		rev = "main"
	}
	if !modelID.MatchString(arg) || filepath.IsAbs(arg) || strings.Contains(arg, "..") {
		return "", fmt.Errorf("checkpoint %s: no such folder", arg)
	}
	for _, cache := range HubCacheDirs() {
		repo := filepath.Join(cache, "models--"+strings.ReplaceAll(id, "/", "--"))
		if _, err := os.Stat(repo); err != nil {
			looked = append(looked, fmt.Sprintf("%s (absent)", repo))
			continue
		}
		return snapshot(repo, rev)
	}
	return "", fmt.Errorf("checkpoint %s not found; looked at:\n  %s\nlavascope does not download models: fetch it with `hf download %s` (or `huggingface-cli download %s`), or give a folder",
		arg, strings.Join(looked, "\n  "), id, id)
}

func isCacheRepo(dir string) bool {
	if !strings.HasPrefix(filepath.Base(filepath.Clean(dir)), "models--") {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, "snapshots"))
	return err == nil && st.IsDir()
}

// snapshot resolves a revision of a cache repo folder: a ref under refs/ (main
// by default) names the snapshot; a commit hash names it directly.
func snapshot(repo, rev string) (string, error) {
	snaps := filepath.Join(repo, "snapshots")
	ref := filepath.Join(repo, "refs", filepath.FromSlash(rev))
	if b, err := os.ReadFile(ref); err == nil {
		commit := strings.TrimSpace(string(b))
		dir := filepath.Join(snaps, commit)
		if commit == "" || strings.ContainsAny(commit, `/\`) {
			return "", fmt.Errorf("%s: bad ref %q", ref, commit)
		}
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("%s names snapshot %s, which is absent (incomplete download?)", ref, dir)
		}
		return dir, nil
	}
	if !strings.ContainsAny(rev, `/\`) {
		if st, err := os.Stat(filepath.Join(snaps, rev)); err == nil && st.IsDir() {
			return filepath.Join(snaps, rev), nil
		}
	}
	entries, _ := os.ReadDir(snaps)
	var have []string
	for _, e := range entries {
		if e.IsDir() {
			have = append(have, e.Name())
		}
	}
	if rev == "main" && len(have) == 1 {
		return filepath.Join(snaps, have[0]), nil
	}
	return "", fmt.Errorf("%s: no ref or snapshot %q (snapshots: %v)", repo, rev, have)
}

// Pickle files that transformers and PyTorch write.
var pickleExts = []string{".bin", ".pt", ".pth", ".ckpt", ".pkl"}

func isPickle(path string) bool {
	return slices.Contains(pickleExts, strings.ToLower(filepath.Ext(path)))
}

// PickleError refuses a checkpoint stored as a legacy Python pickle (not the
// zip archive torch.save writes since PyTorch 1.6).
type PickleError struct {
	Path string // the pickle file
}

func (e *PickleError) Error() string {
	dir := filepath.Dir(e.Path)
	return fmt.Sprintf(`%s is a PyTorch pickle in the legacy format; lavascope reads safetensors and torch.save zip files (unpickling this one could run arbitrary code).
Re-save a state_dict in the zip format once, where PyTorch is installed, if you trust the file:
    import torch; torch.save(torch.load(%[2]q, map_location="cpu"), %[3]q)
or convert a Hugging Face CLIP folder, where transformers is installed:
    from transformers import CLIPModel, CLIPProcessor
    CLIPModel.from_pretrained(%[4]q).save_pretrained(%[5]q, safe_serialization=True)
    CLIPProcessor.from_pretrained(%[4]q).save_pretrained(%[5]q)
(an original OpenAI .pt file first goes through transformers' convert_clip_original_pytorch_to_hf.py)`,
		e.Path, e.Path, strings.TrimSuffix(e.Path, filepath.Ext(e.Path))+"-zip"+filepath.Ext(e.Path), dir, dir+"-safetensors")
}

// findPickle returns a pickle weight file in dir, if any.
func findPickle(dir string) string {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() && isPickle(e.Name()) {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}

// Checkpoint is an opened CLIP checkpoint with validated weights.
type Checkpoint struct {
	Dir     string // config.json and the tokenizer
	Config  *CLIPConfig
	Weights *Weights
}

// OpenCheckpoint resolves arg (see Locate, with no base) and opens it as
// OpenLocation does.
func OpenCheckpoint(arg string) (*Checkpoint, error) {
	loc, err := Locate(arg, "")
	if err != nil {
		return nil, err
	}
	return OpenLocation(loc)
}

// OpenLocation reads config.json, opens the weights (the folder's
// safetensors, else its torch.save pytorch_model.bin, or loc.File) and
// checks them against the configuration. Tensor data is read only when
// asked for.
func OpenLocation(loc Location) (*Checkpoint, error) {
	dir, file := loc.Dir, loc.File
	if file == "" {
		_, serr := os.Stat(filepath.Join(dir, singleFile))
		_, ierr := os.Stat(filepath.Join(dir, indexFile))
		if serr != nil && ierr != nil {
			if p := findPickle(dir); p != "" {
				if err := checkTorchZip(p); err != nil {
					return nil, err
				}
				file = p
			}
		}
	}
	cfgPath := filepath.Join(dir, "config.json")
	if _, err := os.Stat(cfgPath); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if _, lerr := os.Lstat(cfgPath); lerr == nil {
				return nil, fmt.Errorf("%s is a broken link (incomplete download?)", cfgPath)
			}
			return nil, fmt.Errorf("checkpoint %s: no config.json; is this a Hugging Face CLIP folder?", dir)
		}
		return nil, err
	}
	cfg, err := ReadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	var w *Weights
	if file != "" {
		w, err = OpenTorchWeights(file)
	} else {
		w, err = OpenWeights(dir)
	}
	if err != nil {
		return nil, err
	}
	if err := ValidateWeights(cfg, w); err != nil {
		w.Close()
		return nil, err
	}
	return &Checkpoint{Dir: dir, Config: cfg, Weights: w}, nil
}

// Close closes the weight files.
func (c *Checkpoint) Close() error { return c.Weights.Close() }

// ignoredBuffers are buffers older transformers versions saved with the
// weights; HF skips them on load, and so does lavascope.
var ignoredBuffers = []string{
	"text_model.embeddings.position_ids",
	"vision_model.embeddings.position_ids",
}

// ShapeMismatch is a tensor whose shape differs from the configuration's.
type ShapeMismatch struct {
	Name        string
	Want, Found []int64
}

// WeightsError lists every way a checkpoint's tensors differ from its config.
type WeightsError struct {
	Files      []string
	Missing    []ParamSpec
	Unexpected []safetensors.TensorInfo
	Shapes     []ShapeMismatch
	DTypes     []safetensors.TensorInfo // parameters stored as a non-floating-point type
}

func (e *WeightsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s does not match config.json:", strings.Join(e.Files, ", "))
	list := func(what string, n int, item func(int) string) {
		for i := range min(n, 10) {
			fmt.Fprintf(&b, "\n  %s: %s", what, item(i))
		}
		if n > 10 {
			fmt.Fprintf(&b, "\n  ... and %d more %s", n-10, what)
		}
	}
	list("missing", len(e.Missing), func(i int) string {
		return fmt.Sprintf("%s, expected shape %v", e.Missing[i].Name, e.Missing[i].Shape)
	})
	list("unexpected", len(e.Unexpected), func(i int) string {
		return fmt.Sprintf("%s, shape %v", e.Unexpected[i].Name, e.Unexpected[i].Shape)
	})
	list("shape mismatch", len(e.Shapes), func(i int) string {
		s := e.Shapes[i]
		return fmt.Sprintf("%s: expected %v, found %v", s.Name, s.Want, s.Found)
	})
	list("dtype", len(e.DTypes), func(i int) string {
		return fmt.Sprintf("%s is %s, want F32, F16, BF16 or F64", e.DTypes[i].Name, e.DTypes[i].DType)
	})
	return b.String()
}

// ValidateWeights checks the tensors against the parameters the configuration
// calls for: none missing, none unexpected, shapes equal, floating-point dtypes.
// The error is a *WeightsError naming every problem.
func ValidateWeights(cfg *CLIPConfig, w *Weights) error {
	e := &WeightsError{Files: w.Files}
	want := make(map[string]bool)
	for _, p := range cfg.Params() {
		want[p.Name] = true
		t, ok := w.Tensor(p.Name)
		switch {
		case !ok:
			e.Missing = append(e.Missing, p)
		case !slices.Equal(t.Shape, p.Shape):
			e.Shapes = append(e.Shapes, ShapeMismatch{Name: p.Name, Want: p.Shape, Found: t.Shape})
		case !t.DType.IsFloat():
			e.DTypes = append(e.DTypes, t.TensorInfo)
		}
	}
	for _, name := range w.Names() {
		if !want[name] && !slices.Contains(ignoredBuffers, name) {
			t, _ := w.Tensor(name)
			e.Unexpected = append(e.Unexpected, t.TensorInfo)
		}
	}
	if len(e.Missing)+len(e.Unexpected)+len(e.Shapes)+len(e.DTypes) > 0 {
		return e
	}
	return nil
}

// CheckpointTokenizer reads the tokenizer of the checkpoint folder dir and
// checks it against the folder's config.json (CheckTokenizer). It is the one
// way a checkpoint's model meets its tokenizer, so that every command
// refuses the same mismatches.
func CheckpointTokenizer(dir string) (*tokenizer.Tokenizer, error) {
	// Both errors name the file.
	cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	if err := CheckTokenizer(tok, cfg); err != nil {
		return nil, fmt.Errorf("%s: the tokenizer does not fit the model: %w", dir, err)
	}
	return tok, nil
}

// CheckTokenizer refuses a tokenizer whose ids the model cannot embed, or whose
// end of text is not where the model pools: either would make every score
// silently wrong.
func CheckTokenizer(tok *tokenizer.Tokenizer, cfg *CLIPConfig) error {
	if tok.VocabSize() > cfg.Text.VocabSize {
		return fmt.Errorf("the tokenizer has %d ids but the model's vocabulary only %d", tok.VocabSize(), cfg.Text.VocabSize)
	}
	if cfg.Text.PoolsAtArgmax() {
		if int(tok.EOS()) != tok.VocabSize()-1 {
			return fmt.Errorf("the model pools at argmax(input_ids) (eos_token_id 2) but the tokenizer's <|endoftext|> (%d) is not its largest id", tok.EOS())
		}
	} else if int(tok.EOS()) != cfg.Text.EOSTokenID {
		return fmt.Errorf("the tokenizer's <|endoftext|> is id %d but the model's eos_token_id is %d: the text encoder would pool at the wrong token", tok.EOS(), cfg.Text.EOSTokenID)
	}
	// Checkpoints lavascope saved record their tokenizer; others (from
	// transformers) cannot be checked beyond the lines above.
	if raw, ok := cfg.Extra[TokenizerKey]; ok {
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			return fmt.Errorf("config.json: %s: want a string, got %s", TokenizerKey, raw)
		}
		if got := tok.Fingerprint(); got != want {
			return fmt.Errorf("vocab.json or merges.txt changed since the model was saved with them (tokenizer %s, config.json's %s records %s)", got, TokenizerKey, want)
		}
	}
	return nil
}
