// Package loader reads, checks and writes lavascope's datasets: the pair
// manifest (JSONL, one sentence with its readings a line), the images it points
// at, and the CLIP preprocessing that turns those images into pixel tensors. It
// also converts the LAVA corpus into a manifest; package loader/synth makes
// synthetic LAVA-style pairs.
package loader

import (
	"errors"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// The splits a pair can belong to.
const (
	SplitTrain = "train"
	SplitVal   = "val"
	SplitTest  = "test"
)

// Splits lists the valid splits in their usual order.
var Splits = []string{SplitTrain, SplitVal, SplitTest}

// The roles of a Box.
const (
	// RoleEvidence marks a region where a reading's image differs from the
	// image of its twin reading: what tells the readings apart.
	RoleEvidence = "evidence"
	RolePerson   = "person"
	RoleObject   = "object"
)

// Roles lists the valid box roles.
var Roles = []string{RoleEvidence, RolePerson, RoleObject}

// Box is a region of an image, in pixels of the image file: X0,Y0 inclusive,
// X1,Y1 exclusive, like image.Rectangle.
type Box struct {
	Label string `json:"label"`
	Role  string `json:"role"`
	X0    int    `json:"x0"`
	Y0    int    `json:"y0"`
	X1    int    `json:"x1"`
	Y1    int    `json:"y1"`
}

// Rect is the box as an image.Rectangle.
func (b Box) Rect() image.Rectangle { return image.Rect(b.X0, b.Y0, b.X1, b.Y1) }

// Reading is one meaning of a pair's sentence: its parse tree and the image that
// shows it.
type Reading struct {
	// Tree is the reading's Penn Treebank bracketing.
	Tree string `json:"tree"`
	// Image is the image's path, relative to the manifest's folder, with
	// forward slashes.
	Image string `json:"image"`
	// Gloss says the reading in plain words, for people.
	Gloss string `json:"gloss,omitempty"`
	Boxes []Box  `json:"boxes,omitempty"`
	// Pixels is the image itself for pairs made in memory (package synth); Image
	// is then the path it is written to by WriteDataset.
	Pixels image.Image `json:"-"`
}

// BoxesWithRole returns the reading's boxes that have the role.
func (r *Reading) BoxesWithRole(role string) []Box {
	var out []Box
	for _, b := range r.Boxes {
		if b.Role == role {
			out = append(out, b)
		}
	}
	return out
}

// Pair is one structurally ambiguous sentence with two (or more) readings.
type Pair struct {
	ID       string `json:"id"`
	Sentence string `json:"sentence"`
	// Ambiguity names the family: pp-attachment, adjective-scope,
	// vp-attachment, ...
	Ambiguity string    `json:"ambiguity,omitempty"`
	Split     string    `json:"split"`
	Readings  []Reading `json:"readings"`
}

// Dataset is a set of pairs and the folder their image paths are relative to.
type Dataset struct {
	// Dir is the manifest's folder; empty for pairs that hold their pixels.
	Dir   string
	Pairs []Pair
	// AllowOutside lets images lie outside Dir, by their path or through a
	// symbolic link; otherwise Image refuses them.
	AllowOutside bool

	// manifest and refs, set by Load, name the manifest line and field of
	// each image path for Image's errors.
	manifest string
	refs     map[string]imageRef
	// files opens the images, keeping the folder open between calls; set by
	// Load, and stale once Dir or AllowOutside change.
	files *folder
}

// imageRef is where a manifest names an image first.
type imageRef struct{ line, reading int }

// Split returns the pairs of one split, sharing Dir; an empty name keeps all.
func (d *Dataset) Split(name string) *Dataset {
	s := *d
	s.Pairs = FilterSplit(d.Pairs, name)
	return &s
}

// SplitFlag reads a --split value: train, val or test, or all, which
// becomes "" (FilterSplit's name for every split).
func SplitFlag(s string) (string, error) {
	switch s {
	case "all":
		return "", nil
	case SplitTrain, SplitVal, SplitTest:
		return s, nil
	}
	return "", fmt.Errorf("--split: %q is not one of train, val, test, all", s)
}

// FilterSplit returns the pairs whose split is name, in order; an empty name
// keeps all.
func FilterSplit(pairs []Pair, name string) []Pair {
	if name == "" {
		return pairs
	}
	var out []Pair
	for _, p := range pairs {
		if p.Split == name {
			out = append(out, p)
		}
	}
	return out
}

// Image returns the decoded image of a reading: its Pixels when it has them,
// otherwise the file at Image relative to Dir. For a dataset Load read, an
// error is an *Error naming the manifest line of the image.
func (d *Dataset) Image(r *Reading) (image.Image, error) {
	if r.Pixels != nil {
		return r.Pixels, nil
	}
	if r.Image == "" {
		return nil, fmt.Errorf("reading has no image")
	}
	// Image is called from several goroutines: d is only read.
	files := d.files
	if files == nil || files.dir != d.Dir || files.allowOutside != d.AllowOutside {
		files = &folder{dir: d.Dir, allowOutside: d.AllowOutside}
	}
	f, err := files.open(r.Image)
	if err != nil {
		return nil, d.locate(r, fmt.Errorf("%s", fileErr(r.Image, err)))
	}
	defer f.Close()
	img, err := decodeImage(f, d.ImagePath(r))
	if err != nil {
		return nil, d.locate(r, err)
	}
	return img, nil
}

func (d *Dataset) locate(r *Reading, err error) error {
	ref, ok := d.refs[r.Image]
	if !ok {
		return err
	}
	return &Error{File: d.manifest, Line: ref.line, Field: fmt.Sprintf("readings[%d].image", ref.reading), Err: err}
}

// folder opens the image files of a dataset folder.
type folder struct {
	dir          string
	allowOutside bool

	once sync.Once
	root *os.Root
	err  error
}

// open opens the image file rel (a manifest's path). Unless allowOutside,
// the path must stay inside the folder once resolved: it is opened through
// an os.Root, so that a symbolic link inside the folder that leads out of it
// is refused before anything of the file outside is read or quoted.
func (f *folder) open(rel string) (*os.File, error) {
	dir := f.dir
	if dir == "" {
		dir = "."
	}
	if f.allowOutside {
		return os.Open((&Dataset{Dir: dir}).ImagePath(&Reading{Image: rel}))
	}
	if err := insideDir(rel); err != nil {
		return nil, err
	}
	f.once.Do(func() { f.root, f.err = os.OpenRoot(dir) })
	if f.err != nil {
		return nil, f.err
	}
	file, err := f.root.Open(filepath.FromSlash(rel))
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return file, err
	}
	// os.Root does not say why it refused a path; a link leading out is the
	// usual reason, and resolving the path tells.
	real, rerr := filepath.EvalSymlinks(filepath.Join(dir, filepath.FromSlash(rel)))
	base, berr := filepath.EvalSymlinks(dir)
	if rerr == nil && berr == nil {
		if r, err := filepath.Rel(base, real); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("%q leads outside the manifest's folder through a symbolic link (allowed only with --allow-outside)", rel)
		}
	}
	// The error of os.Root names the path as given; drop it, rel says which.
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return nil, fmt.Errorf("%s: %w", rel, pe.Err)
	}
	return nil, err
}

// ImagePath is the file system path of a reading's image.
func (d *Dataset) ImagePath(r *Reading) string {
	p := filepath.FromSlash(r.Image)
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.Dir, p)
}
