package model

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
)

// diskSplits writes synthetic pairs to dir and loads them back, so that
// their images are files.
func diskSplits(t *testing.T, dir string, pairs int, seed uint64) (train, val Split, ds *loader.Dataset) {
	t.Helper()
	if _, err := synth.Write(dir, synth.Config{Pairs: pairs, Seed: seed, Size: synth.MinSize}); err != nil {
		t.Fatal(err)
	}
	ds, err := loader.Load(filepath.Join(dir, synth.ManifestName), loader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return DatasetSplit(ds, loader.SplitTrain), DatasetSplit(ds, loader.SplitVal), ds
}

// TestHashImagesCache: a recorded hash is reused while the file's size and
// time are unchanged, and the file is read again when either changes.
func TestHashImagesCache(t *testing.T) {
	train, _, _ := diskSplits(t, t.TempDir(), 10, 3)
	cur, fp, err := hashImages(train, nil)
	if err != nil || fp == "" || len(cur) != 2*train.Len() {
		t.Fatalf("hashImages: %d images, fingerprint %q, %v", len(cur), fp, err)
	}
	prev := map[string]imageRecord{}
	var one string
	for path, r := range cur {
		r.SHA256 = "recorded"
		prev[path] = r
		one = path
	}
	again, fp2, err := hashImages(train, prev)
	if err != nil {
		t.Fatal(err)
	}
	if again[one].SHA256 != "recorded" || fp2 == fp {
		t.Errorf("an unchanged file was hashed again: %+v", again[one])
	}
	later := time.Unix(0, prev[one].ModNano).Add(time.Second)
	if err := os.Chtimes(one, later, later); err != nil {
		t.Fatal(err)
	}
	again, _, err = hashImages(train, prev)
	if err != nil {
		t.Fatal(err)
	}
	if again[one].SHA256 != cur[one].SHA256 {
		t.Errorf("a file with a new time kept its recorded hash: %+v", again[one])
	}
	if got := changedImages(prev, again); !strings.Contains(got, one) {
		t.Errorf("changedImages %q does not name %s", got, one)
	}
}

// TestResumeSeesReplacedImage replaces a training image at the same path
// between a run's stop and its --resume: the pairs' fingerprint (ids,
// trees, image paths) is unchanged, so only the images' bytes can tell.
func TestResumeSeesReplacedImage(t *testing.T) {
	train, val, ds := diskSplits(t, t.TempDir(), 40, 6)
	m, tok := smallCLIP(t, train, 2)
	out := t.TempDir()
	o := quickOptions(out, 4)
	o.StopAfter = 2
	if _, err := Train(context.Background(), m, tok, train, val, o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, imagesFile)); err != nil {
		t.Fatalf("the run recorded no image hashes: %v", err)
	}
	p, err := train.Pair(0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := ds.ImagePath(&p.Readings[0]), ds.ImagePath(&p.Readings[1])
	other, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, other, 0o644); err != nil {
		t.Fatal(err)
	}
	o = quickOptions(out, 4)
	o.Resume = true
	_, err = Train(context.Background(), m, tok, train, val, o)
	if err == nil || !strings.Contains(err.Error(), "images of its training split changed") || !strings.Contains(err.Error(), a) {
		t.Errorf("resume after %s was replaced: %v, want a refusal naming it", a, err)
	}
}
