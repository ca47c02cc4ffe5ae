package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/pkg/cmd/cmdtest"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
)

// commandPaths lists the arguments that name root and every command under
// it, nested ones such as "data check" included.
func commandPaths(c *cobra.Command, path []string, out *[][]string) {
	*out = append(*out, path)
	for _, sub := range c.Commands() {
		commandPaths(sub, append(append([]string(nil), path...), sub.Name()), out)
	}
}

// TestUnknownFlagExitsUsage runs every registered command with a flag none
// has: each must exit with factory.ExitUsage and name the flag.
func TestUnknownFlagExitsUsage(t *testing.T) {
	var paths [][]string
	commandPaths(newRootCmd(), nil, &paths)
	if len(paths) < 15 {
		t.Fatalf("found only %d commands: %v", len(paths), paths)
	}
	// cobra adds these two when it runs, so the walk does not see them.
	paths = append(paths, []string{"help"}, []string{"completion", "bash"})
	for _, p := range paths {
		t.Run(strings.Join(append([]string{"lavascope"}, p...), " "), func(t *testing.T) {
			_, stderr, code := runCLI(t, "", append(p, "--no-such-flag")...)
			if code != factory.ExitUsage || !strings.Contains(stderr, "--no-such-flag") {
				t.Errorf("exit %d, want %d; stderr %q", code, factory.ExitUsage, stderr)
			}
		})
	}
}

// TestBadArgumentsExitUsage: a positional argument that a command refuses,
// or an unknown subcommand, exits with factory.ExitUsage too.
func TestBadArgumentsExitUsage(t *testing.T) {
	var paths [][]string
	root := newRootCmd()
	commandPaths(root, nil, &paths)
	refused := 0
	for _, p := range paths {
		c, _, err := root.Find(p)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		if c.Args == nil {
			continue
		}
		// Validators are checked without running the command: some accept
		// the argument and would then open a terminal or read stdin.
		err = c.Args(c, []string{"no-such-arg"})
		if err == nil {
			continue
		}
		refused++
		var ee *factory.ExitError
		if !errors.As(err, &ee) || ee.Code != factory.ExitUsage {
			t.Errorf("lavascope %s no-such-arg: %v, want an exit status of %d", strings.Join(p, " "), err, factory.ExitUsage)
		}
	}
	if refused < 10 {
		t.Errorf("only %d commands refuse an argument", refused)
	}
	for _, args := range [][]string{{"no-such-command"}, {"data", "chek"}, {"tree", "no-such"}, {"version", "x"}, {"data", "check", "x"}} {
		_, stderr, code := runCLI(t, "", args...)
		if code != factory.ExitUsage || !strings.Contains(stderr, "unknown command") {
			t.Errorf("lavascope %s: exit %d, want %d; stderr %q", strings.Join(args, " "), code, factory.ExitUsage, stderr)
		}
	}
	if _, stderr, _ := runCLI(t, "", "data", "chek"); !strings.Contains(stderr, "did you mean check?") {
		t.Errorf("no suggestion for a misspelt subcommand: %q", stderr)
	}
	if stdout, _, code := runCLI(t, "", "data"); code != factory.ExitOK || !strings.Contains(stdout, "check") {
		t.Errorf("lavascope data: exit %d, want its help and %d", code, factory.ExitOK)
	}
}

// runCLI runs the command line on the whole tree, explore and explain
// included (cmdtest.RunWith).
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cmdtest.RunWith(t, newRootCmd(), stdin, args...)
}
