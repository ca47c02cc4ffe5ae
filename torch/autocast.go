package torch

import "fmt"

var opSetAutocast = newOp("set_autocast")

// Autocast turns on libtorch's automatic mixed precision for dev's kind of
// device on the calling thread, as `with torch.autocast(dev, dtype)` does:
// matrix products, linear layers and attention run in dt while the
// parameters stay as they are (float32 masters); ops autocast keeps in
// float32 stay there. The returned function puts back the state it found
// and drops autocast's cache of cast weights, which must not outlive an
// optimizer step. Autocast is thread-local: call both on the torch worker,
// around the forward pass only (the backward pass follows the forward's
// dtypes by itself, as in PyTorch).
func Autocast(dev Device, dt DType) (restore func() error, err error) {
	if dt != BFloat16 && dt != Float16 {
		return nil, fmt.Errorf("torch: autocast to %s: want bf16 or f16", dt)
	}
	cuda := b2i(dev.IsCUDA())
	var prev int64
	if err := callInts(opSetAutocast, []int64{1, cuda, int64(dt)}, &prev); err != nil {
		return nil, err
	}
	return func() error { return callInts(opSetAutocast, []int64{prev, cuda, int64(dt)}) }, nil
}
