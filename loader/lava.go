package loader

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lavascope/lavascope/internal/atomicfile"
)

// The fields of a LAVA entry that the importer reads. Text, image and tree are
// required; the others are used when named.
const (
	FieldText      = "text"
	FieldImage     = "image"
	FieldTree      = "tree"
	FieldGloss     = "gloss"
	FieldAmbiguity = "ambiguity"
	FieldSplit     = "split"
	FieldGroup     = "group"
)

// LAVAFields lists the fields in the order help texts show them.
var LAVAFields = []string{FieldText, FieldImage, FieldTree, FieldGloss, FieldAmbiguity, FieldSplit, FieldGroup}

// The keys of LAVA's own lava.json that tie its entries together. An entry is
// named "sentenceID,variantID" by the other entries' lists.
const (
	keySentenceID = "sentenceID"
	keyVariantID  = "variantID"
	keyContrast   = "contrastVariants"
	keyEquivalent = "equivalentVariants"
)

// DefaultLAVAFields are the keys of LAVA's lava.json. Only syntactic
// ambiguities have a syntactic_tree; the logical form serves as the gloss.
func DefaultLAVAFields() map[string]string {
	return map[string]string{FieldText: "text", FieldImage: "visualFilename", FieldTree: "syntactic_tree", FieldGloss: "logicalForm"}
}

// The split modes of LAVAOptions.Split beyond the split names themselves.
const (
	// SplitAuto puts a sentence in train, val or test (8:1:1) by a hash of
	// its text, so that no sentence is in two splits.
	SplitAuto = "auto"
	// SplitAuthors shuffles the pairs with LAVAOptions.Seed and cuts them
	// 70/10/20, as the paper's authors split LAVA: by pair, so that the pairs
	// of one sentence can fall into different splits.
	SplitAuthors = "authors"
)

// LAVAOptions configure ImportLAVA.
type LAVAOptions struct {
	// Corpus is the LAVA folder: the one holding lava.json, or the
	// distribution's root with corpus/lava.json.
	Corpus string
	// Fields maps the importer's fields (FieldText, ...) to keys of an entry;
	// a key may be a dotted path into nested objects and lists ("parse.0").
	Fields map[string]string
	// Split is given to pairs that have no split field: train, val, test,
	// SplitAuto or SplitAuthors; empty means test.
	Split string
	// Seed seeds SplitAuthors.
	Seed uint64
	// SplitsDir is a folder with the authors' split files (train.json,
	// val.json, tst.json); each pair gets the split of the file that holds it,
	// and pairs no file holds are left out. It excludes Split.
	SplitsDir string
	// KeepTriples keeps a group of three or more readings as one pair with
	// all of them, instead of making a pair of each two of three readings.
	KeepTriples bool
	// OutDir is the folder of the manifest to be written; image paths are made
	// relative to it.
	OutDir string
	// CopyImages copies frames that lie outside OutDir into OutDir/images;
	// AllowOutside writes paths that leave OutDir instead.
	CopyImages   bool
	AllowOutside bool
}

// LAVAReport says what ImportLAVA did.
type LAVAReport struct {
	File string
	// Contrast says whether the readings were grouped by contrastVariants
	// (LAVA's own layout) rather than by sentence.
	Contrast bool
	Entries  int
	// Groups is the number of groups of readings (with a tree) found: sets
	// of contrasting readings, or of entries with the same sentence.
	Groups int
	Pairs  int
	// Skipped says which entries (or pairs) were left out and why, in the
	// order the reasons first occurred.
	Skipped []Skip
	// Filled counts readings whose frame came from an equivalent variant.
	Filled int
	// Splits are the split files read (SplitsDir). Unsplit counts pairs
	// that no split file holds, left out; Unmatched the split files' pairs
	// that match no imported pair; Leaked the pairs that split files put in
	// more than one split, written once for each.
	Splits                     []string
	Unsplit, Unmatched, Leaked int
	// UnmatchedAt locates the first unmatched pair of the split files.
	UnmatchedAt string
	Copied      int
}

// Skip is one reason for leaving entries (or, for Unit "pairs", pairs) out.
type Skip struct {
	Reason string
	Count  int
	Unit   string
	// First names the first entry or pair left out for it.
	First string
}

// SkippedEntries is the number of entries left out, for any reason.
func (r *LAVAReport) SkippedEntries() int {
	n := 0
	for _, s := range r.Skipped {
		if s.Unit == unitEntries {
			n += s.Count
		}
	}
	return n
}

const (
	unitEntries = "entries"
	unitPairs   = "pairs"
)

func (r *LAVAReport) skip(reason, unit, first string, n int) {
	for i := range r.Skipped {
		if r.Skipped[i].Reason == reason {
			r.Skipped[i].Count += n
			return
		}
	}
	r.Skipped = append(r.Skipped, Skip{Reason: reason, Count: n, Unit: unit, First: first})
}

// ImportLAVA reads a LAVA corpus and makes pairs of its readings. In LAVA's
// own layout (entries with contrastVariants) the readings that contrast form a
// group, grouped as the paper's authors group them; otherwise the entries of
// one sentence do, one reading per distinct tree. Entries without a tree or a
// frame are left out and counted in the report; malformed entries are
// problems, all returned together. When the entries lack a required field
// altogether, the error lists the keys they do have.
func ImportLAVA(opts LAVAOptions) ([]Pair, LAVAReport, error) {
	var rep LAVAReport
	file, err := findLAVA(opts.Corpus)
	if err != nil {
		return nil, rep, err
	}
	rep.File = file
	fields := DefaultLAVAFields()
	for k, v := range opts.Fields {
		if !slices.Contains(LAVAFields, k) {
			return nil, rep, fmt.Errorf("unknown field %q (fields: %s)", k, strings.Join(LAVAFields, ", "))
		}
		fields[k] = v
	}
	if err := checkSplitMode(opts); err != nil {
		return nil, rep, err
	}
	entries, err := readEntries(file)
	if err != nil {
		return nil, rep, err
	}
	rep.Entries = len(entries)
	if len(entries) == 0 {
		return nil, rep, fmt.Errorf("%s: no entries", file)
	}
	for _, f := range []string{FieldText, FieldImage, FieldTree} {
		if missingEverywhere(entries, fields[f]) {
			return nil, rep, &misfit{file: file, field: f, key: fields[f], entries: entries}
		}
	}
	im := &lavaImport{
		opts: opts, file: file, images: filepath.Join(filepath.Dir(file), "images"),
		fields: fields, entries: entries, rep: &rep,
	}
	_, grouped := fields[FieldGroup]
	im.contrast = !grouped && !missingEverywhere(entries, keyContrast)
	rep.Contrast = im.contrast
	made := im.pairs()
	if len(im.problems) > 0 {
		return nil, rep, errors.New(strings.Join(im.problems, "\n"))
	}
	pairs, err := im.split(made)
	if err != nil {
		return nil, rep, err
	}
	if err := placeFrames(pairs, opts, &rep); err != nil {
		return nil, rep, err
	}
	rep.Pairs = len(pairs)
	return pairs, rep, nil
}

func checkSplitMode(opts LAVAOptions) error {
	if opts.SplitsDir != "" && opts.Split != "" {
		return fmt.Errorf("a split mode (%q) and split files (%s) exclude each other", opts.Split, opts.SplitsDir)
	}
	if opts.Split != "" && opts.Split != SplitAuto && opts.Split != SplitAuthors && !slices.Contains(Splits, opts.Split) {
		return fmt.Errorf("split %q is not one of train, val, test, %s, %s", opts.Split, SplitAuto, SplitAuthors)
	}
	return nil
}

func findLAVA(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("no corpus folder given")
	}
	for _, p := range []string{filepath.Join(dir, "lava.json"), filepath.Join(dir, "corpus", "lava.json")} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: found neither lava.json nor corpus/lava.json", dir)
}

// findFrame resolves an entry's image name to a file under images/ or beside
// lava.json: as given, with .jpg, .jpeg or .png added, or with its own
// extension swapped for one of those (frames are often converted).
func findFrame(images, base, name string) (string, error) {
	names := []string{name}
	for _, ext := range []string{".jpg", ".jpeg", ".png"} {
		names = append(names, name+ext)
		if e := path.Ext(name); e != "" && e != ext {
			names = append(names, strings.TrimSuffix(name, e)+ext)
		}
	}
	for _, dir := range []string{images, base} {
		for _, n := range names {
			p := filepath.Join(dir, filepath.FromSlash(n))
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("no frame %q in %s or %s (also tried .jpg, .jpeg, .png)", name, images, base)
}

// placeFrames turns frame paths into manifest paths relative to OutDir,
// copying the frames first where asked.
func placeFrames(pairs []Pair, opts LAVAOptions, rep *LAVAReport) error {
	out, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return err
	}
	copied := map[string]string{}
	for i := range pairs {
		for j := range pairs[i].Readings {
			r := &pairs[i].Readings[j]
			abs, err := filepath.Abs(r.Image)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(out, abs)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if insideDir(rel) != nil {
				switch {
				case opts.CopyImages:
					if c, ok := copied[abs]; ok {
						rel = c
						break
					}
					rel = "images/" + filepath.Base(abs)
					if err := copyFile(abs, filepath.Join(out, filepath.FromSlash(rel))); err != nil {
						return err
					}
					copied[abs] = rel
					rep.Copied++
				case !opts.AllowOutside:
					return fmt.Errorf("frame %s lies outside %s, the manifest's folder, and a manifest's images must lie inside it: write the manifest into the corpus folder, or pass --copy-images (or --allow-outside, which data check then also needs)", r.Image, opts.OutDir)
				}
			}
			r.Image = rel
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// autoSplit puts a sentence in train, val or test (8:1:1) by a hash of its
// text, so that a re-import splits the same way.
func autoSplit(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	switch h.Sum32() % 10 {
	case 8:
		return SplitVal
	case 9:
		return SplitTest
	}
	return SplitTrain
}
