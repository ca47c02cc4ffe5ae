package model

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// A run folder (TrainOptions.Out) holds:
//
//	best/            the checkpoint of the best evaluation (HF layout + trainer_state.json)
//	last/            the latest checkpoint, resumable: also optimizer.safetensors
//	log.jsonl        one JSON object per step and per evaluation
//
// Both checkpoints are complete Hugging Face CLIP folders (config.json,
// model.safetensors, vocab.json, merges.txt, preprocessor_config.json).
// Each is written whole into a temporary folder beside it and then swapped
// in, so a reader (or a crash) sees the old folder or the new one.

const (
	trainStateFile   = "trainer_state.json"
	optimizerFile    = "optimizer.safetensors"
	trainStateFormat = "lavascope-train/1"
	// BestDir and LastDir are the checkpoint folders of a run.
	BestDir = "best"
	LastDir = "last"
)

// TrainArgs are the settings of a run that fix its result; a resumed run
// must have the same.
type TrainArgs struct {
	// Recipe is the recipe the settings started from, if any; the values
	// below are what the run used, overrides included.
	Recipe      string  `json:"recipe,omitempty"`
	Input       string  `json:"input"`
	Style       string  `json:"style"`
	BatchPairs  int     `json:"batch_pairs"`
	Steps       int     `json:"steps"`
	LR          float64 `json:"lr"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	WeightDecay float64 `json:"weight_decay"`
	Warmup      int     `json:"warmup"`
	// Schedule is empty in the states of versions before it, which had
	// the cosine schedule only.
	Schedule          string  `json:"schedule,omitempty"`
	ClipGrad          float64 `json:"clip_grad"`
	NoLogitScaleClamp bool    `json:"no_logit_scale_clamp,omitempty"`
	// Freeze is Freeze's String; earlier versions wrote FreezeVision
	// instead, which ReadTrainState turns into Freeze.
	Freeze       string `json:"freeze,omitempty"`
	FreezeVision bool   `json:"freeze_vision,omitempty"`
	Seed         uint64 `json:"seed"`
	EvalEvery    int    `json:"eval_every"`
}

func argsOf(o *TrainOptions) TrainArgs {
	return TrainArgs{
		Recipe: o.Recipe, Input: o.Input, Style: o.Style.String(), BatchPairs: o.BatchPairs, Steps: o.Steps,
		LR: o.AdamW.LR, Beta1: o.AdamW.Beta1, Beta2: o.AdamW.Beta2, Eps: o.AdamW.Eps,
		WeightDecay: o.AdamW.WeightDecay, Warmup: o.Warmup, Schedule: string(o.Schedule), ClipGrad: o.ClipGrad,
		NoLogitScaleClamp: o.NoLogitScaleClamp, Freeze: o.Freeze.String(), Seed: o.Seed, EvalEvery: o.EvalEvery,
	}
}

// normalize writes the settings of an earlier version's state as this
// version does, so that they compare equal to the same run's.
func (a *TrainArgs) normalize() {
	if a.Schedule == "" {
		a.Schedule = string(ScheduleCosine)
	}
	if a.Freeze == "" {
		a.Freeze = FreezeNone.String()
		if a.FreezeVision {
			a.Freeze = FreezeVision.String()
		}
	}
	a.FreezeVision = false
}

// Options turns saved settings back into TrainOptions, for resuming.
func (a TrainArgs) Options() (TrainOptions, error) {
	a.normalize()
	st, err := trees.ParseStyle(a.Style)
	if err != nil {
		return TrainOptions{}, err
	}
	sch, err := ParseSchedule(a.Schedule)
	if err != nil {
		return TrainOptions{}, err
	}
	fr, err := ParseFreeze(a.Freeze)
	if err != nil {
		return TrainOptions{}, err
	}
	return TrainOptions{
		Recipe: a.Recipe, Input: a.Input, Style: st, BatchPairs: a.BatchPairs, Steps: a.Steps,
		AdamW:  torch.AdamWOptions{LR: a.LR, Beta1: a.Beta1, Beta2: a.Beta2, Eps: a.Eps, WeightDecay: a.WeightDecay},
		Warmup: a.Warmup, Schedule: sch, ClipGrad: a.ClipGrad, NoLogitScaleClamp: a.NoLogitScaleClamp,
		Freeze: fr, Seed: a.Seed, EvalEvery: a.EvalEvery,
	}, nil
}

// DataInfo identifies the data of a run.
type DataInfo struct {
	// Source is what the run was told to read (a manifest or demo).
	Source      string `json:"source,omitempty"`
	TrainPairs  int    `json:"train_pairs"`
	ValPairs    int    `json:"val_pairs"`
	Fingerprint string `json:"fingerprint"`
	// Images fingerprints the training images' bytes (train_images.go);
	// runs saved before it was recorded have none and are not checked.
	Images string `json:"images,omitempty"`
}

// TrainState is trainer_state.json: where a run stands.
type TrainState struct {
	Format string `json:"format"`
	// Step is the number of steps done, of Steps.
	Step     int     `json:"step"`
	Steps    int     `json:"steps"`
	Epoch    float64 `json:"epoch"`
	Complete bool    `json:"complete"`
	// BestStep is the step of best/ (0: none yet); BestMetric names what
	// chose it (val_accuracy, higher is better, or train_loss, lower is
	// better, the mean over the evaluation interval) and BestValue its value.
	BestStep   int       `json:"best_step"`
	BestMetric string    `json:"best_metric"`
	BestValue  float64   `json:"best_value"`
	Args       TrainArgs `json:"args"`
	Data       DataInfo  `json:"data"`
	// LastEval is the latest evaluation on the val split (tallies only).
	LastEval *EvalSummary `json:"last_eval,omitempty"`
	// Command is the command line that started the run.
	Command string `json:"command,omitempty"`
	// Truncated counts the training texts cut to the context length.
	Truncated int `json:"truncated"`
	// OptimizerAtEnd says the run writes the optimizer state into last/
	// only when it ends (TrainOptions.OptimizerAtEnd).
	OptimizerAtEnd bool `json:"optimizer_at_end,omitempty"`
}

// ErrNoOptimizerState is why a run whose last/ lacks the optimizer state
// cannot be resumed.
var ErrNoOptimizerState = errors.New("no optimizer state")

// EvalSummary is an evaluation without its per-reading scores.
type EvalSummary struct {
	Step int `json:"step"`
	Tally
	ImageToText Tally         `json:"image_to_text"`
	Families    []FamilyTally `json:"families"`
}

func summarize(step int, r *EvalResult) *EvalSummary {
	return &EvalSummary{Step: step, Tally: r.Tally, ImageToText: r.ImageToText, Families: r.Families}
}

// ReadTrainState reads dir/trainer_state.json.
func ReadTrainState(dir string) (*TrainState, error) {
	path := filepath.Join(dir, trainStateFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st TrainState
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if st.Format != trainStateFormat {
		return nil, fmt.Errorf("%s: format %q, want %q", path, st.Format, trainStateFormat)
	}
	if st.Step < 0 || st.Step > st.Steps {
		return nil, fmt.Errorf("%s: step %d is outside 0..%d", path, st.Step, st.Steps)
	}
	st.Args.normalize()
	return &st, nil
}

// Fingerprinter is a Split that names its content cheaply; other splits
// are fingerprinted by hashing every pair's id and trees.
type Fingerprinter interface {
	Fingerprint() string
}

func splitFingerprint(s Split) (string, error) {
	if f, ok := s.(Fingerprinter); ok {
		return f.Fingerprint(), nil
	}
	h := sha256.New()
	for i := range s.Len() {
		p, err := s.Pair(i)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%q", p.ID)
		for _, r := range p.Readings {
			fmt.Fprintf(h, " %q %q", r.Tree, r.Image)
		}
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// prepareOut makes the run folder and, when resuming, returns the saved
// state after checking it matches this run.
func (t *trainer) prepareOut() (*TrainState, error) {
	out := t.o.Out
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	if err := removeTemps(out); err != nil {
		return nil, err
	}
	last := filepath.Join(out, LastDir)
	st, err := ReadTrainState(last)
	if !t.o.Resume {
		switch {
		case err == nil:
			return nil, fmt.Errorf("%s already holds a run (step %d of %d); continue it with --resume or choose another --out", out, st.Step, st.Steps)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s already holds a run whose state cannot be read: %w", out, err)
		}
		for _, name := range []string{BestDir, runLogFile} {
			if _, err := os.Stat(filepath.Join(out, name)); err == nil {
				return nil, fmt.Errorf("%s already holds %s; choose another --out", out, name)
			}
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot resume the run in %s: %w", out, err)
	}
	if st.Complete || st.Step >= st.Steps {
		return nil, fmt.Errorf("the run in %s is complete (step %d of %d): nothing to resume", out, st.Step, st.Steps)
	}
	if diff := diffArgs(st.Args, t.state.Args); diff != "" {
		return nil, fmt.Errorf("cannot resume the run in %s with other settings: %s", out, diff)
	}
	if st.Data.Fingerprint != t.state.Data.Fingerprint || st.Data.TrainPairs != t.state.Data.TrainPairs {
		return nil, fmt.Errorf("cannot resume the run in %s: its training split was %d pairs (%s), this one is %d pairs (%s)",
			out, st.Data.TrainPairs, st.Data.Fingerprint, t.state.Data.TrainPairs, t.state.Data.Fingerprint)
	}
	if st.Data.Images != "" && st.Data.Images != t.state.Data.Images {
		if changed := changedImages(t.prevImages, t.images); changed != "" {
			return nil, fmt.Errorf("cannot resume the run in %s: images of its training split changed since it started: %s", out, changed)
		}
		return nil, fmt.Errorf("cannot resume the run in %s: the images of its training split changed since it started (%s, now %s)", out, st.Data.Images, t.state.Data.Images)
	}
	if st.BestMetric != t.state.BestMetric {
		return nil, fmt.Errorf("cannot resume the run in %s: it chose its best checkpoint by %s, this run would by %s (is the val split missing?)", out, st.BestMetric, t.state.BestMetric)
	}
	if _, err := os.Stat(filepath.Join(last, optimizerFile)); st.Step > 0 && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot resume the run in %s: %s (step %d of %d) has %w; the run writes it only when it ends "+
			"(--save-optimizer end) and was killed before, so AdamW would restart and the run would not continue exactly; "+
			"start a new run from it instead (--from %s)", out, last, st.Step, st.Steps, ErrNoOptimizerState, last)
	}
	return st, nil
}

// diffArgs lists the settings that differ, as "name saved → new".
func diffArgs(a, b TrainArgs) string {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var ma, mb map[string]any
	_ = json.Unmarshal(ja, &ma)
	_ = json.Unmarshal(jb, &mb)
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(ma)) {
		if fmt.Sprint(ma[k]) != fmt.Sprint(mb[k]) {
			diffs = append(diffs, fmt.Sprintf("%s %v → %v", k, ma[k], mb[k]))
		}
	}
	return strings.Join(diffs, ", ")
}

// removeTemps deletes the temporary folders a crash left in the run folder.
func removeTemps(out string) error {
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if err := os.RemoveAll(filepath.Join(out, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// saveLast writes last/, with the optimizer state unless the run keeps it
// for its end and this is not the end.
func (t *trainer) saveLast(end bool) error {
	t.state.Complete = t.state.Step >= t.state.Steps
	optimizer := end || !t.o.OptimizerAtEnd
	err := t.w.Do(func() error { return t.writeCheckpoint(LastDir, optimizer) })
	if err != nil {
		return fmt.Errorf("saving %s: %w", filepath.Join(t.o.Out, LastDir), err)
	}
	t.savedLast, t.savedLastOptimizer = t.state.Step, optimizer
	return nil
}

// saveBest writes best/.
func (t *trainer) saveBest() error {
	err := t.w.Do(func() error { return t.writeCheckpoint(BestDir, false) })
	if err != nil {
		return fmt.Errorf("saving %s: %w", filepath.Join(t.o.Out, BestDir), err)
	}
	return nil
}

// writeCheckpoint writes the model, tokenizer, preprocessing and state into
// a temporary folder and swaps it in as out/name. It runs on the worker.
func (t *trainer) writeCheckpoint(name string, optimizer bool) (err error) {
	tmp, err := os.MkdirTemp(t.o.Out, ".tmp-"+name+"-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	// MkdirTemp makes the folder private; a checkpoint is as readable as
	// the files in it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// The tokenizer goes first so that Save records it in config.json; one
	// in the model's source folder is copied over it by Save.
	if err := t.tok.Save(tmp); err != nil {
		return err
	}
	if err := t.m.Save(tmp); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(tmp, "preprocessor_config.json")); err != nil {
		if err := WritePreprocessConfig(tmp, t.prep); err != nil {
			return err
		}
	}
	if optimizer {
		if err := t.saveOptimizer(filepath.Join(tmp, optimizerFile)); err != nil {
			return err
		}
	}
	state, err := json.MarshalIndent(t.state, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(tmp, trainStateFile), append(state, '\n')); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	return replaceDir(tmp, filepath.Join(t.o.Out, name))
}

// saveOptimizer writes the AdamW state keyed by parameter name:
// step.NAME (I64 scalar), exp_avg.NAME and exp_avg_sq.NAME (F32).
func (t *trainer) saveOptimizer(path string) error {
	s := torch.NewScope()
	defer s.Close()
	st, err := t.opt.State(s)
	if err != nil {
		return err
	}
	var out []safetensors.Tensor
	for key, ten := range st {
		kind, idx, _ := strings.Cut(key, ".")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= len(t.params) {
			return fmt.Errorf("optimizer state key %q", key)
		}
		name := kind + "." + t.params[i].Name
		if kind == "step" {
			v, err := ten.Int64s()
			if err != nil {
				return err
			}
			var data []byte
			for _, x := range v {
				data = binary.LittleEndian.AppendUint64(data, uint64(x))
			}
			out = append(out, safetensors.Tensor{Name: name, DType: safetensors.I64, Shape: []int64{int64(len(v))}, Data: data})
			continue
		}
		v, err := ten.Float32s()
		if err != nil {
			return fmt.Errorf("optimizer state %s: %w", name, err)
		}
		out = append(out, safetensors.F32Tensor(name, ten.Shape(), v))
	}
	return safetensors.Save(path, out, map[string]string{"format": trainStateFormat})
}

// loadOptimizer restores the AdamW state saved in last/. It runs on the
// worker.
func (t *trainer) loadOptimizer(st *TrainState) error {
	path := filepath.Join(t.o.Out, LastDir, optimizerFile)
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	index := map[string]int{}
	for i, p := range t.params {
		index[p.Name] = i
	}
	s := torch.NewScope()
	defer s.Close()
	state := map[string]*torch.Tensor{}
	for _, ti := range f.Tensors() {
		kind, name, _ := strings.Cut(ti.Name, ".")
		i, ok := index[name]
		if !ok {
			return fmt.Errorf("%s: state %s is for a parameter this run does not train", path, ti.Name)
		}
		key := kind + "." + strconv.Itoa(i)
		switch kind {
		case "step":
			v, err := f.Int64s(ti.Name)
			if err != nil {
				return err
			}
			state[key] = s.FromInt64(v)
		case "exp_avg", "exp_avg_sq", "max_exp_avg_sq":
			v, err := f.Float32s(ti.Name)
			if err != nil {
				return err
			}
			p := t.params[i].Tensor
			if !slices.Equal(ti.Shape, p.Shape()) {
				return fmt.Errorf("%s: state %s has shape %v, the parameter %v", path, ti.Name, ti.Shape, p.Shape())
			}
			state[key] = s.FromFloat32(v, int64(len(v))).Reshape(p.Shape()...).To(p.Device(), p.DType())
		default:
			return fmt.Errorf("%s: unknown optimizer state %s", path, ti.Name)
		}
	}
	if st.Step > 0 && len(state) == 0 {
		return fmt.Errorf("%s: no optimizer state for a run at step %d", path, st.Step)
	}
	if err := t.opt.LoadState(state); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// syncDir flushes a folder's entries to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some file systems cannot sync a folder; the files in it are synced.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// PreprocessFor is the image preprocessing of m: its checkpoint folder's
// preprocessor_config.json, or CLIP's at the model's image size. It must
// give images of the size the vision config takes.
func PreprocessFor(m *CLIP) (loader.PreprocessConfig, error) {
	size := m.cfg.Vision.ImageSize
	p := loader.DefaultPreprocessConfig()
	p.ShortestEdge, p.CropHeight, p.CropWidth = size, size, size
	where := "the default preprocessing"
	if m.Source != "" {
		var err error
		if p, err = loader.LoadPreprocessConfig(m.Source); err != nil {
			return p, err
		}
		where = filepath.Join(m.Source, "preprocessor_config.json")
	}
	h, w, err := p.Size()
	if err != nil {
		return p, fmt.Errorf("%s: %w", where, err)
	}
	if h != size || w != size {
		return p, fmt.Errorf("%s makes %dx%d images but the model's vision config takes %dx%d", where, w, h, size, size)
	}
	return p, nil
}

// WritePreprocessConfig writes dir/preprocessor_config.json as Hugging
// Face's CLIPImageProcessor would, so that HF and lavascope preprocess
// alike.
func WritePreprocessConfig(dir string, p loader.PreprocessConfig) error {
	size := map[string]int{"shortest_edge": p.ShortestEdge}
	if p.ShortestEdge <= 0 {
		size = map[string]int{"height": p.Height, "width": p.Width}
	}
	v := map[string]any{
		"crop_size":            map[string]int{"height": p.CropHeight, "width": p.CropWidth},
		"do_center_crop":       p.DoCenterCrop,
		"do_convert_rgb":       p.DoConvertRGB,
		"do_normalize":         p.DoNormalize,
		"do_rescale":           p.DoRescale,
		"do_resize":            p.DoResize,
		"image_mean":           p.Mean[:],
		"image_processor_type": "CLIPImageProcessor",
		"image_std":            p.Std[:],
		"resample":             int(p.Resample),
		"rescale_factor":       p.RescaleFactor,
		"size":                 size,
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, "preprocessor_config.json"), append(data, '\n'))
}
