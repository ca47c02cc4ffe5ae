package bench

import (
	"errors"
	"time"

	"github.com/lavascope/lavascope/torch"
)

// TimeMatmul returns the mean time of an n×n float32 matrix product on dev,
// after one warm-up, over at least 0.3 s or 50 products.
func TimeMatmul(dev torch.Device, n int64) (time.Duration, error) {
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
