package model

import (
	"math"
	"strings"
	"testing"

	"github.com/lavascope/lavascope/internal/torchtest"
	"github.com/lavascope/lavascope/torch"
)

// gradTol bounds the relative difference, per tensor, between a gradient
// under bf16-mixed and under float32 (‖g_bf16 − g_f32‖ / ‖g_f32‖): bf16
// keeps 8 bits of mantissa (a rounding of 2⁻⁹ relative), compounded over
// the fixture's two layers a side and the backward pass.
const gradTol = 0.1

// lossTol bounds the loss's relative difference.
const lossTol = 0.02

// TestMixedPrecisionStep takes the loss and gradients of the fixture's
// model on its inputs in float32 and in bf16-mixed: they agree within the
// tolerances, differ at all (autocast was on), and the weights and
// gradients stay float32.
func TestMixedPrecisionStep(t *testing.T) {
	dev := torchtest.Device(t)
	s := torchtest.Scope(t)
	pixels, ids, _ := hfTinyInputs(t, s)
	if err := PrecisionBF16Mixed.Usable(dev, torch.Float32); err != nil {
		t.Skipf("bf16-mixed is not usable here: %v", err)
	}
	grads := map[Precision]map[string][]float32{}
	losses := map[Precision]float64{}
	for _, p := range []Precision{PrecisionFP32, PrecisionBF16Mixed} {
		m := loadHFTiny(t, Options{Device: dev})
		if err := m.SetRequiresGrad(true); err != nil {
			t.Fatal(err)
		}
		out, err := mixedForward(s, m, pixels, ids, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		l := ContrastiveLoss(out.LogitsPerImage, out.LogitsPerText)
		if l.DType() != torch.Float32 {
			t.Errorf("%s: the loss is %s, want f32", p, l.DType())
		}
		if err := l.Backward(nil); err != nil {
			t.Fatal(err)
		}
		if losses[p], err = l.Item(); err != nil {
			t.Fatal(err)
		}
		grads[p] = map[string][]float32{}
		for _, prm := range m.Params() {
			if dt := prm.Tensor.DType(); dt != torch.Float32 {
				t.Errorf("%s: weight %s is %s, want the f32 master", p, prm.Name, dt)
			}
			g := prm.Tensor.In(s).Grad()
			if dt := g.DType(); dt != torch.Float32 {
				t.Errorf("%s: gradient of %s is %s, want f32", p, prm.Name, dt)
			}
			if grads[p][prm.Name], err = g.Float32s(); err != nil {
				t.Fatalf("%s: gradient of %s: %v", p, prm.Name, err)
			}
		}
	}
	if d := math.Abs(losses[PrecisionBF16Mixed]-losses[PrecisionFP32]) / losses[PrecisionFP32]; d > lossTol {
		t.Errorf("loss %v in bf16-mixed, %v in f32: %.3g relative, want ≤ %g", losses[PrecisionBF16Mixed], losses[PrecisionFP32], d, lossTol)
	}
	// The keys' biases get no gradient in exact arithmetic (softmax does
	// not see a constant added to every score): both precisions give
	// rounding noise there, which has no relative accuracy to measure.
	worst, worstName := 0.0, ""
	for name, want := range grads[PrecisionFP32] {
		if strings.HasSuffix(name, "k_proj.bias") {
			continue
		}
		got := grads[PrecisionBF16Mixed][name]
		d := make([]float32, len(want))
		for i := range want {
			d[i] = got[i] - want[i]
		}
		if r := math.Sqrt(sumSquares(d) / sumSquares(want)); r > worst {
			worst, worstName = r, name
		}
	}
	t.Logf("loss f32 %.6f, bf16-mixed %.6f; largest gradient difference %.3g (%s)", losses[PrecisionFP32], losses[PrecisionBF16Mixed], worst, worstName)
	if worst > gradTol {
		t.Errorf("gradient of %s differs by %.3g relative in bf16-mixed, want ≤ %g", worstName, worst, gradTol)
	}
	if worst == 0 {
		t.Error("bf16-mixed gave float32's gradients exactly: autocast did not take effect")
	}
}

func TestParsePrecision(t *testing.T) {
	for _, p := range PrecisionNames {
		if got, err := ParsePrecision(string(p)); err != nil || got != p {
			t.Errorf("ParsePrecision(%q) = %q, %v", p, got, err)
		}
	}
	if _, err := ParsePrecision("fp16"); err == nil {
		t.Error("fp16 accepted")
	}
	if err := PrecisionBF16Mixed.Usable(torch.Device{}, torch.BFloat16); err == nil {
		t.Error("bf16-mixed accepted a bf16 model, which has no f32 masters")
	}
}

func sumSquares(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return s
}
