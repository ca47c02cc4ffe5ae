package explain

import (
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// BenchmarkExplainPair is the relevance of one LAVA pair (2 images, 2
// texts of 77 tokens, each reading against its own image) through a
// randomly initialised model of each named config, every method, all
// layers: forward with capture, one backward, both encoders' matrices and
// their rows on the host. The targets on the CPU (2 cores): tiny
// (the demo's size) chefer ≤ 30 ms, vit-b-32 chefer ≤ 1.5 s.
func BenchmarkExplainPair(b *testing.B) {
	dev := torchtest.Device(b)
	// The configs with targets; the larger ones are `lavascope bench`'s.
	for _, name := range []string{"vit-b-32", "tiny"} {
		cfg, err := model.NamedConfig(name)
		if err != nil {
			b.Fatal(err)
		}
		m, err := model.Init(cfg, model.Options{Device: dev}, 1)
		if err != nil {
			b.Fatal(err)
		}
		inputs := torch.NewScope()
		size := int64(cfg.Vision.ImageSize)
		pixels := inputs.Randn([]int64{2, 3, size, size}, torch.Options{Device: dev})
		ids, err := model.SyntheticIDs(&cfg.Text, 2, 39, 77, 1)
		if err != nil {
			b.Fatal(err)
		}
		idt := inputs.FromInt64(ids, 2, 77).ToDevice(dev)
		for _, method := range Methods {
			b.Run(name+"/"+string(method), func(b *testing.B) {
				for b.Loop() {
					if _, err := Explain(m, pixels, idt, Own(2), Options{Method: method, Start: AllLayers}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		inputs.Close()
		m.Close()
	}
}
