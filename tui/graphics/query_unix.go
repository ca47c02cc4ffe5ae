//go:build unix

package graphics

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// ProbeTerminal gathers what [Detect] needs from the process's terminal:
// the environment, whether standard output is a terminal, the cell size from
// TIOCGWINSZ, inside tmux what tmux says about its client ([QueryTmux]),
// and the replies to [Queries], sent to /dev/tty in raw mode and
// awaited for at most timeout. It asks nothing when standard output is not
// a terminal, when TERM=dumb, or inside an asciinema recording (the queries
// would be recorded). A reply that arrives after the timeout is left in the
// terminal's input.
func ProbeTerminal(timeout time.Duration) Probe {
	p := Probe{Getenv: os.Getenv, Timeout: timeout}
	p.Terminal = isTerminal(os.Stdout)
	if os.Getenv("TMUX") != "" {
		t := QueryTmux(RunTmux)
		p.Tmux = &t
	}
	switch {
	case !p.Terminal:
		p.Err = errors.New("standard output is not a terminal")
		return p
	case os.Getenv("TERM") == "dumb":
		p.Err = errors.New("TERM=dumb")
		return p
	case os.Getenv("ASCIINEMA_REC") != "":
		p.Err = errors.New("inside an asciinema recording")
		return p
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		p.Err = fmt.Errorf("open the terminal: %w", err)
		return p
	}
	defer tty.Close()
	if w, h, ok := CellSize(tty); ok {
		p.CellWidth, p.CellHeight = w, h
	}
	p.Replies, p.Asked, p.Err = query(tty, Queries, timeout)
	return p
}

// query writes q to the terminal f in raw mode and reads until a DA1 reply
// has come or timeout has passed. It relies on f's read deadline, which
// works for terminals that Go's poller handles, and refuses to ask where
// the deadline cannot be set, so that it never blocks for good.
func query(f *os.File, q string, timeout time.Duration) (replies []byte, asked bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, false, fmt.Errorf("terminal: %w", err)
	}
	if err := f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, false, fmt.Errorf("terminal reads cannot time out: %w", err)
	}
	defer f.SetReadDeadline(time.Time{})
	var old *term.State
	var rawErr error
	if err := rc.Control(func(fd uintptr) { old, rawErr = term.MakeRaw(int(fd)) }); err != nil || rawErr != nil {
		return nil, false, fmt.Errorf("terminal raw mode: %w", errors.Join(err, rawErr))
	}
	defer rc.Control(func(fd uintptr) { term.Restore(int(fd), old) })

	if _, err := f.WriteString(q); err != nil {
		return nil, false, fmt.Errorf("terminal: %w", err)
	}
	buf := make([]byte, 0, 256)
	chunk := make([]byte, 256)
	for {
		n, err := f.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if parseReplies(buf).da1Seen {
			return buf, true, nil
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return buf, true, nil
		case err != nil:
			return buf, true, fmt.Errorf("terminal: %w", err)
		case len(buf) > 1<<14:
			// Input that is not a reply (a paste, say): stop reading it.
			return buf, true, nil
		}
	}
}

// CellSize returns the size in pixels of one cell of the terminal f from
// TIOCGWINSZ. Many terminals fill in the pixel size; where f is not a
// terminal, or the terminal leaves it 0 (some do, and so may ssh), it returns
// DefaultCellWidth×DefaultCellHeight and ok false.
func CellSize(f *os.File) (w, h int, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return DefaultCellWidth, DefaultCellHeight, false
	}
	var ws *unix.Winsize
	var wsErr error
	if err := rc.Control(func(fd uintptr) { ws, wsErr = unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ) }); err != nil || wsErr != nil {
		return DefaultCellWidth, DefaultCellHeight, false
	}
	if ws.Col == 0 || ws.Row == 0 || ws.Xpixel == 0 || ws.Ypixel == 0 {
		return DefaultCellWidth, DefaultCellHeight, false
	}
	return int(ws.Xpixel / ws.Col), int(ws.Ypixel / ws.Row), ws.Xpixel >= ws.Col && ws.Ypixel >= ws.Row
}

func isTerminal(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	is := false
	rc.Control(func(fd uintptr) { is = term.IsTerminal(int(fd)) })
	return is
}
