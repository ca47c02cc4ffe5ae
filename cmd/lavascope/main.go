// Command lavascope is a terminal explorer for syntax-aware CLIP: it shows which
// image each parse tree of an ambiguous sentence picks, and why.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
)

// Exit statuses, the same for every command: scripts tell a failed run from a
// wrong command line by them.
const (
	exitOK          = 0
	exitFailure     = 1   // the command ran and found problems or failed
	exitUsage       = 2   // bad flags, arguments or input: the message says which
	exitInterrupted = 130 // stopped by Ctrl-C, as shells report SIGINT
)

func main() {
	if err := checkMallocSetting(os.Getenv(envMalloc)); err != nil {
		fmt.Fprintln(os.Stderr, "lavascope:", err)
		os.Exit(exitUsage)
	}
	reexecWithMallocTunables()
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and maps errors to exit statuses, so that every
// failure reaches the user as one message on stderr rather than a stack trace.
// Messages quote files and manifests, hence the sanitiser.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "lavascope:", termtext.Lines(ee.err.Error()))
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "lavascope:", termtext.Lines(err.Error()))
	return exitFailure
}

// exitError carries an exit status other than exitFailure through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// inputExit gives an error that a manifest's content caused, found after the
// manifest was read (an image that does not decode), the exit status of bad
// input.
func inputExit(err error) error {
	if _, ok := errors.AsType[*loader.Error](err); ok {
		return withExit(exitUsage, err)
	}
	return err
}

// withExit wraps err so that the process exits with code; nil stays nil.
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageErrors makes every command line error of root and its subcommands exit
// with exitUsage: flag errors through one handler on root (cobra hands a
// subcommand without its own handler its parent's), argument errors by
// wrapping each command's validator, and an unknown subcommand of root or of
// a group such as data (which cobra would answer with help and status 0).
func usageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withExit(exitUsage, err) })
	root.Args = unknownCommand
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.SuggestionsMinimumDistance = 2 // cobra applies this default only in its own unknown-command check
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = unknownCommand
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		if v := c.Args; v != nil {
			c.Args = func(cmd *cobra.Command, args []string) error { return withExit(exitUsage, v(cmd, args)) }
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
