package torch

import (
	"fmt"
	"runtime"
)

var opSetAutocast = newOp("set_autocast")

// Autocast turns on libtorch's automatic mixed precision for dev's kind of
// device on the calling thread, as `with torch.autocast(dev, dtype)` does:
// matrix products, linear layers and attention run in dt while the
// parameters stay as they are (float32 masters); ops autocast keeps in
// float32 stay there. The returned function puts back the state it found
// and drops autocast's cache of cast weights, which must not outlive an
// optimizer step. Autocast is thread-local, so Autocast locks the calling
// goroutine to its OS thread until restore (locks nest, so on the torch
// worker, already locked, this changes nothing): a goroutine that moved
// to another thread mid-forward would mix dtypes there, and leave autocast
// on for whatever runs next on the first. Call restore from the same
// goroutine, around the forward pass only (the backward pass follows the
// forward's dtypes by itself, as in PyTorch).
func Autocast(dev Device, dt DType) (restore func() error, err error) {
	if dt != BFloat16 && dt != Float16 {
		return nil, fmt.Errorf("torch: autocast to %s: want bf16 or f16", dt)
	}
	cuda := b2i(dev.IsCUDA())
	runtime.LockOSThread()
	var prev int64
	if err := callInts(opSetAutocast, []int64{1, cuda, int64(dt)}, &prev); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return func() error {
		defer runtime.UnlockOSThread()
		return callInts(opSetAutocast, []int64{prev, cuda, int64(dt)})
	}, nil
}
