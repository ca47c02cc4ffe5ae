package train

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/dist"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/torch"
)

// distTimeout bounds a rank's wait for the others: long, since the others
// wait while rank 0 evaluates on the val split and writes checkpoints.
const distTimeout = 30 * time.Minute

// launchRanks runs this command as --nproc-per-node ranks when it was asked
// for and this process is not itself a rank (torchrun's variables unset).
// It reports whether it did.
func launchRanks(cmd *cobra.Command, nproc, batchPairs int) (bool, error) {
	if _, set := os.LookupEnv(torch.EnvRank); set || nproc == 0 {
		return false, nil
	}
	if nproc < 1 {
		return true, factory.WithExit(factory.ExitUsage, fmt.Errorf("--nproc-per-node %d: want at least 1", nproc))
	}
	if batchPairs%nproc != 0 {
		return true, factory.WithExit(factory.ExitUsage, fmt.Errorf("--batch-pairs %d does not split into %d processes: give a multiple of --nproc-per-node (pairs are never split)", batchPairs, nproc))
	}
	exe, err := os.Executable()
	if err != nil {
		return true, fmt.Errorf("--nproc-per-node: finding this program: %w", err)
	}
	err = dist.Launch(cmd.Context(), dist.LaunchOptions{
		N: nproc, Exe: exe, Args: os.Args[1:], Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
	})
	if re, ok := errors.AsType[*dist.RankError](err); ok && re.Code > 0 {
		// The rank said why; its status is the command's.
		return true, factory.WithExit(re.Code, err)
	}
	return true, err
}

// joinRanks joins the group of torchrun's variables, if set, on backend,
// once sure that its world size divides the batch of batchPairs; it returns
// the group (nil for a single process) and this rank's device.
func joinRanks(backend string, dev torch.Device, batchPairs int) (*torch.ProcessGroup, torch.Device, error) {
	o, ok, err := torch.DistOptionsFromEnv(os.LookupEnv)
	switch {
	case err != nil:
		return nil, dev, factory.WithExit(factory.ExitUsage, err)
	case !ok:
		return nil, dev, nil
	case batchPairs%o.WorldSize != 0:
		return nil, dev, factory.WithExit(factory.ExitUsage, fmt.Errorf("--batch-pairs %d does not split into the %d ranks: give a multiple of the world size (pairs are never split)", batchPairs, o.WorldSize))
	}
	dev = dist.Device(dev)
	g, err := dist.Join(o, backend, dev, distTimeout)
	if _, ok := errors.AsType[*dist.EnvError](err); ok {
		return nil, dev, factory.WithExit(factory.ExitUsage, err)
	}
	return g, dev, err
}
