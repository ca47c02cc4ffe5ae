// Package root builds lavascope's command tree, adding each command
// explicitly, and maps a run's error to its exit status.
package root

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/pkg/cmd/bench"
	"github.com/lavascope/lavascope/pkg/cmd/convert"
	"github.com/lavascope/lavascope/pkg/cmd/data"
	"github.com/lavascope/lavascope/pkg/cmd/doctor"
	"github.com/lavascope/lavascope/pkg/cmd/dump"
	"github.com/lavascope/lavascope/pkg/cmd/eval"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/importlava"
	initcmd "github.com/lavascope/lavascope/pkg/cmd/init"
	"github.com/lavascope/lavascope/pkg/cmd/probe"
	reportcmd "github.com/lavascope/lavascope/pkg/cmd/report"
	"github.com/lavascope/lavascope/pkg/cmd/synth"
	"github.com/lavascope/lavascope/pkg/cmd/tokenize"
	"github.com/lavascope/lavascope/pkg/cmd/train"
	"github.com/lavascope/lavascope/pkg/cmd/tree"
	"github.com/lavascope/lavascope/pkg/cmd/version"
)

// NewCmdRoot builds the command tree on f. bare runs the command with no
// subcommand (nil: print the version and help); local are commands built
// outside pkg/cmd (cmd/lavascope's explore and explain).
func NewCmdRoot(f *factory.Factory, bare func(*cobra.Command) error, local ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:   "lavascope",
		Short: "Explore why a syntax-aware CLIP model picks the image it picks",
		Long: `lavascope loads a CLIP checkpoint and a dataset of structurally ambiguous sentences,
each with two parse trees and two images, and shows which image each tree picks and why.

With no subcommand it opens the explorer on the embedded demo.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints what `lavascope version` prints; cobra answers
		// it before the config file is read, so a broken one does not
		// hide the version.
		Version: version.Build(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.Loader.Load(f.ConfigFile, cmd.Flags())
			if err != nil {
				return factory.WithExit(factory.ExitUsage, err)
			}
			*f.Config = *cfg
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if bare != nil {
				return bare(cmd)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "lavascope", version.Build())
			return cmd.Help()
		},
	}
	root.SetVersionTemplate("lavascope {{.Version}}\n")
	root.Flags().BoolP("version", "v", false, "print the version, as lavascope version does")
	root.PersistentFlags().StringVar(&f.ConfigFile, "config", "", "config file (default $XDG_CONFIG_HOME/lavascope/config.yaml)")
	f.Loader.BindPersistentFlags(root.PersistentFlags())
	root.AddCommand(
		bench.NewCmdBench(f, nil),
		convert.NewCmdConvert(f, nil),
		data.NewCmdData(f),
		doctor.NewCmdDoctor(f, nil),
		dump.NewCmdDump(f, nil),
		eval.NewCmdEval(f, nil),
		importlava.NewCmdImportLAVA(f, nil),
		initcmd.NewCmdInit(f, nil),
		probe.NewCmdProbe(f, nil),
		reportcmd.NewCmdReport(f, nil),
		synth.NewCmdSynth(f, nil),
		tokenize.NewCmdTokenize(f, nil),
		train.NewCmdTrain(f, nil),
		tree.NewCmdTree(f),
		version.NewCmdVersion(f, nil),
	)
	root.AddCommand(local...)
	factory.UsageErrors(root)
	return root
}

// Execute runs root on args and gives the exit status, so that every
// failure reaches the user as one message on stderr rather than a stack
// trace. Messages quote files and manifests, hence the sanitiser.
func Execute(root *cobra.Command, args []string, stderr io.Writer) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return factory.ExitOK
	}
	var ee *factory.ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(stderr, "lavascope:", termtext.Lines(ee.Err.Error()))
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "lavascope:", termtext.Lines(err.Error()))
	return factory.ExitFailure
}
