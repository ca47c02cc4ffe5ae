package model

import (
	"os"
	"strconv"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// BenchmarkForwardPair is one LAVA pair through a randomly initialised
// model: 2 images and 2 texts of 77 tokens, scored 2×2. infer is the
// inference path (no grad, SDPA); capture keeps the attention maps for the
// explainer (forward only); infer-images and infer-texts are the two
// halves of infer. The target for vit-b-32/infer on the
// CPU is 400 ms on 2 cores. LAVASCOPE_THREADS, the app's threads setting,
// caps libtorch's CPU threads (compare on a bigger host with taskset and the
// same number of threads).
func BenchmarkForwardPair(b *testing.B) {
	dev := torchtest.Device(b)
	if n, err := strconv.Atoi(os.Getenv("LAVASCOPE_THREADS")); err == nil && n > 0 {
		if err := torch.SetNumThreads(n); err != nil {
			b.Fatal(err)
		}
	}
	// The configs with targets; the larger ones are `lavascope bench`'s.
	for _, name := range []string{"vit-b-32", "tiny"} {
		cfg, err := NamedConfig(name)
		if err != nil {
			b.Fatal(err)
		}
		m, err := Init(cfg, Options{Device: dev}, 1)
		if err != nil {
			b.Fatal(err)
		}
		inputs := torch.NewScope()
		size := int64(cfg.Vision.ImageSize)
		pixels := inputs.Randn([]int64{2, 3, size, size}, torch.Options{Device: dev})
		ids, err := SyntheticIDs(&cfg.Text, 2, 39, 77, 1)
		if err != nil {
			b.Fatal(err)
		}
		idt := inputs.FromInt64(ids, 2, 77).ToDevice(dev)
		// One pass first, so that the first sub-benchmark does not pay for
		// the device's lazy setup (CUDA context, BLAS handles, kernel choice).
		warm := torch.NewScope()
		if _, err := m.Forward(warm, pixels, idt, ForwardOptions{}); err != nil {
			b.Fatal(err)
		}
		warm.Close()
		for _, mode := range []struct {
			name        string
			pixels, ids *torch.Tensor
			o           ForwardOptions
		}{
			{"infer", pixels, idt, ForwardOptions{}},
			{"infer-images", pixels, nil, ForwardOptions{}},
			{"infer-texts", nil, idt, ForwardOptions{}},
			{"capture", pixels, idt, ForwardOptions{Capture: true}},
		} {
			b.Run(name+"/"+mode.name, func(b *testing.B) {
				for b.Loop() {
					s := torch.NewScope()
					out, err := m.Forward(s, mode.pixels, mode.ids, mode.o)
					if err == nil && out.LogitsPerImage != nil {
						_, err = out.LogitsPerImage.Float32s()
					}
					s.Close()
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		inputs.Close()
		m.Close()
	}
}
