// Package explain says where a CLIP model looked when it scored an
// image–text pair, and how far to trust the answer.
//
// # Relevance
//
// The default method is the relevance rule of Chefer, Gur and Wolf,
// "Generic Attention-model Explainability for Interpreting Bi-Modal and
// Encoder-Decoder Transformers" (ICCV 2021), as the CLIP notebook of
// Transformer-MM-Explainability computes it. The target is one logit (image
// i, text j) or a sum of several. For every attention layer from the start
// layer on, the map mean over heads of clamp(∇A ⊙ A, min 0) updates the
// relevance R ← R + cam·R, starting from R = I. The image relevance is the CLS
// row of the vision encoder's R over the patches (grid×grid); the text
// relevance is the end-of-text row of the text encoder's R over the tokens.
//
// CLIP's two encoders never attend to each other: they meet only in the dot
// product of their pooled embeddings. With no cross-attention, the
// bi-modal rules of the paper (those that mix R_ti and R_it) have nothing to
// propagate, and the method reduces to the self-attention rule applied to
// each encoder separately, with the gradients of the shared target.
//
// [Explain] takes the gradients of all layers from one backward of the summed
// target logits, where the notebook runs one backward per layer; a test shows
// the two give the same gradients. Targets that share no image or text share
// that pass (each still gets exactly its own gradients, since batch items do
// not interact inside an encoder); targets that do share one go in rounds. The
// start layer applies to Chefer only; with the last layer alone Chefer's
// CLS/EOT rows equal GradAttn's.
//
// Baselines with the same outputs: raw attention of the last layer,
// attention rollout (Abnar and Zuidema 2020, with the residual identity) and
// gradient×attention of the last layer.
//
// # Faithfulness
//
// Perturbation curves ([Perturb]: remove patches most- or least-relevant
// first and watch the margin between a reading's own image and its twin),
// the pointing game ([PointingGame]: a hit is a top patch that overlaps an
// evidence box, mapped through the preprocessing's [Geometry]) and the share
// of relevance inside evidence boxes, and the change in margin when the top
// tokens of the text are dropped from the sequence ([DeleteTokens]);
// [Summarize] aggregates them over a split.
//
// # Heatmaps
//
// A patch grid becomes a picture the way the notebook draws it: bilinear
// upsampling to the image size with the sampling of PyTorch's
// interpolate(mode="bilinear", align_corners=False) ([Upsample]), min–max
// normalisation ([MinMax]; [Symmetric] for signed maps), a colormap ([Jet],
// as OpenCV's COLORMAP_JET that the notebook uses, [Viridis], [Turbo], and
// the diverging [RdBu]), and an overlay on the image ([Overlay]) either as
// the notebook blends (heatmap plus image, divided by the brightest value)
// or as a plain alpha blend. [ColorBar], [HStack] and [WritePNG] are the
// building blocks of exported figures. Nothing here knows about terminals;
// package tui/graphics puts the images on screen.
package explain
