package graphics

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Queries is what [ProbeTerminal] sends: a kitty graphics query for a 1×1
// image with id 31 (answered only by terminals that speak the protocol),
// XTWINOPS 16 (the cell size in pixels), then DA1, which every terminal
// answers, last. Terminals answer in order, so once the DA1 reply is in,
// any other reply that is coming has come.
const Queries = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\" + "\x1b[16t" + "\x1b[c"

// QueryTimeout is how long [DetectTerminal] waits for the terminal's
// replies: 150 ms, or 500 ms over SSH, where a reply that comes after the
// wait would land in the program's input instead.
func QueryTimeout(getenv func(string) string) time.Duration {
	if getenv("SSH_CONNECTION") != "" || getenv("SSH_TTY") != "" {
		return 500 * time.Millisecond
	}
	return 150 * time.Millisecond
}

// DetectTerminal probes the controlling terminal and decides with [Detect].
// Call it before a full-screen program takes over the terminal's input.
func DetectTerminal() Capabilities {
	return Detect(ProbeTerminal(QueryTimeout(os.Getenv)))
}

// Probe is what is known about the terminal: the inputs of [Detect].
type Probe struct {
	// Getenv reads the environment; nil reads an empty one.
	Getenv func(string) string
	// Terminal reports whether the output is a terminal.
	Terminal bool
	// Asked reports whether Queries were sent, so that silence means "no".
	Asked bool
	// Timeout is how long the replies were awaited.
	Timeout time.Duration
	// Replies holds what the terminal answered in time.
	Replies []byte
	// CellWidth and CellHeight are the cell size in pixels from TIOCGWINSZ,
	// zero when the terminal does not fill it in.
	CellWidth, CellHeight int
	// Err says why the terminal was not asked, when it was not.
	Err error
	// Tmux is what tmux said about its client ([QueryTmux]), nil when not
	// inside tmux or not asked.
	Tmux *Tmux
}

// Capabilities is what [Detect] found.
type Capabilities struct {
	// Mode is the mode to draw in: never Auto.
	Mode Mode
	// Sixel and Kitty report what the terminal said it supports.
	Sixel, Kitty bool
	// CellWidth and CellHeight are the cell size in pixels, measured or
	// DefaultCellWidth×DefaultCellHeight.
	CellWidth, CellHeight int
	// Colour is whether to draw 24-bit colour ([DecideColour]).
	Colour Colour
	// Tmux is the probe's Tmux, for [Multiplexed].
	Tmux *Tmux
	// Findings explain the decision, one line each, for `lavascope doctor`.
	Findings []Finding
}

// Finding is one line of [Capabilities.Findings].
type Finding struct {
	Topic, Text string
}

func (f Finding) String() string { return f.Topic + ": " + f.Text }

// Lines returns the findings as text lines.
func (c Capabilities) Lines() []string {
	lines := make([]string, len(c.Findings))
	for i, f := range c.Findings {
		lines[i] = f.String()
	}
	return lines
}

// replies is what parseReplies understood of a terminal's answers.
type replies struct {
	da1        []int  // DA1 attributes after the first (the device class)
	da1Seen    bool   // a DA1 reply arrived
	kitty      string // the kitty reply's message for image 31: "OK" or an error
	kittySeen  bool
	cellW      int // from the XTWINOPS 16 reply, 0 when absent
	cellH      int
	unexpected int // other escape sequences
}

// parseReplies reads the answers to Queries out of b, which may hold them
// in any order, interleaved with other input.
func parseReplies(b []byte) replies {
	var r replies
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0x1b)
		if i < 0 || i+1 >= len(b) {
			break
		}
		b = b[i+1:]
		switch b[0] {
		case '_': // APC … ST
			end := bytes.Index(b, []byte("\x1b\\"))
			if end < 0 {
				return r
			}
			body := b[1:end]
			b = b[end+2:]
			if len(body) == 0 || body[0] != 'G' {
				r.unexpected++
				continue
			}
			ctrl, msg, _ := bytes.Cut(body[1:], []byte(";"))
			if slices.ContainsFunc(bytes.Split(ctrl, []byte(",")), func(kv []byte) bool { return string(kv) == "i=31" }) {
				r.kittySeen, r.kitty = true, string(msg)
			} else {
				r.unexpected++
			}
		case '[': // CSI params final
			j := 1
			for j < len(b) && (b[j] < 0x40 || b[j] > 0x7e) {
				j++
			}
			if j >= len(b) {
				return r
			}
			params, final := b[1:j], b[j]
			b = b[j+1:]
			switch {
			case final == 'c' && len(params) > 0 && params[0] == '?':
				nums := parseParams(params[1:])
				r.da1Seen = true
				for i, n := range nums {
					// The first is the device class; empty or malformed
					// attributes ("62;c" from kitty) are no attribute.
					if i > 0 && n >= 0 {
						r.da1 = append(r.da1, n)
					}
				}
			case final == 't':
				if nums := parseParams(params); len(nums) == 3 && nums[0] == 6 && nums[1] > 0 && nums[2] > 0 {
					r.cellH, r.cellW = nums[1], nums[2]
				} else {
					r.unexpected++
				}
			default:
				r.unexpected++
			}
		}
	}
	return r
}

// parseParams reads "1;22;4" as numbers; a malformed parameter becomes -1.
func parseParams(b []byte) []int {
	if len(b) == 0 {
		return nil
	}
	var out []int
	for _, p := range bytes.Split(b, []byte(";")) {
		n, err := strconv.Atoi(string(p))
		if err != nil || n < 0 {
			n = -1
		}
		out = append(out, n)
	}
	return out
}

// Terminals known by their environment, for when they were not asked.
var (
	kittyByEnv = []envMatch{
		{"TERM", "xterm-kitty"}, {"KITTY_WINDOW_ID", "*"},
		{"TERM", "xterm-ghostty"}, {"TERM_PROGRAM", "ghostty"},
	}
	sixelByEnv = []envMatch{
		{"TERM_PROGRAM", "WezTerm"}, {"TERM_PROGRAM", "iTerm.app"}, {"TERM_PROGRAM", "mintty"},
		{"TERM", "foot"}, {"TERM", "foot-extra"}, {"TERM", "mlterm"}, {"TERM", "contour"},
		{"KONSOLE_VERSION", "*"},
	}
)

type envMatch struct{ key, value string }

func matchEnv(getenv func(string) string, ms []envMatch) (envMatch, bool) {
	for _, m := range ms {
		v := getenv(m.key)
		if v != "" && (m.value == "*" || v == m.value) {
			return m, true
		}
	}
	return envMatch{}, false
}

// Detect decides how to draw images from what p knows. In order:
//
//   - output that is not a terminal, or TERM=dumb: None;
//   - $ASCIINEMA_REC (inside `asciinema rec`): Blocks, since recordings keep
//     text and colours but players drop sixel and kitty images;
//   - a terminal that answered: Kitty if it answered the kitty query with OK,
//     else Sixel if DA1 lists attribute 4, else Blocks. Inside tmux DA1 is
//     tmux's own answer: attribute 4 means tmux itself draws sixel (3.4 and
//     later, built with it), and kitty queries do not get through;
//   - a terminal that was not asked or did not answer: Blocks inside tmux or
//     screen (images would need passthrough, which tmux does not track as
//     panes move, so lavascope never uses it), else Kitty or Sixel when
//     $TERM, $TERM_PROGRAM, $KITTY_WINDOW_ID or $KONSOLE_VERSION name a
//     terminal known to have it, else Blocks.
func Detect(p Probe) Capabilities {
	getenv := p.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var c Capabilities
	add := func(topic, format string, args ...any) {
		c.Findings = append(c.Findings, Finding{topic, fmt.Sprintf(format, args...)})
	}
	var env []string
	for _, k := range []string{"TERM", "TERM_PROGRAM", "COLORTERM"} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if len(env) == 0 {
		env = append(env, "TERM, TERM_PROGRAM and COLORTERM unset")
	}
	add("terminal", "%s", strings.Join(env, " "))

	tmux := getenv("TMUX") != ""
	screen := getenv("STY") != "" || strings.HasPrefix(getenv("TERM"), "screen")
	switch {
	case tmux:
		add("multiplexer", "tmux: images only if tmux itself draws sixel; no passthrough")
	case screen:
		add("multiplexer", "GNU screen: no images get through")
	}
	rec := getenv("ASCIINEMA_REC") != ""
	if rec {
		add("recording", "asciinema ($ASCIINEMA_REC set): half-blocks, which recordings keep")
	}

	r := parseReplies(p.Replies)
	switch {
	case !p.Asked && p.Err != nil:
		add("queries", "not sent: %v", p.Err)
	case !p.Asked:
		add("queries", "not sent")
	case !r.da1Seen:
		add("queries", "no DA1 reply within %v", p.Timeout)
	default:
		attrs := make([]string, len(r.da1))
		for i, a := range r.da1 {
			attrs[i] = strconv.Itoa(a)
		}
		c.Sixel = slices.Contains(r.da1, 4)
		add("DA1", "attributes %s: sixel %s", orNone(strings.Join(attrs, ";")), yesNo(c.Sixel))
		switch {
		case r.kittySeen && r.kitty == "OK":
			c.Kitty = true
			add("kitty graphics", "query answered OK")
		case r.kittySeen:
			add("kitty graphics", "query answered %q", r.kitty)
		default:
			add("kitty graphics", "query not answered")
		}
	}

	c.CellWidth, c.CellHeight = DefaultCellWidth, DefaultCellHeight
	switch {
	case p.CellWidth > 0 && p.CellHeight > 0:
		c.CellWidth, c.CellHeight = p.CellWidth, p.CellHeight
		add("cell size", "%d×%d px (TIOCGWINSZ)", c.CellWidth, c.CellHeight)
	case r.cellW > 0:
		c.CellWidth, c.CellHeight = r.cellW, r.cellH
		add("cell size", "%d×%d px (XTWINOPS 16)", c.CellWidth, c.CellHeight)
	default:
		add("cell size", "%d×%d px (assumed; the terminal did not say)", c.CellWidth, c.CellHeight)
	}

	why := ""
	switch {
	case !p.Terminal:
		c.Mode, why = None, "output is not a terminal"
	case getenv("TERM") == "dumb":
		c.Mode, why = None, "TERM=dumb"
	case rec:
		c.Mode, why = Blocks, "asciinema recording"
	case p.Asked && r.da1Seen && c.Kitty:
		c.Mode, why = Kitty, "the terminal answered the kitty graphics query"
	case p.Asked && r.da1Seen && c.Sixel && tmux:
		c.Mode, why = Sixel, "tmux draws sixel itself (DA1 attribute 4)"
	case p.Asked && r.da1Seen && c.Sixel:
		c.Mode, why = Sixel, "DA1 attribute 4"
	case p.Asked && r.da1Seen:
		c.Mode, why = Blocks, "the terminal answered without sixel or kitty graphics"
	case tmux || screen:
		c.Mode, why = Blocks, "a multiplexer without graphics"
	default:
		if m, ok := matchEnv(getenv, kittyByEnv); ok {
			c.Mode, why = Kitty, "$"+m.key+" names a kitty-protocol terminal"
		} else if m, ok := matchEnv(getenv, sixelByEnv); ok {
			c.Mode, why = Sixel, "$"+m.key+" names a sixel terminal"
		} else {
			c.Mode, why = Blocks, "nothing says the terminal has graphics"
		}
	}
	c.Colour, c.Tmux = DecideColour(getenv, p.Tmux), p.Tmux
	add("colour", "%s", c.Colour.Reason)
	add("graphics mode", "%v (%s)", c.Mode, why)
	return c
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
