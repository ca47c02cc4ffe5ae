package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/loader"
)

func init() {
	addCommand(func(a *app) *cobra.Command {
		var (
			corpus, out string
			fields      []string
			opts        loader.LAVAOptions
		)
		cmd := &cobra.Command{
			Use:   "import-lava --corpus DIR --out FILE",
			Short: "Convert the LAVA corpus into a pair manifest",
			Long: `import-lava reads LAVA's corpus/lava.json (entries with a sentence, a frame
and a parse tree; frames under corpus/images/) and groups the entries by
sentence into pairs, one reading per distinct tree, the first frame of each.

The keys of an entry are set with --field, one for each of: ` + strings.Join(loader.LAVAFields, ", ") + `.
text, image and tree are required; the defaults are text=text,
image=visualFilename, tree=parse. A key may be a dotted path (parse.0.tree).
When the file does not fit, the error lists the keys its entries have.`,
			Example: `  lavascope import-lava --corpus ~/LAVA --out ~/LAVA/corpus/pairs.jsonl
  lavascope import-lava --corpus ~/LAVA --out pairs.jsonl --copy-images --field tree=trees.0 --split auto`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if corpus == "" || out == "" {
					return withExit(2, fmt.Errorf("--corpus and --out are both required"))
				}
				opts.Corpus = corpus
				opts.OutDir = filepath.Dir(out)
				opts.Fields = map[string]string{}
				for _, f := range fields {
					k, v, ok := strings.Cut(f, "=")
					if !ok || k == "" || v == "" {
						return withExit(2, fmt.Errorf("--field %q: want FIELD=KEY, such as tree=parse", f))
					}
					opts.Fields[k] = v
				}
				pairs, rep, err := loader.ImportLAVA(opts)
				if err != nil {
					return withExit(2, err)
				}
				if len(pairs) == 0 {
					return withExit(2, fmt.Errorf("%s: %d entries in %d sentences gave no pair: every sentence had only one distinct tree", rep.File, rep.Entries, rep.Sentences))
				}
				err = loader.WriteFileAtomic(out, func(w io.Writer) error {
					mw := loader.NewWriter(w)
					for i := range pairs {
						if err := mw.Write(&pairs[i]); err != nil {
							return err
						}
					}
					return mw.Flush()
				})
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "read %d entries of %s: %d sentences\n", rep.Entries, rep.File, rep.Sentences)
				fmt.Fprintf(w, "wrote %d pairs to %s", rep.Pairs, out)
				if rep.OneReading > 0 {
					fmt.Fprintf(w, "; skipped %d sentence(s) with one distinct tree", rep.OneReading)
				}
				if rep.SpareFrames > 0 {
					fmt.Fprintf(w, "; %d further frame(s) of a reading unused", rep.SpareFrames)
				}
				if rep.Copied > 0 {
					fmt.Fprintf(w, "; copied %d frame(s)", rep.Copied)
				}
				fmt.Fprintln(w)
				return nil
			},
		}
		f := cmd.Flags()
		f.StringVar(&corpus, "corpus", "", "LAVA folder (holding lava.json or corpus/lava.json)")
		f.StringVar(&out, "out", "", "manifest to write")
		f.StringArrayVar(&fields, "field", nil, "FIELD=KEY: the entry key to read a field from (repeatable)")
		f.StringVar(&opts.Split, "split", loader.SplitTest, "split of every pair without a split field: train, val, test, or auto (8:1:1 by sentence)")
		f.BoolVar(&opts.CopyImages, "copy-images", false, "copy frames outside the manifest's folder into its images/")
		f.BoolVar(&opts.AllowOutside, "allow-outside", false, "write image paths that leave the manifest's folder")
		return cmd
	})
}
