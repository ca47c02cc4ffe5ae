package model

import (
	"fmt"

	"github.com/lavascope/lavascope/model/safetensors"
	"github.com/lavascope/lavascope/torch"
)

// Dump is a checkpoint run on stored inputs, for parity checks against the
// Hugging Face reference: the outputs under the names transformers'
// reference files use, and any that callers add with Put. Every tensor
// belongs to Scope, which must stay open until Write.
type Dump struct {
	Model  *CLIP
	Scope  *torch.Scope
	Pixels *torch.Tensor // [I,3,S,S] float32, on the CPU as read
	IDs    *torch.Tensor // [T,N] int64, on the CPU as read
	// Base is the inference forward (no grad) of Pixels and IDs.
	Base *Output

	names   []string
	tensors map[string]*torch.Tensor
}

// NewDump runs m's inference forward on pixels and ids and puts its
// outputs: text_embeds, image_embeds (projected, L2-normalised),
// text_pooled, image_pooled (before normalisation), text_last_hidden,
// image_last_hidden, logits_per_image and logits_per_text. Inputs that do
// not fit m give an *InputError.
func NewDump(s *torch.Scope, m *CLIP, pixels, ids *torch.Tensor) (*Dump, error) {
	base, err := m.Forward(s, pixels, ids, ForwardOptions{})
	if err != nil {
		return nil, err
	}
	d := &Dump{Model: m, Scope: s, Pixels: pixels, IDs: ids, Base: base, tensors: map[string]*torch.Tensor{}}
	for _, o := range []struct {
		name string
		t    *torch.Tensor
	}{
		{"text_embeds", base.Text.Embeds}, {"image_embeds", base.Image.Embeds},
		{"text_pooled", base.Text.Pooled}, {"image_pooled", base.Image.Pooled},
		{"text_last_hidden", base.Text.LastHidden}, {"image_last_hidden", base.Image.LastHidden},
		{"logits_per_image", base.LogitsPerImage}, {"logits_per_text", base.LogitsPerText},
	} {
		if err := d.Put(o.name, o.t); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Put adds an output; names must be unique.
func (d *Dump) Put(name string, t *torch.Tensor) error {
	if _, dup := d.tensors[name]; dup {
		return fmt.Errorf("dump: output %q written twice", name)
	}
	if err := t.Err(); err != nil {
		return fmt.Errorf("dump: output %s: %w", name, err)
	}
	d.names = append(d.names, name)
	d.tensors[name] = t
	return nil
}

// TrainStep adds one AdamW step (torch's defaults) on Pixels and IDs, image
// i with text i: loss, grad.NAME and after_step.NAME. It changes the
// model's parameters, so it comes after every output that reads them.
func (d *Dump) TrainStep() error {
	res, err := TrainStep(d.Scope, d.Model, d.Pixels, d.IDs, torch.DefaultAdamW())
	if err != nil {
		return err
	}
	if err := d.Put("loss", res.Loss); err != nil {
		return err
	}
	for _, p := range res.Grads {
		if err := d.Put("grad."+p.Name, p.Tensor); err != nil {
			return err
		}
	}
	for _, p := range res.After {
		if err := d.Put("after_step."+p.Name, p.Tensor); err != nil {
			return err
		}
	}
	return nil
}

// Write saves the outputs: floating-point tensors as F32 (the dtype of the
// reference files), integer ones as I64.
func (d *Dump) Write(path string, meta map[string]string) error {
	ts := make([]safetensors.Tensor, 0, len(d.names))
	for _, name := range d.names {
		t := d.tensors[name]
		shape := t.Shape()
		if t.DType().IsFloat() {
			v, err := t.Float32s()
			if err != nil {
				return fmt.Errorf("dump: output %s: %w", name, err)
			}
			ts = append(ts, safetensors.F32Tensor(name, shape, v))
			continue
		}
		data, err := t.To(torch.CPU, torch.Int64).Bytes()
		if err != nil {
			return fmt.Errorf("dump: output %s: %w", name, err)
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.I64, Shape: shape, Data: data})
	}
	return safetensors.Save(path, ts, meta)
}

// ReadDumpInputs reads pixel_values (any float dtype, as float32) and
// input_ids (any integer dtype, as int64) from a safetensors file.
func ReadDumpInputs(s *torch.Scope, path string) (pixels, ids *torch.Tensor, err error) {
	st, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	pi, ok := st.Tensor("pixel_values")
	if !ok || len(pi.Shape) != 4 {
		return nil, nil, fmt.Errorf("%s: want a tensor pixel_values [images, channels, height, width] (found %v)", path, pi.Shape)
	}
	ii, ok := st.Tensor("input_ids")
	if !ok || len(ii.Shape) != 2 {
		return nil, nil, fmt.Errorf("%s: want a tensor input_ids [texts, tokens] (found %v)", path, ii.Shape)
	}
	pv, err := st.Float32s("pixel_values")
	if err != nil {
		return nil, nil, err
	}
	iv, err := st.Int64s("input_ids")
	if err != nil {
		return nil, nil, err
	}
	return s.FromFloat32(pv, pi.Shape...), s.FromInt64(iv, ii.Shape...), nil
}
