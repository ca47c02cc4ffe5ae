package loader

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

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

// value reads an optional string: absent is true when the key is missing,
// null or blank; s is empty and absent false when it holds something else,
// which describe then explains.
func (e entry) value(key string) (s string, absent bool) {
	v, ok := e.lookup(key)
	if !ok || v == nil {
		return "", true
	}
	if t, ok := v.(string); ok && strings.TrimSpace(t) == "" {
		return "", true
	}
	if s, ok := e.str(key); ok {
		return s, false
	}
	return "", false
}

// refs reads a list of "sentenceID,variantID" references (contrastVariants,
// equivalentVariants); a missing key or null is an empty list.
func (e entry) refs(key string) ([]string, error) {
	v, ok := e.lookup(key)
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s holds %s, not a list of \"sentenceID,variantID\"", key, describeValue(v))
	}
	out := make([]string, 0, len(l))
	for i, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d] is %s, not \"sentenceID,variantID\"", key, i, describeValue(x))
		}
		out = append(out, normRef(s))
	}
	return out, nil
}

// normRef drops the spaces around the parts of a "sentenceID,variantID"
// reference, so that "3, 1" names the entry "3,1".
func normRef(s string) string {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(a) + "," + strings.TrimSpace(b)
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
