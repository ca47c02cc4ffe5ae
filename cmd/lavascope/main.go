// Command lavascope is a terminal explorer for syntax-aware CLIP: it shows which
// image each parse tree of an ambiguous sentence picks, and why.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/internal/malloc"
	explaincmd "github.com/lavascope/lavascope/pkg/cmd/explain"
	"github.com/lavascope/lavascope/pkg/cmd/explore"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/root"
)

func main() {
	if err := malloc.Check(os.Getenv(malloc.Env)); err != nil {
		fmt.Fprintln(os.Stderr, "lavascope:", err)
		os.Exit(factory.ExitUsage)
	}
	malloc.Reexec()
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and gives its exit status.
func run(args []string) int { return root.Execute(newRootCmd(), args, os.Stderr) }

// newRootCmd is the command tree; the bare command opens the explorer on
// the embedded demo.
func newRootCmd() *cobra.Command {
	f := factory.New()
	bare := func(cmd *cobra.Command) error { return explore.RunDefault(f, cmd, nil) }
	return root.NewCmdRoot(f, bare, explore.NewCmdExplore(f), explaincmd.NewCmdExplain(f))
}
