package tui_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/tui/graphics"
)

var update = flag.Bool("update", false, "rewrite the golden views in testdata/")

// golden compares a frame with testdata/NAME.txt (its text) and
// testdata/NAME.ansi (with its colours).
func golden(t *testing.T, name, frame string) {
	t.Helper()
	for _, f := range []struct{ ext, got string }{{".txt", ansi.Strip(frame) + "\n"}, {".ansi", frame + "\n"}} {
		path := filepath.Join("testdata", name+f.ext)
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(f.got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./tui -run %s -update to create it)", err, t.Name())
		}
		if string(want) != f.got {
			t.Errorf("%s differs from the frame (go test ./tui -run %s -update rewrites it after you checked the change):\n%s", path, t.Name(), diffLines(string(want), f.got))
		}
	}
}

// diffLines shows the first lines that differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 6; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d\n  want %q\n  got  %q\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}

// errPickle is a multi-line error, as model.PickleError's: the explorer
// showed its first line only.
var errPickle = errors.New(`checkpoint /data/ckpt: /data/ckpt/pytorch_model.bin is a PyTorch pickle; lavascope reads safetensors only (unpickling can run arbitrary code).
Convert a Hugging Face CLIP folder once, where transformers is installed:
    from transformers import CLIPModel, CLIPProcessor
    CLIPModel.from_pretrained("/data/ckpt").save_pretrained("/data/ckpt-safetensors", safe_serialization=True)
    CLIPProcessor.from_pretrained("/data/ckpt").save_pretrained("/data/ckpt-safetensors")
(an original OpenAI .pt file first goes through transformers' convert_clip_original_pytorch_to_hf.py)`)

func TestGoldenViews(t *testing.T) {
	tests := []struct {
		name string
		opt  options
		keys []string
	}{
		{"list_80x24", options{w: 80, h: 24}, nil},
		{"list_160x48", options{w: 160, h: 48}, nil},
		{"list_failures_by_margin", options{w: 100, h: 20}, []string{"f", "s"}},
		{"list_family_filter", options{w: 100, h: 20}, []string{"F", "F"}},
		{"list_search", options{w: 100, h: 20}, []string{"/", "l", "e", "a", "v"}},
		{"pair_160x48", options{w: 160, h: 48}, []string{"enter"}},
		{"pair_100x30", options{w: 100, h: 30}, []string{"j", "enter"}},
		{"pair_80x24", options{w: 80, h: 24}, []string{"enter"}},
		{"pair_rollout_twin_viridis", options{w: 120, h: 36}, []string{"enter", "m", "t", "c"}},
		{"pair_rdbu_all_layers", options{w: 120, h: 36, colormap: "rdbu"}, []string{"enter", "l", "t", "t"}},
		{"pair_sanitised", options{w: 120, h: 36}, []string{"j", "j", "j", "j", "enter"}},
		{"pair_scrolled", options{w: 100, h: 20}, []string{"enter", "j", "j", "j"}},
		{"pair_sixel_blank_cells", options{w: 120, h: 36, mode: graphics.Sixel}, []string{"enter"}},
		{"pair_no_graphics", options{w: 120, h: 36, mode: graphics.None}, []string{"enter"}},
		{"pair_next_next", options{w: 120, h: 36}, []string{"enter", "n", "n", "p"}},
		{"help_160x48", options{w: 160, h: 48}, []string{"?"}},
		{"help_80x24", options{w: 80, h: 24}, []string{"?"}},
		{"help_80x24_scrolled", options{w: 80, h: 24}, []string{"?", "j", "j", "j", "j", "j", "j", "j", "j", "j", "j", "j", "j", "j", "j"}},
		{"list_sort_margin_b_desc", options{w: 100, h: 20}, []string{"s", "s", "s", "S"}},
		{"list_sort_box_mass", options{w: 100, h: 20}, []string{"s", "s", "s", "s", "s"}},
		{"list_jump_prompt", options{w: 100, h: 20}, []string{":", "v", "p"}},
		{"summary_120x36", options{w: 120, h: 36}, []string{"a"}},
		{"summary_80x24", options{w: 80, h: 24}, []string{"a"}},
		{"pair_300x90", options{w: 300, h: 90}, []string{"enter"}},
		{"pair_raw_no_boxes", options{w: 120, h: 36}, []string{"enter", "i", "o"}},
		{"finetune_form", options{w: 100, h: 30}, []string{"T", "backspace", "backspace", "backspace", "4", "0", "tab", "tab", "tab", "space"}},
		{"finetune_bad_field", options{w: 100, h: 30}, []string{"T", "backspace", "backspace", "backspace", "enter"}},
		{"too_small", options{w: 40, h: 10}, nil},
		{"engine_failed_list", options{w: 100, h: 16, openErr: errors.New("libtorch shim not found: run make torch")}, []string{"esc"}},
		{"engine_failed_pair", options{w: 100, h: 30, openErr: errors.New("libtorch shim not found: run make torch")}, []string{"esc", "enter"}},
		{"engine_failed_message", options{w: 80, h: 16, openErr: errPickle}, nil},
		{"engine_failed_message_scrolled", options{w: 60, h: 16, openErr: errPickle}, []string{"j", "j", "j"}},
		{"engine_failed_message_again", options{w: 80, h: 24, openErr: errPickle}, []string{"esc", "enter", "!"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opt)
			h.keys(tc.keys...)
			golden(t, tc.name, h.view())
		})
	}
}

// TestGoldenFineTuneDone runs a fine-tune on the fake engine and shows the
// flipped readings, then the pair list before and after.
func TestGoldenFineTuneDone(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36})
	h.keys("f", "T", "backspace", "backspace", "backspace", "2", "0", "enter")
	golden(t, "finetune_done", h.view())
	h.keys("esc")
	golden(t, "finetune_after_list", h.view())
	h.keys("b")
	golden(t, "finetune_before_list", h.view())
	h.keys("f", "x")
	golden(t, "finetune_flipped_list", h.view())
	h.keys("enter", "B")
	golden(t, "finetune_compare", h.view())
	h.keys("L")
	golden(t, "finetune_compare_best", h.view())
	h.keys("T")
	if v := h.view(); !strings.Contains(v, "fake → fake+ft1/best") || !strings.Contains(v, "flipped") {
		t.Errorf("after L the panel does not compare with best:\n%s", v)
	}
}

// TestGoldenCompare80x24: before and after side by side stays readable at
// 80×24, and the status bar keeps the settings as the checkpoint grows.
func TestGoldenCompare80x24(t *testing.T) {
	h := newHarness(t, options{w: 80, h: 24})
	h.keys("T", "backspace", "backspace", "backspace", "2", "0", "enter", "esc", "enter", "B")
	golden(t, "compare_80x24", h.view())
	h.keys("L")
	golden(t, "compare_best_80x24", h.view())
}
