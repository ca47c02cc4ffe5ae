package graphics

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Escapes that save and restore the cursor position (DECSC, DECRC).
const (
	saveCursor    = "\x1b7"
	restoreCursor = "\x1b8"
)

// Encoder draws images in one [Mode] for a terminal whose cells measure
// CellWidth×CellHeight pixels.
type Encoder struct {
	// Mode is Sixel, Kitty, Blocks or None; Auto must be resolved with
	// [Detect] first.
	Mode Mode
	// CellWidth and CellHeight are a cell's size in pixels, which sixel
	// needs to size the image; zero means DefaultCellWidth×DefaultCellHeight.
	CellWidth, CellHeight int
	// ImageID names kitty images so that sending a new image with the same
	// id replaces the old one and Clear deletes just it; 0 lets the terminal
	// number them, and Clear then deletes all images.
	ImageID uint32
	// KittyRaw sends kitty images as raw RGB rather than PNG: about twice
	// the bytes, but no compression to wait for.
	KittyRaw bool
}

func (e *Encoder) cell() (w, h int) {
	if e.CellWidth <= 0 || e.CellHeight <= 0 {
		return DefaultCellWidth, DefaultCellHeight
	}
	return e.CellWidth, e.CellHeight
}

// layout returns the size in pixels to scale img to and the cells it covers
// in a cols×rows box.
func (e *Encoder) layout(img image.Image, cols, rows int) (pw, ph, c, r int) {
	b := img.Bounds()
	switch e.Mode {
	case Blocks:
		pw, ph = fit(b.Dx(), b.Dy(), cols, 2*rows, 1, 1)
		return pw, ph, pw, (ph + 1) / 2
	case None:
		return b.Dx(), b.Dy(), min(cols, len(placeholder(b.Dx(), b.Dy()))), 1
	}
	cw, ch := e.cell()
	pw, ph = fit(b.Dx(), b.Dy(), cols*cw, rows*ch, 1, 1)
	if e.Mode == Kitty {
		// kitty stretches the image over exactly c×r cells: round to the
		// nearest cell so that the aspect ratio bends by at most half a cell.
		c = min(cols, max(1, int(math.Round(float64(pw)/float64(cw)))))
		r = min(rows, max(1, int(math.Round(float64(ph)/float64(ch)))))
		return pw, ph, c, r
	}
	return pw, ph, (pw + cw - 1) / cw, (ph + ch - 1) / ch
}

// Cells returns the size in cells that Encode gives img in a cols×rows box.
func (e *Encoder) Cells(img image.Image, cols, rows int) (c, r int) {
	_, _, c, r = e.layout(img, cols, rows)
	return c, r
}

// Encode writes img, scaled to fit cols×rows cells with its aspect ratio,
// with its top-left corner at the cursor, and leaves the cursor where it
// was. It writes with one Write call, so that the escapes of one image are
// never interleaved with other output.
func (e *Encoder) Encode(w io.Writer, img image.Image, cols, rows int) error {
	b := img.Bounds()
	if b.Empty() {
		return errors.New("graphics: empty image")
	}
	if cols <= 0 || rows <= 0 {
		return fmt.Errorf("graphics: no room for an image in %d×%d cells", cols, rows)
	}
	var buf bytes.Buffer
	buf.WriteString(saveCursor)
	pw, ph, c, r := e.layout(img, cols, rows)
	switch e.Mode {
	case Sixel:
		if err := encodeSixel(&buf, resize(img, pw, ph)); err != nil {
			return err
		}
	case Kitty:
		if err := e.encodeKitty(&buf, resize(img, pw, ph), c, r); err != nil {
			return err
		}
	case Blocks:
		for i, line := range HalfBlocks(img, cols, rows) {
			if i > 0 {
				buf.WriteString(restoreCursor + "\x1b[" + strconv.Itoa(i) + "B")
			}
			buf.WriteString(line)
		}
	case None:
		buf.WriteString(placeholder(b.Dx(), b.Dy())[:c])
	default:
		return fmt.Errorf("graphics: cannot encode in mode %v: resolve it with Detect first", e.Mode)
	}
	buf.WriteString(restoreCursor)
	_, err := w.Write(buf.Bytes())
	return err
}

// placeholder is what None shows instead of an image.
func placeholder(w, h int) string { return fmt.Sprintf("[image %dx%d]", w, h) }

// kittyChunk is the most base64 bytes one kitty escape may carry.
const kittyChunk = 4096

// encodeKitty transmits and places img over c×r cells (a=T) without moving
// the cursor (C=1) and without replies (q=2), in chunks of kittyChunk bytes.
func (e *Encoder) encodeKitty(w *bytes.Buffer, img *image.RGBA, c, r int) error {
	var data []byte
	ctrl := "a=T,f=100"
	if e.KittyRaw {
		b := img.Rect
		data = make([]byte, 0, 3*b.Dx()*b.Dy())
		for y := range b.Dy() {
			row := img.Pix[y*img.Stride : y*img.Stride+4*b.Dx()]
			for i := 0; i < len(row); i += 4 {
				data = append(data, row[i], row[i+1], row[i+2])
			}
		}
		ctrl = fmt.Sprintf("a=T,f=24,s=%d,v=%d", b.Dx(), b.Dy())
	} else {
		var p bytes.Buffer
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		if err := enc.Encode(&p, img); err != nil {
			return fmt.Errorf("graphics: kitty: %w", err)
		}
		data = p.Bytes()
	}
	ctrl += fmt.Sprintf(",c=%d,r=%d,C=1,q=2", c, r)
	if e.ImageID != 0 {
		ctrl += ",i=" + strconv.FormatUint(uint64(e.ImageID), 10)
	}
	b64 := make([]byte, base64.StdEncoding.EncodedLen(len(data)))
	base64.StdEncoding.Encode(b64, data)
	for i := 0; i < len(b64); i += kittyChunk {
		end := min(len(b64), i+kittyChunk)
		w.WriteString("\x1b_G")
		if i == 0 {
			w.WriteString(ctrl + ",")
		}
		if end < len(b64) {
			w.WriteString("m=1;")
		} else {
			w.WriteString("m=0;")
		}
		w.Write(b64[i:end])
		w.WriteString("\x1b\\")
	}
	return nil
}

// KittyDelete returns the kitty escape that deletes image id and frees its
// data, or every image when id is 0.
func KittyDelete(id uint32) string {
	if id == 0 {
		return "\x1b_Ga=d,d=A,q=2\x1b\\"
	}
	return "\x1b_Ga=d,d=I,i=" + strconv.FormatUint(uint64(id), 10) + ",q=2\x1b\\"
}

// ClearAll returns the escapes that remove every image a mode can leave
// behind when a program quits: kitty's images outlive the alternate screen,
// so they are deleted; the others go with the text.
func ClearAll(m Mode) string {
	if m == Kitty {
		return KittyDelete(0)
	}
	return ""
}

// Write prints img inline for a command-line tool: scaled to fit cols×rows
// cells, at the start of the cursor's line, with the cursor left at the start
// of the line below it. Auto is resolved with [DetectTerminal]. When w is a
// terminal its cell size comes from the terminal. Write assumes the terminal
// is in its normal (cooked) mode, where "\n" also returns the carriage.
func Write(w io.Writer, img image.Image, mode Mode, cols, rows int) error {
	e := &Encoder{Mode: mode}
	if f, ok := w.(*os.File); ok {
		e.CellWidth, e.CellHeight, _ = CellSize(f)
	}
	if mode == Auto {
		e.Mode = DetectTerminal().Mode
	}
	if img.Bounds().Empty() {
		return errors.New("graphics: empty image")
	}
	if cols <= 0 || rows <= 0 {
		return fmt.Errorf("graphics: no room for an image in %d×%d cells", cols, rows)
	}
	switch e.Mode {
	case Blocks:
		lines := HalfBlocks(img, cols, rows)
		_, err := io.WriteString(w, strings.Join(lines, "\n")+"\n")
		return err
	case None:
		b := img.Bounds()
		_, err := io.WriteString(w, placeholder(b.Dx(), b.Dy())+"\n")
		return err
	}
	// Scroll the rows into existence first, so that drawing never scrolls
	// and the saved cursor stays on the image's first line.
	_, r := e.Cells(img, cols, rows)
	up := "\r" + strings.Repeat("\n", r) + "\x1b[" + strconv.Itoa(r) + "A"
	if _, err := io.WriteString(w, up); err != nil {
		return err
	}
	if err := e.Encode(w, img, cols, rows); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\x1b["+strconv.Itoa(r)+"B\r")
	return err
}
