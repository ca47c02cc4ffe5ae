package explain

import (
	"math"
	"testing"

	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

// pointingStats is the pointing game of one method over the test readings.
type pointingStats struct {
	n, hits                int
	chance, mass, massRand float64
}

func (p *pointingStats) acc() float64 { return float64(p.hits) / float64(p.n) }

// evalPointing explains every test reading against its own image with each
// method and plays the pointing game on its evidence boxes.
func evalPointing(t *testing.T, m *model.CLIP, readings []synthReading, methods []namedOptions) []*pointingStats {
	t.Helper()
	stats := make([]*pointingStats, len(methods))
	for i := range stats {
		stats[i] = &pointingStats{}
	}
	g, err := NewGeometry(synthSize, synthSize, mustPreprocess(t, m))
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 32
	ctx := int64(len(readings[0].ids))
	for lo := 0; lo < len(readings); lo += chunk {
		rs := readings[lo:min(lo+chunk, len(readings))]
		s := torch.NewScope()
		var pix []float32
		var ids []int64
		for _, r := range rs {
			pix = append(pix, r.pixels...)
			ids = append(ids, r.ids...)
		}
		n := int64(len(rs))
		px := s.FromFloat32(pix, n, 3, synthSize, synthSize)
		tx := s.FromInt64(ids, n, ctx)
		for i, nm := range methods {
			res, err := Explain(m, px, tx, Own(len(rs)), nm.opt)
			if err != nil {
				t.Fatal(err)
			}
			st := stats[i]
			for k, r := range rs {
				if len(r.boxes) == 0 {
					continue
				}
				cover, err := g.PatchCoverage(synthSize/synthPatch, r.boxes)
				if err != nil {
					t.Fatal(err)
				}
				pg, err := PointingGame(res[k].Image(k).Raw, cover)
				if err != nil {
					t.Fatal(err)
				}
				st.n++
				if pg.Hit {
					st.hits++
				}
				st.chance += pg.Chance
				st.mass += pg.Mass
				st.massRand += pg.ChanceMass
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return stats
}

type namedOptions struct {
	name string
	opt  Options
}

func mustPreprocess(t *testing.T, m *model.CLIP) loader.PreprocessConfig {
	t.Helper()
	p, err := model.PreprocessFor(m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// accuracy is the share of readings whose own image scores above the twin.
func accuracy(t *testing.T, m *model.CLIP, readings []synthReading) float64 {
	t.Helper()
	correct := 0
	for _, r := range readings {
		s := torch.NewScope()
		px := s.FromFloat32(append(append([]float32{}, r.pixels...), r.twin...), 2, 3, synthSize, synthSize)
		out, err := m.Forward(s, px, s.FromInt64(r.ids, 1, int64(len(r.ids))), model.ForwardOptions{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := out.LogitsPerImage.Float64s()
		if err != nil {
			t.Fatal(err)
		}
		if l[0] > l[1] {
			correct++
		}
		s.Close()
	}
	return float64(correct) / float64(len(readings))
}

// TestPointingGameSynthetic plays the pointing game on the evidence boxes
// of the synthetic test split with every method, on the trained model and
// on the same model untrained, and checks that on the trained one chefer
// beats random placement and puts more of its relevance in the boxes than a
// uniform map does. (The untrained control shows how much of the pointing
// game the images alone explain: the evidence is where the objects are.)
func TestPointingGameSynthetic(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	trained, untrained, test := synthModels(t)
	methods := []namedOptions{
		{"chefer-all", Options{Method: Chefer, Start: AllLayers}},
		{"chefer-last", Options{Method: Chefer, Start: LastLayer}},
		{"rollout", Options{Method: Rollout}},
		{"attention", Options{Method: Attention}},
		{"gradattn", Options{Method: GradAttn}},
	}
	var cheferAll *pointingStats
	for _, mc := range []struct {
		name string
		m    *model.CLIP
	}{{"trained", trained}, {"untrained", untrained}} {
		t.Logf("%s model: %d test readings, accuracy (own image above twin) %.3f", mc.name, len(test), accuracy(t, mc.m, test))
		stats := evalPointing(t, mc.m, test, methods)
		for i, nm := range methods {
			st := stats[i]
			t.Logf("  %-12s pointing %.3f (%d/%d), random %.3f; mass in boxes %.3f, uniform %.3f",
				nm.name, st.acc(), st.hits, st.n, st.chance/float64(st.n), st.mass/float64(st.n), st.massRand/float64(st.n))
		}
		if mc.name == "trained" {
			cheferAll = stats[0]
		}
	}
	if mass, uniform := cheferAll.mass/float64(cheferAll.n), cheferAll.massRand/float64(cheferAll.n); mass < 2*uniform {
		t.Errorf("chefer puts %.3f of its relevance in the evidence boxes, not clearly above the %.3f of a uniform map", mass, uniform)
	}
	chance := cheferAll.chance / float64(cheferAll.n)
	// Random placement hits with probability chance per reading; its
	// binomial standard error over n readings bounds what luck gives.
	se := math.Sqrt(chance * (1 - chance) / float64(cheferAll.n))
	if cheferAll.acc() < chance+3*se {
		t.Errorf("chefer pointing accuracy %.3f is not above random placement %.3f (+3 s.e. = %.3f)", cheferAll.acc(), chance, chance+3*se)
	}
}
