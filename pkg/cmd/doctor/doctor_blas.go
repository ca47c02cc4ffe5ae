package doctor

import (
	"fmt"
	"os"
	"strings"

	"github.com/lavascope/lavascope/torch"
)

// checkBLAS says which BLAS the loaded libtorch computes with, as the
// process itself says (torch.LoadedBLAS); it warns only for the reference
// BLAS, which is about 40 times slower than OpenBLAS on the CPU.
func checkBLAS(env *doctorEnv) (checkStatus, string) {
	b, err := torch.LoadedBLAS()
	if err != nil {
		return checkWarn, fmt.Sprintf("unknown: %v (rebuild the shim with `make torch`)", err)
	}
	env.blas = &b
	detail := b.String()
	if b.BuiltWith != "" {
		detail += fmt.Sprintf("\nlibtorch built with BLAS_INFO=%s", b.BuiltWith)
	}
	if b.Reference() {
		return checkWarn, detail + "\nWARNING: the reference BLAS is slow; " + installOpenBLAS
	}
	return checkOK, detail
}

const installOpenBLAS = "install OpenBLAS (apt-get install libopenblas0-pthread) and run again"

// slowMatmul is what doctor says of a CPU matmul below slowCPUGFLOPS. Only
// the reference BLAS (or a BLAS not known) calls for OpenBLAS; with a fast
// BLAS loaded, the CPU is busy, which the load average (from
// /proc/loadavg, "" when not known) shows.
func slowMatmul(blas *torch.BLAS, loadavg string) string {
	load := "load average unknown"
	if loadavg != "" {
		load = "load average " + loadavg
	}
	switch {
	case blas == nil || blas.Name == "":
		return "WARNING: slow: the reference BLAS, or a busy CPU (" + load + "); if `blas` above is not OpenBLAS, " + installOpenBLAS
	case blas.Reference():
		return "WARNING: reference-BLAS speed; " + installOpenBLAS
	}
	return fmt.Sprintf("WARNING: slow for %s: the CPU looks busy (%s); run again when it is idle", blas.Name, load)
}

// loadAverage is the one-minute load average, "" when not known.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || strings.Trim(f[0], "0123456789.") != "" {
		return ""
	}
	return f[0]
}
