package loader

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/lavascope/lavascope/internal/termtext"
)

// MaxIDBytes bounds a pair id so that every file name made from it fits the
// 255 bytes a file name may have: explain writes ID-rJ.json and the
// explorer's export ID_METHOD_LAYER_TARGET.json, at most 30 bytes beside the
// id.
const MaxIDBytes = 200

// checkID refuses ids that cannot become a file name or be printed as they
// are.
func checkID(id string) error {
	if len(id) > MaxIDBytes {
		return fmt.Errorf("is %d bytes long; an id may have at most %d, so that the file names made from it fit", len(id), MaxIDBytes)
	}
	if strings.ContainsFunc(id, termtext.Unsafe) {
		return fmt.Errorf("%q holds control or bidirectional characters", id)
	}
	return nil
}

// fileKey is what two ids must not share: their file name, compared ignoring
// case because macOS and Windows file systems do.
func fileKey(id string) string { return strings.ToLower(FileName(id)) }

// ptbBrackets are the Penn Treebank's escapes for brackets inside a tree.
var ptbBrackets = map[string]bool{"-LRB-": true, "-RRB-": true, "-LSB-": true, "-RSB-": true, "-LCB-": true, "-RCB-": true}

// spelling is the text compared between a sentence and a tree's words:
// letters, digits, marks and symbols, in lower case; spaces and punctuation
// are dropped, so that "Danny's bag." and the leaves Danny 's bag . agree,
// as do "don't" and do n't.
func spelling(words ...string) string {
	var b strings.Builder
	for _, w := range words {
		if ptbBrackets[w] {
			continue
		}
		for _, r := range w {
			if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || unicode.IsSymbol(r) {
				b.WriteRune(unicode.ToLower(r))
			}
		}
	}
	return b.String()
}

// duplicateKeys returns the JSON path of every key that occurs a second time
// in its object in data, which must be valid JSON. Keys are compared ignoring
// case, as encoding/json matches them to fields; JSON readers disagree about
// which of two equal keys counts, so a manifest must not rely on either.
func duplicateKeys(data []byte) []string {
	// A frame is an open object or list. While a value inside it is open,
	// its key or idx stays put, so the stack spells the value's path. The
	// keys of all open objects share one list, each object's from first on,
	// so that a clean line allocates almost nothing.
	type frame struct {
		obj       bool
		expectKey bool
		idx       int
		first     int
	}
	var stack []frame
	var keys [][]byte
	var dups []string
	paths := func(depth int) string {
		p := ""
		for d := range depth {
			f := stack[d]
			if f.obj {
				// The key of the open value is the last one its object got.
				end := len(keys)
				if d+1 < len(stack) {
					end = stack[d+1].first
				}
				p = join(p, unquote(keys[end-1]))
			} else {
				p = fmt.Sprintf("%s[%d]", p, f.idx)
			}
		}
		return p
	}
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{', '[':
			stack = append(stack, frame{obj: data[i] == '{', expectKey: data[i] == '{', first: len(keys)})
		case '}', ']':
			if len(stack) > 0 {
				keys = keys[:stack[len(stack)-1].first]
				stack = stack[:len(stack)-1]
			}
		case ',':
			if len(stack) > 0 {
				top := &stack[len(stack)-1]
				top.expectKey = top.obj
				top.idx++
			}
		case '"':
			start := i
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if len(stack) == 0 || !stack[len(stack)-1].expectKey {
				continue
			}
			top := &stack[len(stack)-1]
			key := data[start:min(i+1, len(data))]
			for _, k := range keys[top.first:] {
				if bytes.EqualFold(k, key) || (bytes.IndexByte(key, '\\') >= 0 || bytes.IndexByte(k, '\\') >= 0) && strings.EqualFold(unquote(k), unquote(key)) {
					dups = append(dups, join(paths(len(stack)-1), unquote(key)))
					break
				}
			}
			keys = append(keys, key)
			top.expectKey = false
		}
	}
	return dups
}

// unquote is the text of a JSON string literal.
func unquote(lit []byte) string {
	var s string
	if json.Unmarshal(lit, &s) != nil {
		return string(lit)
	}
	return s
}
