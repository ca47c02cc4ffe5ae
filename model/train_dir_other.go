//go:build !linux

package model

// replaceDir makes dst hold what the folder tmp holds, by two renames.
func replaceDir(tmp, dst string) error { return replaceDirByRenames(tmp, dst) }
