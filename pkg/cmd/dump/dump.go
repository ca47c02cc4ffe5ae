// Package dump is `lavascope dump`: a checkpoint run on stored inputs, its
// outputs written for parity checks against the Hugging Face reference.
package dump

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/explain"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/torch"
)

// Options are the settings of one `lavascope dump` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	Inputs, Out, DType string
	// Relevance and TrainStep add explain.DumpRelevance's and
	// model.Dump.TrainStep's outputs.
	Relevance, TrainStep bool
}

// NewCmdDump builds `lavascope dump`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdDump(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
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

--relevance and --train-step add outputs of their own. Outputs are float32
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
	cmd.Flags().BoolVar(&opts.Relevance, "relevance", false, "also write Chefer relevance for the target sum of logits_per_image[i, i]:\n"+
		"rel_image_{last,all} [I,G²], rel_text_{last,all} [T,N], rel_text_full_{last,all} [T,N,N]\n(start layer last and all; image i goes with text i)")
	cmd.Flags().BoolVar(&opts.TrainStep, "train-step", false, "also write loss, grad.* and after_step.* of one AdamW step\n(lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01: torch's defaults); image i goes with text i")
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
		return runDump(opts, model.Options{Device: dev, DType: dt})
	})
}

// runDump is the body of dump, on the torch worker.
func runDump(opts *Options, o model.Options) error {
	loc, err := demo.Locate(opts.Config.Checkpoint, opts.Config.Base)
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
	pixels, ids, err := model.ReadDumpInputs(s, opts.Inputs)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	d, err := model.NewDump(s, m, pixels, ids)
	if err != nil {
		var ie *model.InputError
		if errors.As(err, &ie) {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("%s: %w", opts.Inputs, err))
		}
		return fmt.Errorf("%s: %w", opts.Inputs, err)
	}
	if opts.Relevance {
		if err := explain.DumpRelevance(d); err != nil {
			return fmt.Errorf("dump relevance: %w", err)
		}
	}
	// The training step changes the parameters that the outputs above read.
	if opts.TrainStep {
		if err := d.TrainStep(); err != nil {
			return fmt.Errorf("dump train-step: %w", err)
		}
	}
	meta := map[string]string{"checkpoint": m.Source, "inputs": opts.Inputs, "dtype": o.DType.String(), "device": o.Device.String()}
	return d.Write(opts.Out, meta)
}
