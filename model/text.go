package model

import (
	"fmt"
	"slices"

	"github.com/lavascope/lavascope/torch"
)

// textModel is HF's CLIPTextTransformer: token and position embeddings, the
// encoder under a causal mask, final_layer_norm, and pooling at the end of
// text.
type textModel struct {
	tokEmb *torch.Tensor // [V,D]
	posEmb *torch.Tensor // [maxPos,D]
	final  layerNorm
	enc    encoder

	vocab, maxPos, dim int64
	eos                int64
	poolArgmax         bool
}

func newTextModel(c *TextConfig, p param) textModel {
	return textModel{
		tokEmb:     p("text_model.embeddings.token_embedding.weight"),
		posEmb:     p("text_model.embeddings.position_embedding.weight"),
		final:      layerNorm{p("text_model.final_layer_norm.weight"), p("text_model.final_layer_norm.bias"), int64(c.HiddenSize), c.LayerNormEps},
		enc:        newEncoder("text_model", c.NumHiddenLayers, c.HiddenSize, c.NumAttentionHeads, c.HiddenAct, c.LayerNormEps, p),
		vocab:      int64(c.VocabSize),
		maxPos:     int64(c.MaxPositionEmbeddings),
		dim:        int64(c.HiddenSize),
		eos:        int64(c.EOSTokenID),
		poolArgmax: c.PoolsAtArgmax(),
	}
}

// checkIDs validates ids and returns them as read back; see CLIP.CheckIDs.
func (t *textModel) checkIDs(ids *torch.Tensor) ([]int64, error) {
	if err := ids.Err(); err != nil {
		return nil, fmt.Errorf("input ids: %w", err)
	}
	shape := ids.Shape()
	if len(shape) != 2 || shape[0] < 1 || shape[1] < 1 || shape[1] > t.maxPos {
		return nil, inputErrorf("input ids %s: want [batch, tokens] with 1 to %d tokens (max_position_embeddings)", ids, t.maxPos)
	}
	switch ids.DType() {
	case torch.Int64, torch.Int32, torch.Uint8:
	default:
		return nil, inputErrorf("input ids %s: want an integer tensor", ids)
	}
	// An id outside the vocabulary would fail inside the embedding, and
	// on a GPU as a device-side assert that kills the process: check first,
	// in one read (each waits for the device).
	v, err := ids.Int64s()
	if err != nil {
		return nil, fmt.Errorf("input ids: %w", err)
	}
	lo, hi := slices.Min(v), slices.Max(v)
	if lo < 0 || hi >= int64(t.vocab) {
		return nil, inputErrorf("input ids %s: ids range over [%d, %d], outside the vocabulary [0, %d)", ids, lo, hi, t.vocab)
	}
	return v, nil
}

// forward encodes ids [B,N], which CLIP.Forward has had checked
// (checkIDs); its tensors belong to s.
func (t *textModel) forward(s *torch.Scope, ids, proj *torch.Tensor, o ForwardOptions, mo Options) (*TextOutput, error) {
	shape := ids.Shape()
	b, n := shape[0], shape[1]
	x := ids.In(s).To(mo.Device, torch.Int64)
	h := torch.Embedding(t.tokEmb, x).Add(t.posEmb.In(s).Narrow(0, 0, n))
	last, attns, err := t.enc.forward(h, true, newAttnMode(s, o, mo, n))
	if err != nil {
		return nil, fmt.Errorf("text encoder: %w", err)
	}
	last = t.final.apply(last)
	eot := t.endOfText(x)
	pooled := last.Gather(1, eot.View(b, 1, 1).Expand(b, 1, t.dim)).Squeeze(1).Linear(proj, nil)
	return &TextOutput{
		Embeds:     l2Normalize(pooled),
		Pooled:     pooled,
		LastHidden: last,
		EOT:        eot,
		Attentions: attns,
	}, nil
}

// endOfText is the position each text is pooled at, as HF computes it: the
// first position holding eos_token_id, or, for legacy configs whose
// eos_token_id is 2, argmax(ids) (the OpenAI tokenizer's <|endoftext|> has
// the largest id). A text without eos pools at position 0, as in HF.
func (t *textModel) endOfText(ids *torch.Tensor) *torch.Tensor {
	if t.poolArgmax {
		return ids.ArgMax(-1, false)
	}
	return ids.EqScalar(float64(t.eos)).ToDType(torch.Int64).ArgMax(-1, false)
}
