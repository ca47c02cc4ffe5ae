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
