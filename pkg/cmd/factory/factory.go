// Package factory holds what every lavascope command needs and nothing else:
// the loaded configuration, the exit statuses and the error that carries
// them, the root's usage-error handler, and the steps that open a checkpoint
// (its tokenizer, the torch worker, the model on it).
package factory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
)

// Factory is what every command shares: the configuration, loaded by the
// root before any command runs.
type Factory struct {
	ConfigFile string         // --config
	Config     *config.Config // filled in place by the root before a command runs
	Loader     *config.Loader
}

// New returns a factory whose configuration is not loaded yet.
func New() *Factory { return &Factory{Config: new(config.Config), Loader: config.NewLoader()} }

// Invocation is the command being run and its arguments; every command's
// Options embeds it.
type Invocation struct {
	Cmd  *cobra.Command // its streams, context and flags
	Args []string
}

func (i *Invocation) invoke(cmd *cobra.Command, args []string) { i.Cmd, i.Args = cmd, args }

// invoked is the Options of a command: they embed Invocation.
type invoked interface {
	invoke(cmd *cobra.Command, args []string)
}

// RunE is the RunE of a command with options opts: it records the
// invocation in opts, then runs runF when a test gave one, else run.
func RunE[O invoked](opts O, runF, run func(O) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		opts.invoke(cmd, args)
		if runF != nil {
			return runF(opts)
		}
		return run(opts)
	}
}

// Exit statuses, the same for every command: scripts tell a failed run from a
// wrong command line by them.
const (
	ExitOK          = 0
	ExitFailure     = 1   // the command ran and found problems or failed
	ExitUsage       = 2   // bad flags, arguments or input: the message says which
	ExitInterrupted = 130 // stopped by Ctrl-C, as shells report SIGINT
)

// ExitError carries an exit status other than ExitFailure through cobra.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// WithExit wraps err so that the process exits with code; nil stays nil.
func WithExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: code, Err: err}
}

// InputExit gives an error that a manifest's content caused, found after the
// manifest was read (an image that does not decode), the exit status of bad
// input.
func InputExit(err error) error {
	if _, ok := errors.AsType[*loader.Error](err); ok {
		return WithExit(ExitUsage, err)
	}
	return err
}

// UsageErrors makes every command line error of root and its subcommands exit
// with ExitUsage: flag errors through one handler on root (cobra hands a
// subcommand without its own handler its parent's), argument errors by
// wrapping each command's validator, and an unknown subcommand of root or of
// a group such as data (which cobra would answer with help and status 0).
func UsageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return WithExit(ExitUsage, err) })
	root.Args = unknownCommand
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.SuggestionsMinimumDistance = 2 // cobra applies this default only in its own unknown-command check
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = unknownCommand
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		if v := c.Args; v != nil {
			c.Args = func(cmd *cobra.Command, args []string) error { return WithExit(ExitUsage, v(cmd, args)) }
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownCommand is the argument validator of a command that takes a
// subcommand and no arguments of its own.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return errors.New(msg)
}

// OpenTokenizer resolves a checkpoint argument (a folder, a model id in the
// Hugging Face cache, a torch.save file with its base, or demo) and loads
// its tokenizer, checked against the checkpoint's model when withModel
// (model.CheckpointTokenizer); errors exit 2 and name the flag and argument
// the user gave.
func OpenTokenizer(flag, arg, base string, withModel bool) (loc model.Location, tok *tokenizer.Tokenizer, err error) {
	if loc, err = demo.Locate(arg, base); err != nil {
		return loc, nil, WithExit(ExitUsage, err)
	}
	load := tokenizer.Load
	if withModel {
		load = model.CheckpointTokenizer
	}
	if tok, err = load(loc.Dir); err != nil {
		return loc, nil, WithExit(ExitUsage, fmt.Errorf("%s %s: %w", flag, arg, err))
	}
	return loc, tok, nil
}

// StartTorch loads the libtorch shim and starts the worker that runs every
// torch call of a command, with the configured thread count, and resolves
// the device setting there (auto falls back to the CPU with a notice on
// stderr; a cuda that cannot work is a clear *model.DeviceError).
func (f *Factory) StartTorch(stderr io.Writer) (*torch.Worker, torch.Device, error) {
	if err := torch.Load(f.Config.TorchLib); err != nil {
		return nil, torch.CPU, err
	}
	w := torch.NewWorker()
	dev := torch.CPU
	err := w.Do(func() error {
		if n := f.Config.Threads; n > 0 {
			if err := torch.SetNumThreads(n); err != nil {
				return err
			}
		}
		d, notice, err := model.ResolveDevice(f.Config.Device)
		if err != nil {
			return err
		}
		if notice != "" {
			fmt.Fprintln(stderr, notice)
		}
		dev = d
		return nil
	})
	if err != nil {
		w.Close()
		return nil, torch.CPU, err
	}
	return w, dev, nil
}

// LoadRankModel is LoadModel for a command that may run as several ranks:
// with r, it joins the group of torchrun's variables (Ranks.Join) before
// loading the model on this rank's device, and returns the group (nil for
// one process), which done closes too.
func (f *Factory) LoadRankModel(stderr io.Writer, loc model.Location, r *Ranks) (w *torch.Worker, m *model.CLIP, g *torch.ProcessGroup, done func(), err error) {
	w, dev, err := f.StartTorch(stderr)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if r != nil {
		if g, dev, err = r.Join(dev, nil); err != nil {
			w.Close()
			return nil, nil, nil, nil, err
		}
	}
	if err := w.Do(func() (err error) { m, err = model.LoadLocation(loc, model.Options{Device: dev}); return err }); err != nil {
		if g != nil {
			w.Do(g.Close)
		}
		w.Close()
		return nil, nil, nil, nil, WithExit(ExitUsage, err)
	}
	return w, m, g, func() {
		w.Do(m.Close)
		if g != nil {
			w.Do(g.Close)
		}
		w.Close()
	}, nil
}

// WithModel loads --checkpoint (OpenTokenizer, LoadModel) and runs fn with
// a context that Ctrl-C cancels; a run so cancelled exits 130.
func (f *Factory) WithModel(cmd *cobra.Command, fn func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer) error) error {
	return f.WithRankModel(cmd, nil, func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer, _ *torch.ProcessGroup) error {
		return fn(ctx, w, m, tok)
	})
}

// WithRankModel is WithModel for a command that may run as several ranks
// (LoadRankModel): fn gets the group, nil for one process.
func (f *Factory) WithRankModel(cmd *cobra.Command, r *Ranks, fn func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer, g *torch.ProcessGroup) error) error {
	loc, tok, err := OpenTokenizer("--checkpoint", f.Config.Checkpoint, f.Config.Base, true)
	if err != nil {
		return err
	}
	w, m, g, done, err := f.LoadRankModel(cmd.ErrOrStderr(), loc, r)
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
	defer stop()
	if err := fn(ctx, w, m, tok, g); err != nil {
		if errors.Is(err, context.Canceled) {
			return WithExit(ExitInterrupted, errors.New("interrupted"))
		}
		return InputExit(err)
	}
	return nil
}
