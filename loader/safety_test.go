package loader

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSpelling(t *testing.T) {
	words := []string{"Danny", "did", "n't", "see", "Mary", "'s", "bag", "-LRB-", "red", "-RRB-", "."}
	for _, s := range []string{"Danny didn't see Mary's bag (red).", "danny DIDN'T see mary's bag red", "Danny didn’t see Mary’s bag, red!"} {
		if spelling(s) != spelling(words...) {
			t.Errorf("%q: %q, want %q", s, spelling(s), spelling(words...))
		}
	}
	for _, s := range []string{"Danny didn't see Mary's bag (blue).", "Danny didn't see Mary's bag", "Danny didn't see Mary's bag red 2"} {
		if spelling(s) == spelling(words...) {
			t.Errorf("%q reads as the words", s)
		}
	}
}

func TestCheckEmptyManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	if err := os.WriteFile(path, []byte("\n  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	problems, err := Check(path, Options{}, nil)
	if err != nil || len(problems) != 1 || problems[0].Error() != path+": the manifest holds no pairs (every line is blank)" {
		t.Errorf("Check = %v, %v", problems, err)
	}
	if _, err := Load(path, Options{}); err == nil || !strings.Contains(err.Error(), "no pairs") {
		t.Errorf("Load: %v", err)
	}
}

// writeManifest writes goodPair lines as dir/m.jsonl, each edited by edit.
func writeManifest(t *testing.T, dir string, edit func(p map[string]any), ids ...string) string {
	t.Helper()
	var text strings.Builder
	for _, id := range ids {
		p := goodPair(id)
		edit(p)
		text.WriteString(jsonLine(t, p) + "\n")
	}
	path := filepath.Join(dir, "m.jsonl")
	if err := os.WriteFile(path, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A link inside the dataset folder that leads out of it is refused before
// anything is read through it, and the target's bytes are never quoted.
func TestImageSymlinkOutside(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.png")
	if err := os.WriteFile(secret, []byte("root:x:0:0:secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, link, target, image string }{
		{"folder link", "etclink", outside, "etclink/secret.png"},
		{"file link", "images/b.png", secret, "images/b.png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testDir(t)
			os.Remove(filepath.Join(dir, tc.link))
			if err := os.Symlink(tc.target, filepath.Join(dir, tc.link)); err != nil {
				t.Skip(err)
			}
			path := writeManifest(t, dir, func(p map[string]any) { reading(p, 1)["image"] = tc.image }, "p1")
			for _, opts := range []Options{{}, {CheckImages: true}} {
				problems, err := Check(path, opts, nil)
				msg := problems.Error()
				if err != nil || len(problems) != 1 || !strings.Contains(msg, `readings[1].image: "`+tc.image+`" leads outside the manifest's folder through a symbolic link`) {
					t.Errorf("%+v: %v, %v", opts, msg, err)
				}
				if strings.Contains(msg, "root") || strings.Contains(msg, "72 6f 6f 74") {
					t.Errorf("the target's bytes are quoted: %s", msg)
				}
			}
			// With --allow-outside the link is followed and the file, not an
			// image, is refused as such.
			problems, _ := Check(path, Options{AllowOutside: true}, nil)
			if len(problems) != 1 || !strings.Contains(problems.Error(), "not a PNG or JPEG image") {
				t.Errorf("allow outside: %v", problems)
			}
			ds := &Dataset{Dir: dir}
			if _, err := ds.Image(&Reading{Image: tc.image}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("Image: %v", err)
			}
		})
	}
}

// A link that stays inside the folder is fine.
func TestImageSymlinkInside(t *testing.T) {
	dir := testDir(t)
	if err := os.Symlink("a.png", filepath.Join(dir, "images", "c.png")); err != nil {
		t.Skip(err)
	}
	path := writeManifest(t, dir, func(p map[string]any) { reading(p, 1)["image"] = "images/c.png" }, "p1")
	ds, err := Load(path, Options{CheckImages: true})
	if err != nil {
		t.Fatal(err)
	}
	// Callers decode from several goroutines (the explorer, the batcher).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := ds.Image(&ds.Pairs[0].Readings[1]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// An image that goes bad after the check is reported at its manifest line.
func TestDatasetImageErrorNamesLine(t *testing.T) {
	dir := testDir(t)
	path := writeManifest(t, dir, func(p map[string]any) {
		if p["id"] == "p2" {
			reading(p, 1)["image"] = "images/c.png"
		}
	}, "p1", "p2")
	c := filepath.Join(dir, "images", "c.png")
	data, err := os.ReadFile(filepath.Join(dir, "images", "a.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := Load(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c, data[:60], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ds.Image(&ds.Pairs[1].Readings[1])
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || e.Field != "readings[1].image" || !strings.Contains(err.Error(), "c.png: png: invalid format") {
		t.Errorf("Image: %v", err)
	}
}

// The bytes an image takes to decode come from its header and are bounded
// before decoding.
func TestImageHeaderBytes(t *testing.T) {
	for _, tc := range []struct {
		depth, colorType, interlace byte
		want                        string
	}{
		{16, 2, 0, "16384x16384 16-bit RGB png takes up to 2147483648 bytes (2048 MiB) to decode, more than the 268435456 bytes (256 MiB)"},
		{16, 0, 0, "16384x16384 16-bit grey png takes up to 536870912 bytes"},
		{8, 3, 1, "16384x16384 8-bit palette png takes up to 536870912 bytes"},
	} {
		ihdr := []byte("IHDR\x00\x00\x40\x00\x00\x00\x40\x00")
		ihdr = append(ihdr, tc.depth, tc.colorType, 0, 0, tc.interlace)
		b := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...)
		b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
		path := filepath.Join(t.TempDir(), "big.png")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadImage(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadImage: %v\nwant %s", err, tc.want)
		}
	}
}

func TestBudget(t *testing.T) {
	b := newBudget(10)
	r1 := b.acquire(6)
	done := make(chan bool)
	go func() {
		r2 := b.acquire(6)
		r2()
		done <- true
	}()
	select {
	case <-done:
		t.Fatal("two acquisitions of 6 out of 10 ran together")
	default:
	}
	r1()
	<-done
	// More than the budget runs alone instead of never.
	b.acquire(100)()
}
