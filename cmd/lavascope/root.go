package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
)

// commandFactories holds the constructors of the subcommands; each command lives in
// its own file and registers itself from init, so adding one touches no other file.
var commandFactories []func(*app) *cobra.Command

func addCommand(f func(*app) *cobra.Command) { commandFactories = append(commandFactories, f) }

// app is what every command shares: the loaded configuration.
type app struct {
	cfgFile string
	cfg     *config.Config
	loader  *config.Loader
}

// version is set with -ldflags "-X main.version=..." by the Makefile.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
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

func newRootCmd() *cobra.Command {
	a := &app{loader: config.NewLoader()}
	root := &cobra.Command{
		Use:   "lavascope",
		Short: "Explore why a syntax-aware CLIP model picks the image it picks",
		Long: `lavascope loads a CLIP checkpoint and a dataset of structurally ambiguous sentences,
each with two parse trees and two images, and shows which image each tree picks and why.

With no subcommand it opens the explorer on the embedded demo.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loader.Load(a.cfgFile, cmd.Flags())
			if err != nil {
				return withExit(exitUsage, err)
			}
			a.cfg = cfg
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDefault(a, cmd, args)
		},
	}
	root.PersistentFlags().StringVar(&a.cfgFile, "config", "", "config file (default $XDG_CONFIG_HOME/lavascope/config.yaml)")
	a.loader.BindPersistentFlags(root.PersistentFlags())
	for _, f := range commandFactories {
		root.AddCommand(f(a))
	}
	usageErrors(root)
	return root
}

// runDefault is what the bare command does: explore.go's init replaces this
// value with the explorer on the embedded demo before any command runs.
var runDefault = func(a *app, cmd *cobra.Command, _ []string) error {
	fmt.Fprintln(cmd.OutOrStdout(), "lavascope", buildVersion())
	return cmd.Help()
}

func init() {
	addCommand(func(a *app) *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "lavascope", buildVersion())
			},
		}
	})
}
