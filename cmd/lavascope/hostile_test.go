package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
)

// hostile holds what a terminal must never receive from a manifest: CSI,
// OSC 0 (title), OSC 52 (clipboard), OSC 8 (hidden link), a bell, DEL, the
// C1 CSI U+009B, and bidi override and isolate controls.
const hostile = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;aGk=\x07\x1b]8;;https:x\x1b\\L\x1b]8;;\x1b\\\x7f\u009b2J\u202e\u2066"

// forbidden reports the first code point of s that may not reach a terminal:
// U+0000–U+001F but newline and tab, U+007F–U+009F, U+202A–U+202E,
// U+2066–U+2069, and any byte that is not UTF-8 (a lone 0x9b is CSI to a
// terminal that reads 8-bit controls).
func forbidden(s string) (rune, bool) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return rune(s[i]), true
			}
		case r == '\n' || r == '\t':
		case r < 0x20, r >= 0x7f && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return r, true
		}
	}
	return 0, false
}

func assertClean(t *testing.T, what, s string) {
	t.Helper()
	if r, bad := forbidden(s); bad {
		t.Errorf("%s holds %U:\n%q", what, r, s)
	}
}

func writeTestPNG(t *testing.T, path string, c color.Color) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeLines(t *testing.T, path string, lines ...any) {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		if s, ok := l.(string); ok {
			b.WriteString(s + "\n")
			continue
		}
		data, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(data, '\n'))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileManifest runs every command that prints a manifest's text over
// manifests whose every field is full of terminal escapes and bidi controls,
// and checks that none reaches stdout, stderr or a JSON or CSV file.
func TestHostileManifest(t *testing.T) {
	dev := torchtest.Device(t)
	dir := t.TempDir()
	imgA, imgB := "a"+hostile+".png", "b"+hostile+".png"
	writeTestPNG(t, filepath.Join(dir, imgA), color.RGBA{200, 30, 30, 255})
	writeTestPNG(t, filepath.Join(dir, imgB), color.RGBA{30, 30, 200, 255})
	// Every field hostile: the id, the tree's words, an unknown key, a value
	// of the wrong kind, a missing image.
	everything := filepath.Join(dir, "everything.jsonl")
	writeLines(t, everything, map[string]any{
		"id": "p" + hostile, "sentence": "Danny" + hostile, "ambiguity": "pp" + hostile, "split": "test",
		"k" + hostile: 1,
		"readings": []any{
			map[string]any{"tree": "(S (NN Danny" + hostile + "))", "image": "x" + hostile + ".png", "gloss": hostile},
			map[string]any{"tree": cmdtest.PPB, "image": imgB, "gloss": hostile, "boxes": "s" + hostile},
		},
	}, `{"id":"q","sentence":7,"split":"test","readings":[{"tree":"(S (NN \u009b\u202e))","image":"`+hostile+`"}]}`)
	// Every field hostile that a valid pair may hold (an id and a tree's words
	// may hold none), so that eval and explain print their tables.
	sentence := strings.ReplaceAll("Danny approached the green chair with a yellow bag.", " ", " \x1b\u009b\u202e\u2066\x07 ")
	passing := filepath.Join(dir, "passing.jsonl")
	writeLines(t, passing, map[string]any{
		"id": "p1", "sentence": sentence, "ambiguity": "pp" + hostile, "split": "test",
		"readings": []any{
			map[string]any{"tree": cmdtest.PPA, "image": imgA, "gloss": hostile,
				"boxes": []any{map[string]any{"label": hostile, "role": "evidence", "x0": 1, "y0": 1, "x1": 9, "y1": 9}}},
			map[string]any{"tree": cmdtest.PPB, "image": imgB, "gloss": hostile},
		},
	})
	if out, stderr, code := runCLI(t, "", "data", "check", "--data", passing, "--check-images"); code != 0 {
		t.Fatalf("the passing manifest does not pass: exit %d\n%s%s", code, out, stderr)
	}
	out := filepath.Join(dir, "explained")
	runs := []struct {
		args  []string
		codes []int
		want  string // in stdout or stderr
	}{
		{[]string{"data", "check", "--data", everything, "--check-images"}, []int{1}, `k\x1b[2J`},
		{[]string{"data", "stats", "--data", everything}, []int{0}, "2 lines with problems"},
		{[]string{"eval", "--checkpoint", "demo", "--data", everything}, []int{2}, "everything.jsonl:1"},
		{[]string{"eval", "--checkpoint", "demo", "--data", everything, "--json"}, []int{2}, "everything.jsonl:1"},
		{[]string{"explain", "--checkpoint", "demo", "--data", everything, "--out", out}, []int{2}, "everything.jsonl:1"},
		{[]string{"data", "check", "--data", passing}, []int{0}, "1 pairs, no problems"},
		{[]string{"data", "stats", "--data", passing}, []int{0}, `pp\x1b[2J`},
		{[]string{"eval", "--checkpoint", "demo", "--data", passing, "--device", dev.String()}, []int{0}, `pp\x1b[2J`},
		{[]string{"eval", "--checkpoint", "demo", "--data", passing, "--device", dev.String(), "--json", "--scores"}, []int{0}, `pp\u001b[2J`},
		{[]string{"explain", "--checkpoint", "demo", "--data", passing, "--out", out, "--metrics=false", "--device", dev.String()}, []int{0}, "p1 r1"},
	}
	for _, r := range runs {
		stdout, stderr, code := runCLI(t, "", r.args...)
		name := strings.Join(r.args[:2], " ")
		if code != r.codes[0] {
			t.Errorf("%s: exit %d, want %d\n%s%s", name, code, r.codes[0], stdout, stderr)
		}
		if !strings.Contains(stdout+stderr, r.want) {
			t.Errorf("%s: output lacks %q:\n%s%s", name, r.want, stdout, stderr)
		}
		assertClean(t, name+" stdout", stdout)
		assertClean(t, name+" stderr", stderr)
		if code == 0 && strings.Contains(strings.Join(r.args, " "), "--json") {
			var v map[string]any
			if err := json.Unmarshal([]byte(stdout), &v); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"))
	written := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".png") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		written++
		assertClean(t, filepath.Base(f), string(data))
	}
	if written != 5 { // p1-r0.json, p1-r1.json, the figure's SVG, readings.csv, summary.csv
		t.Errorf("explain wrote %d text files: %v", written, files)
	}
}

// A symbolic link inside the dataset folder that leads out of it is refused
// by data check and eval, and nothing of its target is printed.
func TestSymlinkOutsideRefused(t *testing.T) {
	dev := torchtest.Device(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("root:x:0:0:root:/root:/bin/bash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, link, target, image string }{
		{"folder link", "etclink", outside, "etclink/passwd"},
		{"file link", "b.png", filepath.Join(outside, "passwd"), "b.png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTestPNG(t, filepath.Join(dir, "a.png"), color.White)
			if err := os.Symlink(tc.target, filepath.Join(dir, tc.link)); err != nil {
				t.Skip(err)
			}
			path := filepath.Join(dir, "m.jsonl")
			writeLines(t, path, map[string]any{"id": "p1", "sentence": "Danny approached the green chair with a yellow bag.", "split": "test",
				"readings": []any{map[string]any{"tree": cmdtest.PPA, "image": "a.png"}, map[string]any{"tree": cmdtest.PPB, "image": tc.image}}})
			for _, args := range [][]string{
				{"data", "check", "--data", path},
				{"data", "check", "--data", path, "--check-images"},
				{"eval", "--checkpoint", "demo", "--data", path, "--device", dev.String()},
			} {
				stdout, stderr, code := runCLI(t, "", args...)
				all := stdout + stderr
				if code == 0 || !strings.Contains(all, "m.jsonl:1: readings[1].image: \""+tc.image+"\" leads outside the manifest's folder through a symbolic link") {
					t.Errorf("%v: exit %d\n%s", args, code, all)
				}
				if strings.Contains(all, "root") || strings.Contains(all, "72 6f 6f 74") {
					t.Errorf("%v prints the target's bytes:\n%s", args, all)
				}
			}
		})
	}
}

// writeZeroPNG writes a valid PNG of black pixels of any size without
// holding its pixels: one deflate block of fixed codes, a zero and then
// copies of the 258 bytes before, 13 bits each (10 MB for 16384² 16-bit RGB).
func writeZeroPNG(t *testing.T, w io.Writer, width, height int, depth, colorType byte, bytesPerPixel int) {
	t.Helper()
	total := int64(height) * (1 + int64(width)*int64(bytesPerPixel))
	var z bytes.Buffer
	z.Write([]byte{0x78, 0x01})
	bw := bufio.NewWriter(&z)
	var acc uint64
	var n uint
	put := func(code uint64, bits uint) { // a Huffman code, most significant bit first
		for i := int(bits) - 1; i >= 0; i-- {
			acc |= (code >> uint(i) & 1) << n
			n++
		}
		for n >= 8 {
			bw.WriteByte(byte(acc))
			acc >>= 8
			n -= 8
		}
	}
	put(0b110, 3) // BFINAL, then BTYPE 01 (fixed codes) written low bit first
	put(0x30, 8)  // the literal 0
	left := total - 1
	for ; left >= 258; left -= 258 {
		put(0xc5, 8) // length 258
		put(0, 5)    // distance 1
	}
	for ; left > 0; left-- {
		put(0x30, 8)
	}
	put(0, 7) // end of block
	if n > 0 {
		bw.WriteByte(byte(acc))
	}
	bw.Flush()
	z.Write(binary.BigEndian.AppendUint32(nil, uint32(total%65521)<<16|1)) // Adler-32 of zeros
	chunk := func(typ string, data []byte) {
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(data))))
		w.Write([]byte(typ))
		w.Write(data)
		w.Write(binary.BigEndian.AppendUint32(nil, c.Sum32()))
	}
	w.Write([]byte("\x89PNG\r\n\x1a\n"))
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(width)), uint32(height))
	chunk("IHDR", append(ihdr, depth, colorType, 0, 0, 0))
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
}

// Four 16384×16384 16-bit RGB PNGs (2 GiB each once decoded) are refused by
// data check --check-images with the byte figure, before any is decoded.
func TestDataCheckRefusesHugeImages(t *testing.T) {
	var small bytes.Buffer
	writeZeroPNG(t, &small, 30, 7, 16, 2, 6)
	if img, err := png.Decode(&small); err != nil || img.Bounds().Dx() != 30 {
		t.Fatalf("the generator writes no valid PNG: %v", err)
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "big0.png"))
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	writeZeroPNG(t, bw, 16384, 16384, 16, 2, 6)
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for i := 1; i < 4; i++ {
		if err := os.Link(filepath.Join(dir, "big0.png"), filepath.Join(dir, "big"+string(rune('0'+i))+".png")); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "m.jsonl")
	pair := func(id, a, b string) map[string]any {
		return map[string]any{"id": id, "sentence": "Danny approached the green chair with a yellow bag.", "split": "test",
			"readings": []any{map[string]any{"tree": cmdtest.PPA, "image": a}, map[string]any{"tree": cmdtest.PPB, "image": b}}}
	}
	writeLines(t, path, pair("p1", "big0.png", "big1.png"), pair("p2", "big2.png", "big3.png"))
	stdout, stderr, code := runCLI(t, "", "data", "check", "--data", path, "--check-images")
	if code != 1 || strings.Count(stdout, "16384x16384 16-bit RGB png takes up to 2147483648 bytes (2048 MiB) to decode, more than the 268435456 bytes (256 MiB)") != 4 {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}

// Ids that make one file name are refused before explain can write one
// pair's files over the other's.
func TestIDCollision(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.png", "b.png", "c.png", "d.png"} {
		writeTestPNG(t, filepath.Join(dir, n), color.White)
	}
	path := filepath.Join(dir, "m.jsonl")
	pair := func(id, a, b string) map[string]any {
		return map[string]any{"id": id, "sentence": "Danny approached the green chair with a yellow bag.", "split": "test",
			"readings": []any{map[string]any{"tree": cmdtest.PPA, "image": a}, map[string]any{"tree": cmdtest.PPB, "image": b}}}
	}
	writeLines(t, path, pair("pp/7", "a.png", "b.png"), pair("pp_7", "c.png", "d.png"))
	want := `m.jsonl:2: id: "pp_7" and the id "pp/7" on line 1 make the same file name "pp_7"`
	stdout, _, code := runCLI(t, "", "data", "check", "--data", path)
	if code != 1 || !strings.Contains(stdout, want) {
		t.Errorf("data check: exit %d\n%s", code, stdout)
	}
	_, stderr, code := runCLI(t, "", "explain", "--checkpoint", "demo", "--data", path, "--out", filepath.Join(dir, "out"))
	if code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("explain: exit %d\n%s", code, stderr)
	}
}

// An image that passes the header check but does not decode makes eval and
// train exit 2 with the manifest line that names it first.
func TestEvalUndecodableImage(t *testing.T) {
	dev := torchtest.Device(t)
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "a.png"), color.White)
	var b bytes.Buffer
	writeZeroPNG(t, &b, 64, 64, 8, 2, 3)
	broken := b.Bytes()[:60] // the header and the start of the pixels
	if err := os.WriteFile(filepath.Join(dir, "b.png"), broken, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "m.jsonl")
	pair := func(id, split string) map[string]any {
		return map[string]any{"id": id, "sentence": "Danny approached the green chair with a yellow bag.", "split": split,
			"readings": []any{map[string]any{"tree": cmdtest.PPA, "image": "a.png"}, map[string]any{"tree": cmdtest.PPB, "image": "b.png"}}}
	}
	writeLines(t, path, pair("p1", "test"), pair("p2", "train"))
	for _, args := range [][]string{
		{"eval", "--checkpoint", "demo", "--data", path, "--device", dev.String()},
		{"train", "--data", path, "--init", "tiny", "--learn-vocab", "50", "--steps", "1", "--out", filepath.Join(dir, "run"), "--device", dev.String()},
	} {
		_, stderr, code := runCLI(t, "", args...)
		if code != 2 || !strings.Contains(stderr, "m.jsonl:1: readings[1].image:") || !strings.Contains(stderr, "png: invalid format") {
			t.Errorf("%s: exit %d\n%s", args[0], code, stderr)
		}
	}
}

// Invalid UTF-8, a duplicate key and an empty manifest are reported.
func TestDataCheckStrictJSON(t *testing.T) {
	dir := t.TempDir()
	writeTestPNG(t, filepath.Join(dir, "a.png"), color.White)
	writeTestPNG(t, filepath.Join(dir, "b.png"), color.Black)
	path := filepath.Join(dir, "m.jsonl")
	tree := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	good := `{"id":"p1","sentence":"Danny approached the green chair with a yellow bag.","split":"test","readings":[{"tree":` + tree(cmdtest.PPA) + `,"image":"a.png"},{"tree":` + tree(cmdtest.PPB) + `,"image":"b.png"}]}`
	writeLines(t, path, strings.Replace(good, `"id":"p1"`, `"id":"p1","Id":"p2"`, 1), strings.Replace(good, "Danny approached", "Danny \xffapproached", 1))
	stdout, _, code := runCLI(t, "", "data", "check", "--data", path)
	for _, want := range []string{"m.jsonl:1: Id: the key occurs twice", "m.jsonl:2:", "invalid UTF-8 (byte 0xff)"} {
		if code != 1 || !strings.Contains(stdout, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, stdout)
		}
	}
	writeLines(t, path, "")
	stdout, _, code = runCLI(t, "", "data", "check", "--data", path)
	if code != 1 || !strings.Contains(stdout, "m.jsonl: the manifest holds no pairs") {
		t.Errorf("empty: exit %d\n%s", code, stdout)
	}
}

// --allow-outside lets a link out of the folder lead to an image.
func TestAllowOutside(t *testing.T) {
	dev := torchtest.Device(t)
	outside, dir := t.TempDir(), t.TempDir()
	writeTestPNG(t, filepath.Join(outside, "b.png"), color.Black)
	writeTestPNG(t, filepath.Join(dir, "a.png"), color.White)
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Skip(err)
	}
	path := filepath.Join(dir, "m.jsonl")
	writeLines(t, path, map[string]any{"id": "p1", "sentence": "Danny approached the green chair with a yellow bag.", "split": "test",
		"readings": []any{map[string]any{"tree": cmdtest.PPA, "image": "a.png"}, map[string]any{"tree": cmdtest.PPB, "image": "out/b.png"}}})
	for _, args := range [][]string{
		{"data", "check", "--data", path, "--check-images"},
		{"eval", "--checkpoint", "demo", "--data", path, "--device", dev.String()},
	} {
		if _, _, code := runCLI(t, "", args...); code == 0 {
			t.Errorf("%v: exit 0 without --allow-outside", args)
		}
		if stdout, stderr, code := runCLI(t, "", append(args, "--allow-outside")...); code != 0 {
			t.Errorf("%v --allow-outside: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
}
