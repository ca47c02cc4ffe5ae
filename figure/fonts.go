package figure

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

// fontStyle is one of the three Go fonts a figure uses.
type fontStyle uint8

const (
	regular fontStyle = iota
	bold
	italic
)

var (
	fontsOnce sync.Once
	fonts     [3]*sfnt.Font
	fontsErr  error

	facesMu sync.Mutex
	faces   = map[faceKey]font.Face{}
)

type faceKey struct {
	style fontStyle
	size  float64
}

func loadFonts() error {
	fontsOnce.Do(func() {
		for i, ttf := range [][]byte{goregular.TTF, gobold.TTF, goitalic.TTF} {
			if fonts[i], fontsErr = opentype.Parse(ttf); fontsErr != nil {
				fontsErr = fmt.Errorf("figure: the embedded Go font: %w", fontsErr)
				return
			}
		}
	})
	return fontsErr
}

// face returns the style at size pixels. Faces are kept: a figure draws
// with a handful of sizes, and opentype faces cache their glyphs, which is
// most of the cost of drawing text. Callers hold facesMu while they use a
// face, since opentype faces are not safe for concurrent use.
func face(style fontStyle, size float64) (font.Face, error) {
	if err := loadFonts(); err != nil {
		return nil, err
	}
	// Sizes are rounded so that layout and drawing share faces.
	size = math.Round(size*4) / 4
	k := faceKey{style, size}
	if f, ok := faces[k]; ok {
		return f, nil
	}
	f, err := opentype.NewFace(fonts[style], &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
	if err != nil {
		return nil, fmt.Errorf("figure: font face: %w", err)
	}
	faces[k] = f
	return f, nil
}

// measure returns the advance of s in style at size, in the same units.
func measure(style fontStyle, size float64, s string) float64 {
	facesMu.Lock()
	defer facesMu.Unlock()
	f, err := face(style, size)
	if err != nil {
		// Without a font nothing is drawn either (New checks loadFonts
		// first); an estimate keeps the layout total.
		return 0.55 * size * float64(len([]rune(s)))
	}
	return fixedFloat(font.MeasureString(f, s))
}

func fixedFloat(v fixed.Int26_6) float64 { return float64(v) / 64 }

// wrap breaks s into lines no wider than width, at spaces where it can and
// inside a word only where the word alone is wider.
func wrap(style fontStyle, size, width float64, s string) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		cand := w
		if cur != "" {
			cand = cur + " " + w
		}
		if measure(style, size, cand) <= width {
			cur = cand
			continue
		}
		if cur != "" {
			lines = append(lines, cur)
		}
		cur = ""
		for measure(style, size, w) > width {
			r := []rune(w)
			k := len(r) - 1
			for k > 1 && measure(style, size, string(r[:k])) > width {
				k--
			}
			lines = append(lines, string(r[:k]))
			w = string(r[k:])
		}
		cur = w
	}
	if cur != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}

// ellipsize cuts s to width, ending it in "…" when anything was cut.
func ellipsize(style fontStyle, size, width float64, s string) string {
	if measure(style, size, s) <= width {
		return s
	}
	r := []rune(s)
	for k := len(r) - 1; k > 0; k-- {
		if c := string(r[:k]) + "…"; measure(style, size, c) <= width {
			return c
		}
	}
	return "…"
}
