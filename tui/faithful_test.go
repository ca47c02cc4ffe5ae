package tui_test

import (
	"strings"
	"testing"
)

// TestGoldenFaithfulness: p on the summary measures the split, and the
// table shows the means per family once every pair is measured.
func TestGoldenFaithfulness(t *testing.T) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"100x30", 100, 30}, {"80x24", 80, 24}} {
		h := newHarness(t, options{w: size.w, h: size.h})
		h.keys("a", "p")
		h.keys("pgdown")
		v := h.view()
		golden(t, "summary_faithful_"+size.name, v)
		if !strings.Contains(v, "all 9 pairs measured") {
			t.Errorf("%s: the sweep did not measure the split:\n%s", size.name, v)
		}
	}
}

// TestFaithfulnessNeedsEngine: an engine without tui.Faithfulness shows no
// faithfulness, and p on the summary says why.
func TestFaithfulnessNeedsEngine(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36, noProbe: true})
	h.keys("a")
	if v := h.view(); strings.Contains(v, "FAITHFUL") || strings.Contains(v, "p measure") {
		t.Errorf("the summary offers faithfulness without an engine for it:\n%s", v)
	}
	h.keys("p")
	if v := h.view(); !strings.Contains(v, "cannot measure faithfulness") {
		t.Errorf("p does not say why nothing happens:\n%s", v)
	}
	h.keys("esc", "enter")
	if v := h.view(); strings.Contains(v, "AUC±") {
		t.Errorf("the pair view shows metrics without an engine for them:\n%s", v)
	}
}

// TestGoldenRawTwin: without the heatmap (i) a twin-target column keeps
// the image its heatmap lay over, and names it.
func TestGoldenRawTwin(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36})
	h.keys("enter", "t", "i")
	v := h.view()
	golden(t, "pair_raw_twin", v)
	if !strings.Contains(v, "image B without heatmap") || !strings.Contains(v, "image A without heatmap") {
		t.Errorf("the columns do not name the images they show:\n%s", v)
	}
}

// TestFaithfulnessFollowsSettings: the pair view shows the open pair's
// metrics for the own target only, whose logit they measure, and the
// summary's sweep measures again under a new method.
func TestFaithfulnessFollowsSettings(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36})
	h.keys("enter")
	if v := h.view(); !strings.Contains(v, "AUC±") || !strings.Contains(v, "tok±") {
		t.Fatalf("the pair view does not show the open pair's metrics:\n%s", v)
	}
	h.keys("t")
	if v := h.view(); strings.Contains(v, "AUC±") {
		t.Errorf("the twin target shows the own logit's metrics:\n%s", v)
	}
	h.keys("t", "t", "esc", "a", "p", "pgdown")
	if v := h.view(); !strings.Contains(v, "all 9 pairs measured") {
		t.Fatalf("the sweep did not measure the split:\n%s", v)
	}
	h.keys("m", "pgdown")
	v := h.view()
	if !strings.Contains(v, "rollout") || !strings.Contains(v, "all 9 pairs measured") || !strings.Contains(v, "18/18") {
		t.Errorf("the sweep did not measure again under rollout:\n%s", v)
	}
}
