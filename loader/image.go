package loader

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"sync"
)

// MaxImageBytes bounds the memory decoding one image may take, computed from
// its header before anything is decoded: a 2 MB PNG can claim 16384×16384
// 16-bit pixels, 2 GiB once decoded. 256 MiB is an 8192×8192 RGBA image.
const MaxImageBytes = 256 << 20

// decodeBudget bounds the bytes that the image decodes running at once may
// take, whatever the number of goroutines decoding (data check decodes with
// one worker per CPU).
const decodeBudget = 2 * MaxImageBytes

// imageHeader is what an image file's header says about it.
type imageHeader struct {
	size image.Point
	// bytes is the most decoding the file may allocate: the decoded pixels,
	// plus what the decoder keeps beside them (an interlaced PNG's passes, a
	// progressive JPEG's coefficients).
	bytes int64
	// kind names the pixel format for messages, such as "16-bit RGB".
	kind   string
	format string
}

// ReadImage decodes the PNG or JPEG file at path. Images whose header says
// decoding takes more than MaxImageBytes are refused before decoding.
func ReadImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return decodeImage(f, path)
}

// decodeImage decodes the image file f (named name in messages) from its
// start.
func decodeImage(f io.ReadSeeker, name string) (image.Image, error) {
	h, err := readHeader(f, name)
	if err != nil {
		return nil, err
	}
	if err := h.fits(name); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	release := decodes.acquire(h.bytes)
	defer release()
	r := bufio.NewReader(f)
	var img image.Image
	if h.format == "png" {
		img, err = png.Decode(r)
	} else {
		img, err = jpeg.Decode(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return img, nil
}

// fits refuses an image that takes more than MaxImageBytes to decode.
func (h imageHeader) fits(name string) error {
	if h.bytes > MaxImageBytes {
		return fmt.Errorf("%s: %dx%d %s %s takes up to %d bytes (%s) to decode, more than the %d bytes (%s) an image may take",
			name, h.size.X, h.size.Y, h.kind, h.format, h.bytes, mib(h.bytes), int64(MaxImageBytes), mib(MaxImageBytes))
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// ReadImageSize reads only the header of a PNG or JPEG file: its width and height.
func ReadImageSize(path string) (image.Point, error) {
	f, err := os.Open(path)
	if err != nil {
		return image.Point{}, err
	}
	defer f.Close()
	h, err := readHeader(f, path)
	return h.size, err
}

// readHeader reads the header of a PNG or JPEG file.
func readHeader(f io.Reader, name string) (imageHeader, error) {
	// A PNG's size and pixel format are in its first chunk, IHDR, at a fixed
	// place: reading those 33 bytes directly is what keeps checking a large
	// manifest fast.
	var head [33]byte
	n, _ := io.ReadFull(f, head[:])
	if n == len(head) && string(head[:8]) == pngMagic && string(head[12:16]) == "IHDR" {
		if crc32.ChecksumIEEE(head[12:29]) != binary.BigEndian.Uint32(head[29:]) {
			return imageHeader{}, fmt.Errorf("%s: png: invalid format: invalid checksum", name)
		}
		w, h := binary.BigEndian.Uint32(head[16:]), binary.BigEndian.Uint32(head[20:])
		if w == 0 || h == 0 || w > 1<<30 || h > 1<<30 {
			return imageHeader{}, fmt.Errorf("%s: png: invalid size %dx%d", name, w, h)
		}
		per, kind := pngPixel(head[24], head[25])
		bytes := int64(w) * int64(h) * per
		if head[28] == 1 {
			// An interlaced PNG is decoded pass by pass into images of its own
			// before the passes are merged.
			bytes *= 2
		}
		return imageHeader{size: image.Pt(int(w), int(h)), bytes: bytes, kind: kind, format: "png"}, nil
	}
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(head[:n]), f), 512)
	format, err := sniff(r)
	if err != nil {
		return imageHeader{}, fmt.Errorf("%s: %w", name, err)
	}
	var cfg image.Config
	if format == "png" {
		cfg, err = png.DecodeConfig(r)
	} else {
		cfg, err = jpeg.DecodeConfig(r)
	}
	if err != nil {
		return imageHeader{}, fmt.Errorf("%s: %w", name, err)
	}
	per, kind := modelPixel(cfg.ColorModel)
	if format == "jpeg" {
		// A progressive JPEG keeps every coefficient (4 bytes per sample) until
		// the end; the header does not say whether the file is one.
		per += 4 * per
	}
	return imageHeader{size: image.Pt(cfg.Width, cfg.Height), bytes: int64(cfg.Width) * int64(cfg.Height) * per, kind: kind, format: format}, nil
}

// pngPixel is the bytes per pixel of the image Go's PNG decoder returns for a
// bit depth and colour type of IHDR.
func pngPixel(depth, colorType byte) (int64, string) {
	bits := fmt.Sprintf("%d-bit", depth)
	switch colorType {
	case 0:
		if depth == 16 {
			return 2, bits + " grey"
		}
		return 1, bits + " grey"
	case 2:
		if depth == 16 {
			return 8, bits + " RGB"
		}
		return 4, bits + " RGB"
	case 3:
		return 1, bits + " palette"
	case 4:
		if depth == 16 {
			return 8, bits + " grey+alpha"
		}
		return 4, bits + " grey+alpha"
	}
	// RGBA, and anything the decoder will refuse: the largest.
	return 8, bits + " RGBA"
}

// modelPixel is the bytes per pixel of an image of the colour model.
func modelPixel(m color.Model) (int64, string) {
	switch m {
	case color.GrayModel:
		return 1, "grey"
	case color.Gray16Model:
		return 2, "16-bit grey"
	case color.YCbCrModel:
		return 3, "YCbCr"
	case color.CMYKModel:
		return 4, "CMYK"
	case color.RGBAModel, color.NRGBAModel:
		return 4, "RGBA"
	}
	if _, ok := m.(color.Palette); ok {
		return 1, "palette"
	}
	return 8, "64-bit colour"
}

// budget is a semaphore counted in bytes.
type budget struct {
	mu   sync.Mutex
	cond *sync.Cond
	free int64
	max  int64
}

var decodes = newBudget(decodeBudget)

func newBudget(n int64) *budget {
	b := &budget{free: n, max: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits until n bytes are free and takes them; the function it
// returns gives them back. A request above the whole budget takes all of it,
// so that it runs alone rather than never.
func (b *budget) acquire(n int64) func() {
	n = min(max(n, 0), b.max)
	b.mu.Lock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.free += n
		b.mu.Unlock()
		b.cond.Broadcast()
	}
}

const pngMagic = "\x89PNG\r\n\x1a\n"

// sniff names the format from the magic bytes itself rather than going through
// image.Decode, so that only PNG and JPEG are accepted whatever else the program
// happens to register.
func sniff(r *bufio.Reader) (string, error) {
	magic, _ := r.Peek(8)
	switch {
	case len(magic) == 8 && string(magic) == pngMagic:
		return "png", nil
	case len(magic) >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff:
		return "jpeg", nil
	case len(magic) == 0:
		return "", fmt.Errorf("not a PNG or JPEG image: the file is empty")
	}
	return "", fmt.Errorf("not a PNG or JPEG image (starts with % x)", magic)
}

// EncodePNG writes img as PNG. The settings are fixed because synthetic
// datasets promise byte-identical files for the same seed; BestSpeed because
// flat synthetic scenes compress almost as well with it in much less time
// (docs/performance.md, "Figures behind comments").
func EncodePNG(w io.Writer, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	return enc.Encode(w, img)
}
