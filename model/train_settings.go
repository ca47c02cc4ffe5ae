package model

import (
	"fmt"
	"math"
	"strings"
)

// Schedule is the shape of the learning rate over a run, after the warmup.
type Schedule string

// The schedules; each is the transformers function of the same name with
// warmup (get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup,
// get_constant_schedule_with_warmup).
const (
	// ScheduleCosine decays to 0 along half a cosine (lavascope's default).
	ScheduleCosine Schedule = "cosine"
	// ScheduleLinear decays to 0 along a line (the authors' training).
	ScheduleLinear Schedule = "linear"
	// ScheduleConstant stays at the peak.
	ScheduleConstant Schedule = "constant"
)

// ParseSchedule reads cosine, linear or constant.
func ParseSchedule(s string) (Schedule, error) {
	switch sch := Schedule(s); sch {
	case ScheduleCosine, ScheduleLinear, ScheduleConstant:
		return sch, nil
	}
	return "", fmt.Errorf("schedule %q: want cosine, linear or constant", s)
}

// String is the schedule's name.
func (sch Schedule) String() string { return string(sch) }

// Set parses s into sch, so that a flag can hold a Schedule.
func (sch *Schedule) Set(s string) error {
	v, err := ParseSchedule(s)
	if err == nil {
		*sch = v
	}
	return err
}

// Type names the flag's value.
func (*Schedule) Type() string { return "schedule" }

// LR is the learning rate of step s (0-based) of a run of total steps:
// base·s/warmup during the warmup, then the schedule's decay from base at
// step warmup to 0 at step total (constant: base throughout). Step s is
// the one the rate is used for, as the transformers schedules are read
// before their first scheduler.step().
func (sch Schedule) LR(base float64, s, warmup, total int) float64 {
	if s < warmup {
		return base * float64(s) / float64(max(1, warmup))
	}
	progress := float64(s-warmup) / float64(max(1, total-warmup))
	switch sch {
	case ScheduleLinear:
		return base * max(0, 1-progress)
	case ScheduleConstant:
		return base
	}
	return base * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
}

// Freeze is the set of parameter groups a training keeps fixed: they get no
// gradient, no optimizer state and no update (the logit scale is not
// clamped either when frozen).
type Freeze uint8

// The groups, named after the Hugging Face CLIPModel's modules.
const (
	// FreezeVisionModel is vision_model.*: the vision transformer with its
	// embeddings and layer norms, but not the projection.
	FreezeVisionModel Freeze = 1 << iota
	// FreezeVisualProjection is visual_projection.weight.
	FreezeVisualProjection
	// FreezeTextModel is text_model.*.
	FreezeTextModel
	// FreezeTextProjection is text_projection.weight.
	FreezeTextProjection
	// FreezeLogitScale is logit_scale.
	FreezeLogitScale

	// FreezeNone trains every parameter.
	FreezeNone Freeze = 0
	// FreezeVision is the whole image side: vision_model and
	// visual_projection.
	FreezeVision = FreezeVisionModel | FreezeVisualProjection
	// FreezeText is the whole text side: text_model and text_projection.
	FreezeText = FreezeTextModel | FreezeTextProjection

	freezeAll = FreezeVision | FreezeText | FreezeLogitScale
)

// freezeNames are the names ParseFreeze reads; the shorthands come first so
// that String writes them where they fit.
var freezeNames = []struct {
	name string
	f    Freeze
}{
	{"vision", FreezeVision},
	{"text", FreezeText},
	{"vision-model", FreezeVisionModel},
	{"visual-projection", FreezeVisualProjection},
	{"text-model", FreezeTextModel},
	{"text-projection", FreezeTextProjection},
	{"logit-scale", FreezeLogitScale},
}

// FreezeNames lists the names ParseFreeze takes besides none.
func FreezeNames() []string {
	out := make([]string, len(freezeNames))
	for i, n := range freezeNames {
		out[i] = n.name
	}
	return out
}

// ParseFreeze reads none or a comma-separated list of groups: vision
// (vision-model and visual-projection), text (text-model and
// text-projection), vision-model, visual-projection, text-model,
// text-projection, logit-scale.
func ParseFreeze(s string) (Freeze, error) {
	if strings.TrimSpace(s) == "none" || s == "" {
		return FreezeNone, nil
	}
	var f Freeze
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		found := false
		for _, n := range freezeNames {
			if n.name == part {
				f |= n.f
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("freeze %q: %q is not a group (want none or a comma-separated list of %s)",
				s, part, strings.Join(FreezeNames(), ", "))
		}
	}
	return f, nil
}

// String is the canonical form ParseFreeze reads back: none, or the groups
// in a fixed order, shorthands where a whole side is frozen.
func (f Freeze) String() string {
	if f == FreezeNone {
		return "none"
	}
	var parts []string
	left := f
	for _, n := range freezeNames {
		if left&n.f == n.f && n.f != 0 {
			parts = append(parts, n.name)
			left &^= n.f
		}
	}
	return strings.Join(parts, ",")
}

// Set parses s into f, so that a flag can hold a Freeze.
func (f *Freeze) Set(s string) error {
	v, err := ParseFreeze(s)
	if err == nil {
		*f = v
	}
	return err
}

// Type names the flag's value.
func (*Freeze) Type() string { return "groups" }

// Frozen reports whether the parameter of that Hugging Face name is in f.
func (f Freeze) Frozen(param string) bool {
	switch {
	case strings.HasPrefix(param, "vision_model."):
		return f&FreezeVisionModel != 0
	case param == "visual_projection.weight":
		return f&FreezeVisualProjection != 0
	case strings.HasPrefix(param, "text_model."):
		return f&FreezeTextModel != 0
	case param == "text_projection.weight":
		return f&FreezeTextProjection != 0
	case param == "logit_scale":
		return f&FreezeLogitScale != 0
	}
	return false
}

// RecipeSetting is one setting of a training recipe: a flag of `lavascope
// train`, the value the recipe gives it, and where that value comes from.
type RecipeSetting struct {
	Flag, Value, Why string
}

// TrainRecipe is a named set of training settings.
type TrainRecipe struct {
	Name string
	// Source says where the settings come from.
	Source   string
	Settings []RecipeSetting
}

// TrainRecipes are the recipes `lavascope train --recipe` knows.
var TrainRecipes = []TrainRecipe{{
	Name:   "authors",
	Source: "the authors' training script,\nFormalismCLIP's src/baseline/treeclip/lavatrain.py",
	Settings: []RecipeSetting{
		{"lr", "1e-5", "transformers.AdamW(lr=1e-5)"},
		{"beta1", "0.9", "transformers.AdamW's default betas (0.9, 0.999)"},
		{"beta2", "0.999", "transformers.AdamW's default betas (0.9, 0.999)"},
		{"eps", "1e-6", "transformers.AdamW's default eps"},
		{"weight-decay", "0", "transformers.AdamW's default weight decay"},
		{"schedule", string(ScheduleLinear), `get_scheduler("linear", ...)`},
		{"warmup", "0", "num_warmup_steps=0"},
		{"clip-grad", "0", "no clipping"},
		{"logit-scale-clamp", "off", "CLIPModel's logit scale, which nothing clamps"},
		{"freeze", FreezeVisionModel.String(), "vision_model frozen; visual_projection and logit_scale train"},
	},
}}

// FindRecipe returns the recipe of that name.
func FindRecipe(name string) (*TrainRecipe, error) {
	var names []string
	for i := range TrainRecipes {
		if TrainRecipes[i].Name == name {
			return &TrainRecipes[i], nil
		}
		names = append(names, TrainRecipes[i].Name)
	}
	return nil, fmt.Errorf("recipe %q: want one of %s", name, strings.Join(names, ", "))
}
