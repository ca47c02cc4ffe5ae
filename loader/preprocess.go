package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// Resample names a resampling filter by the number PIL and Hugging Face's
// preprocessor_config.json use for it.
type Resample int

// The filters of PIL.Image.Resampling.
const (
	ResampleNearest  Resample = 0
	ResampleLanczos  Resample = 1
	ResampleBilinear Resample = 2
	ResampleBicubic  Resample = 3
	ResampleBox      Resample = 4
	ResampleHamming  Resample = 5
)

func (r Resample) String() string {
	switch r {
	case ResampleNearest:
		return "nearest"
	case ResampleLanczos:
		return "lanczos"
	case ResampleBilinear:
		return "bilinear"
	case ResampleBicubic:
		return "bicubic"
	case ResampleBox:
		return "box"
	case ResampleHamming:
		return "hamming"
	}
	return fmt.Sprintf("resample(%d)", int(r))
}

// PreprocessConfig is what a CLIP checkpoint's preprocessor_config.json says about
// turning an image into the model's pixel tensor.
type PreprocessConfig struct {
	// DoConvertRGB is kept to write configs back; Preprocess always converts,
	// as the model takes three channels.
	DoConvertRGB bool
	DoResize     bool
	// ShortestEdge, when positive, resizes so that the shorter side has this many
	// pixels and the longer keeps the aspect ratio; otherwise the image is resized
	// to exactly Height×Width.
	ShortestEdge  int
	Height, Width int
	Resample      Resample
	DoCenterCrop  bool
	CropHeight    int
	CropWidth     int
	DoRescale     bool
	RescaleFactor float64
	DoNormalize   bool
	Mean, Std     [3]float64
}

// DefaultPreprocessConfig is CLIP's (openai/clip-vit-base-patch32) preprocessing.
func DefaultPreprocessConfig() PreprocessConfig {
	return PreprocessConfig{
		DoConvertRGB:  true,
		DoResize:      true,
		ShortestEdge:  224,
		Resample:      ResampleBicubic,
		DoCenterCrop:  true,
		CropHeight:    224,
		CropWidth:     224,
		DoRescale:     true,
		RescaleFactor: 1.0 / 255,
		DoNormalize:   true,
		Mean:          [3]float64{0.48145466, 0.4578275, 0.40821073},
		Std:           [3]float64{0.26862954, 0.26130258, 0.27577711},
	}
}

// Size is the height and width of every tensor Preprocess returns.
func (p PreprocessConfig) Size() (h, w int, err error) {
	switch {
	case p.DoCenterCrop:
		h, w = p.CropHeight, p.CropWidth
	case p.DoResize && p.ShortestEdge <= 0:
		h, w = p.Height, p.Width
	default:
		return 0, 0, errors.New("preprocessing without a centre crop or a fixed resize gives images of varying size; the model needs one size")
	}
	if h <= 0 || w <= 0 {
		return 0, 0, fmt.Errorf("preprocessing output size %dx%d is not positive", w, h)
	}
	return h, w, nil
}

// maxSide bounds every size a config may ask for: a typo such as 22400 must
// be an error, not an allocation of gigabytes.
const maxSide = 8192

func (p PreprocessConfig) validate() error {
	if _, _, err := p.Size(); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"size.shortest_edge", p.ShortestEdge}, {"size.height", p.Height}, {"size.width", p.Width}, {"crop_size.height", p.CropHeight}, {"crop_size.width", p.CropWidth}} {
		if v.n > maxSide {
			return fmt.Errorf("%s %d is larger than %d", v.name, v.n, maxSide)
		}
	}
	if p.DoResize {
		if p.ShortestEdge <= 0 && (p.Height <= 0 || p.Width <= 0) {
			return errors.New("resize needs size.shortest_edge or size.height and size.width")
		}
		if p.Resample < ResampleNearest || p.Resample > ResampleHamming {
			return fmt.Errorf("resample %d is not a PIL filter (0..5)", int(p.Resample))
		}
	}
	if p.DoNormalize {
		for c, s := range p.Std {
			if s == 0 || math.IsNaN(s) {
				return fmt.Errorf("image_std[%d] is %v", c, s)
			}
		}
	}
	return nil
}

// LoadPreprocessConfig reads dir/preprocessor_config.json. A missing file gives
// DefaultPreprocessConfig; keys the file leaves out keep their default values.
func LoadPreprocessConfig(dir string) (PreprocessConfig, error) {
	path := filepath.Join(dir, "preprocessor_config.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultPreprocessConfig(), nil
	}
	if err != nil {
		return PreprocessConfig{}, err
	}
	p, err := ParsePreprocessConfig(data)
	if err != nil {
		return PreprocessConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePreprocessConfig decodes the JSON of a Hugging Face preprocessor_config.json.
func ParsePreprocessConfig(data []byte) (PreprocessConfig, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return PreprocessConfig{}, err
	}
	p := DefaultPreprocessConfig()
	var errs []error
	field := func(key string, dst any) {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	field("do_convert_rgb", &p.DoConvertRGB)
	field("do_resize", &p.DoResize)
	field("resample", &p.Resample)
	field("do_center_crop", &p.DoCenterCrop)
	field("do_rescale", &p.DoRescale)
	field("rescale_factor", &p.RescaleFactor)
	field("do_normalize", &p.DoNormalize)
	if v, ok := raw["size"]; ok {
		// Older configs give one number (the shortest edge for CLIP); newer ones a dict.
		var s sizeDict
		if err := s.decode(v); err != nil {
			errs = append(errs, fmt.Errorf("size: %w", err))
		} else if s.shortest > 0 {
			p.ShortestEdge, p.Height, p.Width = s.shortest, 0, 0
		} else {
			p.ShortestEdge, p.Height, p.Width = 0, s.height, s.width
		}
	}
	if v, ok := raw["crop_size"]; ok {
		var s sizeDict
		if err := s.decode(v); err != nil {
			errs = append(errs, fmt.Errorf("crop_size: %w", err))
		} else if s.shortest > 0 {
			p.CropHeight, p.CropWidth = s.shortest, s.shortest
		} else {
			p.CropHeight, p.CropWidth = s.height, s.width
		}
	}
	for _, k := range []struct {
		key string
		dst *[3]float64
	}{{"image_mean", &p.Mean}, {"image_std", &p.Std}} {
		v, ok := raw[k.key]
		if !ok {
			continue
		}
		var one float64
		var three []float64
		if json.Unmarshal(v, &one) == nil {
			*k.dst = [3]float64{one, one, one}
		} else if err := json.Unmarshal(v, &three); err != nil || len(three) != 3 {
			errs = append(errs, fmt.Errorf("%s: want a number or a list of 3 numbers, got %s", k.key, v))
		} else {
			copy(k.dst[:], three)
		}
	}
	if len(errs) > 0 {
		return PreprocessConfig{}, errors.Join(errs...)
	}
	if err := p.validate(); err != nil {
		return PreprocessConfig{}, err
	}
	return p, nil
}

type sizeDict struct{ shortest, height, width int }

func (s *sizeDict) decode(v json.RawMessage) error {
	var n int
	if json.Unmarshal(v, &n) == nil {
		s.shortest = n
		return nil
	}
	var d struct {
		ShortestEdge *int `json:"shortest_edge"`
		Height       *int `json:"height"`
		Width        *int `json:"width"`
	}
	if err := json.Unmarshal(v, &d); err != nil {
		return fmt.Errorf("want a number or {shortest_edge} or {height, width}, got %s", v)
	}
	switch {
	case d.ShortestEdge != nil:
		s.shortest = *d.ShortestEdge
	case d.Height != nil && d.Width != nil:
		s.height, s.width = *d.Height, *d.Width
	default:
		return fmt.Errorf("want shortest_edge or height and width, got %s", v)
	}
	return nil
}

// Preprocess turns an image into CLIP's input: the [3,H,W] (channel-major)
// float32 pixels, H and W from p.Size.
//
// It follows the PIL path of Hugging Face's CLIPImageProcessor: convert to RGB
// (alpha is dropped, not composited, as PIL's convert does), resize with PIL's
// separable convolution (the kernel support widens with the downscale factor,
// bicubic uses a = -0.5, the horizontal pass runs first and rounds to 8 bits
// before the vertical pass, with PIL's 22-bit fixed-point weights), centre crop
// with the offset rounded down, then rescale and normalise.
//
// Against transformers 5.17's CLIPImageProcessor (which resizes with
// torchvision's antialiased bicubic on 8-bit tensors, PIL's kernel with other
// fixed-point rounding) it gives the same value for 99.5-100% of the values of
// the reference images in testdata/hf-preprocess and is off by at most 2/255
// elsewhere (mean 0.002/255). JPEGs decode with Go's image/jpeg, whose chroma
// upsampling and colour conversion are not libjpeg's, so JPEG input can differ
// by a few levels more.
func Preprocess(img image.Image, p PreprocessConfig) ([]float32, error) {
	return preprocess(img, p, false)
}

// preprocess is Preprocess with a choice of how the long side's length is
// rounded: transformers truncates; roundLong rounds to nearest, which is what
// the PIL reference in testdata/hf-preprocess did, so that the test can check
// the resampling itself bit for bit.
func preprocess(img image.Image, p PreprocessConfig, roundLong bool) ([]float32, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	outH, outW, _ := p.Size()
	src := toRGB(img)
	if src.w == 0 || src.h == 0 {
		return nil, fmt.Errorf("preprocess: empty image (%dx%d)", src.w, src.h)
	}
	if p.DoResize {
		w, h := resizedSize(src.w, src.h, p, roundLong)
		if w*h > maxSide*maxSide {
			return nil, fmt.Errorf("preprocess: a %dx%d image would be resized to %dx%d", src.w, src.h, w, h)
		}
		src = resize(src, w, h, p.Resample)
	}
	if p.DoCenterCrop {
		src = centerCrop(src, p.CropWidth, p.CropHeight)
	}
	if src.w != outW || src.h != outH {
		return nil, fmt.Errorf("preprocess: image is %dx%d after resizing, want %dx%d", src.w, src.h, outW, outH)
	}
	scale := 1.0
	if p.DoRescale {
		scale = p.RescaleFactor
	}
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			// float32 steps, as numpy does them in transformers' rescale and normalize.
			x := float32(float64(v) * scale)
			if p.DoNormalize {
				x = (x - float32(p.Mean[c])) / float32(p.Std[c])
			}
			lut[c][v] = x
		}
	}
	n := outW * outH
	out := make([]float32, 3*n)
	for i := range n {
		out[i] = lut[0][src.pix[3*i]]
		out[n+i] = lut[1][src.pix[3*i+1]]
		out[2*n+i] = lut[2][src.pix[3*i+2]]
	}
	return out, nil
}

// rgb is an 8-bit RGB image, three bytes a pixel, no padding.
type rgb struct {
	w, h int
	pix  []uint8
}

// toRGB converts like PIL's Image.convert("RGB"): colour values as stored,
// without compositing over any background.
func toRGB(img image.Image) rgb {
	b := img.Bounds()
	out := rgb{w: b.Dx(), h: b.Dy(), pix: make([]uint8, 3*b.Dx()*b.Dy())}
	i := 0
	switch m := img.(type) {
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < out.w; x++ {
				copy(out.pix[i:i+3], row[4*x:4*x+3])
				i += 3
			}
		}
	case *image.RGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < out.w; x++ {
				px := row[4*x : 4*x+4]
				if px[3] == 0xff {
					copy(out.pix[i:i+3], px[:3])
				} else {
					c := color.NRGBAModel.Convert(color.RGBA{px[0], px[1], px[2], px[3]}).(color.NRGBA)
					out.pix[i], out.pix[i+1], out.pix[i+2] = c.R, c.G, c.B
				}
				i += 3
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, y):]
			for x := 0; x < out.w; x++ {
				out.pix[i], out.pix[i+1], out.pix[i+2] = row[x], row[x], row[x]
				i += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				out.pix[i], out.pix[i+1], out.pix[i+2] = c.R, c.G, c.B
				i += 3
			}
		}
	}
	return out
}

// resizedSize is Hugging Face's get_resize_output_image_size for CLIP: the short
// side becomes ShortestEdge and the long side keeps the aspect ratio, truncated
// (or rounded half up with roundLong).
func resizedSize(w, h int, p PreprocessConfig, roundLong bool) (int, int) {
	if p.ShortestEdge <= 0 {
		return p.Width, p.Height
	}
	s := p.ShortestEdge
	long := func(l, short int) int {
		if roundLong {
			return max(1, (2*s*l+short)/(2*short))
		}
		return max(1, s*l/short)
	}
	if w <= h {
		return s, long(h, w)
	}
	return long(w, h), s
}

// Resized is the size a w×h image has after p's resize step (w×h when p
// does not resize), as Preprocess computes it.
func (p PreprocessConfig) Resized(w, h int) (int, int) {
	if !p.DoResize {
		return w, h
	}
	return resizedSize(w, h, p, false)
}

// CropOffset is where, in a w×h resized image, p's centre crop starts: its
// left and top edges, negative where the crop pads. It is 0, 0 when p does
// not crop.
func (p PreprocessConfig) CropOffset(w, h int) (left, top int) {
	if !p.DoCenterCrop {
		return 0, 0
	}
	return cropOffset(w, h, p.CropWidth, p.CropHeight)
}

// cropOffset places a cw×ch centre crop in a w×h image as transformers'
// image_transforms.center_crop does.
func cropOffset(w, h, cw, ch int) (left, top int) {
	top = (h - ch) / 2
	left = (w - cw) / 2
	if h < ch {
		top = -((ch - h + 1) / 2)
	}
	if w < cw {
		left = -((cw - w + 1) / 2)
	}
	return left, top
}

// centerCrop cuts the middle cw×ch, padding with black where the image is
// smaller, as transformers' image_transforms.center_crop does.
func centerCrop(src rgb, cw, ch int) rgb {
	if src.w == cw && src.h == ch {
		return src
	}
	left, top := cropOffset(src.w, src.h, cw, ch)
	out := rgb{w: cw, h: ch, pix: make([]uint8, 3*cw*ch)}
	for y := range ch {
		sy := y + top
		if sy < 0 || sy >= src.h {
			continue
		}
		x0, x1 := max(0, -left), min(cw, src.w-left)
		if x0 >= x1 {
			continue
		}
		copy(out.pix[3*(y*cw+x0):3*(y*cw+x1)], src.pix[3*(sy*src.w+x0+left):3*(sy*src.w+x1+left)])
	}
	return out
}

type filter struct {
	fn      func(float64) float64
	support float64
}

var filters = map[Resample]filter{
	ResampleBox:      {boxFilter, 0.5},
	ResampleBilinear: {bilinearFilter, 1},
	ResampleHamming:  {hammingFilter, 1},
	ResampleBicubic:  {bicubicFilter, 2},
	ResampleLanczos:  {lanczosFilter, 3},
}

func boxFilter(x float64) float64 {
	if x > -0.5 && x <= 0.5 {
		return 1
	}
	return 0
}

func bilinearFilter(x float64) float64 {
	x = math.Abs(x)
	if x < 1 {
		return 1 - x
	}
	return 0
}

func hammingFilter(x float64) float64 {
	x = math.Abs(x)
	if x == 0 {
		return 1
	}
	if x >= 1 {
		return 0
	}
	x *= math.Pi
	// PIL writes these constants as float literals (0.54f), so they are the
	// float32 values widened.
	return math.Sin(x) / x * (float64(float32(0.54)) + float64(float32(0.46))*math.Cos(x))
}

// bicubicFilter is Keys' cubic convolution with a = -0.5, the kernel PIL uses.
func bicubicFilter(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

func lanczosFilter(x float64) float64 {
	if -3 <= x && x < 3 {
		return sinc(x) * sinc(x/3)
	}
	return 0
}

// precisionBits is PIL's fixed-point precision for 8-bit images: two bits of
// headroom for the negative lobes and the overshoot of the kernel sums.
const precisionBits = 32 - 8 - 2

// coeffs are the fixed-point weights of a one-dimensional resampling: output
// pixel i reads ksize weights starting at input pixel start[i].
type coeffs struct {
	ksize int
	start []int
	n     []int
	w     []int32
}

// precompute mirrors PIL's precompute_coeffs followed by normalize_coeffs_8bpc.
func precompute(inSize, outSize int, f filter) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := max(scale, 1)
	support := f.support * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{ksize: ksize, start: make([]int, outSize), n: make([]int, outSize), w: make([]int32, outSize*ksize)}
	k := make([]float64, ksize)
	for xx := range outSize {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterscale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		ww := 0.0
		for x := range xmax {
			k[x] = f.fn((float64(x+xmin) - center + 0.5) * ss)
			ww += k[x]
		}
		for x := range xmax {
			v := k[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				c.w[xx*ksize+x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				c.w[xx*ksize+x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.start[xx], c.n[xx] = xmin, xmax
	}
	return c
}

func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// resize scales src to w×h the way PIL's Image.resize does for RGB images.
func resize(src rgb, w, h int, r Resample) rgb {
	if w == src.w && h == src.h {
		return src
	}
	if r == ResampleNearest {
		return resizeNearest(src, w, h)
	}
	f := filters[r]
	out := src
	if w != src.w {
		c := precompute(src.w, w, f)
		tmp := rgb{w: w, h: src.h, pix: make([]uint8, 3*w*src.h)}
		for y := range src.h {
			in := src.pix[3*y*src.w:]
			o := tmp.pix[3*y*w:]
			for xx := range w {
				k := c.w[xx*c.ksize : xx*c.ksize+c.n[xx]]
				s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				p := in[3*c.start[xx]:]
				for x, kw := range k {
					s0 += int32(p[3*x]) * kw
					s1 += int32(p[3*x+1]) * kw
					s2 += int32(p[3*x+2]) * kw
				}
				o[3*xx], o[3*xx+1], o[3*xx+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
		out = tmp
	}
	if h != out.h {
		c := precompute(out.h, h, f)
		tmp := rgb{w: out.w, h: h, pix: make([]uint8, 3*out.w*h)}
		stride := 3 * out.w
		acc := make([]int32, stride)
		for yy := range h {
			for i := range acc {
				acc[i] = 1 << (precisionBits - 1)
			}
			k := c.w[yy*c.ksize : yy*c.ksize+c.n[yy]]
			for y, kw := range k {
				row := out.pix[(c.start[yy]+y)*stride : (c.start[yy]+y+1)*stride]
				for i, v := range row {
					acc[i] += int32(v) * kw
				}
			}
			o := tmp.pix[yy*stride : (yy+1)*stride]
			for i, v := range acc {
				o[i] = clip8(v)
			}
		}
		out = tmp
	}
	return out
}

// resizeNearest picks, for each output pixel, the input pixel under its centre.
func resizeNearest(src rgb, w, h int) rgb {
	out := rgb{w: w, h: h, pix: make([]uint8, 3*w*h)}
	for y := range h {
		sy := min((2*y+1)*src.h/(2*h), src.h-1)
		for x := range w {
			sx := min((2*x+1)*src.w/(2*w), src.w-1)
			copy(out.pix[3*(y*w+x):3*(y*w+x)+3], src.pix[3*(sy*src.w+sx):])
		}
	}
	return out
}
