package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/lavascope/lavascope/internal/termtext"
	"github.com/lavascope/lavascope/loader"
	"github.com/lavascope/lavascope/model"
	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/tokenizer"
	"github.com/lavascope/lavascope/torch"
	"github.com/lavascope/lavascope/trees"
)

// counterfactualReport is what probe prints for --ablate, --mask-box and
// --swap-images.
type counterfactualReport struct {
	Checkpoint string      `json:"checkpoint"`
	Pair       string      `json:"pair"`
	Sentence   string      `json:"sentence"`
	Style      trees.Style `json:"style"`
	Change     string      `json:"change"`
	// Before, After and Delta are [text][image] logits.
	Before [][]float64 `json:"before"`
	After  [][]float64 `json:"after"`
	Delta  [][]float64 `json:"delta"`
	// Dropped are the token positions dropped per reading's text, and
	// DroppedTokens those tokens as the tokenizer writes them.
	Dropped       [][]int    `json:"dropped,omitempty"`
	DroppedTokens [][]string `json:"dropped_tokens,omitempty"`
}

// runCounterfactual scores --pair and the counterfactual its flags ask for.
func runCounterfactual(opts *Options, st trees.Style) error {
	usage := func(err error) error { return factory.WithExit(factory.ExitUsage, err) }
	if opts.Pair == "" {
		return usage(errors.New("--ablate, --mask-box and --swap-images need --pair"))
	}
	var (
		abl  model.Ablation
		mask model.MaskSpec
		v    model.Variant
		err  error
	)
	if opts.Ablate != "" {
		if abl, err = model.ParseAblation(opts.Ablate); err != nil {
			return usage(fmt.Errorf("--ablate %w", err))
		}
	}
	if opts.MaskBox != "" {
		if mask, err = model.ParseMaskSpec(opts.MaskBox); err != nil {
			return usage(fmt.Errorf("--mask-box %w", err))
		}
	}
	if v.Fill, err = model.ParseFill(opts.Fill); err != nil {
		return usage(fmt.Errorf("--fill: %w", err))
	}
	v.Swap = opts.SwapImages
	data, idx, p, err := probePair(opts.Config.Data, opts.Pair, loader.Options{AllowOutside: opts.AllowOutside})
	if err != nil {
		return usage(err)
	}
	var readings []int
	if opts.Reading != "" {
		r, err := parseReading(opts.Reading, &p)
		if err != nil {
			return usage(err)
		}
		readings = []int{r}
	}
	if opts.MaskBox != "" {
		if err := mask.Apply(&v, &p, readings); err != nil {
			return usage(fmt.Errorf("--mask-box: %w", err))
		}
	}
	rep := counterfactualReport{Checkpoint: opts.Config.Checkpoint, Pair: p.ID, Sentence: p.Sentence, Style: st, Change: termtext.Sanitize(describeChange(opts))}
	err = opts.WithModel(opts.Cmd, func(ctx context.Context, w *torch.Worker, m *model.CLIP, tok *tokenizer.Tokenizer) error {
		if opts.Ablate != "" {
			if err := abl.Apply(&v, &p, tok, m.Config().Text.MaxPositionEmbeddings, st, readings); err != nil {
				return usage(fmt.Errorf("--ablate: %w", err))
			}
			rep.Dropped = v.Drop
			texts, err := model.ReadingTexts(&p, st)
			if err != nil {
				return err
			}
			for r, drop := range v.Drop {
				ids := tok.Encode(texts[r], m.Config().Text.MaxPositionEmbeddings).IDs
				var words []string
				for _, pos := range drop {
					if pos >= len(ids)-1 {
						return usage(fmt.Errorf("--ablate: token %d: text %s has the tokens 1 to %d between start and end of text", pos, readingName(r), len(ids)-2))
					}
					words = append(words, tok.Token(ids[pos]))
				}
				rep.DroppedTokens = append(rep.DroppedTokens, words)
			}
		}
		out, err := model.ScoreVariants(ctx, w, m, tok, data, idx[0], st, []model.Variant{v})
		if err != nil {
			return err
		}
		rep.Before, rep.After = out[0], out[1]
		return nil
	})
	if err != nil {
		return err
	}
	for r := range rep.Before {
		rep.Delta = append(rep.Delta, make([]float64, len(rep.Before[r])))
		for k := range rep.Before[r] {
			rep.Delta[r][k] = rep.After[r][k] - rep.Before[r][k]
		}
	}
	out := opts.Cmd.OutOrStdout()
	if opts.JSON {
		return json.NewEncoder(out).Encode(rep)
	}
	writeCounterfactual(out, &rep)
	return nil
}

func describeChange(opts *Options) string {
	var parts []string
	if opts.Ablate != "" {
		parts = append(parts, "ablate "+opts.Ablate)
	}
	if opts.MaskBox != "" {
		parts = append(parts, "mask box "+opts.MaskBox+" with "+opts.Fill)
	}
	if opts.SwapImages {
		parts = append(parts, "swap images")
	}
	if opts.Reading != "" {
		parts = append(parts, "reading "+opts.Reading)
	}
	return strings.Join(parts, ", ")
}

// writeCounterfactual prints the logits before and after, text by image.
func writeCounterfactual(w io.Writer, r *counterfactualReport) {
	fmt.Fprintf(w, "%s: %s\ncheckpoint %s, %s linearization; %s\n\n", termtext.Sanitize(r.Pair), termtext.Sanitize(r.Sentence), r.Checkpoint, r.Style, r.Change)
	fmt.Fprintf(w, "%-8s  %-8s  %9s  %9s  %9s\n", "text", "image", "before", "after", "delta")
	for t := range r.Before {
		for k := range r.Before[t] {
			fmt.Fprintf(w, "%-8s  %-8s  %9.3f  %9.3f  %+9.3f\n", readingName(t), readingName(k), r.Before[t][k], r.After[t][k], r.Delta[t][k])
		}
	}
	for t, d := range r.Dropped {
		if len(d) > 0 {
			fmt.Fprintf(w, "text %s: dropped token positions %v: %s\n", readingName(t), d, termtext.Sanitize(strings.Join(r.DroppedTokens[t], " ")))
		}
	}
}
