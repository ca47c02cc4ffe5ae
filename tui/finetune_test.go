package tui_test

import (
	"strings"
	"testing"
)

// TestGoldenFineTuneDoneLongName: the count of flips comes first, and a
// long checkpoint path is elided in its middle rather than cut.
func TestGoldenFineTuneDoneLongName(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30, engineName: "/root/.cache/lavascope/finetune/demo-20261207-210159/last"})
	h.keys("T", "backspace", "backspace", "backspace", "2", "0", "enter")
	v := h.view()
	golden(t, "finetune_done_long_name", v)
	if !strings.Contains(v, "readings flipped (") || !strings.Contains(v, "…") {
		t.Errorf("no count of flips or no elided path:\n%s", v)
	}
}

// TestFineTunePrecision: the form's precision reaches the engine; on the
// CPU it cycles fp32 and bf16-mixed, tf32 having no effect there.
func TestFineTunePrecision(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30})
	h.keys("T", "tab", "tab", "tab", "tab", "tab", "space")
	golden(t, "finetune_form_precision", h.view())
	h.keys("space")
	if v := h.view(); !strings.Contains(v, "< fp32 >") {
		t.Errorf("two presses on the CPU do not come back to fp32:\n%s", v)
	}
	h.keys("space", "enter")
	runs := h.engine.FineTunes()
	if len(runs) != 1 || runs[0].Precision != "bf16-mixed" {
		t.Fatalf("the engine got %+v, want one run in bf16-mixed", runs)
	}
}
