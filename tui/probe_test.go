package tui_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/tui"
)

// TestGoldenProbe edits reading A of the first pair: a broken tree shows
// its error and column, reading B's tree gives reading B's logits beside
// the original's, and R ranks reading A's structures.
func TestGoldenProbe(t *testing.T) {
	h := newHarness(t, options{w: 100, h: 30})
	h.keys("enter", "E", "left", "left", "backspace")
	golden(t, "probe_editor_error", h.view())
	h.keys("ctrl+u")
	h.typeText(families[0].trees[1])
	h.keys("enter")
	v := h.view()
	golden(t, "probe_edited", v)
	if !strings.Contains(v, "edited A") || !strings.Contains(v, "1 edit") {
		t.Errorf("the edit is not shown:\n%s", v)
	}
	h.keys("R")
	golden(t, "probe_ranking", h.view())
}

// TestEditReproducesOtherReading: reading A edited to reading B's tree
// scores as reading B, in the same batch, to the last bit: the two read
// one text, which model.Inputs gives one row.
func TestEditReproducesOtherReading(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36})
	h.keys("enter", "E", "ctrl+u")
	h.typeText(families[0].trees[1])
	h.keys("enter")
	for i, row := range cells(t, h.view()) {
		// Per text: was→now delta.
		_, nowA, _ := strings.Cut(row[0], "→")
		nowA, deltaA, _ := strings.Cut(nowA, " ")
		wasB, nowB, _ := strings.Cut(row[1], "→")
		nowB, deltaB, _ := strings.Cut(nowB, " ")
		if nowA != wasB || nowB != wasB || deltaB != "+0.00" || deltaA == "+0.00" {
			t.Errorf("image %d: edited reading A does not score as reading B: %q", i, row)
		}
	}
}

// TestEditUndoAndSave: u undoes an edit; the live edits are appended to a
// manifest as new pairs that the loader reads back, never over the input.
func TestEditUndoAndSave(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36})
	m := h.m.(*tui.Model)
	edit := func() {
		h.keys("E", "ctrl+u")
		h.typeText(families[0].trees[1])
		h.keys("enter")
	}
	h.keys("enter")
	edit()
	h.keys("u")
	if v := h.view(); !strings.Contains(v, "undid the edit of reading A") {
		t.Errorf("u did not undo:\n%s", v)
	}
	h.keys("u")
	if v := h.view(); !strings.Contains(v, "no edit of this pair to undo") {
		t.Errorf("a second u found an edit:\n%s", v)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "edits.jsonl")
	if n, err := m.SaveEdits(out, ""); err != nil || n != 0 {
		t.Fatalf("SaveEdits with every edit undone: %d, %v", n, err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("nothing to save wrote %s: %v", out, err)
	}
	edit()
	for want := 1; want <= 2; want++ {
		n, err := m.SaveEdits(out, "")
		if err != nil || n != 1 {
			t.Fatalf("SaveEdits: %d, %v", n, err)
		}
		ds, err := loader.Load(out, loader.Options{})
		if err != nil {
			t.Fatalf("the saved manifest does not load: %v", err)
		}
		if len(ds.Pairs) != want {
			t.Fatalf("%d pairs saved after %d saves", len(ds.Pairs), want)
		}
		p := ds.Pairs[want-1]
		orig := testPairs(1)[0]
		if p.ID != orig.ID+"-edit"+string(rune('0'+want)) || p.Readings[0].Tree != families[0].trees[1] || p.Readings[1].Tree != families[0].trees[1] {
			t.Errorf("saved pair %d: %s %q / %q", want, p.ID, p.Readings[0].Tree, p.Readings[1].Tree)
		}
		if _, err := ds.Image(&p.Readings[0]); err != nil {
			t.Errorf("saved image: %v", err)
		}
	}
	if _, err := m.SaveEdits(out, out); err == nil || !strings.Contains(err.Error(), "never written over") {
		t.Errorf("saving over the input: %v", err)
	}
}

// TestProbeKeysWithoutProber: an engine that cannot score trees says so.
func TestProbeKeysWithoutProber(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36, noProbe: true})
	h.keys("enter", "E")
	if v := h.view(); !strings.Contains(v, "cannot score trees") {
		t.Errorf("E without a prober:\n%s", v)
	}
	h.keys("R")
	if v := h.view(); !strings.Contains(v, "cannot score trees") {
		t.Errorf("R without a prober:\n%s", v)
	}
}

// TestEditedFollowsEngine: the edited pair is scored again under the model
// shown when b switches to the model before a fine-tune.
func TestEditedFollowsEngine(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36})
	h.keys("T", "backspace", "backspace", "backspace", "2", "0", "enter", "esc", "enter", "E", "ctrl+u")
	h.typeText(families[0].trees[1])
	h.keys("enter")
	after := h.view()
	h.keys("b")
	before := h.view()
	for _, v := range []string{after, before} {
		if !strings.Contains(v, "was→now") || strings.Contains(v, "scoring the edit") {
			t.Fatalf("the edited pair is not scored:\n%s", v)
		}
	}
	if !strings.Contains(before, "ckpt fake ") || strings.Contains(before, "ckpt fake+ft1") {
		t.Errorf("b did not show the model before:\n%s", before)
	}
}
