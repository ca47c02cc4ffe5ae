package graphics

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// openPTY returns both ends of a new pseudo-terminal: the terminal side
// (what a terminal emulator holds) and the program side.
func openPTY(t *testing.T) (termSide, progSide *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ioErr error
	rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr == nil {
			n, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	})
	if ioErr != nil {
		m.Close()
		t.Skipf("pseudo-terminal setup: %v", ioErr)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open /dev/pts/%d: %v", n, err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// fakeTerminal reads the program's queries and, once DA1 has come, writes
// answer (if any), the way a terminal emulator answers.
func fakeTerminal(t *testing.T, termSide *os.File, answer string) <-chan string {
	got := make(chan string, 1)
	go func() {
		var seen []byte
		buf := make([]byte, 256)
		for !bytes.Contains(seen, []byte("\x1b[c")) {
			n, err := termSide.Read(buf)
			seen = append(seen, buf[:n]...)
			if err != nil {
				got <- string(seen)
				return
			}
		}
		if answer != "" {
			termSide.WriteString(answer)
		}
		got <- string(seen)
	}()
	return got
}

func TestQueryAnsweringTerminal(t *testing.T) {
	termSide, progSide := openPTY(t)
	state := func() string {
		rc, err := progSide.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var st *term.State
		rc.Control(func(fd uintptr) { st, err = term.GetState(int(fd)) })
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(st)
	}
	before := state()
	sent := fakeTerminal(t, termSide, kittyOK+"\x1b[6;16;8t"+da1Sixel)
	replies, asked, err := query(progSide, Queries, 5*time.Second)
	if err != nil || !asked {
		t.Fatalf("query: asked %v, %v", asked, err)
	}
	if s := <-sent; s != Queries {
		t.Errorf("terminal received %q, want the queries %q", s, Queries)
	}
	r := parseReplies(replies)
	if !r.da1Seen || r.kitty != "OK" || r.cellW != 8 || r.cellH != 16 {
		t.Errorf("replies %q parsed as %+v", replies, r)
	}
	if before != state() {
		t.Error("terminal mode not restored after the query")
	}
}

// TestQuerySilentTerminal: a terminal that never answers costs the timeout
// and no more, and does not hang the caller.
func TestQuerySilentTerminal(t *testing.T) {
	termSide, progSide := openPTY(t)
	sent := fakeTerminal(t, termSide, "")
	done := make(chan struct{})
	var replies []byte
	var asked bool
	var err error
	go func() {
		replies, asked, err = query(progSide, Queries, 100*time.Millisecond)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("query hung on a silent terminal")
	}
	<-sent
	if err != nil || !asked || len(replies) != 0 {
		t.Errorf("silent terminal: %q, asked %v, %v", replies, asked, err)
	}
	c := Detect(Probe{Getenv: env("TERM", "xterm-256color"), Terminal: true, Asked: asked, Replies: replies, Timeout: 100 * time.Millisecond})
	if c.Mode != Blocks || !strings.Contains(strings.Join(c.Lines(), "\n"), "no DA1 reply within 100ms") {
		t.Errorf("silent terminal detected as %v: %v", c.Mode, c.Lines())
	}
}

func TestCellSize(t *testing.T) {
	_, progSide := openPTY(t)
	rc, _ := progSide.SyscallConn()
	set := func(ws unix.Winsize) {
		rc.Control(func(fd uintptr) {
			if err := unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &ws); err != nil {
				t.Fatal(err)
			}
		})
	}
	set(unix.Winsize{Row: 40, Col: 100, Xpixel: 900, Ypixel: 720})
	if w, h, ok := CellSize(progSide); w != 9 || h != 18 || !ok {
		t.Errorf("cell %d×%d %v, want 9×18", w, h, ok)
	}
	set(unix.Winsize{Row: 40, Col: 100})
	if w, h, ok := CellSize(progSide); w != DefaultCellWidth || h != DefaultCellHeight || ok {
		t.Errorf("no pixel size: %d×%d %v, want the default", w, h, ok)
	}
	f, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, ok := CellSize(f); ok {
		t.Error("a plain file has a cell size")
	}
	if _, _, err := query(f, Queries, 50*time.Millisecond); err == nil {
		t.Error("query on a plain file succeeded")
	}
}

func TestProbeTerminalWithoutTerminal(t *testing.T) {
	if isTerminal(os.Stdout) {
		t.Skip("standard output is a terminal")
	}
	p := ProbeTerminal(50 * time.Millisecond)
	if p.Terminal || p.Asked || p.Err == nil {
		t.Errorf("probe %+v", p)
	}
	if c := Detect(p); c.Mode != None {
		t.Errorf("mode %v for output that is not a terminal", c.Mode)
	}
}
