package model

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/model/safetensors"
)

// TestScheduleShapes: the linear schedule falls from the peak at the first
// step after the warmup to 0 at the run's end, as transformers'
// get_linear_schedule_with_warmup; the constant one stays at the peak.
func TestScheduleShapes(t *testing.T) {
	tests := []struct {
		sch              Schedule
		s, warmup, total int
		want             float64
	}{
		{ScheduleLinear, 0, 0, 100, 1},
		{ScheduleLinear, 50, 0, 100, 0.5},
		{ScheduleLinear, 99, 0, 100, 0.01},
		{ScheduleLinear, 100, 0, 100, 0},
		{ScheduleLinear, 5, 10, 110, 0.5},
		{ScheduleLinear, 10, 10, 110, 1},
		{ScheduleLinear, 60, 10, 110, 0.5},
		{ScheduleLinear, 200, 10, 110, 0},
		{ScheduleConstant, 0, 0, 100, 1},
		{ScheduleConstant, 5, 10, 100, 0.5},
		{ScheduleConstant, 100, 10, 100, 1},
	}
	for _, tc := range tests {
		if got := tc.sch.LR(1, tc.s, tc.warmup, tc.total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s LR(1, %d, %d, %d) = %g, want %g", tc.sch, tc.s, tc.warmup, tc.total, got, tc.want)
		}
	}
	if _, err := ParseSchedule("step"); err == nil {
		t.Error("ParseSchedule(step): no error")
	}
}

func TestParseFreeze(t *testing.T) {
	// frozen lists the expected groups by the start of their parameters'
	// names.
	tests := []struct {
		in, canon string
		frozen    []string
	}{
		{"none", "none", nil},
		{"", "none", nil},
		{"vision", "vision", []string{"vision_model.", "visual_projection."}},
		{"vision-model,visual-projection", "vision", []string{"vision_model.", "visual_projection."}},
		{"vision-model", "vision-model", []string{"vision_model."}},
		{"logit-scale, text-projection", "text-projection,logit-scale", []string{"logit_scale", "text_projection."}},
		{"text,vision-model", "text,vision-model", []string{"text_model.", "text_projection.", "vision_model."}},
	}
	all := []string{"vision_model.embeddings.patch_embedding.weight", "vision_model.post_layernorm.bias",
		"vision_model.encoder.layers.0.mlp.fc1.weight", "vision_model.pre_layrnorm.weight", "visual_projection.weight",
		"text_model.embeddings.token_embedding.weight", "text_model.final_layer_norm.bias", "text_projection.weight", "logit_scale"}
	for _, tc := range tests {
		f, err := ParseFreeze(tc.in)
		if err != nil {
			t.Fatalf("ParseFreeze(%q): %v", tc.in, err)
		}
		if f.String() != tc.canon {
			t.Errorf("ParseFreeze(%q) = %s, want %s", tc.in, f, tc.canon)
		}
		if back, _ := ParseFreeze(f.String()); back != f {
			t.Errorf("%s does not read back", f)
		}
		for _, name := range all {
			want := slices.ContainsFunc(tc.frozen, func(prefix string) bool { return strings.HasPrefix(name, prefix) })
			if f.Frozen(name) != want {
				t.Errorf("%s: Frozen(%s) = %v, want %v", tc.in, name, !want, want)
			}
		}
	}
	for _, bad := range []string{"vision-tower", "vision,,text", "all"} {
		if _, err := ParseFreeze(bad); err == nil || !strings.Contains(err.Error(), "vision-model") {
			t.Errorf("ParseFreeze(%q): %v; want an error listing the groups", bad, err)
		}
	}
}

// TestTrainArgsOfEarlierVersions: a state written before the schedule and
// the freeze groups existed resumes as the run it was (cosine, the whole
// vision side frozen).
func TestTrainArgsOfEarlierVersions(t *testing.T) {
	dir := t.TempDir()
	old := `{"format": "lavascope-train/1", "step": 2, "steps": 4, "args": {"input": "tree", "style": "paper",
	  "batch_pairs": 1, "steps": 4, "lr": 1e-5, "beta1": 0.9, "beta2": 0.98, "eps": 1e-6, "weight_decay": 0.2,
	  "warmup": 1, "clip_grad": 1, "freeze_vision": true, "seed": 1, "eval_every": 2}}`
	if err := os.WriteFile(filepath.Join(dir, trainStateFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ReadTrainState(dir)
	if err != nil {
		t.Fatal(err)
	}
	o, err := st.Args.Options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Schedule != ScheduleCosine || o.Freeze != FreezeVision || o.NoLogitScaleClamp {
		t.Errorf("old state: schedule %s, freeze %s, no clamp %v", o.Schedule, o.Freeze, o.NoLogitScaleClamp)
	}
	if d := diffArgs(st.Args, argsOf(&o)); d != "" {
		t.Errorf("old state differs from its own options: %s", d)
	}
}

// TestTrainFreezeAndClamp trains with the authors' freeze (vision_model)
// and no clamp, then with the clamp: frozen weights stay byte for byte and
// get no optimizer state, the projection moves, and the logit scale is
// left above ln 100 only without the clamp.
func TestTrainFreezeAndClamp(t *testing.T) {
	train, val, _ := synthSplits(t, 40, 11)
	for _, clamp := range []bool{false, true} {
		m, tok := smallCLIP(t, train, 4)
		ls, _ := m.Param("logit_scale")
		if err := ls.Fill_(math.Log(200)); err != nil {
			t.Fatal(err)
		}
		before := paramValues(t, m)
		out := t.TempDir()
		o := quickOptions(out, 3)
		o.Freeze, o.NoLogitScaleClamp, o.Schedule = FreezeVisionModel, !clamp, ScheduleLinear
		if _, err := Train(context.Background(), m, tok, train, val, o); err != nil {
			t.Fatal(err)
		}
		after := paramValues(t, m)
		moved := map[string]bool{}
		for name, v := range before {
			moved[name] = !slices.Equal(v, after[name])
			if strings.HasPrefix(name, "vision_model.") && moved[name] {
				t.Errorf("clamp %v: frozen %s changed", clamp, name)
			}
		}
		for _, name := range []string{"visual_projection.weight", "text_projection.weight", "text_model.final_layer_norm.weight"} {
			if !moved[name] {
				t.Errorf("clamp %v: trainable %s did not change", clamp, name)
			}
		}
		scale := float64(after["logit_scale"][0])
		if clamp && scale > math.Log(100)+1e-6 || !clamp && scale <= math.Log(100) {
			t.Errorf("clamp %v: logit scale %.4f after training from ln 200 = %.4f (ln 100 = %.4f)", clamp, scale, math.Log(200), math.Log(100))
		}
		f, err := safetensors.Open(filepath.Join(out, LastDir, optimizerFile))
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, ti := range f.Tensors() {
			states = append(states, ti.Name)
			if strings.Contains(ti.Name, ".vision_model.") {
				t.Errorf("optimizer state %s for a frozen parameter", ti.Name)
			}
		}
		f.Close()
		if !slices.Contains(states, "exp_avg.visual_projection.weight") || !slices.Contains(states, "exp_avg.logit_scale") {
			t.Errorf("optimizer state lacks the projection or the logit scale: %v", states)
		}
	}
}

// TestOptimizerAtEnd: with OptimizerAtEnd, last/ written at an evaluation
// has no optimizer state, the end of the run writes it, and a last/
// without it (a run killed between evaluations) is refused by resume.
func TestOptimizerAtEnd(t *testing.T) {
	train, val, _ := synthSplits(t, 40, 12)
	m, tok := smallCLIP(t, train, 5)
	out := t.TempDir()
	opt := filepath.Join(out, LastDir, optimizerFile)
	progress := make(chan Progress)
	midway := make(chan bool, 1)
	go func() {
		for p := range progress {
			if p.Step == 2 {
				_, err := os.Stat(opt)
				midway <- err == nil
			}
		}
	}()
	o := quickOptions(out, 6)
	o.OptimizerAtEnd, o.StopAfter, o.Progress = true, 4, progress
	_, err := Train(context.Background(), m, tok, train, val, o)
	close(progress)
	if err != nil {
		t.Fatal(err)
	}
	if <-midway {
		t.Error("last/ at step 2 holds the optimizer state")
	}
	if _, err := os.Stat(opt); err != nil {
		t.Errorf("last/ at the end of the run: %v", err)
	}
	st, err := ReadTrainState(filepath.Join(out, LastDir))
	if err != nil {
		t.Fatal(err)
	}
	if !st.OptimizerAtEnd {
		t.Error("the state does not record OptimizerAtEnd")
	}
	if err := os.Remove(opt); err != nil {
		t.Fatal(err)
	}
	o = quickOptions(out, 6)
	o.Resume, o.OptimizerAtEnd = true, true
	_, err = Train(context.Background(), m, tok, train, val, o)
	if !errors.Is(err, ErrNoOptimizerState) || !strings.Contains(err.Error(), "--from") {
		t.Errorf("resuming without optimizer state: %v", err)
	}
}
