// Package tokenize is `lavascope tokenize`: how the CLIP tokenizer splits
// texts.
package tokenize

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/lavascope/lavascope/pkg/cmd/factory"
	"github.com/lavascope/lavascope/tokenizer"
)

// Options are the settings of one `lavascope tokenize` run.
type Options struct {
	*factory.Factory
	factory.Invocation
	Dir     string
	Context int
	JSON    bool
}

// NewCmdTokenize builds `lavascope tokenize`; runF, when not nil, runs in place of
// the command (tests check the parsed options with it).
func NewCmdTokenize(f *factory.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{Factory: f}
	cmd := &cobra.Command{
		Use:   "tokenize --tokenizer DIR [--context 77] [--json] TEXT...",
		Short: "Show how the CLIP tokenizer splits texts",
		Long: `tokenize runs CLIP's BPE tokenizer (vocab.json and merges.txt of a Hugging Face
checkpoint folder, or of a model id in the local HF cache) on each TEXT, or on
each line of stdin when there is none.

It shows, per text, the ids (with <|startoftext|> and <|endoftext|>, unpadded),
the BPE tokens, the byte span of each token in the text, and whether the text
was cut to the context length (OpenAI's truncation: the first context-2 tokens
are kept). --context 0 keeps every token. With --json it prints one JSON object
per text: {"text", "ids", "tokens", "offsets", "truncated"}.`,
		Example: `  lavascope tokenize --tokenizer openai/clip-vit-base-patch32 '(s (np (nnp danny)) (. .))'
  lavascope tokenize --tokenizer ckpt/ --json < linearized.txt`,
		RunE: factory.RunE(opts, runF, runTokenize),
	}
	cmd.Flags().StringVar(&opts.Dir, "tokenizer", "", "folder with vocab.json and merges.txt, or a HF model id in the local cache")
	cmd.Flags().IntVar(&opts.Context, "context", tokenizer.DefaultContext, "context length in ids, BOS and EOS included (0: no limit)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON object per text")
	return cmd
}

func runTokenize(opts *Options) error {
	if opts.Dir == "" {
		return factory.WithExit(factory.ExitUsage, errors.New("--tokenizer is required: a folder with vocab.json and merges.txt, or a model id in the HF cache"))
	}
	if opts.Context < 0 {
		return factory.WithExit(factory.ExitUsage, fmt.Errorf("--context must be 0 (no limit) or at least 2, got %d", opts.Context))
	}
	_, tok, err := factory.OpenTokenizer("--tokenizer", opts.Dir, "", false)
	if err != nil {
		return err
	}
	texts, err := readTexts(opts.Cmd, opts.Args)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(opts.Cmd.OutOrStdout())
	for _, text := range texts {
		enc := tok.Encode(text, opts.Context)
		if opts.JSON {
			err = writeTokensJSON(w, tok, text, enc)
		} else {
			err = writeTokensTable(w, tok, text, enc)
		}
		if err != nil {
			return err
		}
	}
	return w.Flush()
}

// readTexts returns the arguments, or the lines of stdin when there are none.
func readTexts(cmd *cobra.Command, args []string) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return nil, factory.WithExit(factory.ExitUsage, errors.New("no texts: give them as arguments or as lines on stdin"))
	}
	var texts []string
	sc := bufio.NewScanner(cmd.InOrStdin())
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for sc.Scan() {
		texts = append(texts, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	return texts, nil
}

func writeTokensJSON(w io.Writer, tok *tokenizer.Tokenizer, text string, enc tokenizer.Encoding) error {
	enc2 := json.NewEncoder(w)
	enc2.SetEscapeHTML(false)
	return enc2.Encode(struct {
		Text      string   `json:"text"`
		IDs       []int32  `json:"ids"`
		Tokens    []string `json:"tokens"`
		Offsets   [][2]int `json:"offsets"`
		Truncated bool     `json:"truncated"`
	}{text, enc.IDs, tok.Tokens(enc.IDs), enc.Offsets, enc.Truncated})
}

// writeTokensTable prints a header line per text, then one row per id: its
// position, id, BPE token, byte span and the text the span covers.
func writeTokensTable(w io.Writer, tok *tokenizer.Tokenizer, text string, enc tokenizer.Encoding) error {
	note := ""
	if enc.Truncated {
		note = ", truncated"
	}
	if _, err := fmt.Fprintf(w, "%s  (%d ids%s)\n", strconv.Quote(text), len(enc.IDs), note); err != nil {
		return err
	}
	tokens := tok.Tokens(enc.IDs)
	posW, idW, tokW, spanW := len(strconv.Itoa(len(enc.IDs)-1)), 0, 0, 0
	spans := make([]string, len(enc.IDs))
	for i, id := range enc.IDs {
		o := enc.Offsets[i]
		spans[i] = fmt.Sprintf("%d-%d", o[0], o[1])
		idW = max(idW, len(strconv.Itoa(int(id))))
		tokW = max(tokW, utf8.RuneCountInString(tokens[i]))
		spanW = max(spanW, len(spans[i]))
	}
	for i, id := range enc.IDs {
		o := enc.Offsets[i]
		covered := ""
		if o[1] > o[0] {
			covered = strconv.Quote(text[o[0]:o[1]])
		}
		pad := tokW - utf8.RuneCountInString(tokens[i])
		row := fmt.Sprintf("  %*d  %*d  %s%*s  %-*s  %s", posW, i, idW, id, tokens[i], pad, "", spanW, spans[i], covered)
		if _, err := fmt.Fprintln(w, strings.TrimRight(row, " ")); err != nil {
			return err
		}
	}
	return nil
}
