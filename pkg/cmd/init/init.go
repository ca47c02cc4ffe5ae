// Package initcmd is `lavascope init` (a package cannot be named init): a
// checkpoint of random weights from a configuration.
package initcmd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/torch"
)

// Options are the settings of one `lavascope init` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	ConfigArg, Out, DType, Tokenizer string
	Seed                             uint64
}

// NewCmdInit builds `lavascope init`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdInit(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "init --config vit-b-32|tiny|FILE --out DIR",
		Short: "Write a randomly initialised CLIP checkpoint",
		Long: `init writes a CLIP with random weights, initialised as Hugging Face's
CLIPPreTrainedModel does, to DIR in Hugging Face layout (config.json and
model.safetensors), ready for lavascope and for CLIPModel.from_pretrained.

--config is a built-in configuration (vit-b-32, vit-b-16, vit-l-14, vit-l-14-336:
the shapes of OpenAI's CLIPs on the Hugging Face hub; tiny: width 64, 2 layers, the
full CLIP vocabulary) or a config.json.
(Here --config names the model's configuration, not lavascope's settings file.)
--tokenizer copies vocab.json, merges.txt and the preprocessor config from a
folder (or demo, the embedded model's), so that DIR is a complete checkpoint. The same --seed gives the same
weights on every machine.`,
		Example: `  lavascope init --config tiny --out /tmp/tiny --tokenizer ../shared/clip-bpe
  lavascope init --config my/config.json --out ckpt --seed 7 --dtype bf16`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runInit),
	}
	cmd.Flags().StringVar(&opts.ConfigArg, "config", "", "model configuration: vit-b-32, tiny or a config.json")
	cmd.Flags().StringVar(&opts.Out, "out", "", "checkpoint folder to write")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", 0, "random seed")
	cmd.Flags().StringVar(&opts.DType, "dtype", "f32", "stored dtype: f32, f16 or bf16")
	cmd.Flags().StringVar(&opts.Tokenizer, "tokenizer", "", "folder, HF model id or demo whose vocab.json, merges.txt and preprocessor config to copy")
	return cmd
}

func runInit(opts *Options) error {
	if opts.ConfigArg == "" || opts.Out == "" {
		return factory.WithExit(factory.ExitUsage, errors.New("init needs --config (vit-b-32, tiny or a config.json) and --out DIR"))
	}
	cfg, err := model.ConfigFromArg(opts.ConfigArg)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	dt, err := torch.ParseDType(opts.DType)
	if err != nil || !dt.IsFloat() {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--dtype %q: want f32, f16 or bf16", opts.DType))
	}
	if opts.Tokenizer != "" {
		// "demo" names the embedded model's tokenizer, as in every other
		// command that takes one.
		if opts.Tokenizer, err = demo.ResolveCheckpoint(opts.Tokenizer); err != nil {
			return factory.WithExit(factory.ExitUsage, err)
		}
		for _, f := range []string{"vocab.json", "merges.txt"} {
			if _, err := os.Stat(filepath.Join(opts.Tokenizer, f)); err != nil {
				return factory.WithExit(factory.ExitUsage, fmt.Errorf("--tokenizer %s: no %s", opts.Tokenizer, f))
			}
		}
	}
	if err := torch.Load(opts.Config.TorchLib); err != nil {
		return err
	}
	w := torch.NewWorker()
	defer w.Close()
	return w.Do(func() error {
		// Initialise on the CPU: the weights are only written out.
		m, err := model.Init(cfg, model.Options{DType: dt}, opts.Seed)
		if err != nil {
			return err
		}
		defer m.Close()
		m.Source = opts.Tokenizer
		if err := m.Save(opts.Out); err != nil {
			return err
		}
		fmt.Fprintf(opts.Cmd.OutOrStdout(), "wrote %s: %d parameters (%s), seed %d\n", opts.Out, countParams(m), dt, opts.Seed)
		return nil
	})
}

// countParams is the number of scalar parameters of m.
func countParams(m *model.CLIP) int64 {
	var n int64
	for _, p := range m.Params() {
		n += p.Tensor.Numel()
	}
	return n
}
