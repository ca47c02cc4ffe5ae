package model

import (
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// TestFusedForwardMatchesOps checks the inference forward, whose encoders
// run as one torch.PreLNEncoder call each, against the per-op paths: the
// same SDPA ops one by one (Grad) and HF's eager attention.
func TestFusedForwardMatchesOps(t *testing.T) {
	dev := torchtest.Device(t)
	for _, dir := range []string{hfTinyDir, hfHoldoutDir} {
		m := loadFixture(t, dir, Options{Device: dev})
		s := torch.NewScope()
		pixels, ids, _ := fixtureInputs(t, dir, s)
		fused, err := m.Forward(s, pixels, ids, ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			o    ForwardOptions
		}{
			{"sdpa-ops", ForwardOptions{Grad: true}},
			{"eager", ForwardOptions{Eager: true}},
		} {
			t.Run(filepath.Base(dir)+"/"+tc.name, func(t *testing.T) {
				ops, err := m.Forward(s, pixels, ids, tc.o)
				if err != nil {
					t.Fatal(err)
				}
				want := outputByName(ops)
				got := outputByName(fused)
				for _, name := range slices.Sorted(maps.Keys(got)) {
					w, err := want[name].Float32s()
					if err != nil {
						t.Fatal(err)
					}
					d := maxAbsDiff(t, name, got[name], hostTensor{shape: want[name].Shape(), f32: w})
					// libtorch's SDPA kernels (CUDA's, and the CPU's flash
					// kernel from libtorch 2 on) round otherwise than the
					// eager softmax; both stay within the parity tolerance.
					tol := 1e-6
					if m.Device() != torch.CPU || (tc.o.Eager && torchtest.AtLeast(t, 2, 0)) {
						tol = 1e-5
					}
					if d > tol {
						t.Errorf("%s: fused and per-op forward differ by %.3g", name, d)
					}
				}
			})
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
