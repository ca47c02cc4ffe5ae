// Package dump is `lavascope dump`: a checkpoint run on stored inputs, its
// outputs written for parity checks against the Hugging Face reference.
package dump

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/torch"
)

// dumpExtension adds outputs to `lavascope dump`: the explainer's
// (--relevance: rel_*) and the trainer's (--train-step: loss, grad.*,
// after_step.*), each built in its own file and listed in NewCmdDump.
// Extensions run on the torch worker after the base outputs are in, in
// slice order, except that those that change the model run after all the
// others.
type dumpExtension struct {
	// name identifies the extension in errors.
	name string
	// flags adds the extension's flags to dump's; nil for none.
	flags func(fs *pflag.FlagSet)
	// mutates says that run changes the model's parameters (a training
	// step), so it must run after every extension that reads them.
	mutates bool
	// run adds tensors with d.put; it reads its flags from their bound
	// variables and decides itself whether it was asked for.
	run func(d *dumpRun) error
}

// dumpRun is what an extension sees: the model, the inputs, the base
// forward pass and the outputs so far. Every tensor belongs to scope, which
// is closed after the file is written.
type dumpRun struct {
	model  *model.CLIP
	scope  *torch.Scope
	pixels *torch.Tensor // [I,3,S,S] float32, on the CPU as read
	ids    *torch.Tensor // [T,N] int64, on the CPU as read
	// base is the inference forward (no grad) of pixels and ids.
	base *model.Output

	names   []string
	tensors map[string]*torch.Tensor
}

// put adds an output; names must be unique.
func (d *dumpRun) put(name string, t *torch.Tensor) error {
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

// write saves the outputs: floating-point tensors as F32 (the dtype of the
// reference files), integer ones as I64.
func (d *dumpRun) write(path string, meta map[string]string) error {
	ts := make([]model.Tensor, 0, len(d.names))
	for _, name := range d.names {
		t := d.tensors[name]
		shape := t.Shape()
		if t.DType().IsFloat() {
			v, err := t.Float32s()
			if err != nil {
				return fmt.Errorf("dump: output %s: %w", name, err)
			}
			ts = append(ts, model.F32Tensor(name, shape, v))
			continue
		}
		data, err := t.To(torch.CPU, torch.Int64).Bytes()
		if err != nil {
			return fmt.Errorf("dump: output %s: %w", name, err)
		}
		ts = append(ts, model.Tensor{Name: name, DType: model.I64, Shape: shape, Data: data})
	}
	return model.SaveSafetensors(path, ts, meta)
}

// Options are the settings of one `lavascope dump` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	Inputs, Out, DType string
	extensions         []dumpExtension // with the flags they bound
}

// NewCmdDump builds `lavascope dump`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdDump(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f, extensions: []dumpExtension{relevanceExtension(), trainStepExtension()}}
	cmd := &cobra.Command{
		Use:   "dump --checkpoint DIR|FILE [--base DIR] --inputs FILE --out FILE",
		Short: "Run a checkpoint on stored inputs and write its outputs (for parity checks)",
		Long: `dump runs a CLIP checkpoint on the pixel_values [I,3,S,S] and input_ids [T,N]
of a safetensors file and writes, under the names transformers' reference files
use, a safetensors file of:

  text_embeds, image_embeds    projected features, L2-normalised
  text_pooled, image_pooled    projected features before normalisation
  text_last_hidden             text encoder output after final_layer_norm
  image_last_hidden            vision encoder output before post_layernorm
  logits_per_image [I,T], logits_per_text [T,I]

Other features add their outputs with their own flags. Outputs are float32
whatever --dtype the model computes in.`,
		Example: `  lavascope dump --checkpoint testdata/hf-clip-tiny/checkpoint \
      --inputs testdata/hf-clip-tiny/inputs.safetensors --out /tmp/got.safetensors --device cpu`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runDumpCmd),
	}
	config.AddFlags(cmd.Flags(), "checkpoint", "base")
	cmd.Flags().StringVar(&opts.Inputs, "inputs", "", "safetensors file with pixel_values and input_ids")
	cmd.Flags().StringVar(&opts.Out, "out", "", "safetensors file to write")
	cmd.Flags().StringVar(&opts.DType, "dtype", "f32", "compute dtype: f32, f16 or bf16")
	for _, e := range opts.extensions {
		if e.flags != nil {
			e.flags(cmd.Flags())
		}
	}
	return cmd
}

func runDumpCmd(opts *Options) error {
	if opts.Inputs == "" || opts.Out == "" {
		return factory.WithExit(factory.ExitUsage, errors.New("dump needs --inputs FILE and --out FILE"))
	}
	dt, err := torch.ParseDType(opts.DType)
	if err != nil || !dt.IsFloat() {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--dtype %q: want f32, f16 or bf16", opts.DType))
	}
	w, dev, err := opts.StartTorch(opts.Cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Do(func() error {
		return runDump(opts.Config.Checkpoint, opts.Config.Base, opts.Inputs, opts.Out, model.Options{Device: dev, DType: dt}, opts.extensions)
	})
}

// runDump is the body of dump, on the torch worker.
func runDump(checkpoint, baseDir, inputs, out string, o model.Options, exts []dumpExtension) error {
	loc, err := demo.Locate(checkpoint, baseDir)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	m, err := model.LoadLocation(loc, o)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	defer m.Close()
	s := torch.NewScope()
	defer s.Close()
	pixels, ids, err := readDumpInputs(s, inputs)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	base, err := m.Forward(s, pixels, ids, model.ForwardOptions{})
	if err != nil {
		var ie *model.InputError
		if errors.As(err, &ie) {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("%s: %w", inputs, err))
		}
		return fmt.Errorf("%s: %w", inputs, err)
	}
	d := &dumpRun{model: m, scope: s, pixels: pixels, ids: ids, base: base, tensors: map[string]*torch.Tensor{}}
	for _, o := range []struct {
		name string
		t    *torch.Tensor
	}{
		{"text_embeds", base.Text.Embeds}, {"image_embeds", base.Image.Embeds},
		{"text_pooled", base.Text.Pooled}, {"image_pooled", base.Image.Pooled},
		{"text_last_hidden", base.Text.LastHidden}, {"image_last_hidden", base.Image.LastHidden},
		{"logits_per_image", base.LogitsPerImage}, {"logits_per_text", base.LogitsPerText},
	} {
		if err := d.put(o.name, o.t); err != nil {
			return err
		}
	}
	exts = slices.Clone(exts)
	slices.SortStableFunc(exts, func(a, b dumpExtension) int {
		switch {
		case a.mutates == b.mutates:
			return 0
		case a.mutates:
			return 1
		}
		return -1
	})
	for _, e := range exts {
		if err := e.run(d); err != nil {
			return fmt.Errorf("dump %s: %w", e.name, err)
		}
	}
	meta := map[string]string{"checkpoint": m.Source, "inputs": inputs, "dtype": o.DType.String(), "device": o.Device.String()}
	return d.write(out, meta)
}

// readDumpInputs reads pixel_values (any float dtype, as float32) and
// input_ids (any integer dtype, as int64) from a safetensors file.
func readDumpInputs(s *torch.Scope, path string) (pixels, ids *torch.Tensor, err error) {
	st, err := model.OpenSafetensors(path)
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
