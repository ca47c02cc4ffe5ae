package loader

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// DefaultLAVAFields are the keys of the LAVA distribution's corpus/lava.json
// as far as they are known: the text and visualFilename keys are documented;
// parse is a guess, so the key list is printed when it does not fit.
func DefaultLAVAFields() map[string]string {
	return map[string]string{FieldText: "text", FieldImage: "visualFilename", FieldTree: "parse"}
}

// LAVAOptions configure ImportLAVA.
type LAVAOptions struct {
	// Corpus is the LAVA folder: the one holding lava.json, or the
	// distribution's root with corpus/lava.json.
	Corpus string
	// Fields maps the importer's fields (FieldText, ...) to keys of an entry;
	// a key may be a dotted path into nested objects and lists ("parse.0").
	Fields map[string]string
	// Split is given to pairs that have no split field: train, val, test, or
	// auto for a stable 8:1:1 split by sentence.
	Split string
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
	File    string
	Entries int
	// Sentences is the number of groups of entries with the same sentence.
	Sentences int
	Pairs     int
	// OneReading counts sentences skipped because all their entries had the
	// same tree.
	OneReading int
	// SpareFrames counts entries whose tree an earlier entry of the same
	// sentence already had; the first frame of each reading is used.
	SpareFrames int
	Copied      int
}

// ImportLAVA reads a LAVA corpus and groups its entries by sentence into
// pairs, one reading per distinct tree. All problems are returned together;
// when the entries lack a required field altogether, the error lists the keys
// they do have.
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
	split := opts.Split
	if split == "" {
		split = SplitTest
	}
	if split != "auto" && !slices.Contains(Splits, split) {
		return nil, rep, fmt.Errorf("split %q is not one of train, val, test, auto", split)
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
	images := filepath.Join(filepath.Dir(file), "images")
	type reading struct {
		Reading
		entry int
	}
	type group struct {
		key, text        string
		ambiguity, split string
		readings         []reading
		trees            map[string]bool
	}
	var order []*group
	groups := map[string]*group{}
	var problems []string
	bad := func(i int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: %s: %s", file, entries[i].label, fmt.Sprintf(format, args...)))
	}
	for i, e := range entries {
		text, ok1 := e.str(fields[FieldText])
		img, ok2 := e.str(fields[FieldImage])
		tree, ok3 := e.str(fields[FieldTree])
		for _, c := range []struct {
			ok    bool
			field string
		}{{ok1, FieldText}, {ok2, FieldImage}, {ok3, FieldTree}} {
			if !c.ok {
				bad(i, "%s", e.describe(c.field, fields[c.field]))
			}
		}
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		if _, err := treeWords(tree); err != nil {
			bad(i, "%s (key %q) does not parse: %v", FieldTree, fields[FieldTree], err)
			continue
		}
		frame, err := findFrame(images, filepath.Dir(file), img)
		if err != nil {
			bad(i, "%s (key %q): %v", FieldImage, fields[FieldImage], err)
			continue
		}
		key := strings.Join(strings.Fields(text), " ")
		if k, ok := fields[FieldGroup]; ok {
			if v, ok := e.str(k); ok {
				key = v
			} else {
				bad(i, "%s", e.describe(FieldGroup, k))
				continue
			}
		}
		g := groups[key]
		if g == nil {
			g = &group{key: key, text: strings.Join(strings.Fields(text), " "), trees: map[string]bool{}}
			groups[key] = g
			order = append(order, g)
		}
		if k, ok := fields[FieldAmbiguity]; ok && g.ambiguity == "" {
			g.ambiguity, _ = e.str(k)
		}
		if k, ok := fields[FieldSplit]; ok && g.split == "" {
			g.split, _ = e.str(k)
		}
		norm := strings.Join(strings.Fields(tree), " ")
		if g.trees[norm] {
			rep.SpareFrames++
			continue
		}
		g.trees[norm] = true
		r := reading{Reading: Reading{Tree: norm, Image: frame}, entry: i}
		if k, ok := fields[FieldGloss]; ok {
			r.Gloss, _ = e.str(k)
		}
		g.readings = append(g.readings, r)
	}
	rep.Sentences = len(order)
	var pairs []Pair
	for _, g := range order {
		if len(g.readings) < 2 {
			rep.OneReading++
			continue
		}
		p := Pair{ID: fmt.Sprintf("lava-%04d", len(pairs)+1), Sentence: g.text, Ambiguity: g.ambiguity, Split: g.split}
		if p.Split == "" {
			p.Split = split
			if split == "auto" {
				p.Split = autoSplit(g.key)
			}
		}
		if !slices.Contains(Splits, p.Split) {
			bad(g.readings[0].entry, "split %q is not one of %s", p.Split, strings.Join(Splits, ", "))
			continue
		}
		w0, _ := treeWords(g.readings[0].Tree)
		for _, r := range g.readings {
			if w, _ := treeWords(r.Tree); !slices.Equal(w, w0) {
				bad(r.entry, "its tree's words %q differ from those of %s %q, the same sentence", strings.Join(w, " "), entries[g.readings[0].entry].label, strings.Join(w0, " "))
			}
			p.Readings = append(p.Readings, r.Reading)
		}
		pairs = append(pairs, p)
	}
	if len(problems) > 0 {
		return nil, rep, errors.New(strings.Join(problems, "\n"))
	}
	if err := placeFrames(pairs, opts, &rep); err != nil {
		return nil, rep, err
	}
	rep.Pairs = len(pairs)
	return pairs, rep, nil
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
	return WriteFileAtomic(dst, func(w io.Writer) error {
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

// entry is one LAVA entry, as decoded JSON.
type entry struct {
	label string // how problems name it: "entry 3", "entry data[3]", "entry \"e1\"", "line 5"
	v     map[string]any
}

// lookup follows a dotted path ("parse.0.tree") through objects and lists.
func (e entry) lookup(key string) (any, bool) {
	var cur any = e.v
	if v, ok := e.v[key]; ok {
		return v, true
	}
	for _, part := range strings.Split(key, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func (e entry) str(key string) (string, bool) {
	v, ok := e.lookup(key)
	if !ok {
		return "", false
	}
	switch s := v.(type) {
	case string:
		return s, strings.TrimSpace(s) != ""
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64), true
	}
	return "", false
}

// describe says why a field could not be read from the entry.
func (e entry) describe(field, key string) string {
	v, ok := e.lookup(key)
	switch {
	case !ok:
		return fmt.Sprintf("no key %q for the %s (set it with --field %s=KEY)", key, field, field)
	case v == nil:
		return fmt.Sprintf("key %q (the %s) is null", key, field)
	}
	if l, ok := v.([]any); ok {
		return fmt.Sprintf("key %q (the %s) holds a list of %d, not a string; pick one with --field %s=%s.0", key, field, len(l), field, key)
	}
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		return fmt.Sprintf("key %q (the %s) is empty", key, field)
	}
	return fmt.Sprintf("key %q (the %s) holds %s, not a string", key, field, describeValue(v))
}

func missingEverywhere(entries []entry, key string) bool {
	for _, e := range entries {
		if _, ok := e.lookup(key); ok {
			return false
		}
	}
	return true
}

// readEntries reads the entries of a lava.json: a list of objects, an object
// holding such a list, an object of objects (keyed by id), or JSON lines.
func readEntries(file string) ([]entry, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseEntries(data, file)
}

// parseEntries decodes the text of a lava.json; file names it in errors.
func parseEntries(data []byte, file string) ([]entry, error) {
	var top any
	if err := json.Unmarshal(data, &top); err != nil {
		var entries []entry
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, maxLine)
		line := 0
		for sc.Scan() {
			line++
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil || m == nil {
				return nil, fmt.Errorf("%s: neither one JSON value (%v) nor JSON lines (line %d is not an object)", file, err, line)
			}
			entries = append(entries, entry{label: "line " + strconv.Itoa(line), v: m})
		}
		return entries, sc.Err()
	}
	list := func(l []any, where string) ([]entry, error) {
		out := make([]entry, 0, len(l))
		for i, v := range l {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: %s[%d] is %s, not an object", file, where, i, describeValue(v))
			}
			label := fmt.Sprintf("entry %d", i)
			if where != "" {
				label = fmt.Sprintf("entry %s[%d]", where, i)
			}
			out = append(out, entry{label: label, v: m})
		}
		return out, nil
	}
	switch t := top.(type) {
	case []any:
		return list(t, "")
	case map[string]any:
		keys := sortedKeys(t)
		for _, k := range keys {
			if l, ok := t[k].([]any); ok && len(l) > 0 {
				if _, ok := l[0].(map[string]any); ok {
					return list(l, k)
				}
			}
		}
		var out []entry
		for _, k := range keys {
			m, ok := t[k].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: a JSON object but neither a list of entries nor entries by key (%q is %s); keys: %s",
					file, k, describeValue(t[k]), strings.Join(keys, ", "))
			}
			out = append(out, entry{label: "entry " + strconv.Quote(k), v: m})
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: holds %s, not entries", file, describeValue(top))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func describeValue(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if len(t) > 50 {
			t = t[:47] + "..."
		}
		return strconv.Quote(t)
	case []any:
		return fmt.Sprintf("a list of %d", len(t))
	case map[string]any:
		return fmt.Sprintf("an object with keys %s", strings.Join(sortedKeys(t), ", "))
	case bool:
		return strconv.FormatBool(t)
	}
	return fmt.Sprint(v)
}

// misfit is the error for a file whose entries lack a required field: it
// lists every key the entries have, how often, with an example, so that the
// right --field can be chosen.
type misfit struct {
	file, field, key string
	entries          []entry
}

func (m *misfit) Error() string {
	type info struct {
		n       int
		example any
	}
	keys := map[string]*info{}
	var walk func(prefix string, v map[string]any, depth int)
	walk = func(prefix string, v map[string]any, depth int) {
		for k, x := range v {
			name := prefix + k
			in := keys[name]
			if in == nil {
				in = &info{example: x}
				keys[name] = in
			}
			in.n++
			if sub, ok := x.(map[string]any); ok && depth < 2 {
				walk(name+".", sub, depth+1)
			}
		}
	}
	for _, e := range m.entries {
		walk("", e.v, 0)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: none of the %d entries has the key %q for the %s (--field %s=%s).\nKeys the entries have (entries with it, an example):\n",
		m.file, len(m.entries), m.key, m.field, m.field, m.key)
	width := 0
	for k := range keys {
		width = max(width, len(k))
	}
	for _, k := range sortedKeys(keys) {
		fmt.Fprintf(&b, "  %-*s  %5d  %s\n", width, k, keys[k].n, describeValue(keys[k].example))
	}
	fmt.Fprintf(&b, "Name the keys with --field text=KEY --field image=KEY --field tree=KEY (dotted paths such as parse.0 reach inside).")
	return b.String()
}
