package loader

import (
	"errors"
	"fmt"

	"github.com/lavascope/lavascope/trees"
)

// treeWords parses a PTB bracketing and returns its words.
func treeWords(s string) ([]string, error) {
	n, err := trees.Parse(s)
	if err != nil {
		if se, ok := errors.AsType[*trees.SyntaxError](err); ok {
			return nil, oneLine{se}
		}
		return nil, err
	}
	return n.Words(), nil
}

// oneLine keeps a tree syntax error to one line: a manifest problem is one line
// of `data check` output, and the tree's position is enough to find it.
type oneLine struct{ se *trees.SyntaxError }

func (e oneLine) Error() string {
	return fmt.Sprintf("%s at %d:%d of the tree", e.se.Msg, e.se.Line, e.se.Col)
}
func (e oneLine) Unwrap() error { return e.se }
