// Package doctor is `lavascope doctor`: it checks libtorch, devices, memory,
// the checkpoint and terminal graphics, and says how to fix what is missing.
package doctor

import (
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/bench"
	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/internal/malloc"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/pkg/cmd/version"
	"github.com/lavascope/lavascope/torch"
)

// checkStatus is the outcome of one doctor check.
type checkStatus int

const (
	checkOK   checkStatus = iota
	checkWarn             // works, but something should be fixed
	checkFail             // makes doctor exit 1
	checkSkip             // does not apply here (a check may say so itself)
)

func (s checkStatus) String() string {
	return [...]string{"ok", "WARN", "FAIL", "skip"}[s]
}

// doctorEnv is what checks share: the configuration, and the torch worker
// once the shim has loaded (nil before, and when it did not).
type doctorEnv struct {
	a      *factory.Factory
	worker *torch.Worker
	device torch.Device
	// blas is what the blas check found; nil when it could not ask.
	blas *torch.BLAS
}

// doctorCheck is one line of `lavascope doctor`; checks run in the order of
// doctorChecks.
type doctorCheck struct {
	name string
	// needsTorch skips the check when the shim did not load.
	needsTorch bool
	// run returns the status and a one-line (or a few lines) detail.
	run func(env *doctorEnv) (checkStatus, string)
}

// doctorChecks are the checks in the order they run; the shim check comes
// first because the torch checks need it.
var doctorChecks = []doctorCheck{
	{name: "libtorch shim", run: checkShim},
	{name: "libtorch", needsTorch: true, run: checkLibtorch},
	{name: "blas", needsTorch: true, run: checkBLAS},
	{name: "cpu threads", needsTorch: true, run: checkThreads},
	{name: "cpu memory", run: checkMalloc},
	{name: "cuda", needsTorch: true, run: checkCUDA},
	{name: "distributed", needsTorch: true, run: checkDist},
	{name: "device", needsTorch: true, run: checkDevice},
	{name: "optimizer", needsTorch: true, run: checkOptimizer},
	{name: "matmul", needsTorch: true, run: checkMatmul},
	{name: "checkpoint", run: checkCheckpoint},
	{name: "graphics", run: checkGraphics},
}

// slowCPUGFLOPS is the CPU matmul speed below which the BLAS looks like the
// reference implementation (about 3 GFLOP/s here, against about 127 with
// OpenBLAS on two cores).
const slowCPUGFLOPS = 20

// Options are the settings of one `lavascope doctor` run.
type Options struct {
	*factory.Factory
	factory.Invocation
}

// NewCmdDoctor builds `lavascope doctor`; runF, when not nil, runs in place
// of the command (tests check the parsed options with it).
func NewCmdDoctor(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check libtorch, devices and speed, and say how to fix what is missing",
		Args:  cobra.NoArgs,
		RunE:  factory.RunE(opts, runF, runDoctor),
	}
	config.AddFlags(cmd.Flags(), "checkpoint", "base")
	return cmd
}

func runDoctor(opts *Options) error {
	w := opts.Cmd.OutOrStdout()
	env := &doctorEnv{a: opts.Factory}
	defer func() {
		if env.worker != nil {
			env.worker.Close()
		}
	}()
	fmt.Fprintln(w, "lavascope", version.Build(), "doctor")
	failed := 0
	for _, c := range doctorChecks {
		if c.needsTorch && env.worker == nil {
			// The shim check already said what is wrong and how to fix it.
			continue
		}
		st, detail := c.run(env)
		fmt.Fprintf(w, "  %-4s  %-14s %s\n", st, c.name, indentRest(detail))
		if st == checkFail {
			failed++
		}
	}
	if failed > 0 {
		return factory.WithExit(factory.ExitFailure, fmt.Errorf("doctor: %d check(s) failed", failed))
	}
	return nil
}

// indentRest lines up the continuation lines of a detail under its first.
func indentRest(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, "                       "...)
		}
	}
	return string(out)
}

func checkShim(env *doctorEnv) (checkStatus, string) {
	if err := torch.Load(env.a.Config.TorchLib); err != nil {
		return checkFail, err.Error()
	}
	env.worker = torch.NewWorker()
	return checkOK, torch.LibPath() + "\ntaken because: " + torch.LibWhy()
}

func checkLibtorch(env *doctorEnv) (checkStatus, string) {
	kind := "CPU only"
	if torch.CUDAAvailable() {
		kind = "CUDA"
	}
	return checkOK, fmt.Sprintf("%s (%s)", torch.Version(), kind)
}

// checkThreads sets and reads the thread count on the worker's thread: with
// OpenMP, libtorch's count belongs to each thread, and the worker's is the
// one its work uses.
func checkThreads(env *doctorEnv) (checkStatus, string) {
	n := env.a.Config.Threads
	var got int
	err := env.worker.Do(func() error {
		if n > 0 {
			if err := torch.SetNumThreads(n); err != nil {
				return err
			}
		}
		got = torch.NumThreads()
		return nil
	})
	switch {
	case err != nil:
		return checkFail, fmt.Sprintf("threads %d: %v", n, err)
	case n > 0:
		return checkOK, fmt.Sprintf("%d (set by the threads setting)", got)
	}
	return checkOK, fmt.Sprintf("%d of %d CPUs (libtorch's default; the threads setting changes it)", got, runtime.NumCPU())
}

func checkMalloc(*doctorEnv) (checkStatus, string) {
	if runtime.GOOS != "linux" {
		return checkSkip, "the system's allocator"
	}
	return checkOK, "glibc malloc: " + malloc.Setting()
}

func checkCUDA(env *doctorEnv) (checkStatus, string) {
	n := torch.CUDADeviceCount()
	if !torch.CUDAAvailable() || n == 0 {
		return checkOK, "not available (this libtorch is CPU-only or sees no GPU)"
	}
	detail := fmt.Sprintf("%d device(s)", n)
	st := checkOK
	for i := range n {
		m, err := torch.CUDAMemory(i)
		if err != nil {
			st = checkWarn
			detail += fmt.Sprintf("\ncuda:%d: memory unknown: %v", i, err)
			continue
		}
		detail += fmt.Sprintf("\ncuda:%d: %s, %.1f GiB total, %.1f GiB free", i, m.Name, gib(m.Total), gib(m.Free))
	}
	switch {
	case !torch.CUDAGraphsCompiled():
		detail += "\nCUDA graphs: off (rebuild the shim with `make torch` against a CUDA libtorch 2 or later with its CUDA headers)"
	case torch.TensorLRCompiled():
		detail += "\nCUDA graphs: on (explanations, scoring and training steps)"
	default:
		detail += "\nCUDA graphs: on for explanations and scoring; graphed training steps need a shim against libtorch 2.4 or later"
	}
	return st, detail
}

// checkDist says which c10d backends the shim has for several processes
// (lavascope train --nproc-per-node, torchrun).
func checkDist(*doctorEnv) (checkStatus, string) {
	gloo, nccl := torch.DistBackends()
	switch {
	case gloo && nccl:
		return checkOK, "gloo (CPU), nccl (CUDA)"
	case gloo && torch.CUDAAvailable():
		return checkWarn, "gloo (CPU) only: no NCCL for the GPUs (rebuild the shim with `make torch` against a CUDA libtorch)"
	case gloo:
		return checkOK, "gloo (CPU)"
	case nccl:
		return checkWarn, "nccl (CUDA) only: no Gloo for the CPU (install libgloo-dev and rebuild the shim with `make torch`)"
	}
	return checkWarn, "off: the shim has no c10d backend (install libgloo-dev and rebuild it with `make torch`)"
}

func gib(b int64) float64 { return float64(b) / (1 << 30) }

func checkDevice(env *doctorEnv) (checkStatus, string) {
	var notice string
	err := env.worker.Do(func() (err error) {
		env.device, notice, err = model.ResolveDevice(env.a.Config.Device)
		return err
	})
	if err != nil {
		return checkFail, err.Error()
	}
	detail := fmt.Sprintf("%s (device setting %q)", env.device, env.a.Config.Device)
	if notice != "" {
		detail += "\n" + notice
	}
	return checkOK, detail
}

// checkOptimizer says which AdamW training takes on the device: the fused
// kernel where libtorch has it, which is worth a quarter of a ViT-B/32 step
// on the CPU, else the update op by op.
func checkOptimizer(env *doctorEnv) (checkStatus, string) {
	var impl torch.AdamWImpl
	err := env.worker.Do(func() (err error) { impl, err = torch.AutoAdamWImpl(env.device); return err })
	if err != nil {
		return checkFail, "AdamW on " + env.device.String() + ": " + err.Error()
	}
	if impl == torch.AdamWFused {
		return checkOK, fmt.Sprintf("AdamW fused on %s (one kernel per step)", env.device)
	}
	if env.device.IsCUDA() {
		return checkOK, fmt.Sprintf("AdamW foreach on %s (a few multi-tensor kernels per line of the update; libtorch %s has no fused AdamW)", env.device, torch.Version())
	}
	return checkOK, fmt.Sprintf("AdamW foreach on %s, one parameter at a time (libtorch %s has no fused AdamW on the CPU: it comes with 2.4)", env.device, torch.Version())
}

func checkMatmul(env *doctorEnv) (checkStatus, string) {
	const n = 1024
	var gflops float64
	var per time.Duration
	err := env.worker.Do(func() error {
		var err error
		per, err = bench.TimeMatmul(env.device, n)
		gflops = 2 * n * n * n / per.Seconds() / 1e9
		return err
	})
	if err != nil {
		return checkFail, err.Error()
	}
	detail := fmt.Sprintf("%d² f32 on %s: %.2f ms, %.0f GFLOP/s", n, env.device, float64(per.Microseconds())/1000, gflops)
	if !env.device.IsCUDA() && gflops < slowCPUGFLOPS {
		return checkWarn, detail + "\n" + slowMatmul(env.blas, loadAverage())
	}
	return checkOK, detail
}
