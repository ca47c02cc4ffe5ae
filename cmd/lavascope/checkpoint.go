package main

import (
	"fmt"
	"io"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// openTokenizer resolves a checkpoint argument (a folder, a model id in the
// Hugging Face cache, or demo) and loads its tokenizer; errors exit 2 and
// name the flag and argument the user gave.
func openTokenizer(flag, arg string) (dir string, tok *model.Tokenizer, err error) {
	if dir, err = demo.ResolveCheckpoint(arg); err != nil {
		return "", nil, withExit(exitUsage, err)
	}
	if tok, err = model.LoadTokenizer(dir); err != nil {
		return "", nil, withExit(exitUsage, fmt.Errorf("%s %s: %w", flag, arg, err))
	}
	return dir, tok, nil
}

// loadModel starts the torch worker (startTorch) and loads the checkpoint in
// dir on it; a checkpoint that does not load exits 2. done frees the model
// on the worker, then the worker.
func loadModel(a *app, stderr io.Writer, dir string) (w *torch.Worker, m *model.CLIP, done func(), err error) {
	w, dev, err := startTorch(a, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := w.Do(func() (err error) { m, err = model.Load(dir, model.Options{Device: dev}); return err }); err != nil {
		w.Close()
		return nil, nil, nil, withExit(exitUsage, err)
	}
	return w, m, func() {
		w.Do(m.Close)
		w.Close()
	}, nil
}
