package explain

import (
	"fmt"
	"math"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// TestPatchGrids explains a tiny model in the larger CLIPs' geometries:
// 14-pixel patches (ViT-L/14) at 56 pixels (a 4×4 grid) and at 336 pixels
// (ViT-L/14-336's 24×24), and 16-pixel patches (ViT-B/16) at 224 (14×14),
// so that nothing assumes ViT-B/32's 7×7.
func TestPatchGrids(t *testing.T) {
	for _, tc := range []struct{ size, patch, grid int }{{56, 14, 4}, {336, 14, 24}, {224, 16, 14}} {
		t.Run(fmt.Sprintf("%dpx-patch%d", tc.size, tc.patch), func(t *testing.T) {
			s := torchtest.Scope(t)
			cfg, err := model.NamedConfig("tiny")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Vision.ImageSize, cfg.Vision.PatchSize = tc.size, tc.patch
			m, err := model.Init(cfg, model.Options{Device: torchtest.Device(t)}, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			pixels := s.Randn([]int64{2, 3, int64(tc.size), int64(tc.size)}, torch.Options{})
			ids, err := model.SyntheticIDs(&cfg.Text, 2, 9, 16, 1)
			if err != nil {
				t.Fatal(err)
			}
			idt := s.FromInt64(ids, 2, 16)
			for _, method := range Methods {
				res, err := Explain(m, pixels, idt, Own(2), Options{Method: method, Start: AllLayers})
				if err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				for k := range res {
					im := res[k].Image(k)
					if im == nil {
						t.Fatalf("%s, target %d: no map of image %d", method, k, k)
					}
					if im.Grid != tc.grid || len(im.Raw) != tc.grid*tc.grid || len(im.Norm) != tc.grid*tc.grid {
						t.Fatalf("%s, target %d: grid %d with %d and %d values, want %d×%d", method, k, im.Grid, len(im.Raw), len(im.Norm), tc.grid, tc.grid)
					}
					for p, v := range im.Norm {
						if math.IsNaN(float64(v)) || v < 0 || v > 1 {
							t.Fatalf("%s, target %d: patch %d has %v, want a value in [0, 1]", method, k, p, v)
						}
					}
				}
			}
		})
	}
}
