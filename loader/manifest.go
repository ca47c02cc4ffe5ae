package loader

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/lavascope/lavascope/internal/atomicfile"
)

// maxLine bounds one manifest line, so that a file without newlines cannot
// make the reader hold all of it.
const maxLine = 16 << 20

// Options say how much of the world outside the manifest text a Reader checks.
type Options struct {
	// Dir is the folder image paths are relative to. When empty, nothing on
	// the file system is looked at (Load and Open set it to the manifest's
	// folder).
	Dir string
	// CheckImages decodes every image; otherwise only each image's header is
	// read (its size, format and the bytes decoding it takes).
	CheckImages bool
	// AllowOutside accepts image paths that leave Dir (absolute, through "..",
	// or through a symbolic link), which are refused by default so that a
	// manifest cannot point a program at arbitrary files.
	AllowOutside bool
}

// Reader reads a manifest one pair at a time, checking each line as it goes.
type Reader struct {
	name   string
	r      *bufio.Reader
	closer io.Closer
	opts   Options
	read   int // lines read so far
	line   int // the line of the pair returned last
	ids    map[string]int
	files  map[string]idLine // by fileKey
	sizes  sizeCache
	images folder
	err    error
}

type idLine struct {
	id   string
	line int
}

// sizeCache remembers image sizes, so that an image several readings share is
// opened once; lines are checked concurrently, hence the lock.
type sizeCache struct {
	mu sync.Mutex
	m  map[string]image.Point
}

func (c *sizeCache) get(path string) (image.Point, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[path]
	return p, ok
}

func (c *sizeCache) put(path string, p image.Point) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]image.Point{}
	}
	c.m[path] = p
}

// lineCheck checks one line on its own, so that lines can be checked in
// parallel; only the uniqueness of ids needs the lines before.
type lineCheck struct {
	name  string
	line  int
	opts  *Options
	sizes *sizeCache
	files *folder
}

func (c *lineCheck) errorf(field, format string, args ...any) *Error {
	return &Error{File: c.name, Line: c.line, Field: field, Err: fmt.Errorf(format, args...)}
}

// NewReader reads the manifest text from r; name (usually the file path) is
// what error messages call it.
func NewReader(r io.Reader, name string, opts Options) *Reader {
	return &Reader{name: name, r: bufio.NewReaderSize(r, 64<<10), opts: opts, ids: map[string]int{}, files: map[string]idLine{},
		images: folder{dir: opts.Dir, allowOutside: opts.AllowOutside}}
}

// Open opens the manifest file at path; image paths are checked relative to
// its folder.
func Open(path string, opts Options) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	opts.Dir = filepath.Dir(path)
	r := NewReader(f, path, opts)
	r.closer = f
	return r, nil
}

// Close closes the file Open opened.
func (r *Reader) Close() error {
	if r.images.root != nil {
		r.images.root.Close()
	}
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// Line is the number of the line Read returned last.
func (r *Reader) Line() int { return r.line }

// Read returns the next pair. A line with problems gives Errors (every problem
// of that line) and Read may be called again for the lines after it; io.EOF
// marks the end, and any other error (a failed read) ends the reading.
func (r *Reader) Read() (Pair, error) {
	line, data, err := r.next()
	if err != nil {
		return Pair{}, err
	}
	p, errs := r.checkLine(line, data)
	r.unique(line, &p, &errs)
	r.line = line
	if len(errs) > 0 {
		return Pair{}, errs
	}
	return p, nil
}

// next returns the next line that is not blank, without its line end; a line
// longer than maxLine comes back as nil data.
func (r *Reader) next() (int, []byte, error) {
	for {
		if r.err != nil {
			return 0, nil, r.err
		}
		data, long, err := r.readLine()
		line := r.read
		if err != nil {
			if errors.Is(err, io.EOF) {
				r.err = io.EOF
			} else {
				r.err = fmt.Errorf("%s:%d: %w", r.name, r.read, err)
			}
			if len(data) == 0 && !long {
				return 0, nil, r.err
			}
		}
		if long {
			return line, nil, nil
		}
		if line == 1 {
			data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
		}
		if len(bytes.TrimSpace(data)) > 0 {
			return line, data, nil
		}
	}
}

// readLine reads the next line. Past maxLine it reads on to the end of the
// line but keeps none of it.
func (r *Reader) readLine() (data []byte, long bool, err error) {
	r.read++
	for {
		chunk, err := r.r.ReadSlice('\n')
		if !long {
			data = append(data, chunk...)
			if len(data) > maxLine {
				long, data = true, nil
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		data = bytes.TrimSuffix(data, []byte("\n"))
		data = bytes.TrimSuffix(data, []byte("\r"))
		return data, long, err
	}
}

// checkLine checks one line; it is safe to call from several goroutines.
func (r *Reader) checkLine(line int, data []byte) (Pair, Errors) {
	c := &lineCheck{name: r.name, line: line, opts: &r.opts, sizes: &r.sizes, files: &r.images}
	if data == nil {
		return Pair{}, Errors{c.errorf("", "line is longer than %d MiB", maxLine>>20)}
	}
	p, errs := c.decode(data)
	if r.opts.Dir != "" {
		c.checkFiles(&p, &errs)
	}
	return p, errs
}

// unique reports an id seen on an earlier line, or one that makes the same
// file name as an earlier id (pp/7 and pp_7 both become pp_7): explain and
// the explorer's export would write the second pair's files over the first's.
func (r *Reader) unique(line int, p *Pair, errs *Errors) {
	if p.ID == "" {
		return
	}
	if first, dup := r.ids[p.ID]; dup {
		*errs = append(*errs, &Error{File: r.name, Line: line, Field: "id", Err: fmt.Errorf("duplicate id %q (first on line %d)", p.ID, first)})
		return
	}
	key := fileKey(p.ID)
	if first, dup := r.files[key]; dup {
		*errs = append(*errs, &Error{File: r.name, Line: line, Field: "id", Err: fmt.Errorf("%q and the id %q on line %d make the same file name %q (file names keep letters, digits, '.', '-' and '_', map anything else to '_', and ignore case)", p.ID, first.id, first.line, FileName(p.ID))})
		return
	}
	r.ids[p.ID] = line
	r.files[key] = idLine{p.ID, line}
}

// scan checks every remaining line with one worker per CPU and calls fn for
// each, in line order. It returns a read error, if any.
func (r *Reader) scan(fn func(line int, p Pair, errs Errors)) error {
	type job struct {
		line int
		data []byte
		p    Pair
		errs Errors
		done chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *job, 8*workers)
	order := make(chan *job, 8*workers)
	var readErr error
	go func() {
		defer close(order)
		defer close(jobs)
		for {
			line, data, err := r.next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
				return
			}
			j := &job{line: line, data: data, done: make(chan struct{})}
			jobs <- j
			order <- j
		}
	}()
	for range workers {
		go func() {
			for j := range jobs {
				j.p, j.errs = r.checkLine(j.line, j.data)
				close(j.done)
			}
		}()
	}
	for j := range order {
		<-j.done
		r.unique(j.line, &j.p, &j.errs)
		r.line = j.line
		fn(j.line, j.p, j.errs)
	}
	return readErr
}

// checkFiles checks what the pair says about files: image paths stay inside
// the manifest's folder, the files exist (and decode, with CheckImages), and
// boxes lie inside their image.
func (c *lineCheck) checkFiles(p *Pair, errs *Errors) {
	for i := range p.Readings {
		rd := &p.Readings[i]
		if rd.Image == "" {
			continue
		}
		bad := func(err error) {
			*errs = append(*errs, c.errorf(fmt.Sprintf("readings[%d].image", i), "%s", fileErr(rd.Image, err)))
		}
		if !c.opts.AllowOutside {
			if err := insideDir(rd.Image); err != nil {
				bad(fmt.Errorf("%w (allowed only with --allow-outside)", err))
				continue
			}
		}
		full := (&Dataset{Dir: c.opts.Dir}).ImagePath(rd)
		size, known := c.sizes.get(full)
		if !known {
			var err error
			if size, err = c.imageSize(rd.Image, full); err != nil {
				bad(err)
				continue
			}
			c.sizes.put(full, size)
		}
		checkBoxes(rd.Boxes, size, func(j int, err error) {
			*errs = append(*errs, c.errorf(fmt.Sprintf("readings[%d].boxes[%d]", i, j), "%v", err))
		})
	}
}

// imageSize opens the image rel (full with the manifest's folder) as
// Dataset.Image does and reads its header, refusing what Dataset.Image would
// refuse; with CheckImages it decodes the image.
func (c *lineCheck) imageSize(rel, full string) (image.Point, error) {
	f, err := c.files.open(rel)
	if err != nil {
		return image.Point{}, err
	}
	defer f.Close()
	if c.opts.CheckImages {
		img, err := decodeImage(f, full)
		if err != nil {
			return image.Point{}, err
		}
		return img.Bounds().Size(), nil
	}
	h, err := readHeader(f, full)
	if err == nil {
		err = h.fits(full)
	}
	return h.size, err
}

func checkBoxes(boxes []Box, size image.Point, bad func(int, error)) {
	for j, b := range boxes {
		if b.X1 > size.X || b.Y1 > size.Y {
			bad(j, fmt.Errorf("(%d,%d)-(%d,%d) reaches outside the %dx%d image", b.X0, b.Y0, b.X1, b.Y1, size.X, size.Y))
		}
	}
}

func fileErr(name string, err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("%s does not exist", name)
	}
	return err.Error()
}

// insideDir refuses paths that leave the manifest's folder.
func insideDir(p string) error {
	if path.IsAbs(p) || filepath.IsAbs(filepath.FromSlash(p)) || filepath.VolumeName(p) != "" {
		return fmt.Errorf("%q is an absolute path; image paths must be relative to the manifest's folder", p)
	}
	if c := path.Clean(strings.ReplaceAll(p, `\`, "/")); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%q leaves the manifest's folder", p)
	}
	return nil
}

// Load reads and checks the whole manifest at path. It returns every problem
// (as Errors) rather than stopping at the first.
//
// The dataset opens images as the check did (inside the manifest's folder,
// symbolic links included, unless opts.AllowOutside), and an image that fails
// to decode later is reported at the manifest line that names it.
func Load(path string, opts Options) (*Dataset, error) {
	ds := &Dataset{Dir: filepath.Dir(path), AllowOutside: opts.AllowOutside, manifest: path, refs: map[string]imageRef{}}
	ds.files = &folder{dir: ds.Dir, allowOutside: opts.AllowOutside}
	problems, err := CheckLines(path, opts, func(line int, p Pair) {
		ds.Pairs = append(ds.Pairs, p)
		for i, rd := range p.Readings {
			if _, seen := ds.refs[rd.Image]; !seen {
				ds.refs[rd.Image] = imageRef{line, i}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return ds, nil
}

// Check reads and checks the whole manifest at path, lines in parallel. It
// calls good, in file order, for every pair without problems and returns all
// problems; the error is for a manifest that cannot be read at all.
// A manifest without a single pair line is a problem too.
func Check(path string, opts Options, good func(Pair)) (Errors, error) {
	return CheckLines(path, opts, func(_ int, p Pair) {
		if good != nil {
			good(p)
		}
	})
}

// CheckLines is Check that also tells good the pair's line.
func CheckLines(path string, opts Options, good func(line int, p Pair)) (Errors, error) {
	r, err := Open(path, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var problems Errors
	lines := 0
	err = r.scan(func(line int, p Pair, errs Errors) {
		lines++
		if len(errs) > 0 {
			problems = append(problems, errs...)
		} else {
			good(line, p)
		}
	})
	if err == nil && lines == 0 {
		problems = append(problems, &Error{File: path, Err: errors.New("the manifest holds no pairs (every line is blank)")})
	}
	return problems, err
}

// Validate checks pairs made in memory as if they had been read from a
// manifest called name (line n is pairs[n-1]); boxes are checked against the
// readings' Pixels.
func Validate(pairs []Pair, name string) error {
	r := NewReader(nil, name, Options{})
	var problems Errors
	for i := range pairs {
		data, err := json.Marshal(&pairs[i])
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		c := &lineCheck{name: name, line: i + 1}
		p, errs := c.decode(data)
		r.unique(i+1, &p, &errs)
		for k, rd := range pairs[i].Readings {
			if rd.Pixels != nil {
				checkBoxes(rd.Boxes, rd.Pixels.Bounds().Size(), func(j int, err error) {
					errs = append(errs, c.errorf(fmt.Sprintf("readings[%d].boxes[%d]", k, j), "%v", err))
				})
			}
		}
		problems = append(problems, errs...)
	}
	return problems.err()
}

// Writer writes a manifest, one pair a line.
type Writer struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// NewWriter returns a Writer to w; call Flush at the end.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &Writer{w: bw, enc: enc}
}

// Write writes one pair as one line.
func (w *Writer) Write(p *Pair) error { return w.enc.Encode(p) }

// Flush writes what is buffered.
func (w *Writer) Flush() error { return w.w.Flush() }

// WriteDataset writes the manifest dir/name and, for every reading that holds
// Pixels, the PNG at dir/Image. The manifest appears complete or not at all.
func WriteDataset(dir, name string, pairs []Pair) error {
	for i := range pairs {
		if err := WriteImages(dir, &pairs[i]); err != nil {
			return err
		}
	}
	return atomicfile.Write(filepath.Join(dir, name), func(w io.Writer) error {
		mw := NewWriter(w)
		for i := range pairs {
			if err := mw.Write(&pairs[i]); err != nil {
				return fmt.Errorf("pair %s: %w", pairs[i].ID, err)
			}
		}
		return mw.Flush()
	})
}

// WriteImages writes, as PNG files under dir, the images of the pair's
// readings that hold Pixels.
func WriteImages(dir string, p *Pair) error {
	for j := range p.Readings {
		rd := &p.Readings[j]
		if rd.Pixels == nil {
			continue
		}
		if err := insideDir(rd.Image); err != nil {
			return fmt.Errorf("pair %s reading %d: %w", p.ID, j, err)
		}
		if err := writePNG(filepath.Join(dir, filepath.FromSlash(rd.Image)), rd.Pixels); err != nil {
			return err
		}
	}
	return nil
}

func writePNG(path string, img image.Image) error {
	return atomicfile.Write(path, func(w io.Writer) error { return EncodePNG(w, img) })
}

// FileName turns an id (a pair's, or one built from it) into a file name:
// letters, digits, dot, dash and underscore are kept, anything else, path
// separators included, becomes an underscore.
func FileName(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, id)
}
