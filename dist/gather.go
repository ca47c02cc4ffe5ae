package dist

import (
	"bytes"
	"encoding/gob"
	"fmt"

	"github.com/lavascope/lavascope/torch"
)

// Share is the part [lo, hi) of n items that rank takes of world: a
// contiguous run, the first n%world ranks one item more than the others.
// Contiguous (not strided, as PyTorch's DistributedSampler deals) so that
// the ranks' results, put one after the other in rank order, are in the
// items' order, and an item's first occurrence in that order is its first
// in the split's.
func Share(n, rank, world int) (lo, hi int) {
	if world < 1 || rank < 0 || rank >= world || n <= 0 {
		return 0, 0
	}
	q, r := n/world, n%world
	lo = rank*q + min(rank, r)
	hi = lo + q
	if rank < r {
		hi++
	}
	return lo, hi
}

// Gather returns every rank's v, in rank order, on every rank of g: v is
// gob-encoded (exact for floats) and the bytes gathered through c10d's
// all-gather, their lengths first, on dev (the device of this rank: NCCL
// gathers only CUDA tensors). Every rank must call it, with values of the
// same type, on the goroutine that runs its torch calls.
func Gather[T any](g *torch.ProcessGroup, dev torch.Device, v T) ([]T, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&v); err != nil {
		return nil, fmt.Errorf("rank %d: encoding its results: %w", g.Rank(), err)
	}
	s := torch.NewScope()
	defer s.Close()
	lens, err := g.AllGather(s.FromInt64([]int64{int64(buf.Len())}, 1).ToDevice(dev), false)
	if err != nil {
		return nil, fmt.Errorf("gathering the lengths of the ranks' results: %w", err)
	}
	n, err := lens.Int64s()
	if err != nil {
		return nil, err
	}
	all, err := g.AllGather(s.FromBytes(buf.Bytes(), torch.Uint8, []int64{int64(buf.Len())}).ToDevice(dev), false)
	if err != nil {
		return nil, fmt.Errorf("gathering the ranks' results: %w", err)
	}
	b, err := all.Bytes()
	if err != nil {
		return nil, err
	}
	out := make([]T, len(n))
	at := int64(0)
	for r, k := range n {
		if k < 0 || at+k > int64(len(b)) {
			return nil, fmt.Errorf("rank %d sent %d bytes of results, %d of %d left", r, k, int64(len(b))-at, len(b))
		}
		if err := gob.NewDecoder(bytes.NewReader(b[at : at+k])).Decode(&out[r]); err != nil {
			return nil, fmt.Errorf("decoding the results of rank %d: %w", r, err)
		}
		at += k
	}
	return out, nil
}
