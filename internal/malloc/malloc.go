// Package malloc sets glibc's malloc for libtorch's buffers: lavascope
// starts itself again with the tunables that keep them in the heap.
package malloc

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
)

// glibc's malloc, left to itself, hands libtorch's large CPU buffers that
// come and go every step (a large gradient, AdamW's temporaries) to
// per-thread arenas whose heaps it unmaps when they empty, or straight to
// mmap: in some runs, depending on which arena the torch worker's thread
// got, each training step page-faulted them in afresh and ran markedly
// slower (docs/performance.md, "CPU memory: glibc's malloc"). One arena and
// fixed thresholds (mmap above 32 MiB, the dynamic scheme's own ceiling;
// trim above twice that) keep them in the heap. glibc reads its tunables
// only when a process starts, so lavascope starts itself again once with
// them.
const mallocTunables = "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864"

// Env names the setting that leaves malloc to the user: system.
const Env = "LAVASCOPE_MALLOC"

// Check refuses a LAVASCOPE_MALLOC other than system (leave
// malloc to the user) or lavascope (the default): a typo such as systen
// used to be ignored, and lavascope set malloc after all.
func Check(v string) error {
	switch v {
	case "", "system", "lavascope":
		return nil
	}
	return fmt.Errorf("environment variable %s: %q is not one of system, lavascope", Env, v)
}

// userMallocEnv are the environment variables by which glibc's malloc is
// set; any of them leaves it to the user.
var userMallocEnv = []string{"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"}

// mallocOwner names what in environ sets glibc's malloc (LAVASCOPE_MALLOC=system,
// GLIBC_TUNABLES or a MALLOC_ variable), or "" when nothing does.
func mallocOwner(environ []string) string {
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == Env && v == "system":
			return kv
		case k == "GLIBC_TUNABLES" && strings.Contains(v, "glibc.malloc."):
			return k
		case slices.Contains(userMallocEnv, k):
			return k
		}
	}
	return ""
}

// withMallocTunables returns environ with mallocTunables added to
// GLIBC_TUNABLES, or false when something there sets glibc's malloc
// already (mallocOwner).
func withMallocTunables(environ []string) ([]string, bool) {
	if mallocOwner(environ) != "" {
		return nil, false
	}
	out := make([]string, 0, len(environ)+1)
	tunables := mallocTunables
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GLIBC_TUNABLES="); ok {
			tunables = v + ":" + mallocTunables
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GLIBC_TUNABLES="+tunables), true
}

// Reexec starts this program again with mallocTunables
// where they apply; it returns only when nothing was done or the exec
// failed, and the program then runs as it is.
func Reexec() {
	if runtime.GOOS != "linux" {
		return
	}
	env, ok := withMallocTunables(os.Environ())
	if !ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, env)
}

// Setting says how glibc's malloc is set in this process, for doctor.
func Setting() string {
	if strings.Contains(os.Getenv("GLIBC_TUNABLES"), mallocTunables) {
		return "one arena, mmap above 32 MiB, trim above 64 MiB (set by lavascope; " + Env + "=system leaves it)"
	}
	switch owner := mallocOwner(os.Environ()); owner {
	case "":
		return "glibc's defaults (per-thread arenas, dynamic thresholds)"
	case Env + "=system":
		return "as the system sets it (" + owner + ")"
	default:
		return "as " + owner + " sets it"
	}
}
