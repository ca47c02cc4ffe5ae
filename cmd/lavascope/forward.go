package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
)

// Forwarders to pkg/cmd/factory under the names explain.go and explore*.go
// use, until they move into pkg/cmd too.

// app is the factory with its configuration under the old name.
type app struct {
	*factory.Factory
	cfg *config.Config
}

const (
	exitOK          = factory.ExitOK
	exitFailure     = factory.ExitFailure
	exitUsage       = factory.ExitUsage
	exitInterrupted = factory.ExitInterrupted
)

type exitError = factory.ExitError

func withExit(code int, err error) error { return factory.WithExit(code, err) }
func inputExit(err error) error          { return factory.InputExit(err) }

func openTokenizer(flag, arg, base string, withModel bool) (model.Location, *tokenizer.Tokenizer, error) {
	return factory.OpenTokenizer(flag, arg, base, withModel)
}

func startTorch(a *app, stderr io.Writer) (*torch.Worker, torch.Device, error) {
	return a.StartTorch(stderr)
}

func loadModel(a *app, stderr io.Writer, loc model.Location) (*torch.Worker, *model.CLIP, func(), error) {
	return a.LoadModel(stderr, loc)
}

func withModel(cmd *cobra.Command, a *app, fn func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer) error) error {
	return a.WithModel(cmd, fn)
}
