package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/torch"
)

func init() {
	addCommand(func(a *app) *cobra.Command {
		var (
			cfgArg, out, dtype, tokenizer string
			seed                          uint64
		)
		cmd := &cobra.Command{
			Use:   "init --config vit-b-32|tiny|FILE --out DIR",
			Short: "Write a randomly initialised CLIP checkpoint",
			Long: `init writes a CLIP with random weights, initialised as Hugging Face's
CLIPPreTrainedModel does, to DIR in Hugging Face layout (config.json and
model.safetensors), ready for lavascope and for CLIPModel.from_pretrained.

--config is a built-in configuration (vit-b-32: openai/clip-vit-base-patch32's
shape; tiny: width 64, 2 layers, the full CLIP vocabulary) or a config.json.
(Here --config names the model's configuration, not lavascope's settings file.)
--tokenizer copies vocab.json, merges.txt and the preprocessor config from a
folder, so that DIR is a complete checkpoint. The same --seed gives the same
weights on every machine.`,
			Example: `  lavascope init --config tiny --out /tmp/tiny --tokenizer ../shared/clip-bpe
  lavascope init --config my/config.json --out ckpt --seed 7 --dtype bf16`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if cfgArg == "" || out == "" {
					return withExit(exitUsage, errors.New("init needs --config (vit-b-32, tiny or a config.json) and --out DIR"))
				}
				cfg, err := model.ConfigFromArg(cfgArg)
				if err != nil {
					return withExit(exitUsage, err)
				}
				dt, err := torch.ParseDType(dtype)
				if err != nil || !dt.IsFloat() {
					return withExit(exitUsage, fmt.Errorf("--dtype %q: want f32, f16 or bf16", dtype))
				}
				if tokenizer != "" {
					if tokenizer, err = model.ResolveCheckpoint(tokenizer); err != nil {
						return withExit(exitUsage, err)
					}
					for _, f := range []string{"vocab.json", "merges.txt"} {
						if _, err := os.Stat(filepath.Join(tokenizer, f)); err != nil {
							return withExit(exitUsage, fmt.Errorf("--tokenizer %s: no %s", tokenizer, f))
						}
					}
				}
				if err := torch.Load(a.cfg.TorchLib); err != nil {
					return err
				}
				w := torch.NewWorker()
				defer w.Close()
				return w.Do(func() error {
					// Initialise on the CPU: the weights are only written out.
					m, err := model.Init(cfg, model.Options{DType: dt}, seed)
					if err != nil {
						return err
					}
					defer m.Close()
					m.Source = tokenizer
					if err := m.Save(out); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d parameters (%s), seed %d\n", out, countParams(m), dt, seed)
					return nil
				})
			},
		}
		cmd.Flags().StringVar(&cfgArg, "config", "", "model configuration: vit-b-32, tiny or a config.json")
		cmd.Flags().StringVar(&out, "out", "", "checkpoint folder to write")
		cmd.Flags().Uint64Var(&seed, "seed", 0, "random seed")
		cmd.Flags().StringVar(&dtype, "dtype", "f32", "stored dtype: f32, f16 or bf16")
		cmd.Flags().StringVar(&tokenizer, "tokenizer", "", "folder (or HF model id) whose vocab.json, merges.txt and preprocessor config to copy")
		return cmd
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
