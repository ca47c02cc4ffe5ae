//go:build !unix

package graphics

import (
	"errors"
	"os"
	"time"

	"golang.org/x/term"
)

// ProbeTerminal gathers what [Detect] needs: here, where lavascope does not
// query the terminal, the environment and whether standard output is a
// terminal.
func ProbeTerminal(timeout time.Duration) Probe {
	return Probe{
		Getenv:   os.Getenv,
		Terminal: term.IsTerminal(int(os.Stdout.Fd())),
		Timeout:  timeout,
		Err:      errors.New("terminal queries are not supported on this system"),
	}
}

// CellSize returns DefaultCellWidth×DefaultCellHeight and ok false: the
// cell size is not known on this system.
func CellSize(f *os.File) (w, h int, ok bool) {
	return DefaultCellWidth, DefaultCellHeight, false
}
