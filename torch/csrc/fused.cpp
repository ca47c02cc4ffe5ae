// fused.cpp: ops that do in one call what would take hundreds through the
// binding: a stack of pre-LN transformer encoder layers (for inference and
// training, or with its attention probabilities captured) and
// gradient-weighted attention rollout. Each makes the same ATen calls, in
// the same order, as the per-op code its callers keep as a reference, so the
// results are the same and autograd records the same graph.

#include "shim.h"

namespace lt {
namespace {

constexpr int64_t kLayerTensors = 16;

// Layer is one pre-LN encoder layer's 16 tensors: ln1 w,b; q w,b; k w,b; v w,b;
// out w,b; ln2 w,b; fc1 w,b; fc2 w,b.
struct Layer {
  const at::Tensor* w;
};

struct EncoderOpts {
  int64_t heads;
  bool causal, gelu;
  double eps;
  // capture computes attention explicitly (HF's eager attention) and keeps
  // each layer's probabilities with their gradient retained.
  bool capture;
  at::ScalarType dtype;  // the compute dtype (eager softmax runs in float32 below it)
  at::Tensor mask;       // capture and causal: [N,N] bool, true above the diagonal
};

// retain makes p's gradient readable after a backward pass: retain_grad when
// p is part of the graph, otherwise p becomes a leaf that requires grad
// (nothing upstream is tracked, so the gradient reaching p is the same).
at::Tensor retain(at::Tensor p) {
  if (p.requires_grad()) {
    p.retain_grad();
    return p;
  }
  return p.detach().requires_grad_(true);
}

// layer runs one encoder layer on h [B,N,D]: pre-LN self-attention, then
// the pre-LN MLP, each with its residual. With o.capture the attention
// probabilities are appended to probs.
at::Tensor layer(const at::Tensor& h, Layer l, const EncoderOpts& o, std::vector<at::Tensor>& probs) {
  if (h.dim() != 3) throw std::invalid_argument("hidden state " + describe(h) + ": want [batch, tokens, dim]");
  int64_t b = h.size(0), n = h.size(1), d = h.size(2);
  if (o.heads < 1 || d % o.heads != 0) {
    throw std::invalid_argument("dim " + std::to_string(d) + " is not a multiple of " + std::to_string(o.heads) +
                                " heads");
  }
  const at::Tensor* w = l.w;
  int64_t hd = d / o.heads;
  const int64_t shape_d[1] = {d};  // an IntArrayRef of a braced list would dangle
  at::IntArrayRef shape(shape_d, 1);
  auto x = at::layer_norm(h, shape, w[0], w[1], o.eps);
  auto split = [&](const at::Tensor& t) { return t.view({b, n, o.heads, hd}).transpose(1, 2); };
  auto q = split(at::linear(x, w[2], w[3]));
  auto k = split(at::linear(x, w[4], w[5]));
  auto v = split(at::linear(x, w[6], w[7]));
  at::Tensor ctx;
  if (o.capture) {
    // As HF's eager_attention_forward: scale after the product, softmax in
    // float32, back to the compute dtype.
    auto scores = at::mul(at::matmul(q, k.transpose(2, 3)), at::Scalar(1.0 / std::sqrt(static_cast<double>(hd))));
    if (o.causal) scores = scores.masked_fill(o.mask, at::Scalar(-std::numeric_limits<double>::infinity()));
    at::Tensor p;
    if (o.dtype == at::kFloat || o.dtype == at::kDouble) {
      p = at::softmax(scores, -1);
    } else {
      p = at::softmax(scores.to(at::kFloat), -1).to(o.dtype);
    }
    p = retain(p);
    probs.push_back(p);
    ctx = at::matmul(p, v);
  } else {
#if TORCH_VERSION_MAJOR >= 2
    ctx = at::scaled_dot_product_attention(q, k, v, LT_NULLOPT, 0.0, o.causal);
#else
    ctx = sdpa_plain(q, k, v, at::Tensor(), o.causal);
#endif
  }
  auto out = at::add(h, at::linear(ctx.transpose(1, 2).reshape({b, n, d}), w[8], w[9]));
  auto m = at::linear(at::layer_norm(out, shape, w[10], w[11], o.eps), w[12], w[13]);
  m = o.gelu ? at::gelu(m, "none") : m * at::sigmoid(m * 1.702);
  return at::add(out, at::linear(m, w[14], w[15]));
}

// encoder runs every layer (in: h, then 16 tensors per layer; ints: heads,
// causal, act (0 quick_gelu, 1 gelu); dbls: eps) and returns h, then with
// capture each layer's probabilities. A failure is returned as the string
// result, not thrown, so that its message names the layer and the hidden
// state instead of listing every weight.
void encoder(Ctx& c, bool capture) {
  const auto& h0 = c.t(0);
  int64_t nw = c.n_in() - 1;
  if (nw < kLayerTensors || nw % kLayerTensors != 0) {
    c.ret_s("got " + std::to_string(nw) + " weight tensors, want 16 per layer");
    return;
  }
  std::vector<at::Tensor> w = c.tensors(1, nw);
  EncoderOpts o{c.i(0), c.b(1), c.i(2) == 1, c.d(0), capture, h0.scalar_type(), at::Tensor()};
  if (capture && o.causal && h0.dim() == 3) {
    int64_t n = h0.size(1);
    o.mask = at::ones({n, n}, h0.options().dtype(at::kBool)).triu(1);
  }
  std::vector<at::Tensor> probs;
  at::Tensor h = h0;
  for (int64_t l = 0; l < nw / kLayerTensors; l++) {
    try {
      h = layer(h, Layer{w.data() + l * kLayerTensors}, o, probs);
    } catch (const c10::Error& e) {
      c.ret_s("layer " + std::to_string(l) + ", hidden state " + describe(h) + ": " + e.what_without_backtrace());
      return;
    } catch (const std::exception& e) {
      c.ret_s("layer " + std::to_string(l) + ", hidden state " + describe(h) + ": " + e.what());
      return;
    }
  }
  c.ret(h);
  for (auto& p : probs) c.ret(p);
}

// grad_weighted_rollout accumulates relevance over the given layers, first
// to last: R = I, then R += mean over heads of (∇A ⊙ A)⁺ · R per layer (the
// self-attention rule of Chefer et al., 2021), in float32, without recording
// autograd. in: k probabilities [B,H,N,N], then their k gradients.
at::Tensor grad_weighted_rollout(const std::vector<at::Tensor>& probs, const std::vector<at::Tensor>& grads) {
  c10::AutoGradMode no_grad(false);
  const auto& p0 = probs.at(0);
  if (p0.dim() != 4 || p0.size(2) != p0.size(3)) {
    throw std::invalid_argument("attention map " + describe(p0) + ": want [batch, heads, N, N]");
  }
  int64_t b = p0.size(0), n = p0.size(2);
  at::Tensor r = at::eye(n, p0.options().dtype(at::kFloat)).unsqueeze(0).expand({b, n, n});
  for (size_t l = 0; l < probs.size(); l++) {
    auto a = probs[l].detach().to(at::kFloat);
    auto g = grads[l].detach().to(at::kFloat);
    const int64_t heads_dim[1] = {1};
    auto cam = at::mean(at::clamp_min(at::mul(g, a), at::Scalar(0.0)), at::IntArrayRef(heads_dim, 1), false);
    r = at::add(r, at::bmm(cam, r));
  }
  return r.contiguous();
}

}  // namespace

void add_fused_ops(OpTable& t) {
  t.insert(t.end(), {
      // A whole pre-LN encoder in one call, attention through SDPA: inference
      // under no-grad, or training (autograd records it as it would the
      // separate ops). See encoder for the arguments.
      {"preln_encoder", [](Ctx& c) { encoder(c, false); }},
      // The same with explicit attention: out is h, then each layer's
      // probabilities with their gradient retained.
      {"preln_encoder_capture", [](Ctx& c) { encoder(c, true); }},
      // in: k attention maps, then their k gradients; out: R [B,N,N] f32.
      {"grad_weighted_rollout",
       [](Ctx& c) {
         int64_t k = c.n_in() / 2;
         if (k < 1 || c.n_in() != 2 * k) {
           throw std::invalid_argument("want k attention maps and their k gradients, got " +
                                       std::to_string(c.n_in()) + " tensors");
         }
         c.ret(grad_weighted_rollout(c.tensors(0, k), c.tensors(k, k)));
       }},
  });
}

}  // namespace lt
