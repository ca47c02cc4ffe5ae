package model

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// replaceDir makes dst hold what the folder tmp holds. Linux swaps the two
// in one step (renameat2 with RENAME_EXCHANGE), so dst is never missing; the
// old content, now at tmp, is then removed. Where the file system cannot
// exchange, it falls back to two renames.
func replaceDir(tmp, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		if err := syncDir(filepath.Dir(dst)); err != nil {
			return err
		}
		return os.RemoveAll(tmp)
	case errors.Is(err, unix.ENOENT):
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
		return syncDir(filepath.Dir(dst))
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return replaceDirByRenames(tmp, dst)
	}
	return err
}
