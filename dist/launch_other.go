//go:build !linux

package dist

import "os/exec"

// childAttrs does nothing here: only Linux kills a child with its parent.
func childAttrs(*exec.Cmd) {}
