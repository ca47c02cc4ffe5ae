package model

// Evaluation and probing over several processes (ranks of a c10d group):
// each rank scores a contiguous share of the pairs (dist.Share), the ranks
// gather what they scored through c10d's all-gather (dist.Gather), and
// every rank puts the shares one after the other, which is the pairs'
// order, and tallies them as one process tallies its own. The logits are
// those of the same model on the same inputs, but a chunk of pairs is not
// the same chunk as in one process (a share starts a new one), so they may
// differ in the last bits where the matrix products run in other shapes.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/lavascope/lavascope/dist"
	"github.com/lavascope/lavascope/torch"
)

// share is the part [lo, hi) of n pairs that this process scores.
func (o EvalOptions) share(n int) (lo, hi int) {
	if o.Group == nil {
		return 0, n
	}
	return dist.Share(n, o.Group.Rank(), o.Group.WorldSize())
}

// rankShare is what a rank sends: its results, and what it scored them
// on, so that ranks given other data or settings are caught.
type rankShare[T any] struct {
	Fingerprint string
	Result      T
}

// gather returns every rank's result in rank order, after checking that
// every rank scored the same pairs (split and idx) with the same settings.
func gather[T any](o EvalOptions, w *torch.Worker, m *CLIP, split Split, idx []int, mine T) ([]T, error) {
	fp, err := splitFingerprint(split)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s|%d|%v|%s", fp, split.Len(), idx, o.Style)
	fp = hex.EncodeToString(h.Sum(nil))
	var all []rankShare[T]
	err = w.Do(func() (err error) {
		all, err = dist.Gather(o.Group, m.Device(), rankShare[T]{Fingerprint: fp, Result: mine})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]T, len(all))
	for r, sh := range all {
		if sh.Fingerprint != fp {
			return nil, fmt.Errorf("rank %d scored other pairs or settings than rank %d (the data, the split, the pairs chosen or the linearization differ): give every rank the same", r, o.Group.Rank())
		}
		out[r] = sh.Result
	}
	return out, nil
}
