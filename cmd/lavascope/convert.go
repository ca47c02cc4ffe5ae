package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/config"
	"github.com/lavascope/lavascope/demo"
	"github.com/lavascope/lavascope/model"
)

func init() {
	addCommand(func(a *app) *cobra.Command {
		var (
			out   string
			force bool
		)
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
			RunE: func(cmd *cobra.Command, _ []string) error {
				if out == "" {
					return withExit(exitUsage, errors.New("convert needs --out DIR"))
				}
				loc, err := demo.Locate(a.cfg.Checkpoint, a.cfg.Base)
				if err != nil {
					return withExit(exitUsage, err)
				}
				n, err := model.Convert(loc, out, force)
				if err != nil {
					return withExit(exitUsage, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d tensors from %s\n", out, n, loc)
				return nil
			},
		}
		config.AddFlags(cmd.Flags(), "checkpoint", "base")
		cmd.Flags().StringVar(&out, "out", "", "Hugging Face CLIP folder to write")
		cmd.Flags().BoolVar(&force, "force", false, "write into a non-empty --out")
		return cmd
	})
}
