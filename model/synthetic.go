package model

import (
	"fmt"
	"math/rand/v2"
)

// syntheticSpecialIDs are the ids a synthetic text starts, ends and is padded
// with. For legacy configs (eos_token_id 2, pooled at argmax) they are the
// OpenAI tokenizer's <|startoftext|> and <|endoftext|>, the last two ids of
// the vocabulary, with clip.tokenize's zero padding; otherwise the config's
// own bos, eos and pad ids.
func syntheticSpecialIDs(c *TextConfig) (bos, eos, pad int64) {
	if c.PoolsAtArgmax() {
		return int64(c.VocabSize - 2), int64(c.VocabSize - 1), 0
	}
	return int64(c.BOSTokenID), int64(c.EOSTokenID), int64(c.PadTokenID)
}

// SyntheticIDs returns n texts for benchmarks and checks: tokens content
// ids each between the start and end ids, padded to width, [n, width] row
// by row. The content ids are drawn from seed, never a special id, so every
// text is pooled at its end of text, position tokens+1.
func SyntheticIDs(c *TextConfig, n, tokens, width int, seed uint64) ([]int64, error) {
	if tokens < 0 || tokens+2 > width {
		return nil, fmt.Errorf("%d tokens and the start and end ids do not fit %d positions", tokens, width)
	}
	if width > c.MaxPositionEmbeddings {
		return nil, fmt.Errorf("width %d is beyond the model's %d positions", width, c.MaxPositionEmbeddings)
	}
	bos, eos, pad := syntheticSpecialIDs(c)
	// Content ids stay below every special id, so that argmax pooling
	// finds the end of text and the first-eos rule finds nothing earlier.
	limit := min(bos, eos, int64(c.VocabSize))
	if limit < 2 {
		return nil, fmt.Errorf("no ordinary token ids below the special ids (bos %d, eos %d)", bos, eos)
	}
	r := rand.New(rand.NewPCG(seed, 0x6c617661))
	ids := make([]int64, n*width)
	for i := range n {
		row := ids[i*width : (i+1)*width]
		row[0] = bos
		for j := 1; j <= tokens; j++ {
			row[j] = 1 + r.Int64N(limit-1)
		}
		row[tokens+1] = eos
		for j := tokens + 2; j < width; j++ {
			row[j] = pad
		}
	}
	return ids, nil
}
