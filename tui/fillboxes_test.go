package tui

import (
	"image"
	"image/color"
	"testing"

	"github.com/lavascope/lavascope/loader"
)

// TestFillBoxes: the masked image drawn for a counterfactual fills the
// box's pixels (grey with the given colour, mean with the image's mean,
// blur with its neighbours' mean) and leaves every pixel outside alone.
func TestFillBoxes(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 64, 32))
	for y := range 32 {
		for x := range 64 {
			img.SetRGBA(x, y, color.RGBA{R: uint8(255 * ((x + y) % 2)), G: uint8(8 * y), B: 200, A: 255})
		}
	}
	box := loader.Box{Label: "bag", Role: loader.RoleEvidence, X0: 10, Y0: 5, X1: 30, Y1: 20}
	grey := color.RGBA{R: 122, G: 116, B: 104, A: 255}
	for _, fill := range []string{"grey", "mean", "blur"} {
		out := fillBoxes(img, []loader.Box{box}, fill, grey).(*image.RGBA)
		changed := 0
		for y := range 32 {
			for x := range 64 {
				got, was := out.RGBAAt(x, y), img.RGBAAt(x, y)
				in := image.Pt(x, y).In(box.Rect())
				switch {
				case !in && got != was:
					t.Fatalf("%s: pixel (%d,%d) outside the box changed: %v → %v", fill, x, y, was, got)
				case in && fill == "grey" && got != grey:
					t.Fatalf("grey: pixel (%d,%d) is %v", x, y, got)
				case in && fill == "mean" && got != (color.RGBA{R: 127, G: 124, B: 200, A: 255}):
					t.Fatalf("mean: pixel (%d,%d) is %v", x, y, got)
				case in && got != was:
					changed++
				}
			}
		}
		if changed == 0 {
			t.Errorf("%s: no pixel of the box changed", fill)
		}
	}
}
