package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// split gives the made pairs their splits and returns them as the manifest's
// pairs, one more for each further split that split files put a pair in.
func (im *lavaImport) split(made []madePair) ([]Pair, error) {
	if im.opts.SplitsDir != "" {
		return im.splitByFiles(made)
	}
	mode := im.opts.Split
	if mode == "" {
		mode = SplitTest
	}
	var free []int // pairs without a split of their own
	for i := range made {
		p := &made[i]
		if p.Split == "" {
			free = append(free, i)
			continue
		}
		if !slices.Contains(Splits, p.Split) {
			im.bad(p.from[0].entry, "split %q is not one of %s", p.Split, strings.Join(Splits, ", "))
		}
	}
	if len(im.problems) > 0 {
		return nil, errors.New(strings.Join(im.problems, "\n"))
	}
	var authors []string
	if mode == SplitAuthors {
		authors = authorsSplit(len(free), im.opts.Seed)
	}
	for k, i := range free {
		switch mode {
		case SplitAuto:
			key := made[i].group.key // the sentence, or the group field
			if im.contrast {
				key = made[i].Sentence
			}
			made[i].Split = autoSplit(key)
		case SplitAuthors:
			made[i].Split = authors[k]
		default:
			made[i].Split = mode
		}
	}
	pairs := make([]Pair, len(made))
	for i := range made {
		pairs[i] = made[i].Pair
	}
	return pairs, nil
}

// authorsSplit splits n pairs as the paper's authors did: shuffled, the first
// 70% train, the next 10% val, the rest test. The shuffle is seeded, so that
// a split can be made again.
func authorsSplit(n int, seed uint64) []string {
	out := make([]string, n)
	for rank, i := range rand.New(rand.NewPCG(seed, 0x4c415641)).Perm(n) {
		switch {
		case rank < n*7/10:
			out[i] = SplitTrain
		case rank < n*8/10:
			out[i] = SplitVal
		default:
			out[i] = SplitTest
		}
	}
	return out
}

// splitByFiles gives each pair the split of the split file that holds it.
// Split files and imported pairs are matched by their readings' text, tree
// and frame name (vision: the visualFilename), as an unordered pair; a pair of
// three readings (KeepTriples) takes the splits of its three 2-combinations.
func (im *lavaImport) splitByFiles(made []madePair) ([]Pair, error) {
	sf, err := readSplitFiles(im.opts.SplitsDir)
	if err != nil {
		return nil, err
	}
	rep := im.rep
	rep.Splits = sf.files
	matched := map[string]bool{}
	var out []Pair
	for _, m := range made {
		var mask uint8
		for _, k := range combinationKeys(m.from) {
			if b, ok := sf.splits[k]; ok {
				mask |= b
				matched[k] = true
			}
		}
		if mask == 0 {
			rep.Unsplit++
			continue
		}
		if bits.OnesCount8(mask) > 1 {
			rep.Leaked++
		}
		first := true
		for si, s := range Splits {
			if mask&(1<<si) == 0 {
				continue
			}
			p := m.Pair
			p.Readings = slices.Clone(m.Readings)
			p.Split = s
			if !first {
				p.ID += "." + s
			}
			first = false
			out = append(out, p)
		}
	}
	for _, k := range sf.order {
		if !matched[k] {
			if rep.Unmatched == 0 {
				rep.UnmatchedAt = sf.where[k]
			}
			rep.Unmatched++
		}
	}
	if len(out) == 0 && len(made) > 0 {
		return nil, fmt.Errorf("%s: none of the %d pairs of the split files matches one of the %d pairs of %s (the first: %s); were they made from this lava.json?",
			im.opts.SplitsDir, len(sf.order), len(made), im.file, sf.where[sf.order[0]])
	}
	return out, nil
}

// combinationKeys returns the keys of a pair's readings taken two at a time:
// the pair's own key for two readings.
func combinationKeys(rs []*lavaReading) []string {
	var keys []string
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			keys = append(keys, pairKey([]string{readingKey(rs[i].text, rs[i].tree, rs[i].frame), readingKey(rs[j].text, rs[j].tree, rs[j].frame)}))
		}
	}
	return keys
}

// readingKey is what matches a reading of a split file (text, constree,
// vision) to an imported one.
func readingKey(text, tree, frame string) string {
	return oneSpace(text) + "\x1f" + oneSpace(tree) + "\x1f" + frame
}

// pairKey is the readings' keys in sorted order: the same pair whatever the
// order of its readings.
func pairKey(readings []string) string {
	slices.Sort(readings)
	return strings.Join(readings, "\x1e")
}

// splitFiles are the pairs of the authors' split files, by split.
type splitFiles struct {
	// files are the files read, in the order of Splits.
	files []string
	// splits maps a pair's key to the splits (bit i: Splits[i]) whose file
	// holds it; order lists the keys as first met, where locates them.
	splits map[string]uint8
	order  []string
	where  map[string]string
}

// splitFileNames are the names of the authors' split files (filesplit.py
// writes train.json, val.json and tst.json), in the order of Splits.
var splitFileNames = [][]string{{"train.json"}, {"val.json"}, {"tst.json", "test.json"}}

// readSplitFiles reads the authors' split files in dir: each a JSON list of
// k-tuples of pairs (lists of k pairs, or bare pairs), a pair a list of
// readings {text, constree, vision, sem}. The pairs are unpacked from their
// tuples and kept once each.
func readSplitFiles(dir string) (*splitFiles, error) {
	sf := &splitFiles{splits: map[string]uint8{}, where: map[string]string{}}
	for si, names := range splitFileNames {
		for _, name := range names {
			file := filepath.Join(dir, name)
			f, err := os.Open(file)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			err = readSplitFile(f, file, func(key, where string) {
				if _, ok := sf.splits[key]; !ok {
					sf.order = append(sf.order, key)
					sf.where[key] = where
				}
				sf.splits[key] |= 1 << si
			})
			f.Close()
			if err != nil {
				return nil, err
			}
			sf.files = append(sf.files, file)
			break
		}
	}
	if len(sf.files) == 0 {
		return nil, fmt.Errorf("%s: none of train.json, val.json, tst.json (or test.json), the split files", dir)
	}
	return sf, nil
}

// readSplitFile reads one split file as a stream, item by item, since a file
// of 2-tuples holds every combination of two pairs and grows with their
// square; fn gets each pair's key and its place ("tst.json: item 3, pair 1").
func readSplitFile(r io.Reader, name string, fn func(key, where string)) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: not JSON: %w", name, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("%s: holds %s, not a list of tuples of pairs", name, tokenKind(tok))
	}
	for item := 0; dec.More(); item++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%s: item %d: %w", name, item, err)
		}
		var tuple []json.RawMessage
		if err := json.Unmarshal(raw, &tuple); err != nil {
			return fmt.Errorf("%s: item %d is %s, not a list of pairs", name, item, jsonKind(raw))
		}
		pairs := tuple
		if len(tuple) > 0 && jsonKind(tuple[0]) == "an object" {
			pairs = []json.RawMessage{raw} // a bare pair, not in a tuple
		}
		if len(pairs) == 0 {
			return fmt.Errorf("%s: item %d is an empty list", name, item)
		}
		for pi, rawPair := range pairs {
			where := fmt.Sprintf("%s: item %d, pair %d", name, item, pi)
			key, err := splitPairKey(rawPair)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			fn(key, where)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: more after the list ends", name)
	}
	return nil
}

// splitPairKey reads a pair of a split file: two or more readings, each an
// object with the strings text, constree and vision.
func splitPairKey(raw json.RawMessage) (string, error) {
	var readings []json.RawMessage
	if err := json.Unmarshal(raw, &readings); err != nil {
		return "", fmt.Errorf("is %s, not a list of readings", jsonKind(raw))
	}
	if len(readings) < 2 {
		return "", fmt.Errorf("has %d reading(s); a pair needs two", len(readings))
	}
	keys := make([]string, len(readings))
	for ri, rr := range readings {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(rr, &obj); err != nil || obj == nil {
			return "", fmt.Errorf("reading %d is %s, not an object", ri, jsonKind(rr))
		}
		var vals [3]string
		for k, field := range []string{"text", "constree", "vision"} {
			v, ok := obj[field]
			if !ok {
				return "", fmt.Errorf("reading %d: no %s", ri, field)
			}
			if err := json.Unmarshal(v, &vals[k]); err != nil || strings.TrimSpace(vals[k]) == "" {
				return "", fmt.Errorf("reading %d: %s is %s, not a non-empty string", ri, field, jsonKind(v))
			}
		}
		keys[ri] = readingKey(vals[0], vals[1], vals[2])
	}
	return pairKey(keys), nil
}

func tokenKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return "a list"
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}
