package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
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
		return nil, nil, nil, withExit(2, err)
	}
	return w, m, func() {
		w.Do(m.Close)
		w.Close()
	}, nil
}

// withModel loads --checkpoint (openTokenizer, loadModel) and runs fn with
// a context that Ctrl-C cancels; a run so cancelled exits 130.
func withModel(cmd *cobra.Command, a *app, fn func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *model.Tokenizer) error) error {
	dir, tok, err := openTokenizer("--checkpoint", a.cfg.Checkpoint)
	if err != nil {
		return err
	}
	w, m, done, err := loadModel(a, cmd.ErrOrStderr(), dir)
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	if err := fn(ctx, w, m, tok); err != nil {
		if errors.Is(err, context.Canceled) {
			return withExit(130, errors.New("interrupted"))
		}
		return err
	}
	return nil
}
