package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/loader"
)

// imagesFile, in a run folder, records the SHA-256 of every training image
// with its size and modification time, so that --resume sees an image
// replaced at the same path (the pairs' fingerprint holds only its path)
// and hashes again only the files whose size or time changed. A file
// replaced with the same size and time is taken for the same.
const imagesFile = "image_hashes.json"

// imageRecord is one image's entry of imagesFile.
type imageRecord struct {
	Size    int64  `json:"size"`
	ModNano int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

// imageFiler is a Split whose images are files.
type imageFiler interface {
	// ImageFile is the path of the reading's image, "" when it has none.
	ImageFile(r *loader.Reading) string
}

func (d datasetSplit) ImageFile(r *loader.Reading) string {
	if r.Pixels != nil || r.Image == "" {
		return ""
	}
	return d.ds.ImagePath(r)
}

// hashImages hashes every image file of s, reusing prev's hash where a
// file's size and time are unchanged, and returns the hashes by path and a
// fingerprint over them in the split's order ("" when s has no image files).
func hashImages(s Split, prev map[string]imageRecord) (map[string]imageRecord, string, error) {
	f, ok := s.(imageFiler)
	if !ok {
		return nil, "", nil
	}
	cur := map[string]imageRecord{}
	h := sha256.New()
	for i := range s.Len() {
		p, err := s.Pair(i)
		if err != nil {
			return nil, "", err
		}
		for ri := range p.Readings {
			path := f.ImageFile(&p.Readings[ri])
			if path == "" {
				continue
			}
			rec, seen := cur[path]
			if !seen {
				if rec, err = hashImage(path, prev[path]); err != nil {
					return nil, "", fmt.Errorf("pair %s: %w", p.ID, err)
				}
				cur[path] = rec
			}
			fmt.Fprintf(h, "%q %s\n", path, rec.SHA256)
		}
	}
	if len(cur) == 0 {
		return nil, "", nil
	}
	return cur, "sha256:" + hex.EncodeToString(h.Sum(nil)[:16]), nil
}

func hashImage(path string, prev imageRecord) (imageRecord, error) {
	file, err := os.Open(path)
	if err != nil {
		return imageRecord{}, fmt.Errorf("image: %w", err)
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return imageRecord{}, fmt.Errorf("image: %w", err)
	}
	rec := imageRecord{Size: fi.Size(), ModNano: fi.ModTime().UnixNano()}
	if prev.SHA256 != "" && prev.Size == rec.Size && prev.ModNano == rec.ModNano {
		rec.SHA256 = prev.SHA256
		return rec, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return imageRecord{}, fmt.Errorf("image %s: %w", path, err)
	}
	rec.SHA256 = hex.EncodeToString(h.Sum(nil))
	return rec, nil
}

// readImageRecords reads a run's imagesFile; a missing or unreadable one is
// no record, and every image is hashed again.
func readImageRecords(out string) map[string]imageRecord {
	data, err := os.ReadFile(filepath.Join(out, imagesFile))
	if err != nil {
		return nil
	}
	var m map[string]imageRecord
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}

func writeImageRecords(out string, m map[string]imageRecord) error {
	if m == nil {
		return nil
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(out, imagesFile), data)
}

// changedImages names the images whose hash differs between two records,
// at most five and a count of the rest.
func changedImages(prev, cur map[string]imageRecord) string {
	var changed []string
	for path, c := range cur {
		if p, ok := prev[path]; ok && p.SHA256 != c.SHA256 {
			changed = append(changed, path)
		}
	}
	slices.Sort(changed)
	if len(changed) > 5 {
		return strings.Join(changed[:5], ", ") + fmt.Sprintf(" and %d more", len(changed)-5)
	}
	return strings.Join(changed, ", ")
}
