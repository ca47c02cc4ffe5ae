package factory

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lavascope/lavascope/dist"
	"github.com/lavascope/lavascope/torch"
)

// RankTimeout bounds a rank's wait for the others: long, since they wait
// while rank 0 alone evaluates and saves during training, and while the
// slowest rank finishes its share of a split.
const RankTimeout = 30 * time.Minute

// Ranks are the flags of a command that runs as several processes
// (docs/distributed.md): --nproc-per-node starts them on this machine, and
// under torchrun the command joins the group its variables describe.
type Ranks struct {
	Nproc   int
	Backend string
}

// AddFlags adds --nproc-per-node and --dist-backend; what says what the
// processes do ("train data-parallel").
func (r *Ranks) AddFlags(fs *pflag.FlagSet, what string) {
	fs.IntVar(&r.Nproc, "nproc-per-node", 0, what+" as N processes on this machine, one per GPU (docs/distributed.md); under torchrun, leave it out")
	fs.StringVar(&r.Backend, "dist-backend", "auto", "with several processes: gloo (CPU), nccl (CUDA) or auto (nccl on a GPU)")
}

// Launch runs cmd as --nproc-per-node ranks when that was asked for and
// this process is not itself a rank (torchrun's variables unset); it
// reports whether it did. check, when not nil, says why the command cannot
// run on that many ranks (a usage error; unit names them: "processes"). A
// rank that exits with a status gives the command that status.
func (r *Ranks) Launch(cmd *cobra.Command, check func(world int, unit string) error) (bool, error) {
	if _, set := os.LookupEnv(torch.EnvRank); set || r.Nproc == 0 {
		return false, nil
	}
	if r.Nproc < 1 {
		return true, WithExit(ExitUsage, fmt.Errorf("--nproc-per-node %d: want at least 1", r.Nproc))
	}
	if check != nil {
		if err := check(r.Nproc, "processes"); err != nil {
			return true, WithExit(ExitUsage, err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return true, fmt.Errorf("--nproc-per-node: finding this program: %w", err)
	}
	err = dist.Launch(cmd.Context(), dist.LaunchOptions{
		N: r.Nproc, Exe: exe, Args: os.Args[1:], Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
	})
	if re, ok := errors.AsType[*dist.RankError](err); ok {
		switch {
		case re.Code > 0:
			// The rank said why; its status is the command's.
			return true, WithExit(re.Code, err)
		case re.Signal != 0:
			// As a shell reports a process a signal ended (Ctrl-C
			// before a rank could catch it: 130).
			return true, WithExit(128+int(re.Signal), err)
		}
	}
	return true, err
}

// Join joins the group of torchrun's variables, if set, on --dist-backend,
// once check (when not nil) accepts its world size (unit: "ranks"); it
// returns the group (nil for a single process) and this rank's device
// (dist.Device).
func (r *Ranks) Join(dev torch.Device, check func(world int, unit string) error) (*torch.ProcessGroup, torch.Device, error) {
	o, ok, err := torch.DistOptionsFromEnv(os.LookupEnv)
	switch {
	case err != nil:
		return nil, dev, WithExit(ExitUsage, err)
	case !ok:
		return nil, dev, nil
	}
	if check != nil {
		if err := check(o.WorldSize, "ranks"); err != nil {
			return nil, dev, WithExit(ExitUsage, err)
		}
	}
	dev = dist.Device(dev)
	g, err := dist.Join(o, r.Backend, dev, RankTimeout)
	if _, ok := errors.AsType[*dist.EnvError](err); ok {
		return nil, dev, WithExit(ExitUsage, err)
	}
	return g, dev, err
}
