package loader

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// lavaImport is one run of ImportLAVA.
type lavaImport struct {
	opts    LAVAOptions
	file    string
	images  string
	fields  map[string]string
	entries []entry
	// contrast is LAVA's own layout: readings are grouped by
	// contrastVariants and named by sentenceID and variantID.
	contrast bool
	rep      *LAVAReport
	problems []string
	// ids maps "sentenceID,variantID" to the entry; sid and vid are each
	// entry's parts (contrast layout only).
	ids      map[string]int
	sid, vid []string
}

// lavaReading is an entry with a tree: a reading.
type lavaReading struct {
	entry      int
	text, tree string // with runs of white space made one space
	words      []string
	// frame is the frame's name as the corpus gives it (visualFilename),
	// path the file found for it; noFrame says why there is none.
	frame, path, noFrame    string
	gloss, ambiguity, split string
	group                   string
	contrast                []string
}

// lavaGroup is a set of readings that pairs are made from: contrasting
// readings, or the readings of one sentence.
type lavaGroup struct {
	n                int // its place in the order groups were founded
	key, text        string
	ambiguity, split string
	readings         []*lavaReading
}

// madePair is a pair with the readings it was made from.
type madePair struct {
	Pair
	from  []*lavaReading
	group *lavaGroup
}

func (im *lavaImport) bad(i int, format string, args ...any) {
	im.problems = append(im.problems, fmt.Sprintf("%s: %s: %s", im.file, im.label(i), fmt.Sprintf(format, args...)))
}

// label names an entry as problems and the report do: its place in the file
// and, in LAVA's layout, its sentenceID,variantID.
func (im *lavaImport) label(i int) string {
	if im.sid != nil && im.sid[i] != "" {
		return fmt.Sprintf("%s (%s,%s)", im.entries[i].label, im.sid[i], im.vid[i])
	}
	return im.entries[i].label
}

// pairs reads the readings, groups them and makes the pairs, before splits.
func (im *lavaImport) pairs() []madePair {
	if im.contrast {
		im.indexIDs()
	}
	var readings []*lavaReading
	for i := range im.entries {
		if r := im.reading(i); r != nil {
			readings = append(readings, r)
		}
	}
	if len(im.problems) > 0 {
		return nil
	}
	groups := im.group(readings)
	im.rep.Groups = len(groups)
	var made []madePair
	for _, g := range groups {
		made = append(made, im.pairsOf(g)...)
	}
	if !im.contrast {
		for i := range made {
			made[i].ID = fmt.Sprintf("lava-%04d", i+1)
		}
	}
	uniqueIDs(made)
	return made
}

// uniqueIDs numbers ids that would make the same file name as an earlier
// one: sentence ids such as "a b" and "a_b", or "A" and "a", do.
func uniqueIDs(made []madePair) {
	seen := map[string]bool{}
	for i := range made {
		id := made[i].ID
		for n := 2; seen[strings.ToLower(FileName(id))]; n++ {
			id = fmt.Sprintf("%s-%d", made[i].ID, n)
		}
		seen[strings.ToLower(FileName(id))] = true
		made[i].ID = id
	}
}

// indexIDs names every entry by its sentenceID and variantID, which
// contrastVariants and equivalentVariants refer to.
func (im *lavaImport) indexIDs() {
	im.ids = map[string]int{}
	im.sid = make([]string, len(im.entries))
	im.vid = make([]string, len(im.entries))
	for i, e := range im.entries {
		sid, err1 := e.idPart(keySentenceID)
		vid, err2 := e.idPart(keyVariantID)
		if err := cmpOr(err1, err2); err != nil {
			im.bad(i, "%v", err)
			continue
		}
		id := sid + "," + vid
		if j, dup := im.ids[id]; dup {
			im.bad(i, "sentenceID,variantID %q is also that of %s", id, im.label(j))
			continue
		}
		im.ids[id] = i
		im.sid[i], im.vid[i] = sid, vid
	}
}

func cmpOr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// idPart reads sentenceID or variantID: a number or a string.
func (e entry) idPart(key string) (string, error) {
	v, ok := e.v[key]
	if !ok {
		return "", fmt.Errorf("no key %q (with %s and %s it names the entry that other entries refer to)", key, keySentenceID, keyVariantID)
	}
	if f, ok := v.(float64); ok && f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10), nil
	}
	if s, ok := v.(string); ok && strings.TrimSpace(s) != "" && !strings.ContainsFunc(s, func(r rune) bool { return r == ',' || !unicode.IsPrint(r) }) {
		return strings.TrimSpace(s), nil
	}
	return "", fmt.Errorf("key %q holds %s, not a whole number or a printable string without a comma", key, describeValue(v))
}

// reading reads entry i; nil for an entry without a tree (counted as skipped)
// or with a problem (recorded).
func (im *lavaImport) reading(i int) *lavaReading {
	e := im.entries[i]
	f := im.fields
	tree, absent := e.value(f[FieldTree])
	if absent {
		im.rep.skip(fmt.Sprintf("no tree (key %q)", f[FieldTree]), unitEntries, im.label(i), 1)
		return nil
	}
	if im.contrast && im.sid[i] == "" {
		return nil // its id is a problem already
	}
	if tree == "" {
		im.bad(i, "%s", e.describe(FieldTree, f[FieldTree]))
		return nil
	}
	words, err := treeWords(tree)
	if err != nil {
		im.bad(i, "%s (key %q) does not parse: %v", FieldTree, f[FieldTree], err)
		return nil
	}
	text, _ := e.value(f[FieldText])
	if text == "" {
		im.bad(i, "%s", e.describe(FieldText, f[FieldText]))
		return nil
	}
	r := &lavaReading{entry: i, text: oneSpace(text), tree: oneSpace(tree), words: words}
	if im.contrast {
		if r.contrast, err = e.refs(keyContrast); err != nil {
			im.bad(i, "%v", err)
			return nil
		}
	} else {
		r.group = r.text
		if k, ok := f[FieldGroup]; ok {
			if r.group, ok = e.str(k); !ok {
				im.bad(i, "%s", e.describe(FieldGroup, k))
				return nil
			}
		}
	}
	eq := -2 // the first equivalent variant, looked up when needed
	equivalent := func(key string) (string, bool) {
		if eq == -2 {
			eq = im.firstEquivalent(i)
		}
		if eq < 0 {
			return "", eq == -3
		}
		v, _ := im.entries[eq].value(key)
		return v, false
	}
	frame, absent := e.value(f[FieldImage])
	switch {
	case frame == "" && !absent:
		im.bad(i, "%s", e.describe(FieldImage, f[FieldImage]))
		return nil
	case absent && im.contrast:
		var broken bool
		if frame, broken = equivalent(f[FieldImage]); broken {
			return nil
		}
		switch {
		case frame != "":
			im.rep.Filled++
		case eq >= 0:
			r.noFrame = fmt.Sprintf("no frame name (key %q), here or in its first equivalent variant", f[FieldImage])
		default:
			r.noFrame = fmt.Sprintf("no frame name (key %q) and no %s", f[FieldImage], keyEquivalent)
		}
	case absent:
		r.noFrame = fmt.Sprintf("no frame name (key %q)", f[FieldImage])
	}
	if frame != "" {
		r.frame = frame
		if r.path, err = findFrame(im.images, filepath.Dir(im.file), frame); err != nil {
			r.noFrame = "frame file not found"
		}
	}
	if g, absent := e.value(f[FieldGloss]); g != "" {
		r.gloss = g
	} else if absent && im.contrast {
		var broken bool
		if r.gloss, broken = equivalent(f[FieldGloss]); broken {
			return nil
		}
	}
	if k, ok := f[FieldAmbiguity]; ok {
		r.ambiguity, _ = e.str(k)
	}
	if k, ok := f[FieldSplit]; ok {
		r.split, _ = e.str(k)
	}
	return r
}

// firstEquivalent returns the entry that entry i names first among its
// equivalentVariants, from which the authors take a missing frame or logical
// form; -1 when it names none, -3 when the reference is bad (recorded).
func (im *lavaImport) firstEquivalent(i int) int {
	refs, err := im.entries[i].refs(keyEquivalent)
	if err != nil {
		im.bad(i, "%v", err)
		return -3
	}
	if len(refs) == 0 {
		return -1
	}
	j, ok := im.ids[refs[0]]
	if !ok {
		im.bad(i, "%s[0] is %q, but no entry has that sentenceID,variantID", keyEquivalent, refs[0])
		return -3
	}
	return j
}

// group puts the readings in groups. In LAVA's layout a reading joins the
// group founded by a reading it names in contrastVariants (the earliest such
// group), and founds one otherwise: the authors' rule, which looks only at
// the founders. Otherwise the readings of a sentence (or group field) form
// a group.
func (im *lavaImport) group(readings []*lavaReading) []*lavaGroup {
	var order []*lavaGroup
	byKey := map[string]*lavaGroup{}
	for _, r := range readings {
		var g *lavaGroup
		if im.contrast {
			for _, c := range r.contrast {
				if f := byKey[c]; f != nil && (g == nil || f.n < g.n) {
					g = f
				}
			}
		} else {
			g = byKey[r.group]
		}
		if g == nil {
			key := r.group
			if im.contrast {
				key = im.sid[r.entry] + "," + im.vid[r.entry]
			}
			g = &lavaGroup{n: len(order), key: key, text: r.text}
			byKey[key] = g
			order = append(order, g)
		}
		if g.ambiguity == "" {
			g.ambiguity = r.ambiguity
		}
		if g.split == "" {
			g.split = r.split
		}
		g.readings = append(g.readings, r)
	}
	return order
}

// pairsOf makes the pairs of a group: one of two readings; of three, one of
// each two (or one of all three with KeepTriples). Readings without a frame
// are left out first, so a group of three that lacks one frame gives the pair
// of the other two.
func (im *lavaImport) pairsOf(g *lavaGroup) []madePair {
	var rs []*lavaReading
	for _, r := range g.readings {
		switch {
		case r.path == "":
			first := im.label(r.entry)
			if r.frame != "" {
				first += fmt.Sprintf(": no file for %q in %s", r.frame, im.images)
			}
			im.rep.skip(r.noFrame, unitEntries, first, 1)
		case !im.contrast && slices.ContainsFunc(rs, func(o *lavaReading) bool { return o.tree == r.tree }):
			im.rep.skip("the tree of an earlier entry of the same sentence (a further frame of that reading)", unitEntries, im.label(r.entry), 1)
		default:
			rs = append(rs, r)
		}
	}
	switch {
	case len(rs) == 0:
		return nil
	case len(rs) == 1 && im.contrast:
		im.rep.skip("no contrasting reading with a tree and a frame", unitEntries, im.label(rs[0].entry), 1)
		return nil
	case len(rs) == 1:
		im.rep.skip("the only distinct tree of its sentence", unitEntries, im.label(rs[0].entry), 1)
		return nil
	}
	for _, r := range rs[1:] {
		if !slices.Equal(r.words, rs[0].words) {
			im.rep.skip("readings of one group whose trees' words differ", unitEntries,
				fmt.Sprintf("%s: %q, but %s: %q", im.label(rs[0].entry), strings.Join(rs[0].words, " "), im.label(r.entry), strings.Join(r.words, " ")), len(rs))
			return nil
		}
	}
	var sets [][]*lavaReading
	switch {
	case len(rs) == 2 || im.opts.KeepTriples:
		sets = [][]*lavaReading{rs}
	case len(rs) == 3:
		sets = twoOfThree(rs)
	default:
		im.rep.skip("a group of more than three readings (pairs are made of groups of two and three; --triples keep keeps it whole)", unitEntries, im.label(rs[0].entry), len(rs))
		return nil
	}
	var out []madePair
	for _, set := range sets {
		if a, b, ok := sharedFrame(set); ok {
			im.rep.skip("two readings with the same frame", unitPairs, fmt.Sprintf("%s and %s: %s", im.label(a.entry), im.label(b.entry), a.frame), 1)
			continue
		}
		p := madePair{Pair: Pair{Sentence: g.text, Ambiguity: g.ambiguity, Split: g.split}, from: set, group: g}
		for _, r := range set {
			p.Readings = append(p.Readings, Reading{Tree: r.tree, Image: r.path, Gloss: r.gloss})
		}
		if p.Ambiguity == "" {
			p.Ambiguity = treeFamily(set[0].tree, set[1].tree)
		}
		if im.contrast {
			p.ID = im.pairID(set)
		}
		out = append(out, p)
	}
	return out
}

// twoOfThree returns the three pairs of three readings, in the order
// Python's itertools.combinations gives them: (0,1), (0,2), (1,2).
func twoOfThree(rs []*lavaReading) [][]*lavaReading {
	return [][]*lavaReading{{rs[0], rs[1]}, {rs[0], rs[2]}, {rs[1], rs[2]}}
}

func sharedFrame(rs []*lavaReading) (a, b *lavaReading, ok bool) {
	for i := range rs {
		for j := range i {
			if filepath.Clean(rs[i].path) == filepath.Clean(rs[j].path) {
				return rs[j], rs[i], true
			}
		}
	}
	return nil, nil, false
}

// pairID names a pair by its readings: lava-SENTENCE-VARIANT-VARIANT when
// they share the sentenceID, lava-S.V-S.V otherwise.
func (im *lavaImport) pairID(rs []*lavaReading) string {
	same := true
	for _, r := range rs {
		same = same && im.sid[r.entry] == im.sid[rs[0].entry]
	}
	parts := []string{"lava"}
	if same {
		parts = append(parts, im.sid[rs[0].entry])
	}
	for _, r := range rs {
		if same {
			parts = append(parts, im.vid[r.entry])
		} else {
			parts = append(parts, im.sid[r.entry]+"."+im.vid[r.entry])
		}
	}
	return FileName(strings.Join(parts, "-"))
}

// oneSpace makes every run of white space one space and trims the ends.
func oneSpace(s string) string { return strings.Join(strings.Fields(s), " ") }
