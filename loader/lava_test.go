package loader

import (
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lavaCorpus copies the LAVA-shaped sample in testdata/lava into a temporary
// folder, with a small JPEG for each frame it names, and returns its root.
// lavaJSON, when set, replaces corpus/lava.json.
func lavaCorpus(t *testing.T, lavaJSON string) string {
	t.Helper()
	root := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "lava", "corpus", "lava.json"))
	if err != nil {
		t.Fatal(err)
	}
	if lavaJSON != "" {
		data = []byte(lavaJSON)
	}
	if err := os.MkdirAll(filepath.Join(root, "corpus", "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "corpus", "lava.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	frames := []string{"00022-10090-10190", "00022-10300-10400", "00023-00100-00200", "00031-00500-00600", "00031-00700-00800", "00040-00000-00100"}
	for i, name := range frames {
		img := image.NewRGBA(image.Rect(0, 0, 72, 54))
		for p := range img.Pix {
			img.Pix[p] = uint8(40 * i)
		}
		img.Set(1, 1, color.RGBA{255, 0, 0, 255})
		f, err := os.Create(filepath.Join(root, "corpus", "images", name+".jpg"))
		if err != nil {
			t.Fatal(err)
		}
		if err := jpeg.Encode(f, img, nil); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return root
}

// parseKey names the tree key of the sample in testdata/lava, a layout other
// than LAVA's own.
var parseKey = map[string]string{FieldTree: "parse"}

func TestImportLAVA(t *testing.T) {
	root := lavaCorpus(t, "")
	out := filepath.Join(root, "corpus")
	pairs, rep, err := ImportLAVA(LAVAOptions{
		Corpus: root, OutDir: out,
		Fields: map[string]string{FieldTree: "parse", FieldGloss: "interpretation", FieldAmbiguity: "ambiguityType"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Contrast || rep.Entries != 6 || rep.Groups != 3 || rep.Pairs != 2 || rep.Copied != 0 || rep.SkippedEntries() != 2 {
		t.Errorf("report %+v", rep)
	}
	wantSkips := []Skip{
		{Reason: "the tree of an earlier entry of the same sentence (a further frame of that reading)", Count: 1, Unit: unitEntries, First: "entry 2"},
		{Reason: "the only distinct tree of its sentence", Count: 1, Unit: unitEntries, First: "entry 5"},
	}
	if !slices.Equal(rep.Skipped, wantSkips) {
		t.Errorf("skipped %+v, want %+v", rep.Skipped, wantSkips)
	}
	p := pairs[0]
	if p.ID != "lava-0001" || p.Sentence != "Danny approached the chair with a bag." || p.Ambiguity != "PP" || p.Split != SplitTest {
		t.Errorf("pair %+v", p)
	}
	if got := p.Readings[0].Image + " " + p.Readings[1].Image; got != "images/00022-10090-10190.jpg images/00022-10300-10400.jpg" {
		t.Errorf("images %s", got)
	}
	if p.Readings[1].Gloss != "the bag is on the chair" {
		t.Errorf("gloss %q", p.Readings[1].Gloss)
	}
	if err := WriteDataset(out, "pairs.jsonl", pairs); err != nil {
		t.Fatal(err)
	}
	ds, err := Load(filepath.Join(out, "pairs.jsonl"), Options{CheckImages: true})
	if err != nil {
		t.Fatalf("imported manifest does not check: %v", err)
	}
	if len(ds.Pairs) != 2 {
		t.Errorf("%d pairs read back", len(ds.Pairs))
	}
}

func TestImportLAVAFramesOutside(t *testing.T) {
	root := lavaCorpus(t, "")
	out := t.TempDir()
	_, _, err := ImportLAVA(LAVAOptions{Corpus: filepath.Join(root, "corpus"), OutDir: out, Fields: parseKey})
	if err == nil || !strings.Contains(err.Error(), "outside") || !strings.Contains(err.Error(), "--copy-images") {
		t.Errorf("frames outside the manifest's folder: %v", err)
	}
	pairs, rep, err := ImportLAVA(LAVAOptions{Corpus: root, OutDir: out, CopyImages: true, Split: "auto", Fields: parseKey})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Copied != 4 {
		t.Errorf("copied %d frames, want 4", rep.Copied)
	}
	if err := WriteDataset(out, "pairs.jsonl", pairs); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(out, "pairs.jsonl"), Options{CheckImages: true}); err != nil {
		t.Errorf("manifest with copied frames: %v", err)
	}
	again, _, err := ImportLAVA(LAVAOptions{Corpus: root, OutDir: out, CopyImages: true, Split: "auto", Fields: parseKey})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pairs {
		if pairs[i].Split != again[i].Split {
			t.Errorf("auto split is not stable: %s then %s", pairs[i].Split, again[i].Split)
		}
	}
	pairs, _, err = ImportLAVA(LAVAOptions{Corpus: root, OutDir: out, AllowOutside: true, Fields: parseKey})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pairs[0].Readings[0].Image, "../") {
		t.Errorf("with AllowOutside the path is %q", pairs[0].Readings[0].Image)
	}
}

func TestImportLAVAMisfit(t *testing.T) {
	cases := []struct {
		name   string
		json   string
		fields map[string]string
		wants  []string
	}{
		{
			name:   "missing key lists the keys found",
			fields: map[string]string{FieldTree: "tree"},
			wants: []string{`none of the 6 entries has the key "tree" for the tree (--field tree=tree)`,
				"ambiguityType", `6  "PP"`, "parse", "visualFilename", "--field text=KEY"},
		},
		{
			name:  "nested keys are listed as paths",
			json:  `{"version": 2, "entries": [{"sentence": "a b", "video": {"frame": "x", "start": 3}}]}`,
			wants: []string{`none of the 1 entries has the key "text"`, "video.frame", "video.start", "sentence"},
		},
		{
			name:   "a list where a string belongs",
			fields: parseKey,
			json:   `[{"text": "Danny left.", "visualFilename": "00022-10090-10190", "parse": ["(S (NP (NNP Danny)) (VP (VBD left)) (. .))", "(S (NP (NNP Danny)) (VP (VBD left) (. .)))"]}]`,
			wants:  []string{"lava.json: entry 0: ", `key "parse" (the tree) holds a list of 2, not a string; pick one with --field tree=parse.0`},
		},
		{
			name:   "a tree that does not parse",
			fields: parseKey,
			json:   `[{"text": "Danny left.", "visualFilename": "00022-10090-10190", "parse": "(S (NP Danny"}]`,
			wants:  []string{"lava.json: entry 0: tree (key \"parse\") does not parse"},
		},
		{
			name:   "a frame name that is not a string",
			fields: parseKey,
			json:   `[{"text": "Danny left.", "visualFilename": {"file": "x"}, "parse": "(S (NP (NNP Danny)) (VP (VBD left)) (. .))"}]`,
			wants:  []string{`lava.json: entry 0: key "visualFilename" (the image) holds an object with keys file, not a string`},
		},
		{
			name:  "not entries",
			json:  `{"a": 1}`,
			wants: []string{`neither a list of entries nor entries by key ("a" is 1)`},
		},
		{
			name:   "unknown field name",
			fields: map[string]string{"sentence": "text"},
			wants:  []string{`unknown field "sentence" (fields: text, image, tree, gloss, ambiguity, split, group)`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := lavaCorpus(t, c.json)
			_, _, err := ImportLAVA(LAVAOptions{Corpus: root, OutDir: filepath.Join(root, "corpus"), Fields: c.fields})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestImportLAVAShapes(t *testing.T) {
	entry := func(frame, tree string) string {
		return `{"text": "Danny approached the chair with a bag.", "visualFilename": "` + frame + `", "parse": "` + tree + `"}`
	}
	a := entry("00022-10090-10190", "(S (NP (NNP Danny)) (VP (VBD approached) (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag)))) (. .))")
	b := entry("00022-10300-10400", "(S (NP (NNP Danny)) (VP (VBD approached) (NP (NP (DT the) (NN chair)) (PP (IN with) (NP (DT a) (NN bag))))) (. .))")
	for name, text := range map[string]string{
		"object with a list": `{"version": "1", "data": [` + a + `, ` + b + `]}`,
		"entries by key":     `{"e1": ` + a + `, "e2": ` + b + `}`,
		"JSON lines":         a + "\n\n" + b + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			root := lavaCorpus(t, text)
			pairs, _, err := ImportLAVA(LAVAOptions{Corpus: root, OutDir: filepath.Join(root, "corpus"), Fields: parseKey})
			if err != nil {
				t.Fatal(err)
			}
			if len(pairs) != 1 || len(pairs[0].Readings) != 2 {
				t.Errorf("got %+v", pairs)
			}
		})
	}
}

func FuzzLAVAEntries(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "lava", "corpus", "lava.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	if data, err = os.ReadFile(filepath.Join(layoutCorpus, "lava.json")); err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`[{"sentenceID": "1", "variantID": 1.5, "contrastVariants": ["1,2", 3], "equivalentVariants": "1,1"}]`))
	f.Add([]byte(`{"entries": [{"text": "a", "parse": ["(S (X a))"], "video": {"frame": 3}}]}`))
	f.Add([]byte(`{"e1": {"text": null}}` + "\n"))
	f.Add([]byte("{\"text\": \"a\"}\n{\"text\": 1}\n"))
	fields := DefaultLAVAFields()
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseEntries(data, "lava.json")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "lava.json: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, e := range entries {
			if e.label == "" {
				t.Fatal("entry without a label")
			}
			for field, key := range fields {
				if _, ok := e.str(key); !ok && e.describe(field, key) == "" {
					t.Fatal("no description of a missing field")
				}
			}
			e.str("a.0.b.1")
			for _, key := range []string{keyContrast, keyEquivalent} {
				if refs, err := e.refs(key); err == nil {
					for _, r := range refs {
						if r != normRef(r) {
							t.Fatalf("reference %q is not normalised", r)
						}
					}
				} else if !strings.HasPrefix(err.Error(), key) {
					t.Fatalf("error does not name the key: %v", err)
				}
			}
			for _, key := range []string{keySentenceID, keyVariantID} {
				if id, err := e.idPart(key); err == nil && (id == "" || strings.Contains(id, ",")) {
					t.Fatalf("id part %q", id)
				}
			}
		}
		if len(entries) > 0 {
			_ = (&misfit{file: "lava.json", field: FieldTree, key: "nope", entries: entries}).Error()
		}
	})
}
