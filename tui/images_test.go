package tui_test

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/lavascope/lavascope/tui/graphics"
)

// TestRawImagesPlaced checks that sixel and kitty images are written, after
// the frame, into the blank cells the pair view leaves for them, that the
// cursor is saved and restored around each, and that they are drawn again
// at their new place after a resize.
func TestRawImagesPlaced(t *testing.T) {
	for _, tc := range []struct {
		mode  graphics.Mode
		begin string // how the image's escapes start
	}{
		{graphics.Sixel, "\x1bP"},
		{graphics.Kitty, "\x1b_G"},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			h := newHarness(t, options{w: 120, h: 36, mode: tc.mode})
			if len(h.raw) != 0 {
				t.Fatalf("the list drew images: %q", h.raw)
			}
			h.keys("enter")
			// Columns are (120-3)/2 = 58 wide, the second starts at 61; the
			// body (and the image) starts on row 6, counted from 0.
			draws := placed(h.raw)
			for _, at := range []string{"\x1b[7;1H", "\x1b[7;62H"} {
				seq, ok := draws[at]
				if !ok {
					t.Fatalf("no image drawn at %q; raw writes: %q", at, short(h.raw))
				}
				if !strings.HasPrefix(seq, tc.begin) {
					t.Errorf("image at %q starts %q, want %q", at, short([]string{seq}), tc.begin)
				}
			}
			frame := h.view()
			if line := strings.Split(frame, "\n")[6]; !strings.HasPrefix(line, strings.Repeat(" ", 20)) {
				t.Errorf("the cells under the image are not blank: %q", line)
			}

			h.raw = nil
			h.send(tea.WindowSizeMsg{Width: 100, Height: 30})
			h.settle()
			draws = placed(h.raw)
			if _, ok := draws["\x1b[7;52H"]; !ok {
				t.Errorf("after a resize to 100×30 no image at column 52; raw writes: %q", short(h.raw))
			}

			h.raw = nil
			h.keys("esc")
			if tc.mode == graphics.Kitty {
				all := strings.Join(h.raw, "")
				for _, id := range []string{"i=1", "i=2"} {
					if !strings.Contains(all, "a=d,d=I,"+id) {
						t.Errorf("leaving the pair view did not delete kitty image %s: %q", id, all)
					}
				}
			} else if len(h.raw) != 0 {
				t.Errorf("leaving the pair view wrote %q", short(h.raw))
			}
		})
	}
}

// TestBlocksNeedNoRaw checks that half-block images are part of the frame
// and nothing is written around the renderer.
func TestBlocksNeedNoRaw(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36})
	h.keys("enter", "n", "c")
	if len(h.raw) != 0 {
		t.Errorf("blocks mode wrote raw escapes: %q", short(h.raw))
	}
	if !strings.Contains(h.view(), "▀") {
		t.Error("no half-blocks in the pair view")
	}
}

// placed maps each "\x1b[row;colH" an image is drawn at to its escapes,
// checking the save/move/draw/restore frame around it.
func placed(raw []string) map[string]string {
	out := map[string]string{}
	for _, r := range raw {
		for _, part := range strings.Split(r, "\x1b7")[1:] {
			end := strings.Index(part, "H")
			if end < 0 || !strings.HasSuffix(part, "\x1b8") {
				continue
			}
			out[part[:end+1]] = strings.TrimSuffix(part[end+1:], "\x1b8")
		}
	}
	return out
}

func short(raw []string) []string {
	var out []string
	for _, r := range raw {
		if len(r) > 60 {
			r = r[:60] + "…"
		}
		out = append(out, r)
	}
	return out
}

// TestKittyImagesLeaveOnShrink checks that kitty images, which outlive the
// text under them, are deleted when a resize leaves no room for them.
func TestKittyImagesLeaveOnShrink(t *testing.T) {
	h := newHarness(t, options{w: 120, h: 36, mode: graphics.Kitty})
	h.keys("enter")
	h.raw = nil
	h.send(tea.WindowSizeMsg{Width: 40, Height: 10})
	h.settle()
	all := strings.Join(h.raw, "")
	if !strings.Contains(all, "a=d,d=I,i=1") || !strings.Contains(all, "a=d,d=I,i=2") || strings.Contains(all, "a=T") {
		t.Errorf("after shrinking below the minimum size: %q", short(h.raw))
	}
}
