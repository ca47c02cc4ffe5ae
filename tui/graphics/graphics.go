// Package graphics puts images on a terminal: sixel, the kitty graphics
// protocol, and a half-block renderer (▀ with 24-bit foreground and
// background) that works in every terminal with true colour, tmux and
// asciinema recordings included; [None] prints a one-line placeholder.
//
// [Detect] chooses a mode from what is known about the terminal ([Probe]):
// the replies to a kitty graphics query and to DA1, and the environment.
// [ProbeTerminal] asks a real terminal, with a timeout, and never hangs on
// one that does not answer. [Encoder] writes an image at the cursor and
// leaves the cursor where it was, which is what a full-screen program
// writing raw escapes needs; [Write] prints an image inline for a command
// line tool and moves the cursor below it.
package graphics

import (
	"fmt"
	"strings"
)

// Mode is a way to draw images on a terminal.
type Mode int

const (
	// Auto is not a drawing mode: it asks [Detect] to choose one.
	Auto Mode = iota
	// Sixel is DEC's sixel graphics (xterm -ti vt340, foot, WezTerm, mlterm,
	// Konsole, iTerm2, tmux 3.4 built with sixel support, ...).
	Sixel
	// Kitty is the kitty graphics protocol (kitty, Ghostty, WezTerm, Konsole).
	Kitty
	// Blocks draws two pixels per cell with "▀" in 24-bit colour.
	Blocks
	// None draws no image, only a placeholder such as "[image 224×224]".
	None
)

var modeNames = [...]string{"auto", "sixel", "kitty", "blocks", "none"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads auto, sixel, kitty, blocks or none, in any case.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Mode(i), nil
		}
	}
	return Auto, fmt.Errorf("graphics: unknown mode %q (want %s)", s, strings.Join(modeNames[:], "|"))
}
