package explain

import (
	"math"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// TestStaticMatchesExplain runs a static explainer on two batches in turn
// (the second with the images swapped) and compares each with Explain; on
// a GPU with CUDA graphs, the graphed explainer too.
func TestStaticMatchesExplain(t *testing.T) {
	torchtest.Require(t)
	s := torchtest.Scope(t)
	m, pixels, ids, _ := hfTiny(t, s)
	dev := m.Device()
	graphs := []bool{false}
	if torch.CUDAGraphsUsable(dev) == nil {
		graphs = append(graphs, true)
	}
	swapped := torch.Stack([]*torch.Tensor{pixels.Select(0, 1), pixels.Select(0, 0)}, 0)
	for _, graph := range graphs {
		for _, tc := range []struct {
			name    string
			targets []Target
			opt     Options
		}{
			{"own, chefer all", Own(2), Options{Method: Chefer, Start: AllLayers}},
			{"own, chefer last", Own(2), Options{Method: Chefer, Start: LastLayer}},
			{"crossed, gradattn", []Target{{{0, 1}}, {{1, 0}}}, Options{Method: GradAttn}},
			{"both images, rollout", []Target{{{0, 0}}, {{1, 0}}, {{0, 1}}}, Options{Method: Rollout}},
		} {
			t.Run(tc.name+map[bool]string{false: "", true: ", cuda graph"}[graph], func(t *testing.T) {
				st, err := NewStatic(m, 2, 2, 77, tc.targets, tc.opt, graph)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if st.Graphed() != graph {
					t.Errorf("Graphed() = %v, want %v", st.Graphed(), graph)
				}
				for round, px := range []*torch.Tensor{pixels, swapped} {
					got, err := st.Explain(px, ids)
					if err != nil {
						t.Fatal(err)
					}
					want, err := Explain(m, px, ids, tc.targets, tc.opt)
					if err != nil {
						t.Fatal(err)
					}
					compareResults(t, round, got, want)
				}
			})
		}
	}
}

func compareResults(t *testing.T, round int, got, want []Result) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("batch %d: %d results, want %d", round, len(got), len(want))
	}
	worst := func(a, b []float32) float64 {
		if len(a) != len(b) {
			return math.Inf(1)
		}
		var d float64
		for i := range a {
			d = max(d, math.Abs(float64(a[i]-b[i])))
		}
		return d
	}
	for k := range want {
		if math.Abs(got[k].Logit-want[k].Logit) > 1e-4 {
			t.Errorf("batch %d, target %d: logit %g, want %g", round, k, got[k].Logit, want[k].Logit)
		}
		if len(got[k].Images) != len(want[k].Images) || len(got[k].Texts) != len(want[k].Texts) {
			t.Fatalf("batch %d, target %d: %d images and %d texts, want %d and %d", round, k, len(got[k].Images), len(got[k].Texts), len(want[k].Images), len(want[k].Texts))
		}
		for i, w := range want[k].Images {
			g := got[k].Images[i]
			if g.Index != w.Index || worst(g.Norm, w.Norm) > 1e-4 || worst(g.Raw, w.Raw) > 1e-4 {
				t.Errorf("batch %d, target %d, image %d: maps differ by %g (norm), %g (raw)", round, k, w.Index, worst(g.Norm, w.Norm), worst(g.Raw, w.Raw))
			}
		}
		for i, w := range want[k].Texts {
			g := got[k].Texts[i]
			if g.Index != w.Index || g.EOT != w.EOT || worst(g.Norm, w.Norm) > 1e-4 || worst(g.Raw, w.Raw) > 1e-4 {
				t.Errorf("batch %d, target %d, text %d: eot %d/%d, maps differ by %g (norm), %g (raw)", round, k, w.Index, g.EOT, w.EOT, worst(g.Norm, w.Norm), worst(g.Raw, w.Raw))
			}
		}
	}
}

func TestStaticErrors(t *testing.T) {
	torchtest.Require(t)
	s := torchtest.Scope(t)
	m, pixels, ids, _ := hfTiny(t, s)
	for _, tc := range []struct {
		name    string
		targets []Target
		opt     Options
		width   int
		graph   bool
		want    string
	}{
		{"shared text", []Target{{{0, 0}}, {{1, 0}}}, Options{}, 77, false, "2 passes"},
		{"matrices", Own(2), Options{Matrices: true}, 77, false, "whole matrices"},
		{"cell outside", []Target{{{2, 0}}}, Options{}, 77, false, "outside the 2 images"},
		{"width", Own(2), Options{}, 78, false, "width of 2 to 77"},
		{"method", Own(2), Options{Method: "lrp"}, 77, false, "lrp"},
	} {
		if _, err := NewStatic(m, 2, 2, tc.width, tc.targets, tc.opt, tc.graph); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
	if !m.Device().IsCUDA() {
		if _, err := NewStatic(m, 2, 2, 77, Own(2), Options{}, true); err == nil || !strings.Contains(err.Error(), "CUDA") {
			t.Errorf("a CUDA graph on %s: error %v, want one naming CUDA", m.Device(), err)
		}
	}
	st, err := NewStatic(m, 2, 2, 8, Own(2), Options{}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Explain(pixels, ids); err == nil || !strings.Contains(err.Error(), "beyond the static width 8") {
		t.Errorf("texts longer than the width: error %v", err)
	}
	if _, err := st.Explain(pixels.Narrow(0, 0, 1), ids); err == nil || !strings.Contains(err.Error(), "want [2, 3, 224, 224]") {
		t.Errorf("one image for two: error %v", err)
	}
	bad := ids.AddScalar(1e6)
	if _, err := st.Explain(pixels, bad); err == nil || !strings.Contains(err.Error(), "vocabulary") {
		t.Errorf("ids outside the vocabulary: error %v", err)
	}
}
