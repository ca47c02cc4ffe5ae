// Package dist runs lavascope as several processes, one per GPU (or CPU
// share), the way PyTorch users do: under torchrun, whose variables a
// process reads to join its group (Join), or started by lavascope itself on
// one machine (Launch). The processes talk through PyTorch's own engine
// (c10d, package torch); this package starts and joins them, shares items
// out among them (Share) and gathers what each computed (Gather).
package dist

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lavascope/lavascope/torch"
)

// EnvGlooIface is the interface Gloo binds to on a machine with several
// (PyTorch's variable; a group on the loopback needs none).
const EnvGlooIface = "GLOO_SOCKET_IFNAME"

// Join joins the group o describes (torch.DistOptionsFromEnv reads it from
// torchrun's variables) on backend: auto (NCCL on a CUDA device, Gloo
// otherwise), gloo or nccl. On CUDA, dev should be cuda:LOCAL_RANK (see
// Device). A bad backend is an *EnvError.
func Join(o torch.DistOptions, backend string, dev torch.Device, timeout time.Duration) (*torch.ProcessGroup, error) {
	switch backend {
	case "auto", "":
		o.Backend = torch.Gloo
		if dev.IsCUDA() {
			o.Backend = torch.NCCL
		}
	case string(torch.Gloo), string(torch.NCCL):
		o.Backend = torch.Backend(backend)
	default:
		return nil, &EnvError{Err: fmt.Errorf("backend %q: want auto, gloo or nccl", backend)}
	}
	gloo, nccl := torch.DistBackends()
	if (o.Backend == torch.Gloo && !gloo) || (o.Backend == torch.NCCL && !nccl) {
		return nil, fmt.Errorf("the shim has no %s (lavascope doctor says which backends it has; Gloo needs libgloo-dev, NCCL a CUDA libtorch, when the shim is built)", o.Backend)
	}
	o.Timeout = timeout
	return torch.NewProcessGroup(o, os.Getenv(EnvGlooIface))
}

// EnvError is a malformed setting of the group: a usage error.
type EnvError struct{ Err error }

func (e *EnvError) Error() string { return e.Err.Error() }
func (e *EnvError) Unwrap() error { return e.Err }

// Device is the device of this rank: cuda:LOCAL_RANK when dev is a CUDA
// device and torchrun's LOCAL_RANK is set and valid, dev otherwise.
func Device(dev torch.Device) torch.Device {
	if !dev.IsCUDA() {
		return dev
	}
	if v, ok := os.LookupEnv(torch.EnvLocalRank); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < torch.CUDADeviceCount() {
			return torch.CUDA(n)
		}
	}
	return dev
}

// RankError is a launched rank that failed.
type RankError struct {
	Rank int
	// Code is its exit status, -1 when a signal ended it.
	Code int
	// Signal is the signal that ended it, when one did.
	Signal syscall.Signal
}

func (e *RankError) Error() string {
	if e.Code < 0 {
		if e.Signal != 0 {
			return fmt.Sprintf("rank %d was killed by %v", e.Rank, e.Signal)
		}
		return fmt.Sprintf("rank %d was killed", e.Rank)
	}
	return fmt.Sprintf("rank %d exited with status %d", e.Rank, e.Code)
}

// LaunchOptions say how Launch starts the ranks.
type LaunchOptions struct {
	// N is the number of ranks (processes) on this machine.
	N int
	// Exe and Args are the program every rank runs (this program with its
	// arguments, less the flag that asked for the launch).
	Exe  string
	Args []string
	// Stdout and Stderr receive rank 0's output; the others' goes to
	// Stderr, each line prefixed with its rank.
	Stdout, Stderr io.Writer
}

// Launch runs N ranks of one group on this machine: rank 0 serves the
// store on 127.0.0.1 at a port free a moment before. It returns when all
// have ended. When one fails the others are stopped (SIGTERM, then SIGKILL
// after 30 s), and the error names the first that failed. The ranks die
// with this process (on Linux), and SIGINT or SIGTERM to it is passed on
// once to each rank, which then finishes its step and saves as one process
// would.
func Launch(ctx context.Context, o LaunchOptions) error {
	if o.N < 1 {
		return fmt.Errorf("%d processes: want at least 1", o.N)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("finding a free port on the loopback: %w", err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmds := make([]*exec.Cmd, o.N)
	var prefixed []*lineWriter
	for r := range o.N {
		cmd := exec.CommandContext(ctx, o.Exe, o.Args...)
		cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(o.N), "LOCAL_WORLD_SIZE="+strconv.Itoa(o.N),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+port)
		if r == 0 {
			cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
		} else {
			w := &lineWriter{w: o.Stderr, prefix: fmt.Sprintf("rank %d: ", r)}
			prefixed = append(prefixed, w)
			cmd.Stdout, cmd.Stderr = w, w
		}
		childAttrs(cmd)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 30 * time.Second
		cmds[r] = cmd
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	started := 0
	for r, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			cancel()
			for _, c := range cmds[:started] {
				c.Wait()
			}
			return fmt.Errorf("starting rank %d: %w", r, err)
		}
		started++
	}
	type end struct {
		rank int
		err  error
	}
	ends := make(chan end, o.N)
	for r, cmd := range cmds {
		go func() { ends <- end{r, cmd.Wait()} }()
	}
	var first error
	for left := o.N; left > 0; {
		select {
		case e := <-ends:
			left--
			if e.err != nil && first == nil {
				first = rankError(e.rank, e.err)
				cancel()
			}
		case s := <-sigs:
			for _, c := range cmds {
				c.Process.Signal(s)
			}
		}
	}
	for _, w := range prefixed {
		w.Flush()
	}
	return first
}

func rankError(r int, err error) error {
	if x, ok := errors.AsType[*exec.ExitError](err); ok {
		re := &RankError{Rank: r, Code: x.ExitCode()}
		if ws, ok := x.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			re.Signal = ws.Signal()
		}
		return re
	}
	return fmt.Errorf("rank %d: %w", r, err)
}

// lineWriter writes whole lines to w, each after prefix.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    bytes.Buffer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.buf.Next(i + 1)
		if _, err := fmt.Fprintf(l.w, "%s%s", l.prefix, line); err != nil {
			return len(p), err
		}
	}
}

// Flush writes a last line without its newline.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		sc := bufio.NewScanner(&l.buf)
		for sc.Scan() {
			fmt.Fprintf(l.w, "%s%s\n", l.prefix, sc.Text())
		}
		l.buf.Reset()
	}
}
