// Package termtext makes text from untrusted files (manifests, trees, ids,
// file names, error messages quoting them) safe to print on a terminal or to
// write as JSON that is later printed: every command and the explorer pass
// such text through it, so that a dataset cannot drive the terminal (retitle
// it, write the clipboard, clear the screen, hide links) or display text in
// an order other than the one it is stored in.
package termtext

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unsafe reports whether r can drive a terminal or reorder what is shown
// around it: control characters (C0, DEL and C1, which start escape
// sequences) and the bidirectional embedding, override and isolate controls
// (U+202A–U+202E, U+2066–U+2069).
func Unsafe(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Sanitize returns s made safe to print on one line of a terminal: control
// characters (newline and tab included), bidirectional controls and invalid
// UTF-8 bytes are replaced by visible Go escapes (\x1b, \u202e, \xff).
// Strings without them come back unchanged.
func Sanitize(s string) string { return escape(s, "") }

// Lines is Sanitize for text of several lines, such as a list of problems:
// newlines and tabs are kept, everything else Sanitize escapes is escaped.
func Lines(s string) string { return escape(s, "\n\t") }

func escape(s, keep string) string {
	first := -1
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (Unsafe(r) && !strings.ContainsRune(keep, r)) {
			first = i
			break
		}
		i += size
	}
	if first < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:first])
	for i := first; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case !Unsafe(r) || strings.ContainsRune(keep, r):
			b.WriteString(s[i : i+size])
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}

// NewWriter returns a writer that passes what is written to w through Lines.
// A character split across two writes is held back until it is complete, so
// output written piecewise is escaped as if written at once.
func NewWriter(w io.Writer) io.Writer { return &writer{w: w} }

type writer struct {
	w    io.Writer
	held []byte // the start of a character the next write completes
}

func (w *writer) Write(p []byte) (int, error) {
	buf := append(w.held, p...)
	w.held = nil
	// Hold back a trailing incomplete (but so far valid) UTF-8 sequence.
	for k := 1; k <= utf8.UTFMax-1 && k <= len(buf); k++ {
		c := buf[len(buf)-k]
		if utf8.RuneStart(c) {
			if c >= 0xC0 && !utf8.FullRune(buf[len(buf)-k:]) {
				w.held = append([]byte(nil), buf[len(buf)-k:]...)
				buf = buf[:len(buf)-k]
			}
			break
		}
	}
	if _, err := io.WriteString(w.w, Lines(string(buf))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// JSON returns the JSON text data with every character Unsafe reports (and
// U+2028, U+2029, which end a line in JavaScript) written as a \u escape.
// encoding/json escapes only C0 controls; DEL, C1 and the bidirectional
// controls would otherwise reach whatever prints the file. Such characters
// occur only inside JSON strings, where \u escapes mean the same text, so the
// result decodes to the same values. Invalid UTF-8 becomes \ufffd, as
// encoding/json reads it.
func JSON(data []byte) []byte {
	clean := true
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if (r == utf8.RuneError && size == 1) || jsonUnsafe(r) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return data
	}
	out := make([]byte, 0, len(data)+32)
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = append(out, `\ufffd`...)
		case jsonUnsafe(r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, data[i:i+size]...)
		}
		i += size
	}
	return out
}

// jsonUnsafe leaves newline, tab and carriage return alone: in JSON text they
// are whitespace between values (inside strings the encoder has escaped them).
func jsonUnsafe(r rune) bool {
	if r == '\n' || r == '\t' || r == '\r' {
		return false
	}
	return Unsafe(r) || r == 0x2028 || r == 0x2029
}
