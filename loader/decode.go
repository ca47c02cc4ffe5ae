package loader

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// The wire types are a manifest line as written: pointers tell a missing field
// from an empty one.
type wirePair struct {
	ID        *string        `json:"id"`
	Sentence  *string        `json:"sentence"`
	Ambiguity *string        `json:"ambiguity"`
	Split     *string        `json:"split"`
	Readings  *[]wireReading `json:"readings"`
}

type wireReading struct {
	Tree  *string    `json:"tree"`
	Image *string    `json:"image"`
	Gloss *string    `json:"gloss"`
	Boxes *[]wireBox `json:"boxes"`
}

type wireBox struct {
	Label *string  `json:"label"`
	Role  *string  `json:"role"`
	X0    *float64 `json:"x0"`
	Y0    *float64 `json:"y0"`
	X1    *float64 `json:"x1"`
	Y1    *float64 `json:"y1"`
}

var (
	pairKeys    = []string{"id", "sentence", "ambiguity", "split", "readings"}
	readingKeys = []string{"tree", "image", "gloss", "boxes"}
	boxKeys     = []string{"label", "role", "x0", "y0", "x1", "y1"}
)

// decode checks one line's text: JSON shape, required fields, value types and
// ranges, trees.
//
// A well-formed line is decoded in one pass into the wire types. Only when that
// fails is the line walked value by value, which is several times slower but
// can name the field of every type error and unknown key.
//
// Invalid UTF-8 refuses the line (encoding/json would replace the bytes
// silently), and so does a key given twice in one object (which of the two
// counts differs between JSON readers).
func (c *lineCheck) decode(data []byte) (Pair, Errors) {
	if !utf8.Valid(data) {
		at := 0
		for at < len(data) {
			r, size := utf8.DecodeRune(data[at:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			at += size
		}
		return Pair{}, Errors{&Error{File: c.name, Line: c.line, Column: at + 1, Err: fmt.Errorf("invalid UTF-8 (byte 0x%02x); a manifest must be UTF-8", data[at])}}
	}
	var w wirePair
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) && dec.Decode(&w) == nil && len(bytes.TrimSpace(data[dec.InputOffset():])) == 0 {
		return c.check(&w, c.duplicates(data, nil), nil)
	}
	w = wirePair{}
	var errs Errors
	reported := map[string]bool{}
	c.walk(data, &w, &errs, reported)
	if json.Valid(data) {
		errs = c.duplicates(data, errs)
	}
	return c.check(&w, errs, reported)
}

// duplicates adds a problem for every key the line gives twice in one object.
func (c *lineCheck) duplicates(data []byte, errs Errors) Errors {
	for _, field := range duplicateKeys(data) {
		errs = append(errs, c.errorf(field, "the key occurs twice in its object (keys match ignoring case); give it once"))
	}
	return errs
}

// walk fills w from a line that did not decode in one pass, reporting every
// structural problem and marking its field in reported.
func (c *lineCheck) walk(data []byte, w *wirePair, errs *Errors, reported map[string]bool) {
	obj, ok := c.object(data, "", pairKeys, errs, reported)
	if !ok {
		return
	}
	w.ID = c.str(obj, "", "id", errs, reported)
	w.Sentence = c.str(obj, "", "sentence", errs, reported)
	w.Ambiguity = c.str(obj, "", "ambiguity", errs, reported)
	w.Split = c.str(obj, "", "split", errs, reported)
	readings, ok := c.array(obj, "", "readings", errs, reported)
	if !ok {
		return
	}
	rs := make([]wireReading, len(readings))
	w.Readings = &rs
	for i, raw := range readings {
		field := fmt.Sprintf("readings[%d]", i)
		ro, ok := c.object(raw, field, readingKeys, errs, reported)
		if !ok {
			continue
		}
		rd := &rs[i]
		rd.Tree = c.str(ro, field, "tree", errs, reported)
		rd.Image = c.str(ro, field, "image", errs, reported)
		rd.Gloss = c.str(ro, field, "gloss", errs, reported)
		boxes, ok := c.array(ro, field, "boxes", errs, reported)
		if !ok {
			continue
		}
		bs := make([]wireBox, len(boxes))
		rd.Boxes = &bs
		for j, braw := range boxes {
			bfield := fmt.Sprintf("%s.boxes[%d]", field, j)
			bo, ok := c.object(braw, bfield, boxKeys, errs, reported)
			if !ok {
				continue
			}
			b := &bs[j]
			b.Label = c.str(bo, bfield, "label", errs, reported)
			b.Role = c.str(bo, bfield, "role", errs, reported)
			b.X0 = c.num(bo, bfield, "x0", errs, reported)
			b.Y0 = c.num(bo, bfield, "y0", errs, reported)
			b.X1 = c.num(bo, bfield, "x1", errs, reported)
			b.Y1 = c.num(bo, bfield, "y1", errs, reported)
		}
	}
}

// check turns the wire form into a Pair, reporting missing and bad values
// except in fields that already have a problem.
func (c *lineCheck) check(w *wirePair, errs Errors, reported map[string]bool) (Pair, Errors) {
	bad := func(field, format string, args ...any) { errs = append(errs, c.errorf(field, format, args...)) }
	need := func(field string, v *string) string {
		switch {
		case reported[field]:
		case v == nil:
			bad(field, "missing")
		case strings.TrimSpace(*v) == "":
			bad(field, "is empty")
		default:
			return *v
		}
		return ""
	}
	opt := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	if reported[""] {
		return Pair{}, errs
	}
	var p Pair
	p.ID = need("id", w.ID)
	if p.ID != "" {
		if err := checkID(p.ID); err != nil {
			bad("id", "%v", err)
		}
	}
	p.Sentence = need("sentence", w.Sentence)
	p.Ambiguity = opt(w.Ambiguity)
	p.Split = need("split", w.Split)
	if p.Split != "" && !slices.Contains(Splits, p.Split) {
		bad("split", "%q is not one of %s", p.Split, strings.Join(Splits, ", "))
	}
	switch {
	case reported["readings"]:
	case w.Readings == nil:
		bad("readings", "missing")
	case len(*w.Readings) < 2:
		bad("readings", "has %d reading(s); a pair needs at least 2", len(*w.Readings))
	}
	var readings []wireReading
	if w.Readings != nil {
		readings = *w.Readings
	}
	words := make([][]string, len(readings))
	for i := range readings {
		wr := &readings[i]
		field := fmt.Sprintf("readings[%d]", i)
		var rd Reading
		if !reported[field] {
			rd.Tree = need(field+".tree", wr.Tree)
			rd.Image = need(field+".image", wr.Image)
			rd.Gloss = opt(wr.Gloss)
			if rd.Tree != "" {
				var err error
				if words[i], err = treeWords(rd.Tree); err != nil {
					bad(field+".tree", "does not parse: %v", err)
				}
			}
			if wr.Boxes != nil && len(*wr.Boxes) > 0 {
				rd.Boxes = make([]Box, len(*wr.Boxes))
				for j := range *wr.Boxes {
					rd.Boxes[j] = c.checkBox(&(*wr.Boxes)[j], i, j, need, bad, reported)
				}
			}
		}
		p.Readings = append(p.Readings, rd)
	}
	for i := 1; i < len(words); i++ {
		if words[0] != nil && words[i] != nil && !slices.Equal(words[0], words[i]) {
			bad(fmt.Sprintf("readings[%d].tree", i), "its words %q differ from those of readings[0].tree %q; the readings of a pair must share their words",
				strings.Join(words[i], " "), strings.Join(words[0], " "))
		}
	}
	if len(words) > 0 && words[0] != nil && p.Sentence != "" && spelling(words[0]...) != spelling(p.Sentence) {
		bad("sentence", "%q does not read as the words of readings[0].tree %q (compared ignoring case, spaces and punctuation)",
			p.Sentence, strings.Join(words[0], " "))
	}
	for i := range p.Readings {
		for j := range i {
			if a, b := p.Readings[j].Image, p.Readings[i].Image; a != "" && path.Clean(a) == path.Clean(b) {
				bad(fmt.Sprintf("readings[%d].image", i), "%q is also the image of readings[%d]; each reading needs its own image", b, j)
			}
		}
	}
	return p, errs
}

func (c *lineCheck) checkBox(wb *wireBox, i, j int, need func(string, *string) string, bad func(string, string, ...any), reported map[string]bool) Box {
	var b Box
	// Field names are built only for problems: a clean manifest has hundreds of
	// thousands of boxes.
	field := func(key string) string {
		if key == "" {
			return fmt.Sprintf("readings[%d].boxes[%d]", i, j)
		}
		return fmt.Sprintf("readings[%d].boxes[%d].%s", i, j, key)
	}
	if reported != nil && reported[field("")] {
		return b
	}
	str := func(key string, v *string) string {
		if v != nil && reported == nil && strings.TrimSpace(*v) != "" {
			return *v
		}
		return need(field(key), v)
	}
	b.Label = str("label", wb.Label)
	b.Role = str("role", wb.Role)
	if b.Role != "" && !slices.Contains(Roles, b.Role) {
		bad(field("role"), "%q is not one of %s", b.Role, strings.Join(Roles, ", "))
	}
	coord := func(key string, v *float64) (int, bool) {
		switch {
		case v != nil && *v == math.Trunc(*v) && *v >= 0 && *v <= 1<<30:
			return int(*v), true
		case reported[field(key)]:
		case v == nil:
			bad(field(key), "missing")
		default:
			bad(field(key), "%v is not a whole number of pixels ≥ 0", *v)
		}
		return 0, false
	}
	var ok [4]bool
	b.X0, ok[0] = coord("x0", wb.X0)
	b.Y0, ok[1] = coord("y0", wb.Y0)
	b.X1, ok[2] = coord("x1", wb.X1)
	b.Y1, ok[3] = coord("y1", wb.Y1)
	if ok[0] && ok[2] && b.X1 <= b.X0 {
		bad(field("x1"), "%d is not greater than x0 %d", b.X1, b.X0)
	}
	if ok[1] && ok[3] && b.Y1 <= b.Y0 {
		bad(field("y1"), "%d is not greater than y0 %d", b.Y1, b.Y0)
	}
	return b
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// object decodes raw as a JSON object. Keys the format does not have are
// reported (a typo would otherwise lose the value silently); keys that differ
// from a known one only in case are taken as that key, as the one-pass decode
// does.
func (c *lineCheck) object(raw json.RawMessage, field string, known []string, errs *Errors, reported map[string]bool) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		reported[field] = true
		var se *json.SyntaxError
		if field == "" && errors.As(err, &se) {
			*errs = append(*errs, &Error{File: c.name, Line: c.line, Column: int(se.Offset), Err: fmt.Errorf("invalid JSON: %v", se)})
			return nil, false
		}
		what := "the line"
		if field != "" {
			what = "it"
		}
		*errs = append(*errs, c.errorf(field, "%s must be a JSON object, got %s", what, jsonKind(raw)))
		return nil, false
	}
	var unknown []string
	for k, v := range obj {
		if slices.Contains(known, k) {
			continue
		}
		if i := slices.IndexFunc(known, func(s string) bool { return strings.EqualFold(s, k) }); i >= 0 {
			obj[known[i]] = v
			delete(obj, k)
			continue
		}
		unknown = append(unknown, k)
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		*errs = append(*errs, c.errorf(join(field, k), "unknown field (known: %s)", strings.Join(known, ", ")))
	}
	return obj, true
}

func (c *lineCheck) str(obj map[string]json.RawMessage, parent, key string, errs *Errors, reported map[string]bool) *string {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		reported[join(parent, key)] = true
		*errs = append(*errs, c.errorf(join(parent, key), "want a string, got %s", jsonKind(raw)))
		return nil
	}
	return &s
}

func (c *lineCheck) num(obj map[string]json.RawMessage, parent, key string, errs *Errors, reported map[string]bool) *float64 {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		reported[join(parent, key)] = true
		what := jsonKind(raw)
		if strings.HasPrefix(what, "the number") {
			what += ", which is out of range"
		}
		*errs = append(*errs, c.errorf(join(parent, key), "want a number of pixels, got %s", what))
		return nil
	}
	return &f
}

func (c *lineCheck) array(obj map[string]json.RawMessage, parent, key string, errs *Errors, reported map[string]bool) ([]json.RawMessage, bool) {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		reported[join(parent, key)] = true
		*errs = append(*errs, c.errorf(join(parent, key), "want a list, got %s", jsonKind(raw)))
		return nil, false
	}
	return a, true
}

// jsonKind describes a JSON value for an error message.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	short := string(raw)
	if len(short) > 40 {
		cut := 37
		for cut > 0 && !utf8.RuneStart(short[cut]) {
			cut--
		}
		short = short[:cut] + "..."
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "the string " + short
	case 't', 'f':
		return "the boolean " + short
	case 'n':
		return "null"
	}
	return "the number " + short
}
