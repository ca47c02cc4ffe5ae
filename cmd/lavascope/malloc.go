package main

import (
	"os"
	"runtime"
	"strings"
	"syscall"
)

// glibc's malloc, left to itself, hands libtorch's large CPU buffers that
// come and go every step (a 12.6 MB gradient, AdamW's temporaries) to
// per-thread arenas whose heaps it unmaps when they empty, or straight to
// mmap: in about half of all runs, depending on which arena the torch
// worker's thread got, each training step page-faulted them in afresh
// (the tiny config: 29–33 ms a step instead of 18–21, with 6–8× the page
// faults). One arena and fixed thresholds (mmap above 32 MiB, the dynamic
// scheme's own ceiling; trim above twice that) keep them in the heap. glibc
// reads its tunables only when a process starts, so lavascope starts itself
// again once with them.
const mallocTunables = "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864"

// envMalloc names the setting that leaves malloc to the user: system.
const envMalloc = "LAVASCOPE_MALLOC"

// userMallocEnv are the environment variables by which glibc's malloc is
// set; any of them leaves it to the user.
var userMallocEnv = []string{"MALLOC_ARENA_MAX=", "MALLOC_MMAP_THRESHOLD_=", "MALLOC_TRIM_THRESHOLD_=", "MALLOC_TOP_PAD_=", "MALLOC_MMAP_MAX_="}

// withMallocTunables returns environ with mallocTunables added to
// GLIBC_TUNABLES, or false when the user set glibc's malloc already, or
// LAVASCOPE_MALLOC=system asks to leave it.
func withMallocTunables(environ []string) ([]string, bool) {
	out := make([]string, 0, len(environ)+1)
	tunables := ""
	for _, kv := range environ {
		switch {
		case kv == envMalloc+"=system":
			return nil, false
		case strings.HasPrefix(kv, "GLIBC_TUNABLES="):
			tunables = strings.TrimPrefix(kv, "GLIBC_TUNABLES=")
			if strings.Contains(tunables, "glibc.malloc.") {
				return nil, false
			}
			continue
		}
		for _, p := range userMallocEnv {
			if strings.HasPrefix(kv, p) {
				return nil, false
			}
		}
		out = append(out, kv)
	}
	if tunables != "" {
		tunables += ":"
	}
	return append(out, "GLIBC_TUNABLES="+tunables+mallocTunables), true
}

// reexecWithMallocTunables starts this program again with mallocTunables
// where they apply; it returns only when nothing was done or the exec
// failed, and the program then runs as it is.
func reexecWithMallocTunables() {
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

// mallocSetting says how glibc's malloc is set in this process, for doctor.
func mallocSetting() string {
	t := os.Getenv("GLIBC_TUNABLES")
	switch {
	case os.Getenv(envMalloc) == "system":
		return "as the system sets it (" + envMalloc + "=system)"
	case strings.Contains(t, mallocTunables):
		return "one arena, mmap above 32 MiB, trim above 64 MiB (set by lavascope; " + envMalloc + "=system leaves it)"
	case strings.Contains(t, "glibc.malloc."):
		return "as GLIBC_TUNABLES sets it"
	}
	for _, p := range userMallocEnv {
		if _, set := os.LookupEnv(strings.TrimSuffix(p, "=")); set {
			return "as " + strings.TrimSuffix(p, "=") + " sets it"
		}
	}
	return "glibc's defaults (per-thread arenas, dynamic thresholds)"
}
