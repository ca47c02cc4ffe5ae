package model

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// replaceDirByRenames moves dst aside, tmp into its place, and removes the
// old folder. A crash between the two renames leaves dst missing and its old
// content in the folder beside it named .tmp-old-*, which the next run
// removes; the run's other checkpoint is untouched.
func replaceDirByRenames(tmp, dst string) error {
	old, err := os.MkdirTemp(filepath.Dir(dst), ".tmp-old-")
	if err != nil {
		return err
	}
	if err := os.Remove(old); err != nil {
		return err
	}
	moved := true
	if err := os.Rename(dst, old); errors.Is(err, fs.ErrNotExist) {
		moved = false
	} else if err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if moved {
			return errors.Join(err, os.Rename(old, dst))
		}
		return err
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	if moved {
		return os.RemoveAll(old)
	}
	return nil
}
