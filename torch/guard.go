package torch

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// A CUDA graph records kernels, not host work: a value read back to the
// host, or host data made into a tensor, inside a Replay's work breaks the
// capture on a GPU. The guard makes that an error on every device, so the
// work is checked wherever its tests run, CPU included.

// guardThread is the OS thread running a Replay's work, 0 when none.
var guardThread atomic.Int64

// guarded runs f with host access refused on the calling thread.
func guarded(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := guardThread.Swap(threadID())
	defer guardThread.Store(prev)
	return f()
}

// hostAccess fails when the calling thread runs a Replay's work: op reads
// from or writes to host memory.
func hostAccess(op string) error {
	g := guardThread.Load()
	if g == 0 || g != threadID() {
		return nil
	}
	return &OpError{Op: op, Err: fmt.Errorf("reads or writes host memory inside a Replay's work, which a CUDA graph cannot capture")}
}
