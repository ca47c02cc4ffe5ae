package tui_test

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// TestGoldenCounterfactual: M masks the evidence boxes and the header
// shows each logit was→now with its delta; D then drops reading A's first
// phrase too, which leaves reading B's text (and so its logits, under the
// same mask) as they were under the mask alone; esc goes back to the pair
// as it is.
func TestGoldenCounterfactual(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30})
	h.keys("enter", "M")
	v := h.view()
	golden(t, "cf_mask", v)
	if !strings.Contains(v, "evidence boxes grey") || !strings.Contains(v, "→") {
		t.Errorf("the mask is not shown:\n%s", v)
	}
	// The fake engine moves a masked image's relevance away from its
	// box: each reading's share inside the box falls.
	if n := strings.Count(ansi.Strip(v), "box “bag”: "); n != 2 {
		t.Errorf("%d lines of relevance mass per box, want one per reading:\n%s", n, v)
	}
	for _, want := range []string{"box “bag”: 42% → 3%", "box “bag”: 35% → 6%"} {
		if !strings.Contains(ansi.Strip(v), want) {
			t.Errorf("no %q under the masked images:\n%s", want, v)
		}
	}
	masked := cells(t, v)
	h.keys("D")
	v = h.view()
	golden(t, "cf_mask_drop", v)
	if !strings.Contains(v, "A's NP “Danny” dropped") {
		t.Errorf("the drop is not shown:\n%s", v)
	}
	dropped := cells(t, v)
	for i := range 2 {
		if dropped[i][1] != masked[i][1] {
			t.Errorf("image %d, text B: %q under mask and drop of A, %q under the mask alone", i, dropped[i][1], masked[i][1])
		}
		if dropped[i][0] == masked[i][0] {
			t.Errorf("image %d, text A: dropping A's phrase changed nothing: %q", i, dropped[i][0])
		}
	}
	h.keys("esc")
	if v := h.view(); strings.Contains(v, "counterfactual") || !strings.Contains(v, "as it is") {
		t.Errorf("esc did not go back to the pair as it is:\n%s", v)
	}
	h.keys("M", "M", "M", "M")
	if v := h.view(); strings.Contains(v, "counterfactual") {
		t.Errorf("M four times (grey, mean, blur, off) left a mask on:\n%s", v)
	}
	h.keys("I")
	if v := h.view(); !strings.Contains(v, "images swapped") {
		t.Errorf("I did not swap the images:\n%s", v)
	}
}

// cells reads the header's was→now cells: [image][text].
func cells(t *testing.T, v string) [][]string {
	t.Helper()
	var out [][]string
	for _, l := range strings.Split(v, "\n") {
		_, table, ok := strings.Cut(ansi.Strip(l), "  image ")
		if !ok {
			continue
		}
		f := strings.Fields(table)
		if len(f) != 5 {
			t.Fatalf("a row of logits reads %q", l)
		}
		out = append(out, []string{f[1] + " " + f[2], f[3] + " " + f[4]})
	}
	if len(out) != 2 {
		t.Fatalf("%d rows of logits, want 2:\n%s", len(out), v)
	}
	return out
}

// TestCounterfactualKeysWithoutEngine: an engine that cannot score changed
// inputs says so for M, I and D.
func TestCounterfactualKeysWithoutEngine(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36, noProbe: true})
	h.keys("enter")
	for _, k := range []string{"M", "I", "D"} {
		h.keys(k)
		if v := h.view(); !strings.Contains(v, k+": this engine cannot score changed inputs") {
			t.Errorf("%s without a Counterfactual engine:\n%s", k, v)
		}
	}
}
