package torch_test

import (
	"fmt"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// BenchmarkTinyOp measures the cost of one op through purego and the shim on
// a one-element tensor, freeing its result: on the CPU (the binding's own
// overhead) and, when the test device is CUDA, there too (plus the launch).
func BenchmarkTinyOp(b *testing.B) {
	dev := torchtest.Device(b)
	devs := []torch.Device{torch.CPU}
	if dev.IsCUDA() {
		devs = append(devs, dev)
	}
	for _, d := range devs {
		b.Run(d.String(), func(b *testing.B) {
			s := torch.NewScope()
			defer s.Close()
			x := s.FromFloat32([]float32{1}).ToDevice(d)
			b.ReportAllocs()
			for b.Loop() {
				x.Neg().Free()
			}
			if d.IsCUDA() {
				if err := torch.CUDASynchronize(d.Index); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Err(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkMatmul reports the float32 matrix product's speed on the test
// device (and bf16 on CUDA).
func BenchmarkMatmul(b *testing.B) {
	dev := torchtest.Device(b)
	type size struct {
		n  int64
		dt torch.DType
	}
	sizes := []size{{1024, torch.Float32}, {2048, torch.Float32}}
	if dev.IsCUDA() {
		sizes = append(sizes, size{8192, torch.Float32}, size{8192, torch.BFloat16})
	}
	for _, sz := range sizes {
		b.Run(fmt.Sprintf("%d/%v", sz.n, sz.dt), func(b *testing.B) {
			s := torch.NewScope()
			defer s.Close()
			o := torch.Options{DType: sz.dt, Device: dev}
			x, y := s.Randn([]int64{sz.n, sz.n}, o), s.Randn([]int64{sz.n, sz.n}, o)
			x.Matmul(y).Free()
			sync := func() {
				if dev.IsCUDA() {
					if err := torch.CUDASynchronize(dev.Index); err != nil {
						b.Fatal(err)
					}
				}
			}
			sync()
			for b.Loop() {
				x.Matmul(y).Free()
				sync()
			}
			if err := s.Err(); err != nil {
				b.Fatal(err)
			}
			flops := 2 * float64(sz.n) * float64(sz.n) * float64(sz.n)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkAdamWStep times one AdamW step, with each implementation this
// libtorch has on the test device, over the tiny config's shapes (a
// 49408×64 token embedding and 80 small tensors) and over ViT-B/32's token
// embedding alone (49408×512, 100 MB: above glibc's mmap threshold, where
// every temporary is fresh memory).
func BenchmarkAdamWStep(b *testing.B) {
	dev := torchtest.Device(b)
	tiny := [][]int64{{49408, 64}}
	for range 40 {
		tiny = append(tiny, []int64{64, 64}, []int64{64})
	}
	for _, set := range []struct {
		name   string
		shapes [][]int64
	}{{"tiny", tiny}, {"embedding-512", [][]int64{{49408, 512}}}} {
		for _, impl := range []torch.AdamWImpl{torch.AdamWForeach, torch.AdamWFused} {
			b.Run(set.name+"/"+string(impl), func(b *testing.B) { benchAdamW(b, dev, set.shapes, impl) })
		}
	}
}

func benchAdamW(b *testing.B, dev torch.Device, shapes [][]int64, impl torch.AdamWImpl) {
	s := torch.NewScope()
	defer s.Close()
	ps := make([]*torch.Tensor, len(shapes))
	loss := s.Zeros([]int64{}, torch.Options{Device: dev})
	for i, sh := range shapes {
		ps[i] = s.Randn(sh, torch.Options{Device: dev})
		if err := ps[i].SetRequiresGrad(true); err != nil {
			b.Fatal(err)
		}
		loss = loss.Add(ps[i].Mul(s.Randn(sh, torch.Options{Device: dev})).SumAll())
	}
	if err := loss.Backward(nil); err != nil {
		b.Fatal(err)
	}
	o := torch.DefaultAdamW()
	o.Impl = impl
	opt, err := torch.NewAdamW(ps, o)
	if err != nil {
		b.Skipf("%s AdamW on %s: %v", impl, dev, err)
	}
	defer opt.Close()
	for b.Loop() {
		if err := opt.Step(); err != nil {
			b.Fatal(err)
		}
	}
	if dev.IsCUDA() {
		if err := torch.CUDASynchronize(dev.Index); err != nil {
			b.Fatal(err)
		}
	}
}
