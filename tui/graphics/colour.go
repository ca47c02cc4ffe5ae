package graphics

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"
)

// Colour is whether half-blocks and heatmaps get 24-bit colour, and why.
type Colour struct {
	// TrueColor means the program should draw 24-bit colour whatever
	// Bubble Tea's own detection says. False leaves the choice to it.
	TrueColor bool
	// Reason says why, for `lavascope doctor`.
	Reason string
}

// Tmux is what the tmux server says about the client lavascope runs in,
// read by [QueryTmux]. Every field is the server's untrusted text.
type Tmux struct {
	// TermName is the outer terminal's TERM (client_termname).
	TermName string
	// Features is client_termfeatures (tmux 3.2 and later): "RGB" in it
	// means tmux passes 24-bit colour on to the outer terminal.
	Features string
	// Passthrough is the allow-passthrough option: "0" or "1" in tmux
	// 3.3 (a flag), "off", "on" or "all" later; empty before 3.3.
	Passthrough string
	// Overrides is terminal-overrides, one pattern:capabilities a line;
	// read only when Features is empty (tmux before 3.2).
	Overrides string
	// Err says why tmux could not be asked.
	Err error
}

// TmuxTimeout bounds each tmux command [QueryTmux] runs: a hung or slow
// server costs the start-up at most this.
const TmuxTimeout = 500 * time.Millisecond

// tmuxOutputLimit caps what is read from tmux: the answers are a few
// words, and anything longer is not one.
const tmuxOutputLimit = 64 << 10

// RunTmux runs the tmux binary with args and a [TmuxTimeout], and returns
// its standard output. It is [QueryTmux]'s runner outside tests.
func RunTmux(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), TmuxTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tmux", args...)
	var out limitedBuffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("tmux %s: no answer within %v", args[0], TmuxTimeout)
		}
		return nil, fmt.Errorf("tmux %s: %w", args[0], err)
	}
	return out.Bytes(), nil
}

// limitedBuffer keeps the first tmuxOutputLimit bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := tmuxOutputLimit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// QueryTmux asks the tmux server, through run (normally [RunTmux]), for the
// client's terminal, its features and allow-passthrough: one
// display-message, and a show-options for terminal-overrides on a tmux too
// old for client_termfeatures.
func QueryTmux(run func(args ...string) ([]byte, error)) Tmux {
	out, err := run("display-message", "-p", "#{client_termname}\t#{client_termfeatures}\t#{allow-passthrough}")
	if err != nil {
		return Tmux{Err: err}
	}
	fields := strings.SplitN(strings.TrimRight(string(out), "\r\n"), "\t", 3)
	for len(fields) < 3 {
		fields = append(fields, "")
	}
	t := Tmux{TermName: fields[0], Features: fields[1], Passthrough: strings.TrimSpace(fields[2])}
	if t.Features == "" {
		if ov, err := run("show-options", "-gv", "terminal-overrides"); err == nil {
			t.Overrides = string(ov)
		}
	}
	return t
}

// rgb reports whether tmux says it sends 24-bit colour to the outer
// terminal, and where it says so.
func (t Tmux) rgb() (bool, string) {
	for f := range strings.SplitSeq(t.Features, ",") {
		if strings.TrimSpace(f) == "RGB" {
			return true, "tmux lists RGB in client_termfeatures"
		}
	}
	// terminal-overrides lines are "pattern:cap:cap..." with Tc or RGB
	// among the caps; the pattern is matched against the outer TERM as
	// tmux does, with fnmatch.
	for line := range strings.SplitSeq(t.Overrides, "\n") {
		pattern, caps, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if m, err := path.Match(pattern, t.TermName); err != nil || !m {
			continue
		}
		for c := range strings.SplitSeq(caps, ":") {
			if c == "Tc" || c == "RGB" {
				return true, "tmux's terminal-overrides give " + c
			}
		}
	}
	return false, ""
}

// DecideColour decides whether to draw 24-bit colour. Bubble Tea (through
// colorprofile) ignores COLORTERM under TERM=tmux-* and screen-*, so inside
// tmux it falls back to 256 colours even where the outer terminal has 24-bit
// colour; lavascope decides true colour when:
//
//   - COLORTERM is truecolor or 24bit, whatever TERM says; or
//   - inside tmux ($TMUX set), tmux says it passes RGB to the outer
//     terminal (tm, read by [QueryTmux]; nil when not asked).
//
// NO_COLOR, TERM=dumb and an unset TERM never get true colour. Otherwise
// the decision is left to Bubble Tea, which also reads terminfo.
func DecideColour(getenv func(string) string, tm *Tmux) Colour {
	term := getenv("TERM")
	if no, _ := strconv.ParseBool(getenv("NO_COLOR")); no {
		return Colour{Reason: "NO_COLOR is set: no colours forced"}
	}
	if term == "" || term == "dumb" {
		return Colour{Reason: "TERM is " + orUnset(term) + ": no colours forced"}
	}
	if ct := strings.ToLower(getenv("COLORTERM")); ct == "truecolor" || ct == "24bit" {
		r := "24-bit (COLORTERM=" + ct + ")"
		if multiplexerTerm(term) {
			r += "; TERM=" + safe(term) + " alone would give 256 colours"
		}
		return Colour{TrueColor: true, Reason: r}
	}
	if getenv("TMUX") != "" {
		switch {
		case tm == nil:
			return Colour{Reason: "inside tmux, not asked about RGB: Bubble Tea decides (set COLORTERM=truecolor if the outer terminal has 24-bit colour)"}
		case tm.Err != nil:
			return Colour{Reason: fmt.Sprintf("inside tmux, which did not answer (%v): Bubble Tea decides (set COLORTERM=truecolor if the outer terminal has 24-bit colour)", tm.Err)}
		}
		if ok, why := tm.rgb(); ok {
			return Colour{TrueColor: true, Reason: "24-bit (" + why + " for the outer terminal " + safe(tm.TermName) + ")"}
		}
		return Colour{Reason: "inside tmux without RGB for the outer terminal " + safe(tm.TermName) +
			": 256 colours (if it has 24-bit colour: set -as terminal-features '" + safe(tm.TermName) + ":RGB' in tmux.conf, or COLORTERM=truecolor)"}
	}
	return Colour{Reason: "TERM=" + safe(term) + " without COLORTERM=truecolor: Bubble Tea decides from terminfo"}
}

// TerminalColour is [DecideColour] for this process, for when the terminal
// is not probed: its environment, and tmux asked with [RunTmux] when $TMUX
// is set. [Detect] decides the same into [Capabilities.Colour].
func TerminalColour() Colour {
	var tm *Tmux
	if os.Getenv("TMUX") != "" {
		t := QueryTmux(RunTmux)
		tm = &t
	}
	return DecideColour(os.Getenv, tm)
}

// Multiplexed is the mode to draw in when want (sixel or kitty, asked for
// by name) may not reach the terminal through a multiplexer, and a note
// saying so; detected is what [Detect] found, tmux's answers included.
// Inside tmux, sixel works only where tmux draws it itself
// (detected.Sixel); lavascope never wraps images in passthrough, which tmux
// does not move with the pane, and kitty images need it. Inside GNU screen
// neither gets through. In those cases it is half-blocks, with a note for
// the explorer's status line; otherwise want, and no note.
func Multiplexed(want Mode, detected Capabilities, getenv func(string) string) (Mode, string) {
	tm := detected.Tmux
	if want != Sixel && want != Kitty {
		return want, ""
	}
	switch {
	case getenv("TMUX") != "":
		if want == Sixel && detected.Sixel {
			return want, ""
		}
		why := "allow-passthrough unknown"
		switch {
		case tm != nil && tm.Err == nil && (tm.Passthrough == "off" || tm.Passthrough == "0"):
			why = "allow-passthrough off"
		case tm != nil && tm.Err == nil && (tm.Passthrough == "on" || tm.Passthrough == "all" || tm.Passthrough == "1"):
			why = "lavascope does not use passthrough, whose images stay put when panes move"
		}
		if want == Sixel {
			why += "; this tmux does not draw sixel itself"
		}
		return Blocks, fmt.Sprintf("%v cannot pass through tmux here (%s): drawing half-blocks", want, why)
	case getenv("STY") != "" || strings.HasPrefix(getenv("TERM"), "screen"):
		return Blocks, fmt.Sprintf("%v cannot pass through GNU screen: drawing half-blocks", want)
	}
	return want, ""
}

func multiplexerTerm(term string) bool {
	return strings.HasPrefix(term, "tmux") || strings.HasPrefix(term, "screen")
}

// safe is s with everything but printable ASCII replaced, and cut to 64
// bytes: tmux's and the environment's text goes into lines on the terminal.
func safe(s string) string {
	b := []byte(s)
	if len(b) > 64 {
		b = append(b[:61], "..."...)
	}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

func orUnset(s string) string {
	if s == "" {
		return "unset"
	}
	return safe(s)
}
