// Package data is `lavascope data` and its subcommands check and stats, over
// package loader's manifest checks.
package data

import (
	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/pkg/cmd/data/check"
	"github.com/lavascope/lavascope/pkg/cmd/data/stats"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
)

// NewCmdData builds `lavascope data`.
func NewCmdData(f *factory.Factory) *cobra.Command {
	data := &cobra.Command{
		Use:   "data",
		Short: "Check a pair manifest or count what is in it",
		Args:  cobra.NoArgs,
	}
	data.AddCommand(check.NewCmdCheck(f, nil), stats.NewCmdStats(f, nil))
	return data
}
