package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// TestExploreEndToEnd runs the real binary in a real terminal (tmux): it
// opens the explorer on the demo, the embedded model scoring and
// explaining the demo data with libtorch, moves, opens a pair, switches
// the method, exports, opens help, resizes and quits, reading the screen
// as a user would, then checks the exit status and that the terminal came
// back as it was, with no stray escape sequences on it.
func TestExploreEndToEnd(t *testing.T) {
	dir, bin, lib := torchE2E(t)
	tm := newTmux(t, dir)
	status := filepath.Join(dir, "status")
	// The shell records the exit status and whether the terminal modes
	// are those from before the run, then waits, so that the pane (and
	// anything left on it) can still be read.
	// TERM and COLORTERM are those of tmux in a true-colour terminal, under
	// which Bubble Tea alone would draw 256 colours.
	script := fmt.Sprintf(`before=$(stty -g); TERM=tmux-256color COLORTERM=truecolor %s explore --data demo --graphics auto --export-dir %s; rc=$?; after=$(stty -g); `+
		`if [ "$before" = "$after" ]; then same=yes; else same=no; fi; echo "rc=$rc stty=$same" > %s; sleep 600`,
		bin, filepath.Join(dir, "export"), status)
	start := time.Now()
	tm.run("new-session", "-d", "-s", "e2e", "-x", "160", "-y", "48", "-c", dir,
		"-e", "XDG_CONFIG_HOME="+dir, "-e", "XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "-e", torch.EnvLib+"="+lib, "sh", "-c", script)

	screen := tm.waitFor("the pair list with scores", func(s string) bool {
		return strings.Contains(s, "lavascope · demo (test) · 101 pairs") && strings.Contains(s, "explained")
	})
	t.Logf("first screen with scores after %v (includes asking the terminal about graphics)", time.Since(start).Round(time.Millisecond))
	ids := listIDs(screen)
	if len(ids) < 3 || cursorRow(screen) != ids[0] {
		t.Fatalf("the list does not start with the cursor on its first of several pairs:\n%s", screen)
	}
	picked := ids[2]
	tm.keys("j", "j")
	tm.waitFor("the cursor two rows down", func(s string) bool { return cursorRow(s) == picked })

	tm.keys("Enter")
	screen = tm.waitFor("the pair view, explained", func(s string) bool {
		return strings.Contains(s, "picks image") && strings.Contains(s, "constituents · w: tokens") && strings.Contains(s, "words in context")
	})
	// The half-blocks keep their 24-bit colours (foreground and background)
	// through Bubble Tea's renderer and tmux.
	if esc := tm.captureEscapes(); !strings.Contains(esc, "38;2;") || !strings.Contains(esc, "48;2;") {
		t.Errorf("the pair view has no 24-bit colour (38;2;/48;2;) under TERM=tmux-256color COLORTERM=truecolor:\n%q", esc)
	}
	if !strings.HasPrefix(strings.TrimSpace(screen), picked) {
		t.Errorf("the pair view shows %q, want the pair under the cursor, %s", firstLine(screen), picked)
	}
	for _, want := range []string{"logit p", "text A", "image B", "ckpt demo", "chefer", "target own"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the pair view lacks %q:\n%s", want, screen)
		}
	}

	tm.keys("m")
	tm.waitFor("the method switched to rollout", func(s string) bool {
		return strings.Contains(statusLine(s), "rollout") && strings.Contains(statusLine(s), "start layer –") && strings.Contains(s, "constituents")
	})
	tm.keys("w")
	tm.waitFor("the raw tokens with their positions", func(s string) bool {
		return strings.Contains(s, "tokens, #position · w: constituents")
	})
	tm.keys("a")
	tm.waitFor("the summary of the split", func(s string) bool {
		return strings.Contains(s, "FAMILY") && strings.Contains(s, "pp-attachment") && strings.Contains(s, "POINTING")
	})
	tm.keys("Escape")
	tm.waitFor("the pair view after the summary", func(s string) bool { return strings.Contains(s, "picks image") })

	tm.keys("e")
	tm.waitFor("the export message", func(s string) bool { return strings.Contains(s, "exported") })
	pngs, _ := filepath.Glob(filepath.Join(dir, "export", "*_rollout_last_own.png"))
	jsons, _ := filepath.Glob(filepath.Join(dir, "export", "*_rollout_last_own-r*.json"))
	if len(pngs) != 1 || len(jsons) != 2 {
		t.Errorf("export wrote %v and %v, want one PNG and a report per reading", pngs, jsons)
	}

	tm.keys("?")
	tm.waitFor("the help screen", func(s string) bool {
		return strings.Contains(s, "lavascope keys") && strings.Contains(s, "export PNG+JSON")
	})
	tm.keys("Escape")
	tm.waitFor("the pair view again", func(s string) bool { return strings.Contains(s, "picks image") })

	tm.run("resize-window", "-t", "e2e", "-x", "100", "-y", "30")
	tm.waitFor("the pair view laid out for 100×30", func(s string) bool {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return len(lines) == 30 && strings.Contains(s, "picks image") && strings.Contains(lines[len(lines)-1], "q quit") &&
			strings.Contains(lines[3], strings.Repeat("─", 100))
	})

	tm.keys("q")
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(status); err == nil && len(b) > 0 {
			got = strings.TrimSpace(string(b))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got != "rc=0 stty=yes" {
		t.Fatalf("after q: %q, want exit status 0 and the terminal modes restored (rc=0 stty=yes)\nscreen:\n%s", got, tm.capture())
	}
	if alt := tm.display("#{alternate_on}"); alt != "0" {
		t.Errorf("the alternate screen is still on after quitting (alternate_on=%s)", alt)
	}
	if cur := tm.display("#{cursor_flag}"); cur != "1" {
		t.Errorf("the cursor is hidden after quitting (cursor_flag=%s)", cur)
	}
	// Everything the explorer drew was on the alternate screen; what is
	// left must be the empty pane the shell started with: no stray
	// escapes, no terminal replies echoed as text.
	if left := strings.TrimSpace(tm.captureEscapes()); left != "" {
		t.Errorf("the terminal is not clean after quitting:\n%q", left)
	}
}

// TestExploreSixelInTmux: --graphics sixel inside a tmux that does not
// draw sixel falls back to half-blocks and says why on the hint bar,
// where it used to draw nothing and say nothing.
func TestExploreSixelInTmux(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and drives it in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (make test installs it)")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	tm := newTmux(t, dir)
	tm.run("start-server", ";", "set", "-g", "allow-passthrough", "off", ";",
		"new-session", "-d", "-s", "e2e", "-x", "160", "-y", "48", "-c", dir, "-e", "XDG_CONFIG_HOME="+dir,
		"sh", "-c", bin+" explore --data demo --engine fake --graphics sixel; sleep 600")
	tm.waitFor("the note on the hint bar", func(s string) bool {
		return strings.Contains(s, "sixel cannot pass through tmux here (allow-passthrough off") &&
			strings.Contains(s, "drawing half-blocks")
	})
	tm.keys("q")
}

// torchE2E skips where the binary cannot be driven in tmux with libtorch,
// and returns a temporary folder with the binary built into it and the
// shim's absolute path, which the binary, built elsewhere, would not find.
func torchE2E(t *testing.T) (dir, bin, lib string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and drives it in tmux")
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (make test installs it)")
	}
	torchtest.Require(t)
	lib, err := filepath.Abs(torch.LibPath())
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	return dir, buildBinary(t, dir), lib
}

// buildBinary builds lavascope into dir, where it would not find the shim
// the tests load: those that need it name it.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "lavascope")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// tmux drives a tmux server of its own.
type tmux struct {
	t      *testing.T
	socket string
	dir    string
}

func newTmux(t *testing.T, dir string) *tmux {
	tm := &tmux{t: t, socket: filepath.Join(dir, "tmux.sock"), dir: dir}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", tm.socket, "kill-server").Run() })
	return tm
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	cmd := exec.Command("tmux", append([]string{"-S", tm.socket, "-f", "/dev/null"}, args...)...)
	cmd.Env = append(os.Environ(), "TMUX=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (tm *tmux) keys(keys ...string) {
	tm.t.Helper()
	for _, k := range keys {
		tm.run("send-keys", "-t", "e2e", k)
	}
}

func (tm *tmux) capture() string { return tm.run("capture-pane", "-p", "-t", "e2e") }

func (tm *tmux) captureEscapes() string { return tm.run("capture-pane", "-p", "-e", "-t", "e2e") }

func (tm *tmux) display(format string) string {
	return strings.TrimSpace(tm.run("display-message", "-p", "-t", "e2e", format))
}

// waitFor polls the screen until ok accepts it.
func (tm *tmux) waitFor(what string, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var s string
	for time.Now().Before(deadline) {
		s = tm.capture()
		if ok(s) {
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	tm.t.Fatalf("waiting for %s; the screen is:\n%s", what, s)
	return ""
}

var (
	cursorRe = regexp.MustCompile(`(?m)^▶ (\S+)`)
	rowRe    = regexp.MustCompile(`(?m)^[▶ ] ((?:pp|adj|vp)-\d+) `)
)

// listIDs are the ids of the pairs the list shows, top to bottom.
func listIDs(screen string) []string {
	var ids []string
	for _, m := range rowRe.FindAllStringSubmatch(screen, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// cursorRow is the id of the pair under the list's cursor.
func cursorRow(screen string) string {
	m := cursorRe.FindStringSubmatch(screen)
	if m == nil {
		return ""
	}
	return m[1]
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// statusLine is the second line from the bottom.
func statusLine(screen string) string {
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	if len(lines) < 2 {
		return ""
	}
	return lines[len(lines)-2]
}
