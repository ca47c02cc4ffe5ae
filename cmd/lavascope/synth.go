package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/loader/synth"
)

func init() {
	addCommand(func(a *app) *cobra.Command {
		var (
			out        string
			pairs      int
			seed       uint64
			size       int
			sheet      bool
			sheetPairs int
		)
		cmd := &cobra.Command{
			Use:   "synth --out DIR --pairs N --seed S",
			Short: "Generate synthetic LAVA-style pairs with evidence boxes",
			Long: `synth draws pairs of images for structurally ambiguous sentences in three
families (PP attachment, adjective scope over coordination, VP attachment),
with both parse trees, a gloss per reading, and boxes: every person and
object, and the evidence where the two images differ.

It writes DIR/pairs.jsonl and DIR/images/*.png; the same seed gives the same
bytes. Pairs are split train/val/test 8:1:1.`,
			Example: `  lavascope synth --out data/synth --pairs 1000 --seed 1 --contact-sheet
  lavascope data check --data data/synth/pairs.jsonl`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if out == "" {
					return withExit(exitUsage, errors.New("--out is required: the folder to write pairs.jsonl and images/ into"))
				}
				if pairs <= 0 {
					return withExit(exitUsage, fmt.Errorf("--pairs must be at least 1, got %d", pairs))
				}
				if sheetPairs <= 0 {
					return withExit(exitUsage, fmt.Errorf("--sheet-pairs must be at least 1, got %d", sheetPairs))
				}
				cfg := synth.Config{Pairs: pairs, Seed: seed, Size: size}
				if err := cfg.Validate(); err != nil {
					return withExit(exitUsage, err)
				}
				n, err := synth.Write(out, cfg)
				if err != nil {
					return err
				}
				counts := map[string]int{}
				for i := range pairs {
					counts[synth.SplitOf(i)]++
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "wrote %d pairs to %s (train %d, val %d, test %d)\n", n,
					filepath.Join(out, synth.ManifestName), counts[loader.SplitTrain], counts[loader.SplitVal], counts[loader.SplitTest])
				if sheet {
					path := filepath.Join(out, "contact-sheet.png")
					if err := writeSheet(path, synth.Config{Pairs: min(pairs, sheetPairs), Seed: seed, Size: size}); err != nil {
						return err
					}
					fmt.Fprintf(w, "wrote %s\n", path)
				}
				return nil
			},
		}
		f := cmd.Flags()
		f.StringVar(&out, "out", "", "folder to write pairs.jsonl and images/ into")
		f.IntVar(&pairs, "pairs", 100, "number of pairs")
		f.Uint64Var(&seed, "seed", 1, "random seed; the same seed gives the same files")
		f.IntVar(&size, "size", synth.DefaultSize, "image side in pixels")
		f.BoolVar(&sheet, "contact-sheet", false, "also write contact-sheet.png, the first pairs side by side")
		f.IntVar(&sheetPairs, "sheet-pairs", 9, "pairs on the contact sheet")
		return cmd
	})
}

func writeSheet(path string, cfg synth.Config) error {
	pairs, err := synth.Generate(cfg)
	if err != nil {
		return err
	}
	// Three pairs a row: pair indices cycle through the three families, so
	// each column shows one family.
	img := synth.ContactSheet(pairs, len(synth.Families))
	return atomicfile.Write(path, func(w io.Writer) error { return loader.EncodePNG(w, img) })
}
