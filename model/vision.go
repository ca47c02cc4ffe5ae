package model

import (
	"fmt"

	"github.com/lavascope/lavascope/torch"
)

// visionModel is HF's CLIPVisionTransformer: patch embedding (a convolution
// without bias, stride = kernel = patch size), class token, learned
// positions, pre_layrnorm, the encoder, and post_layernorm on the class
// token.
type visionModel struct {
	classEmb  *torch.Tensor // [D]
	patchW    *torch.Tensor // [D,C,p,p]
	posEmb    *torch.Tensor // [1+G²,D]
	pre, post layerNorm
	enc       encoder

	channels, imageSize, patchSize, dim int64
}

func newVisionModel(c *VisionConfig, p param) visionModel {
	ln := func(name string) layerNorm {
		return layerNorm{p(name + ".weight"), p(name + ".bias"), int64(c.HiddenSize), c.LayerNormEps}
	}
	return visionModel{
		classEmb:  p("vision_model.embeddings.class_embedding"),
		patchW:    p("vision_model.embeddings.patch_embedding.weight"),
		posEmb:    p("vision_model.embeddings.position_embedding.weight"),
		pre:       ln("vision_model.pre_layrnorm"),
		post:      ln("vision_model.post_layernorm"),
		enc:       newEncoder("vision_model", c.NumHiddenLayers, c.HiddenSize, c.NumAttentionHeads, c.HiddenAct, c.LayerNormEps, p),
		channels:  int64(c.NumChannels),
		imageSize: int64(c.ImageSize),
		patchSize: int64(c.PatchSize),
		dim:       int64(c.HiddenSize),
	}
}

// forward encodes pixels [B,C,S,S]; its tensors belong to s.
func (v *visionModel) forward(s *torch.Scope, pixels, proj *torch.Tensor, o ForwardOptions, mo Options) (*ImageOutput, error) {
	if err := pixels.Err(); err != nil {
		return nil, fmt.Errorf("pixels: %w", err)
	}
	shape := pixels.Shape()
	if len(shape) != 4 || shape[1] != v.channels || shape[2] != v.imageSize || shape[3] != v.imageSize {
		return nil, inputErrorf("pixels %s: want [batch, %d, %d, %d] (the config's num_channels and image_size)",
			pixels, v.channels, v.imageSize, v.imageSize)
	}
	if !pixels.DType().IsFloat() {
		return nil, inputErrorf("pixels %s: want a floating-point tensor", pixels)
	}
	b := shape[0]
	x := pixels.In(s).To(mo.Device, mo.DType)
	patches := x.Conv2d(v.patchW, nil, torch.ConvOptions{Stride: [2]int64{v.patchSize, v.patchSize}})
	patches = patches.Flatten(2, -1).Transpose(1, 2) // [B,G²,D]
	cls := v.classEmb.In(s).Expand(b, 1, v.dim)
	h := torch.Cat([]*torch.Tensor{cls, patches}, 1).Add(v.posEmb)
	h = v.pre.apply(h)
	last, attns, err := v.enc.forward(h, false, newAttnMode(s, o, mo, 0))
	if err != nil {
		return nil, fmt.Errorf("vision encoder: %w", err)
	}
	pooled := v.post.apply(last.Select(1, 0)).Linear(proj, nil)
	return &ImageOutput{
		Embeds:     l2Normalize(pooled),
		Pooled:     pooled,
		LastHidden: last,
		Attentions: attns,
	}, nil
}
