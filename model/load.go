package model

import (
	"fmt"
	"math"

	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/torch"
)

// Load opens a checkpoint (a HF CLIP folder, a HF cache snapshot, a model
// id in the local HF cache, or a torch.save file beside a config.json; see
// Locate), checks its tensors
// against its config.json and loads them onto o.Device in o.DType, whatever
// floating-point dtype they are stored in. Errors name the file and what is
// wrong with it. The parameters do not require grad; see SetRequiresGrad.
func Load(arg string, o Options) (*CLIP, error) {
	loc, err := Locate(arg, "")
	if err != nil {
		return nil, err
	}
	return LoadLocation(loc, o)
}

// LoadLocation loads a resolved checkpoint (see Locate) as Load does. The
// model's Source is loc.Dir, the folder of its config and tokenizer.
func LoadLocation(loc Location, o Options) (*CLIP, error) {
	ck, err := OpenLocation(loc)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	m, err := newCLIP(ck.Config, o)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", ck.Dir, err)
	}
	if err := m.loadWeights(ck.Weights); err != nil {
		m.Close()
		return nil, err
	}
	m.Source = ck.Dir
	return m, nil
}

// loadWeights copies every parameter from w, one tensor at a time so that
// the host holds at most one tensor's bytes.
func (m *CLIP) loadWeights(w *Weights) error {
	var buf []byte
	for _, name := range m.names {
		ref, ok := w.Tensor(name)
		if !ok {
			return fmt.Errorf("checkpoint has no tensor %s (files %v)", name, w.Files)
		}
		dt, err := torchDType(ref.DType)
		if err != nil {
			return fmt.Errorf("%s: tensor %s: %w", ref.File, name, err)
		}
		size := ref.End - ref.Begin
		if int64(cap(buf)) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if err := ref.ReadInto(buf); err != nil {
			return err
		}
		if err := m.copyIn(name, buf, dt, ref.Shape); err != nil {
			return fmt.Errorf("%s: %w", ref.File, err)
		}
	}
	return nil
}

// copyIn writes raw little-endian data of dtype dt into parameter name,
// converting it to the model's dtype and device. Non-finite values are
// refused: a diverged checkpoint would turn every score and heatmap into NaN.
func (m *CLIP) copyIn(name string, data []byte, dt torch.DType, shape []int64) error {
	s := torch.NewScope()
	defer s.Close()
	src := s.FromBytes(data, dt, shape)
	// inf - inf and NaN - NaN are NaN, so the sum is NaN exactly when some
	// element is not finite.
	chk, err := src.Sub(src).SumAll().Item()
	if err != nil {
		return fmt.Errorf("tensor %s: %w", name, err)
	}
	if math.IsNaN(chk) {
		return fmt.Errorf("tensor %s %v holds NaN or infinite values (a diverged training run?)", name, shape)
	}
	dst := m.byName[name]
	if err := dst.Copy_(src); err != nil {
		return fmt.Errorf("tensor %s: loading into %s: %w", name, dst, err)
	}
	return nil
}

// torchDType maps a stored floating-point dtype to torch's.
func torchDType(d safetensors.DType) (torch.DType, error) {
	switch d {
	case safetensors.F32:
		return torch.Float32, nil
	case safetensors.F16:
		return torch.Float16, nil
	case safetensors.BF16:
		return torch.BFloat16, nil
	case safetensors.F64:
		return torch.Float64, nil
	}
	return 0, fmt.Errorf("stored as %s; parameters must be F32, F16, BF16 or F64", d)
}

// storedDType maps a torch floating-point dtype to its safetensors name.
func storedDType(d torch.DType) (safetensors.DType, error) {
	switch d {
	case torch.Float32:
		return safetensors.F32, nil
	case torch.Float16:
		return safetensors.F16, nil
	case torch.BFloat16:
		return safetensors.BF16, nil
	case torch.Float64:
		return safetensors.F64, nil
	}
	return 0, fmt.Errorf("dtype %s cannot be saved as a parameter", d)
}
