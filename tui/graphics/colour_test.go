package graphics

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeTmux answers QueryTmux's commands from a table, and records them.
type fakeTmux struct {
	display, overrides string
	err                error
	asked              [][]string
}

func (f *fakeTmux) run(args ...string) ([]byte, error) {
	f.asked = append(f.asked, args)
	if f.err != nil {
		return nil, f.err
	}
	switch args[0] {
	case "display-message":
		return []byte(f.display), nil
	case "show-options":
		return []byte(f.overrides), nil
	}
	return nil, errors.New("unexpected tmux command")
}

func TestDecideColour(t *testing.T) {
	const inTmux = "/tmp/tmux-1000/default,123,0"
	tests := []struct {
		name   string
		env    []string
		tmux   *fakeTmux // nil: tmux not asked
		want   bool
		reason string
	}{
		{"tmux TERM, COLORTERM truecolor", []string{"TERM", "tmux-256color", "COLORTERM", "truecolor", "TMUX", inTmux},
			nil, true, "TERM=tmux-256color alone would give 256 colours"},
		{"screen TERM, COLORTERM 24bit", []string{"TERM", "screen-256color", "COLORTERM", "24bit"}, nil, true, "COLORTERM=24bit"},
		{"COLORTERM upper case", []string{"TERM", "xterm-256color", "COLORTERM", "TrueColor"}, nil, true, "COLORTERM=truecolor"},
		{"tmux says RGB (3.2+)", []string{"TERM", "tmux-256color", "TMUX", inTmux},
			&fakeTmux{display: "xterm-256color\t256,RGB,bpaste,clipboard,title\toff\n"}, true, "client_termfeatures for the outer terminal xterm-256color"},
		{"tmux without RGB", []string{"TERM", "tmux-256color", "TMUX", inTmux},
			&fakeTmux{display: "xterm-256color\t256,bpaste,title\toff\n"}, false, "terminal-features 'xterm-256color:RGB'"},
		{"old tmux, Tc override matches", []string{"TERM", "screen", "TMUX", inTmux},
			&fakeTmux{display: "xterm-256color\t\t\n", overrides: "xterm*:Tc\nrxvt*:XT\n"}, true, "terminal-overrides give Tc"},
		{"old tmux, override for another terminal", []string{"TERM", "screen", "TMUX", inTmux},
			&fakeTmux{display: "rxvt-unicode\t\t\n", overrides: "xterm*:Tc\n"}, false, "without RGB"},
		{"RGBX is not RGB", []string{"TERM", "tmux", "TMUX", inTmux},
			&fakeTmux{display: "xterm\tRGBX,256\t\n"}, false, "without RGB"},
		{"tmux does not answer", []string{"TERM", "tmux-256color", "TMUX", inTmux},
			&fakeTmux{err: errors.New("no server")}, false, "did not answer (no server)"},
		{"tmux, not asked", []string{"TERM", "tmux-256color", "TMUX", inTmux}, nil, false, "not asked"},
		{"NO_COLOR beats COLORTERM", []string{"TERM", "xterm", "COLORTERM", "truecolor", "NO_COLOR", "1"}, nil, false, "NO_COLOR"},
		{"dumb", []string{"TERM", "dumb", "COLORTERM", "truecolor"}, nil, false, "TERM is dumb"},
		{"TERM unset", []string{"COLORTERM", "truecolor"}, nil, false, "TERM is unset"},
		{"plain xterm", []string{"TERM", "xterm-256color"}, nil, false, "Bubble Tea decides from terminfo"},
		{"escape in the outer TERM", []string{"TERM", "tmux", "TMUX", inTmux},
			&fakeTmux{display: "x\x1b]0;pwned\a\t256\t\n"}, false, "outer terminal x?]0;pwned?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tm *Tmux
			if tc.tmux != nil {
				q := QueryTmux(tc.tmux.run)
				tm = &q
			}
			got := DecideColour(env(tc.env...), tm)
			if got.TrueColor != tc.want || !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("got %v %q, want %v and a reason with %q", got.TrueColor, got.Reason, tc.want, tc.reason)
			}
			if strings.ContainsAny(got.Reason, "\x1b\a") {
				t.Errorf("reason carries control characters: %q", got.Reason)
			}
		})
	}
}

func TestQueryTmux(t *testing.T) {
	f := &fakeTmux{display: "xterm-kitty\tRGB,sixel\ton\n"}
	got := QueryTmux(f.run)
	if got.TermName != "xterm-kitty" || got.Features != "RGB,sixel" || got.Passthrough != "on" || got.Err != nil {
		t.Errorf("parsed %+v", got)
	}
	if len(f.asked) != 1 {
		t.Errorf("asked %v, want one display-message when the features are there", f.asked)
	}
	// A tmux older than 3.2 leaves the features empty: the overrides are read.
	f = &fakeTmux{display: "xterm\n", overrides: "xterm:Tc\n"}
	got = QueryTmux(f.run)
	if got.TermName != "xterm" || got.Overrides != "xterm:Tc\n" || len(f.asked) != 2 || !slices.Equal(f.asked[1], []string{"show-options", "-gv", "terminal-overrides"}) {
		t.Errorf("old tmux: %+v after %v", got, f.asked)
	}
}

func TestMultiplexed(t *testing.T) {
	const inTmux = "/tmp/tmux-1000/default,123,0"
	tm := func(passthrough string) *Tmux { return &Tmux{TermName: "xterm-256color", Passthrough: passthrough} }
	tests := []struct {
		name     string
		want     Mode
		detected Capabilities
		env      []string
		mode     Mode
		note     string
	}{
		{"sixel in tmux, passthrough off", Sixel, Capabilities{Tmux: tm("off")}, []string{"TMUX", inTmux}, Blocks,
			"sixel cannot pass through tmux here (allow-passthrough off; this tmux does not draw sixel itself): drawing half-blocks"},
		{"sixel in tmux that draws sixel", Sixel, Capabilities{Sixel: true, Tmux: tm("off")}, []string{"TMUX", inTmux}, Sixel, ""},
		{"kitty in tmux, passthrough on", Kitty, Capabilities{Sixel: true, Tmux: tm("on")}, []string{"TMUX", inTmux}, Blocks,
			"kitty cannot pass through tmux here (lavascope does not use passthrough"},
		{"sixel in tmux 3.3, passthrough flag off", Sixel, Capabilities{Tmux: tm("0")}, []string{"TMUX", inTmux}, Blocks, "(allow-passthrough off;"},
		{"kitty in tmux 3.3, passthrough flag on", Kitty, Capabilities{Tmux: tm("1")}, []string{"TMUX", inTmux}, Blocks, "does not use passthrough"},
		{"kitty in tmux, not asked", Kitty, Capabilities{}, []string{"TMUX", inTmux}, Blocks, "allow-passthrough unknown"},
		{"sixel in screen", Sixel, Capabilities{}, []string{"STY", "123.pts-0", "TERM", "screen"}, Blocks, "GNU screen"},
		{"sixel outside multiplexers", Sixel, Capabilities{}, []string{"TERM", "xterm"}, Sixel, ""},
		{"blocks in tmux", Blocks, Capabilities{}, []string{"TMUX", inTmux}, Blocks, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mode, note := Multiplexed(tc.want, tc.detected, env(tc.env...))
			if mode != tc.mode || !strings.Contains(note, tc.note) || (tc.note == "") != (note == "") {
				t.Errorf("got %v %q, want %v and a note with %q", mode, note, tc.mode, tc.note)
			}
		})
	}
}

func TestSafe(t *testing.T) {
	if got := safe(strings.Repeat("é", 40)); len(got) != 64 || strings.ContainsFunc(got, func(r rune) bool { return r > 0x7e }) {
		t.Errorf("safe cut to %d bytes: %q", len(got), got)
	}
}

// TestQueryRealTmux asks a tmux server of the test's own, found through
// $TMUX as from inside one of its panes, with the fixed argv and timeout.
func TestQueryRealTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	if out, err := exec.Command("tmux", "-S", sock, "-f", "/dev/null", "new-session", "-d", "-s", "q", "sleep 60").CombinedOutput(); err != nil {
		t.Skipf("tmux cannot start a server here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })
	if out, err := exec.Command("tmux", "-S", sock, "set", "-g", "allow-passthrough", "off").CombinedOutput(); err != nil {
		t.Skipf("this tmux has no allow-passthrough (before 3.3): %v %s", err, out)
	}
	t.Setenv("TMUX", sock+",1,0")
	start := time.Now()
	tm := QueryTmux(RunTmux)
	if tm.Err != nil || (tm.Passthrough != "0" && tm.Passthrough != "off") {
		t.Errorf("QueryTmux: %+v", tm)
	}
	// At most two commands, each bounded by TmuxTimeout.
	if d := time.Since(start); d > 4*TmuxTimeout {
		t.Errorf("asking tmux took %v", d)
	}
	_, note := Multiplexed(Sixel, Capabilities{Tmux: &tm}, os.Getenv)
	if !strings.Contains(note, "allow-passthrough off") {
		t.Errorf("note %q", note)
	}
}

// FuzzDecideColour feeds tmux answers of any shape: no panic, and nothing
// of them reaches the reason as a control character.
func FuzzDecideColour(f *testing.F) {
	f.Add("xterm-256color\tRGB,256\toff\n", "xterm*:Tc\n")
	f.Add("\x1b[31m\t\t", "[:Tc")
	f.Fuzz(func(t *testing.T, display, overrides string) {
		ft := &fakeTmux{display: display, overrides: overrides}
		tm := QueryTmux(ft.run)
		c := DecideColour(env("TERM", "tmux-256color", "TMUX", "x"), &tm)
		if strings.ContainsFunc(c.Reason, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("reason %q", c.Reason)
		}
		if _, note := Multiplexed(Kitty, Capabilities{Tmux: &tm}, env("TMUX", "x")); strings.ContainsFunc(note, func(r rune) bool { return r < 0x20 }) {
			t.Errorf("note %q", note)
		}
	})
}
