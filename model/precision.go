package model

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lavascope/lavascope/torch"
)

// Precision is how a training step computes: plain float32, float32 with
// TF32 matrix products (CUDA), or bf16 mixed precision as PyTorch's
// autocast does it.
type Precision string

// The precisions of PrecisionNames.
const (
	PrecisionFP32      Precision = "fp32"
	PrecisionTF32      Precision = "tf32"
	PrecisionBF16Mixed Precision = "bf16-mixed"
)

// PrecisionNames lists the precisions ParsePrecision accepts.
var PrecisionNames = []Precision{PrecisionFP32, PrecisionTF32, PrecisionBF16Mixed}

// ParsePrecision reads a --precision value.
func ParsePrecision(s string) (Precision, error) {
	for _, p := range PrecisionNames {
		if string(p) == s {
			return p, nil
		}
	}
	names := make([]string, len(PrecisionNames))
	for i, p := range PrecisionNames {
		names[i] = string(p)
	}
	return "", fmt.Errorf("precision %q: want %s", s, strings.Join(names, ", "))
}

// ResolvePrecision reads a --precision value given with the older --tf32
// switch (or the tf32 setting), which means tf32: explicit says whether
// --precision itself was given, in which case the two must agree.
func ResolvePrecision(s string, tf32, explicit bool) (Precision, error) {
	p, err := ParsePrecision(s)
	if err != nil || !tf32 {
		return p, err
	}
	if explicit && p != PrecisionTF32 {
		return "", fmt.Errorf("tf32 is on and --precision is %s; give one of them", p)
	}
	return PrecisionTF32, nil
}

// Mixed reports whether p runs the forward pass under autocast.
func (p Precision) Mixed() bool { return p == PrecisionBF16Mixed }

// Usable says why a model of dtype dt on dev cannot train in p, or nil.
// Mixed precision keeps float32 master weights: it needs a float32 model,
// and a shim whose libtorch has bf16 autocast for the device (1.13 and
// later on both the CPU and CUDA).
func (p Precision) Usable(dev torch.Device, dt torch.DType) error {
	if !p.Mixed() {
		return nil
	}
	if dt != torch.Float32 {
		return fmt.Errorf("%s keeps float32 master weights; this model is %s (drop --dtype)", p, dt)
	}
	// Try it: a libtorch without the dispatch key or kernels fails here,
	// not in the middle of a step.
	s := torch.NewScope()
	defer s.Close()
	restore, err := torch.Autocast(dev, torch.BFloat16)
	if err != nil {
		return fmt.Errorf("%s: this libtorch (%s, %s) has no bf16 autocast: %w", p, torch.Version(), dev, err)
	}
	a := s.Randn([]int64{4, 4}, torch.Options{Device: dev})
	prod := a.Matmul(a)
	dt, derr := prod.DType(), prod.Err()
	if err := restore(); err != nil {
		return err
	}
	switch {
	case derr != nil:
		return fmt.Errorf("%s: this libtorch (%s, %s) cannot multiply under bf16 autocast: %w", p, torch.Version(), dev, derr)
	case dt != torch.BFloat16:
		return fmt.Errorf("%s: this libtorch (%s, %s) ignores bf16 autocast (a product came out %s)", p, torch.Version(), dev, dt)
	}
	return nil
}

// mixedForward is the training forward pass in precision p: under autocast
// for bf16-mixed, with the embeddings brought back to float32 before the
// logits, so that the logits, their softmax and the loss are float32 as
// autocast's float32 ops would keep them. Other precisions run Forward as
// it is (TF32 is a process-wide switch set before training).
func mixedForward(sc *torch.Scope, m *CLIP, px, ids *torch.Tensor, p Precision) (*Output, error) {
	if !p.Mixed() {
		return m.Forward(sc, px, ids, ForwardOptions{Grad: true})
	}
	restore, err := torch.Autocast(m.Device(), torch.BFloat16)
	if err != nil {
		return nil, err
	}
	out, err := m.Forward(sc, px, ids, ForwardOptions{Grad: true})
	if rerr := restore(); rerr != nil {
		return nil, errors.Join(err, rerr)
	}
	if err != nil {
		return nil, err
	}
	out.Image.Embeds = out.Image.Embeds.ToDType(torch.Float32)
	out.Text.Embeds = out.Text.Embeds.ToDType(torch.Float32)
	out.LogitsPerImage, out.LogitsPerText = m.Logits(out.Image.Embeds, out.Text.Embeds)
	return out, nil
}
