// Command lavascope is a terminal explorer for syntax-aware CLIP: it shows which
// image each parse tree of an ambiguous sentence picks, and why.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
)

func main() {
	if err := checkMallocSetting(os.Getenv(envMalloc)); err != nil {
		fmt.Fprintln(os.Stderr, "lavascope:", err)
		os.Exit(2)
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
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "lavascope:", termtext.Lines(ee.err.Error()))
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "lavascope:", termtext.Lines(err.Error()))
	return 1
}

// exitError carries an exit status other than 1 (bad input is 2) through cobra.
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
		return withExit(2, err)
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
