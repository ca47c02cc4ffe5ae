package graphics

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const (
	da1Sixel    = "\x1b[?62;4;22c"
	da1Plain    = "\x1b[?62;22c"
	kittyOK     = "\x1b_Gi=31;OK\x1b\\"
	kittyRefuse = "\x1b_Gi=31;ENOTSUPPORTED:no\x1b\\"
)

func TestDetect(t *testing.T) {
	asked := func(getenv func(string) string, replies string) Probe {
		return Probe{Getenv: getenv, Terminal: true, Asked: true, Timeout: 150 * time.Millisecond, Replies: []byte(replies)}
	}
	notAsked := func(getenv func(string) string) Probe {
		return Probe{Getenv: getenv, Terminal: true, Err: errors.New("test")}
	}
	tests := []struct {
		name  string
		probe Probe
		want  Mode
		why   string
	}{
		{"kitty answers", asked(env("TERM", "xterm-kitty"), kittyOK+da1Plain), Kitty, "kitty graphics query"},
		{"kitty reply after DA1", asked(env(), da1Plain+kittyOK), Kitty, "kitty graphics query"},
		{"kitty and sixel: kitty wins", asked(env(), kittyOK+da1Sixel), Kitty, "kitty"},
		{"sixel by DA1", asked(env("TERM", "xterm-256color"), da1Sixel), Sixel, "DA1 attribute 4"},
		{"xterm vt340", asked(env("TERM", "xterm"), "\x1b[?63;1;2;3;4;6;8;9;15;16;29c"), Sixel, "DA1"},
		{"kitty refused, no sixel", asked(env(), kittyRefuse+da1Plain), Blocks, "without sixel or kitty"},
		{"plain xterm", asked(env("TERM", "xterm-256color"), da1Plain), Blocks, "without sixel"},
		{"VT132 class 4 is not sixel", asked(env(), "\x1b[?4;6c"), Blocks, "without sixel"},
		{"answered, env says kitty: replies win", asked(env("KITTY_WINDOW_ID", "1"), da1Plain), Blocks, "without"},
		{"asciinema beats kitty", asked(env("ASCIINEMA_REC", "1"), kittyOK+da1Sixel), Blocks, "asciinema"},
		{"asciinema not asked", notAsked(env("ASCIINEMA_REC", "1", "TERM", "xterm-kitty")), Blocks, "asciinema"},
		{"tmux without sixel", asked(env("TMUX", "/tmp/tmux-0/default,1,0", "TERM", "tmux-256color"), da1Plain), Blocks, "without sixel"},
		{"tmux with sixel", asked(env("TMUX", "/tmp/tmux-0/default,1,0"), da1Sixel), Sixel, "tmux draws sixel"},
		{"tmux silent, kitty outside", Probe{Getenv: env("TMUX", "x", "KITTY_WINDOW_ID", "3"), Terminal: true, Asked: true}, Blocks, "multiplexer"},
		{"screen", notAsked(env("STY", "1.pts", "TERM", "screen")), Blocks, "multiplexer"},
		{"no answer, kitty env", Probe{Getenv: env("TERM", "xterm-kitty"), Terminal: true, Asked: true}, Kitty, "$TERM"},
		{"not asked, ghostty", notAsked(env("TERM_PROGRAM", "ghostty")), Kitty, "$TERM_PROGRAM"},
		{"not asked, kitty window", notAsked(env("KITTY_WINDOW_ID", "2")), Kitty, "$KITTY_WINDOW_ID"},
		{"not asked, WezTerm", notAsked(env("TERM_PROGRAM", "WezTerm")), Sixel, "$TERM_PROGRAM"},
		{"not asked, foot", notAsked(env("TERM", "foot")), Sixel, "$TERM"},
		{"not asked, konsole", notAsked(env("KONSOLE_VERSION", "230804")), Sixel, "$KONSOLE_VERSION"},
		{"not asked, unknown", notAsked(env("TERM", "xterm-256color")), Blocks, "nothing says"},
		{"not a terminal", Probe{Getenv: env("TERM", "xterm-kitty"), Replies: []byte(kittyOK)}, None, "not a terminal"},
		{"dumb", Probe{Getenv: env("TERM", "dumb"), Terminal: true}, None, "TERM=dumb"},
		{"nil env", Probe{Terminal: true}, Blocks, "nothing says"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Detect(tt.probe)
			if c.Mode != tt.want {
				t.Errorf("mode %v, want %v\n%s", c.Mode, tt.want, strings.Join(c.Lines(), "\n"))
			}
			last := c.Findings[len(c.Findings)-1]
			if last.Topic != "graphics mode" || !strings.Contains(last.Text, tt.why) {
				t.Errorf("last finding %q, want the mode and a reason mentioning %q", last, tt.why)
			}
		})
	}
}

func TestDetectFindings(t *testing.T) {
	c := Detect(Probe{
		Getenv:   env("TERM", "xterm-256color", "COLORTERM", "truecolor", "TMUX", "x"),
		Terminal: true, Asked: true, Timeout: 150 * time.Millisecond,
		Replies:   []byte(da1Sixel + "\x1b[6;17;8t"),
		CellWidth: 9, CellHeight: 18,
	})
	want := []string{
		"terminal: TERM=xterm-256color COLORTERM=truecolor",
		"multiplexer: tmux: images only if tmux itself draws sixel; no passthrough",
		"DA1: attributes 4;22: sixel yes",
		"kitty graphics: query not answered",
		"cell size: 9×18 px (TIOCGWINSZ)",
		"colour: 24-bit (COLORTERM=truecolor)",
		"graphics mode: sixel (tmux draws sixel itself (DA1 attribute 4))",
	}
	if got := c.Lines(); !slices.Equal(got, want) {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !c.Sixel || c.Kitty || c.CellWidth != 9 || c.CellHeight != 18 {
		t.Errorf("capabilities %+v", c)
	}

	// Cell size from XTWINOPS when TIOCGWINSZ has none; default otherwise.
	c = Detect(Probe{Getenv: env(), Terminal: true, Asked: true, Replies: []byte("\x1b[6;20;10t" + da1Plain)})
	if c.CellWidth != 10 || c.CellHeight != 20 || !slices.Contains(c.Lines(), "cell size: 10×20 px (XTWINOPS 16)") {
		t.Errorf("XTWINOPS cell: %v", c.Lines())
	}
	c = Detect(Probe{Getenv: env(), Terminal: true, Asked: true, Timeout: time.Second})
	if c.CellWidth != DefaultCellWidth || !slices.Contains(c.Lines(), "queries: no DA1 reply within 1s") {
		t.Errorf("silent terminal: %v", c.Lines())
	}
	if !slices.Contains(c.Lines(), "colour: TERM is unset: no colours forced") {
		t.Errorf("no truecolor warning: %v", c.Lines())
	}
}

func TestQueryTimeout(t *testing.T) {
	if d := QueryTimeout(env()); d != 150*time.Millisecond {
		t.Errorf("local: %v", d)
	}
	if d := QueryTimeout(env("SSH_CONNECTION", "10.0.0.1 5 10.0.0.2 22")); d != 500*time.Millisecond {
		t.Errorf("ssh: %v", d)
	}
}

func TestParseReplies(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(r replies) bool
	}{
		{"da1", da1Sixel, func(r replies) bool { return r.da1Seen && slices.Equal(r.da1, []int{4, 22}) }},
		{"da1 class only", "\x1b[?1c", func(r replies) bool { return r.da1Seen && len(r.da1) == 0 }},
		{"kitty ok", kittyOK, func(r replies) bool { return r.kittySeen && r.kitty == "OK" }},
		{"kitty other id", "\x1b_Gi=7;OK\x1b\\", func(r replies) bool { return !r.kittySeen && r.unexpected == 1 }},
		{"kitty i=310 is not i=31", "\x1b_Gi=310;OK\x1b\\", func(r replies) bool { return !r.kittySeen }},
		{"cell", "\x1b[6;18;9t", func(r replies) bool { return r.cellW == 9 && r.cellH == 18 }},
		{"cell zero ignored", "\x1b[6;0;9t", func(r replies) bool { return r.cellW == 0 }},
		{"interleaved with keys", "ab\x1b[Aq" + kittyOK + "x" + da1Plain, func(r replies) bool {
			return r.da1Seen && r.kittySeen && r.unexpected == 1
		}},
		{"cut short", "\x1b[?62;4", func(r replies) bool { return !r.da1Seen }},
		{"unterminated apc", "\x1b_Gi=31;OK", func(r replies) bool { return !r.kittySeen }},
		{"garbage params", "\x1b[?99999999999999999999999;4;;c", func(r replies) bool { return r.da1Seen && slices.Equal(r.da1, []int{4}) }},
		{"kitty's trailing semicolon", "\x1b[?62;c", func(r replies) bool { return r.da1Seen && len(r.da1) == 0 }},
		{"lone escape", "\x1b", func(r replies) bool { return !r.da1Seen }},
	}
	for _, tt := range tests {
		if r := parseReplies([]byte(tt.in)); !tt.check(r) {
			t.Errorf("%s: %+v", tt.name, r)
		}
	}
}

func FuzzParseReplies(f *testing.F) {
	for _, s := range []string{da1Sixel, kittyOK + da1Plain, "\x1b[6;20;10t", "\x1b_G\x1b\\", "\x1b[", "\x1b_", "\x1b[?;c"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := parseReplies(b)
		if (r.cellW == 0) != (r.cellH == 0) || r.cellW < 0 {
			t.Errorf("cell %d×%d", r.cellW, r.cellH)
		}
		if r.kittySeen && !bytes.Contains(b, []byte("i=31")) {
			t.Error("kitty reply without i=31 in the input")
		}
		c := Detect(Probe{Terminal: true, Asked: true, Replies: b})
		if c.Mode == Auto || c.CellWidth <= 0 || c.CellHeight <= 0 {
			t.Errorf("Detect gave %v, cell %d×%d", c.Mode, c.CellWidth, c.CellHeight)
		}
	})
}

func FuzzParseMode(f *testing.F) {
	for _, s := range append(modeNames[:], "", "Sixel ", "x") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			return
		}
		if back, err := ParseMode(m.String()); err != nil || back != m {
			t.Errorf("%q parsed as %v, which does not round-trip", s, m)
		}
	})
}
