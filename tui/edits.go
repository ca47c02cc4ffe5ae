package tui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/loader"
)

// EditedPairs are the pairs of the split whose trees were edited in the
// explorer, each as a new pair with its live edits applied, in dataset
// order. An edited pair is named by its id with -edit1 appended, or the
// first -editN that no pair of taken names.
func (m *Model) EditedPairs(taken map[string]bool) []loader.Pair {
	var out []loader.Pair
	for i := range m.pairs {
		p := m.pairs[i]
		if len(m.edits[p.ID]) == 0 {
			continue
		}
		ts := m.currentTrees(i)
		p.Readings = append([]loader.Reading(nil), p.Readings...)
		for r := range p.Readings {
			p.Readings[r].Tree = ts[r]
		}
		base := p.ID
		for n := 1; ; n++ {
			p.ID = fmt.Sprintf("%s-edit%d", base, n)
			if !taken[p.ID] {
				break
			}
		}
		taken[p.ID] = true
		out = append(out, p)
	}
	return out
}

// SaveEdits appends the edited pairs (EditedPairs) as manifest lines to
// path, whose image paths are made relative to path's folder; images held
// in memory (the demo's) are written there as PNG files. It refuses when
// path is the manifest the pairs came from (input), checks the new lines by
// the loader's rules first, and replaces path whole or not at all. It
// returns how many pairs it wrote; none when nothing was edited, leaving
// path alone.
func (m *Model) SaveEdits(path, input string) (int, error) {
	if err := CheckSaveEdits(path, input); err != nil {
		return 0, err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("save edits: %w", err)
	}
	taken := map[string]bool{}
	for _, p := range m.opt.Data.Pairs {
		taken[p.ID] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct{ ID string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.ID != "" {
			taken[line.ID] = true
		}
	}
	pairs := m.EditedPairs(taken)
	if len(pairs) == 0 {
		return 0, nil
	}
	dir := filepath.Dir(path)
	for i := range pairs {
		for r := range pairs[i].Readings {
			rd := &pairs[i].Readings[r]
			if rd.Pixels != nil {
				continue
			}
			rel, err := filepath.Rel(dir, filepath.Join(m.opt.Data.Dir, filepath.FromSlash(rd.Image)))
			if err != nil {
				return 0, fmt.Errorf("save edits: pair %s: readings[%d].image: %w", pairs[i].ID, r, err)
			}
			rd.Image = filepath.ToSlash(rel)
		}
	}
	if err := loader.Validate(pairs, path); err != nil {
		return 0, fmt.Errorf("save edits: %w", err)
	}
	for i := range pairs {
		if err := loader.WriteImages(dir, &pairs[i]); err != nil {
			return 0, fmt.Errorf("save edits: %w", err)
		}
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		if _, err := w.Write(old); err != nil {
			return err
		}
		if len(old) > 0 && !strings.HasSuffix(string(old), "\n") {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		mw := loader.NewWriter(w)
		for i := range pairs {
			if err := mw.Write(&pairs[i]); err != nil {
				return fmt.Errorf("pair %s: %w", pairs[i].ID, err)
			}
		}
		return mw.Flush()
	})
	if err != nil {
		return 0, fmt.Errorf("save edits: %w", err)
	}
	return len(pairs), nil
}

// CheckSaveEdits refuses to save edits to path when it is the manifest
// input that is explored.
func CheckSaveEdits(path, input string) error {
	same, err := sameFile(path, input)
	if err != nil {
		return err
	}
	if same {
		return fmt.Errorf("--save-edits %s is the manifest being explored; edits are never written over it", path)
	}
	return nil
}

// sameFile reports whether a and b name one file: by path, or, when both
// exist, by identity (a link or another spelling of the path).
func sameFile(a, b string) (bool, error) {
	if b == "" {
		return false, nil
	}
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	if err := errors.Join(err1, err2); err != nil {
		return false, fmt.Errorf("save edits: %w", err)
	}
	if aa == bb {
		return true, nil
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb), nil
}
