package main

import (
	"fmt"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
)

// openTokenizer resolves a checkpoint argument (a folder, a model id in the
// Hugging Face cache, or demo) and loads its tokenizer; errors exit 2 and
// name the flag and argument the user gave.
func openTokenizer(flag, arg string) (dir string, tok *model.Tokenizer, err error) {
	if dir, err = demo.ResolveCheckpoint(arg); err != nil {
		return "", nil, withExit(2, err)
	}
	if tok, err = model.LoadTokenizer(dir); err != nil {
		return "", nil, withExit(2, fmt.Errorf("%s %s: %w", flag, arg, err))
	}
	return dir, tok, nil
}
