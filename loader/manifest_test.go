package loader

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lavascope/lavascope/internal/termtext"
)

const (
	treeVP = "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (JJ green) (NN chair)) (PP (IN with) (NP (DT a) (JJ yellow) (NN bag)))) (. .))"
	treeNP = "(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (JJ green) (NN chair)) (PP (IN with) (NP (DT a) (JJ yellow) (NN bag))))) (. .))"
)

// goodPair is a valid manifest entry as a JSON-able map, for tests to break.
func goodPair(id string) map[string]any {
	return map[string]any{
		"id": id, "sentence": "Danny approached the green chair with a yellow bag.",
		"ambiguity": "pp-attachment", "split": "test",
		"readings": []any{
			map[string]any{"tree": treeVP, "image": "images/a.png", "gloss": "Danny carries the bag",
				"boxes": []any{map[string]any{"label": "bag", "role": "evidence", "x0": 1, "y0": 2, "x1": 30, "y1": 40}}},
			map[string]any{"tree": treeNP, "image": "images/b.png", "gloss": "the bag is on the chair"},
		},
	}
}

func jsonLine(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// reading returns readings[i] of a goodPair map for editing.
func reading(p map[string]any, i int) map[string]any {
	return p["readings"].([]any)[i].(map[string]any)
}

func box0(p map[string]any) map[string]any {
	return reading(p, 0)["boxes"].([]any)[0].(map[string]any)
}

// testDir makes a folder with two 64x48 PNGs and a file that only claims to
// be a PNG.
func testDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	img.Set(3, 3, color.RGBA{255, 0, 0, 255})
	for _, name := range []string{"a.png", "b.png"} {
		if err := writePNG(filepath.Join(dir, "images", name), img); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "images", "broken.png"), []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x40\x00\x00\x00\x30\x08\x02\x00\x00\x00garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReaderReportsEachBadInput(t *testing.T) {
	type edit func(p map[string]any)
	cases := []struct {
		name  string
		line  string // the second line; empty means built from edit
		edit  edit
		text  func(string) string // edits the line's text after edit
		opts  Options
		n     int      // number of problems when not 1
		wants []string // substrings of the problems, each with file:line and field
	}{
		{name: "syntax", line: `{"id": "x",, }`, wants: []string{"m.jsonl:2:12: invalid JSON"}},
		{name: "not an object", line: `["id"]`, wants: []string{"m.jsonl:2: the line must be a JSON object, got a list"}},
		{name: "missing id", edit: func(p map[string]any) { delete(p, "id") }, wants: []string{"m.jsonl:2: id: missing"}},
		{name: "empty sentence", edit: func(p map[string]any) { p["sentence"] = " " }, wants: []string{"m.jsonl:2: sentence: is empty"}},
		{name: "missing split", edit: func(p map[string]any) { delete(p, "split") }, wants: []string{"m.jsonl:2: split: missing"}},
		{name: "unknown split", edit: func(p map[string]any) { p["split"] = "dev" }, wants: []string{`m.jsonl:2: split: "dev" is not one of train, val, test`}},
		{name: "wrong type", edit: func(p map[string]any) { p["id"] = 7 }, wants: []string{"m.jsonl:2: id: want a string, got the number 7"}},
		{name: "unknown field", edit: func(p map[string]any) { reading(p, 1)["imgae"] = "x" }, wants: []string{"m.jsonl:2: readings[1].imgae: unknown field"}},
		{name: "missing readings", edit: func(p map[string]any) { delete(p, "readings") }, wants: []string{"m.jsonl:2: readings: missing"}},
		{name: "one reading", edit: func(p map[string]any) { p["readings"] = p["readings"].([]any)[:1] }, wants: []string{"m.jsonl:2: readings: has 1 reading(s); a pair needs at least 2"}},
		{name: "reading not object", edit: func(p map[string]any) { p["readings"].([]any)[1] = "x" }, wants: []string{`m.jsonl:2: readings[1]: it must be a JSON object, got the string "x"`}},
		{name: "duplicate id", edit: func(p map[string]any) { p["id"] = "p1" }, wants: []string{`m.jsonl:2: id: duplicate id "p1" (first on line 1)`}},
		{name: "missing tree", edit: func(p map[string]any) { delete(reading(p, 0), "tree") }, wants: []string{"m.jsonl:2: readings[0].tree: missing"}},
		{name: "tree does not parse", edit: func(p map[string]any) { reading(p, 1)["tree"] = "(S (NP Danny" }, wants: []string{"m.jsonl:2: readings[1].tree: does not parse:", "unclosed '(' at 1:4 of the tree"}},
		{name: "trees disagree", edit: func(p map[string]any) {
			reading(p, 1)["tree"] = strings.Replace(treeNP, "yellow", "red", 1)
		}, wants: []string{"m.jsonl:2: readings[1].tree: its words", "must share their words"}},
		{name: "same image twice", edit: func(p map[string]any) { reading(p, 1)["image"] = "./images/a.png" }, wants: []string{"m.jsonl:2: readings[1].image:", "also the image of readings[0]"}},
		{name: "missing image field", edit: func(p map[string]any) { delete(reading(p, 1), "image") }, wants: []string{"m.jsonl:2: readings[1].image: missing"}},
		{name: "image does not exist", edit: func(p map[string]any) { reading(p, 1)["image"] = "images/nope.png" }, wants: []string{"m.jsonl:2: readings[1].image: images/nope.png does not exist"}},
		{name: "image leaves folder", edit: func(p map[string]any) { reading(p, 1)["image"] = "images/../../b.png" }, wants: []string{`m.jsonl:2: readings[1].image: "images/../../b.png" leaves the manifest's folder`}},
		{name: "absolute image path", edit: func(p map[string]any) { reading(p, 1)["image"] = "/etc/passwd" }, wants: []string{`m.jsonl:2: readings[1].image: "/etc/passwd" is an absolute path`}},
		{name: "outside allowed", edit: func(p map[string]any) { reading(p, 1)["image"] = "../nope.png" }, opts: Options{AllowOutside: true},
			wants: []string{"m.jsonl:2: readings[1].image: ../nope.png does not exist"}},
		{name: "image does not decode", edit: func(p map[string]any) { reading(p, 1)["image"] = "images/broken.png" }, opts: Options{CheckImages: true},
			wants: []string{"m.jsonl:2: readings[1].image:", "broken.png"}},
		{name: "broken header under boxes", edit: func(p map[string]any) { reading(p, 0)["image"] = "images/broken.png" },
			wants: []string{"m.jsonl:2: readings[0].image:", "broken.png"}},
		{name: "not an image", edit: func(p map[string]any) { reading(p, 0)["image"] = "m.jsonl" },
			wants: []string{"m.jsonl:2: readings[0].image:", "not a PNG or JPEG image"}},
		{name: "box outside image", edit: func(p map[string]any) { box0(p)["x1"] = 65 }, wants: []string{"m.jsonl:2: readings[0].boxes[0]: (1,2)-(65,40) reaches outside the 64x48 image"}},
		{name: "box outside decoded image", edit: func(p map[string]any) { box0(p)["y1"] = 49 }, opts: Options{CheckImages: true}, wants: []string{"m.jsonl:2: readings[0].boxes[0]: (1,2)-(30,49) reaches outside"}},
		{name: "box empty", edit: func(p map[string]any) { box0(p)["x1"] = 1 }, wants: []string{"m.jsonl:2: readings[0].boxes[0].x1: 1 is not greater than x0 1"}},
		{name: "box negative", edit: func(p map[string]any) { box0(p)["y0"] = -3 }, wants: []string{"m.jsonl:2: readings[0].boxes[0].y0: -3 is not a whole number"}},
		{name: "box fraction", edit: func(p map[string]any) { box0(p)["x0"] = 1.5 }, wants: []string{"m.jsonl:2: readings[0].boxes[0].x0: 1.5 is not a whole number"}},
		{name: "box coordinate out of range", edit: func(p map[string]any) {}, text: func(s string) string { return strings.Replace(s, `"x0":1,`, `"x0":1e400,`, 1) },
			wants: []string{"m.jsonl:2: readings[0].boxes[0].x0: want a number of pixels, got the number 1e400, which is out of range"}},
		{name: "box role", edit: func(p map[string]any) { box0(p)["role"] = "evidense" }, wants: []string{`m.jsonl:2: readings[0].boxes[0].role: "evidense" is not one of evidence, person, object`}},
		{name: "box missing coordinate", edit: func(p map[string]any) { delete(box0(p), "y1") }, wants: []string{"m.jsonl:2: readings[0].boxes[0].y1: missing"}},
		{name: "boxes not a list", edit: func(p map[string]any) { reading(p, 0)["boxes"] = map[string]any{} }, wants: []string{"m.jsonl:2: readings[0].boxes: want a list, got an object"}},
		{name: "invalid UTF-8", edit: func(p map[string]any) {}, text: func(s string) string { return strings.Replace(s, "Danny carries", "Danny \xffcarries", 1) },
			wants: []string{"m.jsonl:2:", "invalid UTF-8 (byte 0xff)"}},
		{name: "duplicate key", edit: func(p map[string]any) {}, text: func(s string) string { return strings.Replace(s, `"split":"test"`, `"split":"test","SPLIT":"val"`, 1) },
			wants: []string{"m.jsonl:2: SPLIT: the key occurs twice"}},
		{name: "duplicate key in a reading", edit: func(p map[string]any) {}, text: func(s string) string {
			return strings.Replace(s, `"gloss":"Danny carries the bag"`, `"gloss":"Danny carries the bag","gl\u006fss":"x"`, 1)
		}, wants: []string{"m.jsonl:2: readings[0].gloss: the key occurs twice"}},
		{name: "duplicate key beside a wrong type", edit: func(p map[string]any) { p["id"] = 7 }, text: func(s string) string { return strings.Replace(s, `"split":"test"`, `"split":"test","split":"val"`, 1) },
			n: 2, wants: []string{"m.jsonl:2: id: want a string", "m.jsonl:2: split: the key occurs twice"}},
		{name: "ids make one file name", edit: func(p map[string]any) { p["id"] = "P1" },
			wants: []string{`m.jsonl:2: id: "P1" and the id "p1" on line 1 make the same file name "P1"`}},
		{name: "id too long", edit: func(p map[string]any) { p["id"] = strings.Repeat("a", MaxIDBytes+1) },
			wants: []string{"m.jsonl:2: id: is 201 bytes long; an id may have at most 200"}},
		{name: "id with escapes", edit: func(p map[string]any) { p["id"] = "p\x1b]0;x\a\u202e" },
			wants: []string{`m.jsonl:2: id: "p\x1b]0;x\a\u202e" holds control or bidirectional characters`}},
		{name: "sentence differs from the tree", edit: func(p map[string]any) { p["sentence"] = "Danny approached the red chair with a yellow bag." },
			wants: []string{`m.jsonl:2: sentence: "Danny approached the red chair with a yellow bag." does not read as the words of readings[0].tree`}},
		{name: "several at once", edit: func(p map[string]any) {
			delete(p, "sentence")
			p["split"] = "dev"
			box0(p)["role"] = "x"
		}, n: 3, wants: []string{"m.jsonl:2: sentence: missing", "m.jsonl:2: split:", "m.jsonl:2: readings[0].boxes[0].role:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := testDir(t)
			line := c.line
			if line == "" {
				p := goodPair("p2")
				c.edit(p)
				line = jsonLine(t, p)
				if c.text != nil {
					line = c.text(line)
				}
			}
			text := jsonLine(t, goodPair("p1")) + "\n" + line + "\n" + jsonLine(t, goodPair("p3")) + "\n"
			path := filepath.Join(dir, "m.jsonl")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var problems Errors
			var ok []string
			for {
				p, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					var es Errors
					if !errors.As(err, &es) {
						t.Fatalf("Read: %v", err)
					}
					problems = append(problems, es...)
					continue
				}
				ok = append(ok, p.ID)
			}
			// Lines 1 and 3 are fine and are still read around the bad line.
			if strings.Join(ok, ",") != "p1,p3" {
				t.Errorf("valid pairs read = %v, want p1,p3", ok)
			}
			if n := max(c.n, 1); len(problems) != n {
				t.Errorf("got %d problems, want %d:\n%v", len(problems), n, problems)
			}
			msg := strings.ReplaceAll(problems.Error(), path, "m.jsonl")
			for _, w := range c.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("problems do not mention %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestLoadReportsAllProblems(t *testing.T) {
	dir := testDir(t)
	p2 := goodPair("p2")
	delete(p2, "id")
	p4 := goodPair("p4")
	reading(p4, 0)["tree"] = "(S"
	text := strings.Join([]string{jsonLine(t, goodPair("p1")), jsonLine(t, p2), "", "{", jsonLine(t, p4)}, "\n")
	path := filepath.Join(dir, "m.jsonl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, Options{})
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Load: %v, want Errors", err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Field))
	}
	want := []string{"2 id", "4 ", "5 readings[0].tree"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems at %q, want %q\n%v", got, want, err)
	}
}

func TestRoundTrip(t *testing.T) {
	dir := testDir(t)
	var pairs []Pair
	for _, id := range []string{"a", "b"} {
		var p Pair
		if err := json.Unmarshal([]byte(jsonLine(t, goodPair(id))), &p); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, p)
	}
	pairs[1].Split = SplitTrain
	pairs[1].Readings[0].Gloss = "with <angle> & quotes \" in it"
	if err := WriteDataset(dir, "pairs.jsonl", pairs); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "pairs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("<angle> &")) {
		t.Errorf("HTML characters escaped in the manifest:\n%s", raw)
	}
	ds, err := Load(filepath.Join(dir, "pairs.jsonl"), Options{CheckImages: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ds.Pairs, pairs) {
		t.Errorf("read back\n%+v\nwant\n%+v", ds.Pairs, pairs)
	}
	if got := ds.Split(SplitTrain).Pairs; len(got) != 1 || got[0].ID != "b" {
		t.Errorf("Split(train) = %+v", got)
	}
	if got := ds.Split("").Pairs; len(got) != 2 {
		t.Errorf("Split(\"\") kept %d pairs", len(got))
	}
	img, err := ds.Image(&ds.Pairs[0].Readings[1])
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 64 {
		t.Errorf("image is %v", img.Bounds())
	}
}

func TestValidateInMemory(t *testing.T) {
	var p Pair
	if err := json.Unmarshal([]byte(jsonLine(t, goodPair("a"))), &p); err != nil {
		t.Fatal(err)
	}
	p.Readings[0].Pixels = image.NewRGBA(image.Rect(0, 0, 20, 20))
	err := Validate([]Pair{p, p}, "demo")
	want := "demo:1: readings[0].boxes[0]: (1,2)-(30,40) reaches outside the 20x20 image\n" +
		"demo:2: id: duplicate id \"a\" (first on line 1)\n" +
		"demo:2: readings[0].boxes[0]: (1,2)-(30,40) reaches outside the 20x20 image"
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v\nwant %s", err, want)
	}
}

func TestReaderLineEndings(t *testing.T) {
	text := "\xef\xbb\xbf" + jsonLine(t, goodPair("a")) + "\r\n\r\n   \n" + jsonLine(t, goodPair("b"))
	r := NewReader(strings.NewReader(text), "m", Options{})
	var ids []string
	for {
		p, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, fmt.Sprintf("%s@%d", p.ID, r.Line()))
	}
	if strings.Join(ids, " ") != "a@1 b@4" {
		t.Errorf("read %v", ids)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte(jsonLine(f, goodPair("a")) + "\n" + jsonLine(f, goodPair("b"))))
	f.Add([]byte(`{"id":"x","readings":[{"boxes":[{"x0":1e400}]}]}`))
	f.Add([]byte("{\n[\n\"\n"))
	f.Add([]byte(`{"id":"x","ID":"y","readings":[{"tree":"a","Tree":"b"},[{"k":1,"k":2}]]}`))
	f.Add([]byte("{\"id\":\"x\xff\",\"s\\u0070lit\":\"test\",\"split\":1}"))
	f.Add([]byte(`{"id":"x","sentence":"s","split":"test","readings":[{"tree":"(S (X a))","image":"a"},{"tree":"(S (X a))","image":"b","boxes":[{"label":"l","role":"object","x0":0,"y0":0,"x1":1,"y1":1}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), "fuzz", Options{})
		var good []Pair
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatal("reader does not reach EOF")
			}
			p, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var es Errors
				if !errors.As(err, &es) || len(es) == 0 {
					t.Fatalf("error %v is not Errors", err)
				}
				for _, e := range es {
					if e.File != "fuzz" || e.Line < 1 || e.Err == nil {
						t.Fatalf("badly located problem %#v", e)
					}
					if msg := e.Error(); strings.ContainsFunc(msg, termtext.Unsafe) || !utf8.ValidString(msg) {
						t.Fatalf("problem %q is not safe to print", msg)
					}
				}
				continue
			}
			good = append(good, p)
		}
		// Whatever was accepted must write out and read back unchanged.
		var buf bytes.Buffer
		w := NewWriter(&buf)
		for i := range good {
			if err := w.Write(&good[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r2 := NewReader(&buf, "again", Options{})
		for i := range good {
			p, err := r2.Read()
			if err != nil {
				t.Fatalf("rereading pair %d: %v", i, err)
			}
			if !reflect.DeepEqual(p, good[i]) {
				t.Fatalf("reread %+v, want %+v", p, good[i])
			}
		}
	})
}

// BenchmarkValidate10k checks a manifest of 10,000 pairs (two images and eight
// boxes a reading, like the synthetic generator writes) without decoding
// images: what `lavascope data check` does by default. ns/op is the time for
// all 10,000.
func BenchmarkValidate10k(b *testing.B) {
	dir := b.TempDir()
	var png bytes.Buffer
	if err := EncodePNG(&png, image.NewRGBA(image.Rect(0, 0, 224, 224))); err != nil {
		b.Fatal(err)
	}
	var text bytes.Buffer
	for i := range 10000 {
		p := goodPair(fmt.Sprintf("p%05d", i))
		for k := range 2 {
			rd := reading(p, k)
			rd["image"] = fmt.Sprintf("images/p%05d-%c.png", i, 'a'+k)
			var boxes []any
			for j := range 8 {
				boxes = append(boxes, map[string]any{"label": "yellow bag", "role": Roles[j%3], "x0": 10 + j, "y0": 20, "x1": 60 + j, "y1": 90})
			}
			rd["boxes"] = boxes
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rd["image"].(string))), png.Bytes(), 0o644); err != nil {
				if err := os.MkdirAll(filepath.Join(dir, "images"), 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(rd["image"].(string))), png.Bytes(), 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
		text.WriteString(jsonLine(b, p))
		text.WriteByte('\n')
	}
	path := filepath.Join(dir, "pairs.jsonl")
	if err := os.WriteFile(path, text.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(text.Len()))
	b.ResetTimer()
	for b.Loop() {
		ds, err := Load(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(ds.Pairs) != 10000 {
			b.Fatalf("%d pairs", len(ds.Pairs))
		}
	}
}

func TestFileName(t *testing.T) {
	for in, want := range map[string]string{
		"pp-0007":          "pp-0007",
		"a/b\\c d":         "a_b_c_d",
		"../etc/passwd":    ".._etc_passwd",
		"x_chefer_last.v2": "x_chefer_last.v2",
		"é":                "_",
	} {
		if got := FileName(in); got != want {
			t.Errorf("FileName(%q) = %q, want %q", in, got, want)
		}
	}
}
