package explain

import (
	"bytes"
	"flag"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// update rewrites the golden files of this package's tests instead of
// comparing with them: go test ./explain -update.
var update = flag.Bool("update", false, "rewrite golden files under testdata")

// goldenPNG compares img pixel for pixel with testdata/name, or writes it there
// under -update.
func goldenPNG(t *testing.T, name string, img image.Image) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := WritePNG(path, img); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readPNG(t, path)
	got := toRGBA(img)
	if got.Rect.Size() != want.Rect.Size() {
		t.Fatalf("%s: size %v, golden %v (rerun with -update if the change is meant)", name, got.Rect.Size(), want.Rect.Size())
	}
	if !bytes.Equal(got.Pix, want.Pix) {
		diff := 0
		for i := range got.Pix {
			if got.Pix[i] != want.Pix[i] {
				diff++
			}
		}
		t.Fatalf("%s: %d channel values differ from the golden file (rerun with -update if the change is meant)", name, diff)
	}
}

func readPNG(t testing.TB, path string) *image.RGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return toRGBA(img)
}

func toRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}
