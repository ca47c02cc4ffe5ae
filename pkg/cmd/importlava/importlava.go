// Package importlava is `lavascope import-lava`: the LAVA corpus made into a
// pair manifest by loader.ImportLAVA.
package importlava

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lavascope/lavascope/internal/atomicfile"
	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
)

// Options are the settings of one `lavascope import-lava` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	Corpus, Out, Triples string
	Fields               []string
	LAVA                 loader.LAVAOptions
}

// NewCmdImportLAVA builds `lavascope import-lava`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdImportLAVA(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "import-lava --corpus DIR --out FILE",
		Short: "Convert the LAVA corpus into a pair manifest",
		Long: `import-lava reads LAVA's lava.json (in DIR or DIR/corpus; frames are
images/<visualFilename>.png beside it) and makes pairs of its readings.

In LAVA's own layout (entries with sentenceID, variantID, contrastVariants,
equivalentVariants) the readings that contrast form a group, as the paper's
authors group them: a group of two is a pair, a group of three gives a pair
of each two readings (--triples keep: one pair of all three). A reading
without a visualFilename or logicalForm takes those of the first of its
equivalentVariants. Entries without a syntactic_tree (semantic and discourse
ambiguities) are skipped, as are readings whose frame file is missing; the
summary counts every skipped entry by reason. The family of a pair comes
from how its two trees differ. Pair ids are lava-SENTENCE-VARIANT-VARIANT.

Other layouts: entries are grouped by sentence, one reading per distinct
tree. The keys of an entry are set with --field, one for each of:
` + strings.Join(loader.LAVAFields, ", ") + `. text, image and tree are required; the
defaults are text=text, image=visualFilename, tree=syntactic_tree,
gloss=logicalForm. A key may be a dotted path (parse.0.tree); --field
group=KEY groups by that key instead. When the file does not fit, the error
lists the keys its entries have.

Splits: --split train, val or test puts every pair there; auto splits 8:1:1
by a hash of the sentence; authors shuffles the pairs with --seed and cuts
them 70/10/20, as the authors did. --splits DIR reads the authors' split
files (train.json, val.json, tst.json from their filesplit.py) and gives each
pair the split of the file that holds it, matching readings by text, tree
and visualFilename; a pair that their k=2 files put in two splits is written
once for each (lavascope data check then names it), and pairs in no file
are left out.`,
		Example: `  lavascope import-lava --corpus ~/LAVA --out ~/LAVA/corpus/pairs.jsonl --split authors --seed 1
  lavascope import-lava --corpus ~/LAVA --out ~/LAVA/corpus/pairs.jsonl --splits ~/FormalismCLIP/data/LAVA
  lavascope import-lava --corpus ~/other --out pairs.jsonl --copy-images --field tree=trees.0 --split auto`,
		Args: cobra.NoArgs,
		RunE: factory.RunE(opts, runF, runImportLAVA),
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.Corpus, "corpus", "", "LAVA folder (holding lava.json or corpus/lava.json)")
	fs.StringVar(&opts.Out, "out", "", "manifest to write")
	fs.StringArrayVar(&opts.Fields, "field", nil, "FIELD=KEY: the entry key to read a field from (repeatable)")
	fs.StringVar(&opts.LAVA.Split, "split", loader.SplitTest, "split of every pair without a split field: train, val, test, auto (8:1:1 by sentence) or authors (70/10/20 by pair, seeded)")
	fs.Uint64Var(&opts.LAVA.Seed, "seed", 1, "seed of --split authors")
	fs.StringVar(&opts.LAVA.SplitsDir, "splits", "", "folder of the authors' split files (train.json, val.json, tst.json): each pair gets its file's split")
	fs.StringVar(&opts.Triples, "triples", "split", "a group of three readings: split (a pair of each two, as the authors) or keep (one three-way pair)")
	fs.BoolVar(&opts.LAVA.CopyImages, "copy-images", false, "copy frames outside the manifest's folder into its images/")
	fs.BoolVar(&opts.LAVA.AllowOutside, "allow-outside", false, "write image paths that leave the manifest's folder")
	return cmd
}

func runImportLAVA(opts *Options) error {
	if opts.Corpus == "" || opts.Out == "" {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--corpus and --out are both required"))
	}
	switch opts.Triples {
	case "split":
	case "keep":
		opts.LAVA.KeepTriples = true
	default:
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--triples %q: want split or keep", opts.Triples))
	}
	if opts.LAVA.SplitsDir != "" {
		if opts.Cmd.Flags().Changed("split") {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--split and --splits exclude each other: the split files say each pair's split"))
		}
		opts.LAVA.Split = ""
	}
	opts.LAVA.Corpus = opts.Corpus
	opts.LAVA.OutDir = filepath.Dir(opts.Out)
	opts.LAVA.Fields = map[string]string{}
	for _, f := range opts.Fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" || v == "" {
			return factory.WithExit(factory.ExitUsage, fmt.Errorf("--field %q: want FIELD=KEY, such as tree=parse", f))
		}
		opts.LAVA.Fields[k] = v
	}
	pairs, rep, err := loader.ImportLAVA(opts.LAVA)
	if err != nil {
		return factory.WithExit(factory.ExitUsage, err)
	}
	w := opts.Cmd.OutOrStdout()
	layout := "readings grouped by sentence"
	if rep.Contrast {
		layout = "LAVA's layout: readings grouped by contrastVariants"
	}
	fmt.Fprintf(w, "read %d entries of %s (%s): %d groups\n", rep.Entries, termtext.Sanitize(rep.File), layout, rep.Groups)
	writeSkipped(w, &rep)
	if len(pairs) == 0 {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("%s: %d entries gave no pair (see above why each was skipped)", rep.File, rep.Entries))
	}
	err = atomicfile.Write(opts.Out, func(w io.Writer) error {
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
	count := map[string]int{}
	for _, p := range pairs {
		count[p.Split]++
	}
	fmt.Fprintf(w, "wrote %d pairs to %s (train %d, val %d, test %d)", rep.Pairs, termtext.Sanitize(opts.Out),
		count[loader.SplitTrain], count[loader.SplitVal], count[loader.SplitTest])
	if rep.Copied > 0 {
		fmt.Fprintf(w, "; copied %d frame(s)", rep.Copied)
	}
	fmt.Fprintln(w)
	return nil
}

// writeSkipped says what was left out and why, and how the split files
// matched.
func writeSkipped(w io.Writer, rep *loader.LAVAReport) {
	if n := rep.SkippedEntries(); n > 0 {
		fmt.Fprintf(w, "skipped %d of %d entries:\n", n, rep.Entries)
	}
	for _, s := range rep.Skipped {
		if s.Unit == "entries" {
			fmt.Fprintf(w, "  %5d  %s (first: %s)\n", s.Count, termtext.Sanitize(s.Reason), termtext.Sanitize(s.First))
		}
	}
	for _, s := range rep.Skipped {
		if s.Unit != "entries" {
			fmt.Fprintf(w, "skipped %d %s: %s (first: %s)\n", s.Count, s.Unit, termtext.Sanitize(s.Reason), termtext.Sanitize(s.First))
		}
	}
	if rep.Filled > 0 {
		fmt.Fprintf(w, "took the frame of %d reading(s) from their first equivalent variant\n", rep.Filled)
	}
	if len(rep.Splits) > 0 {
		fmt.Fprintf(w, "split files: %s\n", termtext.Sanitize(strings.Join(rep.Splits, ", ")))
	}
	if rep.Leaked > 0 {
		fmt.Fprintf(w, "  %d pair(s) are in more than one split file: written once for each split (lavascope data check names them)\n", rep.Leaked)
	}
	if rep.Unsplit > 0 {
		fmt.Fprintf(w, "  %d pair(s) are in no split file: left out\n", rep.Unsplit)
	}
	if rep.Unmatched > 0 {
		fmt.Fprintf(w, "  %d pair(s) of the split files match no imported pair (first: %s)\n", rep.Unmatched, termtext.Sanitize(rep.UnmatchedAt))
	}
}
