package loader

import (
	"fmt"
	"strings"

	"github.com/lavascope/lavascope/internal/termtext"
)

// Error is one problem in a manifest, located by file, line and field.
type Error struct {
	File string
	// Line is 0 for a problem of the whole file, such as having no pairs.
	Line int
	// Column is set for JSON syntax errors, which have no field.
	Column int
	// Field is the JSON path of the offending value, such as
	// readings[1].boxes[0].x1; empty when the line is not a JSON object.
	Field string
	Err   error
}

// Error is one line whatever the manifest holds: the field (which may be an
// unknown key) and the message (which may quote a value) are sanitised.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(termtext.Sanitize(e.File))
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Column > 0 {
		fmt.Fprintf(&b, ":%d", e.Column)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(termtext.Sanitize(e.Field))
	}
	b.WriteString(": ")
	b.WriteString(termtext.Sanitize(e.Err.Error()))
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors are several problems, one a line when printed.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As look at every problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// err returns es as an error, nil when empty.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
