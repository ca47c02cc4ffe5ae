// Package version is `lavascope version`: the build's version.
package version

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/pkg/cmd/factory"
)

// Version is set with -ldflags "-X .../pkg/cmd/version.Version=..." by the
// Makefile.
var Version = ""

// Options are the settings of one version run.
type Options struct {
	factory.Invocation
}

// NewCmdVersion builds `lavascope version`; runF replaces the run in tests.
func NewCmdVersion(_ *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{}
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE:  factory.RunE(opts, runF, runVersion),
	}
}

func runVersion(opts *Options) error {
	_, err := fmt.Fprintln(opts.Cmd.OutOrStdout(), "lavascope", Build())
	return err
}

// Build is the version: Version when set, else the VCS revision Go recorded.
func Build() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}
