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
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
)

// openTokenizer resolves a checkpoint argument (a folder, a model id in the
// Hugging Face cache, a torch.save file with its base, or demo) and loads
// its tokenizer, checked against the checkpoint's model when withModel
// (model.CheckpointTokenizer); errors exit 2 and name the flag and argument
// the user gave.
func openTokenizer(flag, arg, base string, withModel bool) (loc model.Location, tok *tokenizer.Tokenizer, err error) {
	if loc, err = demo.Locate(arg, base); err != nil {
		return loc, nil, withExit(exitUsage, err)
	}
	load := tokenizer.Load
	if withModel {
		load = model.CheckpointTokenizer
	}
	if tok, err = load(loc.Dir); err != nil {
		return loc, nil, withExit(exitUsage, fmt.Errorf("%s %s: %w", flag, arg, err))
	}
	return loc, tok, nil
}

// loadModel starts the torch worker (startTorch) and loads the checkpoint at
// loc on it; a checkpoint that does not load exits 2. done frees the model
// on the worker, then the worker.
func loadModel(a *app, stderr io.Writer, loc model.Location) (w *torch.Worker, m *model.CLIP, done func(), err error) {
	w, dev, err := startTorch(a, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := w.Do(func() (err error) { m, err = model.LoadLocation(loc, model.Options{Device: dev}); return err }); err != nil {
		w.Close()
		return nil, nil, nil, withExit(exitUsage, err)
	}
	return w, m, func() {
		w.Do(m.Close)
		w.Close()
	}, nil
}

// withModel loads --checkpoint (openTokenizer, loadModel) and runs fn with
// a context that Ctrl-C cancels; a run so cancelled exits 130.
func withModel(cmd *cobra.Command, a *app, fn func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer) error) error {
	loc, tok, err := openTokenizer("--checkpoint", a.cfg.Checkpoint, a.cfg.Base, true)
	if err != nil {
		return err
	}
	w, m, done, err := loadModel(a, cmd.ErrOrStderr(), loc)
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	if err := fn(ctx, w, m, tok); err != nil {
		if errors.Is(err, context.Canceled) {
			return withExit(exitInterrupted, errors.New("interrupted"))
		}
		return inputExit(err)
	}
	return nil
}
