package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/model"
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
	a      *app
	worker *torch.Worker
	device torch.Device
}

// doctorCheck is one line of `lavascope doctor`. Later features add their
// own (terminal graphics, checkpoints) by appending to doctorChecks from an
// init function in their file; checks run in slice order.
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
	{name: "cpu threads", needsTorch: true, run: checkThreads},
	{name: "cpu memory", run: checkMalloc},
	{name: "cuda", needsTorch: true, run: checkCUDA},
	{name: "distributed", needsTorch: true, run: checkDist},
	{name: "device", needsTorch: true, run: checkDevice},
	{name: "optimizer", needsTorch: true, run: checkOptimizer},
	{name: "matmul", needsTorch: true, run: checkMatmul},
}

// slowCPUGFLOPS is the CPU matmul speed below which the BLAS looks like the
// reference implementation (about 3 GFLOP/s here, against about 127 with
// OpenBLAS on two cores).
const slowCPUGFLOPS = 20

func init() {
	addCommand(func(a *app) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "doctor",
			Short: "Check libtorch, devices and speed, and say how to fix what is missing",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runDoctor(a, cmd.OutOrStdout())
			},
		}
		config.AddFlags(cmd.Flags(), "checkpoint", "base")
		return cmd
	})
}

func runDoctor(a *app, w io.Writer) error {
	env := &doctorEnv{a: a}
	defer func() {
		if env.worker != nil {
			env.worker.Close()
		}
	}()
	fmt.Fprintln(w, "lavascope", buildVersion(), "doctor")
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
		return withExit(exitFailure, fmt.Errorf("doctor: %d check(s) failed", failed))
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
	if err := torch.Load(env.a.cfg.TorchLib); err != nil {
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
	n := env.a.cfg.Threads
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
	return checkOK, "glibc malloc: " + mallocSetting()
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
		env.device, notice, err = model.ResolveDevice(env.a.cfg.Device)
		return err
	})
	if err != nil {
		return checkFail, err.Error()
	}
	detail := fmt.Sprintf("%s (device setting %q)", env.device, env.a.cfg.Device)
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
	err := env.worker.Do(func() error {
		s := torch.NewScope()
		defer s.Close()
		p := s.Zeros([]int64{1}, torch.Options{Device: env.device})
		if err := p.SetRequiresGrad(true); err != nil {
			return err
		}
		opt, err := torch.NewAdamW([]*torch.Tensor{p}, torch.DefaultAdamW())
		if err != nil {
			return err
		}
		impl = opt.Impl()
		return opt.Close()
	})
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
		per, err = timeMatmul(env.device, n)
		gflops = 2 * n * n * n / per.Seconds() / 1e9
		return err
	})
	if err != nil {
		return checkFail, err.Error()
	}
	detail := fmt.Sprintf("%d² f32 on %s: %.2f ms, %.0f GFLOP/s", n, env.device, float64(per.Microseconds())/1000, gflops)
	if !env.device.IsCUDA() && gflops < slowCPUGFLOPS {
		return checkWarn, detail + "\nWARNING: this is reference-BLAS speed (or the CPU is busy); install OpenBLAS " +
			"(apt-get install libopenblas0-pthread) and run again"
	}
	return checkOK, detail
}

// timeMatmul returns the mean time of an n×n float32 matrix product on dev,
// after one warm-up, over at least 0.3 s or 50 products.
func timeMatmul(dev torch.Device, n int64) (time.Duration, error) {
	s := torch.NewScope()
	defer s.Close()
	o := torch.Options{Device: dev}
	a := s.Randn([]int64{n, n}, o)
	b := s.Randn([]int64{n, n}, o)
	sync := func() error {
		if dev.IsCUDA() {
			return torch.CUDASynchronize(dev.Index)
		}
		return nil
	}
	a.Matmul(b).Free()
	if err := errors.Join(s.Err(), sync()); err != nil {
		return 0, err
	}
	start := time.Now()
	reps := 0
	for reps < 50 && (reps < 3 || time.Since(start) < 300*time.Millisecond) {
		a.Matmul(b).Free()
		reps++
		if dev.IsCUDA() && reps%10 == 0 {
			if err := sync(); err != nil {
				return 0, err
			}
		}
	}
	if err := errors.Join(s.Err(), sync()); err != nil {
		return 0, err
	}
	return time.Since(start) / time.Duration(reps), nil
}
