package tui

import (
	"fmt"
	"image/color"
	"strconv"
	"strings"
	"sync"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/lavascope/lavascope/internal/termtext"
)

// clean makes dataset text safe for the screen: control characters, escape
// sequences, bidirectional overrides and invalid UTF-8 become visible Go
// escapes, and the result is one line.
func clean(s string) string {
	return termtext.Sanitize(s)
}

// cleanLine is clean for text shown on one line, such as an error in the
// status bar: multi-line messages (libtorch's, a loader's list) are joined
// with spaces instead of showing their newlines as escapes.
func cleanLine(s string) string {
	return clean(strings.Join(strings.Fields(s), " "))
}

// Styles of the explorer. Colours are 24-bit; Bubble Tea lowers them to what
// the terminal supports.
var (
	stBold   = lipgloss.NewStyle().Bold(true)
	stDim    = lipgloss.NewStyle().Foreground(lipgloss.Color("#8a8a8a"))
	stGloss  = lipgloss.NewStyle().Foreground(lipgloss.Color("#a8a8a8")).Italic(true)
	stOK     = lipgloss.NewStyle().Foreground(lipgloss.Color("#5fd75f")).Bold(true)
	stBad    = lipgloss.NewStyle().Foreground(lipgloss.Color("#ff5f5f")).Bold(true)
	stWarn   = lipgloss.NewStyle().Foreground(lipgloss.Color("#ffaf00"))
	stSel    = lipgloss.NewStyle().Background(lipgloss.Color("#3a3a5c")).Foreground(lipgloss.Color("#ffffff"))
	stHead   = lipgloss.NewStyle().Foreground(lipgloss.Color("#8a8a8a")).Underline(true)
	stStatus = lipgloss.NewStyle().Background(lipgloss.Color("#262636")).Foreground(lipgloss.Color("#d0d0d0"))
	stKey    = lipgloss.NewStyle().Foreground(lipgloss.Color("#d7afff")).Bold(true)
	stDesc   = lipgloss.NewStyle().Foreground(lipgloss.Color("#9e9e9e"))
	stTarget = lipgloss.NewStyle().Foreground(lipgloss.Color("#ffd75f")).Bold(true)
	stRule   = lipgloss.NewStyle().Foreground(lipgloss.Color("#4e4e4e"))
	stPress  = lipgloss.NewStyle().Background(lipgloss.Color("#d7afff")).Foreground(lipgloss.Color("#1c1c1c")).Bold(true)
)

// fit pads or cuts a styled string to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		s = ansi.Truncate(s, w, "…")
		sw = ansi.StringWidth(s)
	}
	return s + strings.Repeat(" ", w-sw)
}

// block is a rectangle of text: lines of exactly w cells.
type block struct {
	w     int
	lines []string
}

func newBlock(w, h int) *block {
	b := &block{w: w, lines: make([]string, h)}
	blank := strings.Repeat(" ", max(w, 0))
	for i := range b.lines {
		b.lines[i] = blank
	}
	return b
}

// set writes s, fitted to the block's width, on line y.
func (b *block) set(y int, s string) {
	if y >= 0 && y < len(b.lines) {
		b.lines[y] = fit(s, b.w)
	}
}

// hjoin places blocks side by side, sep between them.
func hjoin(sep string, bs ...*block) []string {
	h := 0
	for _, b := range bs {
		h = max(h, len(b.lines))
	}
	out := make([]string, h)
	for y := range h {
		var sb strings.Builder
		for i, b := range bs {
			if i > 0 {
				sb.WriteString(sep)
			}
			if y < len(b.lines) {
				sb.WriteString(b.lines[y])
			} else {
				sb.WriteString(strings.Repeat(" ", b.w))
			}
		}
		out[y] = sb.String()
	}
	return out
}

// heat writes text on a background of colour c, in black or white,
// whichever reads better on it, underlined when marked.
func heat(text string, c color.RGBA, marked bool) string {
	fg := "255;255;255"
	if lum := 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B); lum > 140 {
		fg = "0;0;0"
	}
	var b strings.Builder
	b.Grow(len(text) + 40)
	b.WriteString("\x1b[")
	if marked {
		b.WriteString("1;4;")
	}
	b.WriteString("38;2;")
	b.WriteString(fg)
	b.WriteString(";48;2;")
	b.WriteString(strconv.Itoa(int(c.R)))
	b.WriteByte(';')
	b.WriteString(strconv.Itoa(int(c.G)))
	b.WriteByte(';')
	b.WriteString(strconv.Itoa(int(c.B)))
	b.WriteByte('m')
	b.WriteString(text)
	b.WriteString("\x1b[0m")
	return b.String()
}

// signed formats a margin with its sign.
func signed(v float64) string { return fmt.Sprintf("%+.2f", v) }

// letter names reading or image i: A, B, C, ...
func letter(i int) string {
	if i >= 0 && i < 26 {
		return string(rune('A' + i))
	}
	return strconv.Itoa(i + 1)
}

// syncCache is a small map shared by commands; it forgets everything when
// it reaches its bound, which is enough for caches that refill cheaply.
type syncCache[K comparable, V any] struct {
	mu    sync.Mutex
	m     map[K]V
	limit int
}

func newSyncCache[K comparable, V any](limit int) *syncCache[K, V] {
	return &syncCache[K, V]{m: map[K]V{}, limit: limit}
}

func (c *syncCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *syncCache[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.limit {
		clear(c.m)
	}
	c.m[k] = v
}

// plural writes n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
