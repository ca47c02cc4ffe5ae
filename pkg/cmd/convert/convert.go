// Package convert is `lavascope convert`: a torch.save checkpoint written as
// a Hugging Face folder by model.Convert.
package convert

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
)

// Options are the settings of one `lavascope convert` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	Out   string
	Force bool
}

// NewCmdConvert builds `lavascope convert`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdConvert(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "convert --checkpoint FILE [--base DIR] --out DIR",
		Short: "Write a torch.save checkpoint as a Hugging Face CLIP folder",
		Long: `convert reads a checkpoint as every command does (typically a torch.save
state_dict, .pt, .pth or .bin, with its config.json and tokenizer from --base)
and writes a Hugging Face CLIP folder: model.safetensors (each tensor in its
stored dtype), config.json and the tokenizer files, which lavascope and
CLIPModel.from_pretrained read without unpickling anything. It needs no
libtorch. An existing non-empty --out is refused unless --force.`,
		Example: `  lavascope convert --checkpoint K1_miru_clip_best.pt --base openai/clip-vit-base-patch32 --out runs/k1`,
		Args:    cobra.NoArgs,
		RunE:    factory.RunE(opts, runF, runConvert),
	}
	config.AddFlags(cmd.Flags(), "checkpoint", "base")
	cmd.Flags().StringVar(&opts.Out, "out", "", "Hugging Face CLIP folder to write")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "write into a non-empty --out")
	return cmd
}

func runConvert(opts *Options) error {
	if opts.Out == "" {
		return factory.WithExit(factory.ExitUsage, errors.New("convert needs --out DIR"))
	}
	loc, err := demo.Locate(opts.Config.Checkpoint, opts.Config.Base)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	n, err := model.Convert(loc, opts.Out, opts.Force)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	fmt.Fprintf(opts.Cmd.OutOrStdout(), "wrote %s: %d tensors from %s\n", opts.Out, n, loc)
	return nil
}
