// optim.cpp: AdamW and gradient clipping over a whole parameter list in a
// few multi-tensor kernels.
//
// torch::optim::AdamW updates one parameter at a time: about ten kernels per
// tensor, two thousand launches per step for a model of ~200 tensors, which on a
// GPU cost more than the arithmetic. This AdamW does PyTorch's update with
// the _foreach_ ops on CUDA (one multi-tensor kernel per line of the update),
// in the same order as the per-tensor code, and on the CPU with those same
// per-tensor kernels a parameter at a time; or, where libtorch has it for
// the parameters' device (CUDA from 2.0, the CPU from 2.4), with PyTorch's
// fused kernel (_fused_adamw_: one kernel per step, its own rounding).

#include "shim.h"

// The _fused_adamw_ overload that reads the learning rate from a tensor
// (libtorch 2.4 and later, CPU and CUDA).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LT_TENSOR_LR 1
#endif

namespace lt {
namespace {

// Lists are the tensors of one update, a list each, in parameter order.
struct Lists {
  std::vector<at::Tensor> ps, gs, m, v, vmax, st;  // vmax with amsgrad, st with the fused kernel
  std::vector<at::Scalar> step_size, bc2_sqrt;     // the foreach update's
  // denom, when defined, is where the update of a single parameter puts
  // its denominator, in place of a new tensor.
  at::Tensor denom;
  // one is parameter k's entries alone.
  Lists one(size_t k) const {
    Lists l{{ps[k]}, {gs[k]}, {m[k]}, {v[k]}, {}, {}, {step_size[k]}, {bc2_sqrt[k]}};
    if (!vmax.empty()) l.vmax = {vmax[k]};
    return l;
  }
};

struct AdamW {
  std::vector<at::Tensor> params;
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad;
  bool fused;  // resolved at creation: the parameters do not move
  // Per parameter: steps taken (0 = no state yet) and the moments, which
  // stay undefined until the parameter's first step with a gradient.
  std::vector<int64_t> steps;
  std::vector<at::Tensor> exp_avg, exp_avg_sq, max_exp_avg_sq;
  // The fused kernel reads each step count from a float32 scalar on the
  // device; made from steps on first use and after a state load.
  std::vector<at::Tensor> step_t;
  // scratch holds the denominator of one parameter's update on the CPU,
  // reused from parameter to parameter and step to step: a new tensor per
  // parameter is new memory, and for one above glibc's mmap threshold
  // (ViT-B/32's token embedding) fresh pages every step, whose first touch
  // made that parameter's update much longer (BenchmarkAdamWStep's
  // embedding-512 case; docs/performance.md, "Figures behind comments").
  at::Tensor scratch;

  void step();
  // scratch_like is a tensor shaped as v in scratch, which grows to fit.
  at::Tensor scratch_like(const at::Tensor& v);
  // step_lr is step with the learning rate read from lr, a float32 scalar
  // on the parameters' device: the fused kernel only, after a step() made
  // the state (what a CUDA graph captures: nothing is read back).
  void step_lr(const at::Tensor& lr);
  // step_count is parameter i's steps taken: the device's count where the
  // fused kernel keeps one (graphed steps do not pass through the host).
  int64_t step_count(size_t i) const;
  // params_with_grad lists the parameters that have a gradient.
  std::vector<size_t> params_with_grad() const;
  // lists gathers the tensors of parameters idx, which have state.
  Lists lists(const std::vector<size_t>& idx) const;
  // foreach_update is torch.optim.AdamW's update (torch::optim::AdamW's
  // too) over l, line by line.
  void foreach_update(Lists& l) const;
#if TORCH_VERSION_MAJOR >= 2
  // fused_update is the fused kernel's update over l at learning rate lr
  // (a double, or a float32 scalar tensor from libtorch 2.4 on).
  template <class LR>
  void fused_update(Lists& l, const LR& lr) const {
    at::_foreach_add_(l.st, 1);
    at::_fused_adamw_(l.ps, l.gs, l.m, l.v, l.vmax, l.st, lr, beta1, beta2, weight_decay, eps, amsgrad, false);
  }
#endif
};

enum AdamWImpl : int64_t { kAuto = 0, kForeach = 1, kFused = 2 };

// fused_available says whether this libtorch has a fused AdamW kernel for
// tensors on dev: libtorch ≥ 2 on CUDA, ≥ 2.4 on the CPU too.
bool fused_available(const at::Device& dev) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return dev.is_cuda() || dev.is_cpu();
#elif TORCH_VERSION_MAJOR >= 2
  return dev.is_cuda();
#else
  (void)dev;
  return false;
#endif
}

void AdamW::step() {
  c10::AutoGradMode no_grad(false);
  std::vector<size_t> idx = params_with_grad();
  if (idx.empty()) return;
  for (size_t i : idx) {
    const auto& p = params[i];
    if (p.grad().is_sparse()) throw std::invalid_argument("AdamW does not support sparse gradients");
    if (steps[i] == 0) {
      exp_avg[i] = at::zeros_like(p, at::MemoryFormat::Preserve);
      exp_avg_sq[i] = at::zeros_like(p, at::MemoryFormat::Preserve);
      if (amsgrad) max_exp_avg_sq[i] = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
    steps[i]++;
    if (fused && !step_t[i].defined()) {
      step_t[i] = at::full({}, static_cast<double>(steps[i] - 1), p.options().dtype(at::kFloat));
    }
  }
  Lists l = lists(idx);
#if TORCH_VERSION_MAJOR >= 2
  if (fused) {
    fused_update(l, lr);
    return;
  }
#endif
  for (size_t i : idx) {
    double t = static_cast<double>(steps[i]);
    double bc1 = 1 - std::pow(beta1, t), bc2 = 1 - std::pow(beta2, t);
    l.step_size.emplace_back(-lr / bc1);
    l.bc2_sqrt.emplace_back(std::sqrt(bc2));
  }
  if (l.ps[0].is_cuda()) {
    foreach_update(l);
    return;
  }
  // On the CPU a _foreach_ op is a loop over the tensors, one pass over
  // every parameter per op; taking each parameter through all the ops in
  // turn runs the same kernels on the same values (bit for bit: a training
  // run's weights and state came out identical) while the parameter is in
  // cache, a fifth off a ViT-B/32 step with libtorch 1.13.
  for (size_t k = 0; k < l.ps.size(); k++) {
    Lists one = l.one(k);
    one.denom = scratch_like(one.v[0]);
    foreach_update(one);
  }
}

at::Tensor AdamW::scratch_like(const at::Tensor& v) {
  if (!scratch.defined() || scratch.numel() < v.numel() || scratch.scalar_type() != v.scalar_type()) {
    scratch = at::empty({v.numel()}, v.options());
  }
  return scratch.narrow(0, 0, v.numel()).view(v.sizes());
}

Lists AdamW::lists(const std::vector<size_t>& idx) const {
  Lists l;
  for (size_t i : idx) {
    l.ps.push_back(params[i]);
    l.gs.push_back(params[i].grad());
    l.m.push_back(exp_avg[i]);
    l.v.push_back(exp_avg_sq[i]);
    if (amsgrad) l.vmax.push_back(max_exp_avg_sq[i]);
    if (fused) l.st.push_back(step_t[i]);
  }
  return l;
}

void AdamW::foreach_update(Lists& l) const {
  if (weight_decay != 0) at::_foreach_mul_(l.ps, 1 - lr * weight_decay);
  at::_foreach_mul_(l.m, beta1);
  at::_foreach_add_(l.m, l.gs, 1 - beta1);
  at::_foreach_mul_(l.v, beta2);
  at::_foreach_addcmul_(l.v, l.gs, l.gs, 1 - beta2);
  if (amsgrad) at::_foreach_maximum_(l.vmax, l.v);
  const auto& second = amsgrad ? l.vmax : l.v;
  std::vector<at::Tensor> denom;
  if (l.denom.defined()) {
    // The same kernel as _foreach_sqrt's on the CPU, a tensor at a time.
    denom = {at::sqrt_out(l.denom, second[0])};
  } else {
    denom = at::_foreach_sqrt(second);
  }
  at::_foreach_div_(denom, l.bc2_sqrt);
  at::_foreach_add_(denom, eps);
  at::_foreach_addcdiv_(l.ps, l.m, denom, l.step_size);
}

// clip_grad_norm_ as torch.nn.utils computes it: the 2-norm over every
// gradient, and the gradients scaled by max_norm / (total + 1e-6) where that
// is below one, computed in float32 as PyTorch's tensor arithmetic does it
// (a scalar divided by a tensor is its reciprocal times the scalar).
// Returns the norm before clipping.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;
  auto norms = at::_foreach_norm(grads, 2);
  for (auto& n : norms) {
    if (n.device() != norms[0].device()) n = n.to(norms[0].device());
  }
  at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2.0);
  // One read back: the caller gets the norm anyway, and a host-side factor
  // skips the scaling when no clipping is needed.
  float total_f = total.to(at::kFloat).item<float>();
  float coef = (1.0f / (total_f + 1e-6f)) * static_cast<float>(max_norm);
  if (coef < 1.0f) at::_foreach_mul_(grads, at::Scalar(static_cast<double>(coef)));
  return static_cast<double>(total_f);
}

// clip_grad_norm_device is clip_grad_norm with nothing read back: the
// factor is computed and applied on the device, so that a CUDA graph can
// capture it. Returns the norm before clipping, a 0-dim tensor; max_norm
// infinite only measures.
at::Tensor clip_grad_norm_device(const std::vector<at::Tensor>& params, double max_norm) {
  c10::AutoGradMode no_grad(false);
  std::vector<at::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) throw std::invalid_argument("no parameter has a gradient");
  auto norms = at::_foreach_norm(grads, 2);
  for (auto& n : norms) {
    if (n.device() != norms[0].device()) n = n.to(norms[0].device());
  }
  at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2.0);
  if (std::isfinite(max_norm)) {
    at::Tensor coef = at::clamp_max(at::mul(at::reciprocal(at::add(total, 1e-6)), max_norm), 1.0);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
    at::_foreach_mul_(grads, coef);
#else
    for (auto& g : grads) g.mul_(coef.to(g.device()));
#endif
  }
  return total;
}

const char* impl_name(const AdamW& o) { return o.fused ? "fused" : "foreach"; }

AdamW* adamw(Ctx& c) {
  if (c.a->nin < 1 || c.a->in[0] == nullptr) throw std::invalid_argument("nil optimizer");
  return static_cast<AdamW*>(c.a->in[0]);
}

int64_t AdamW::step_count(size_t i) const {
  if (step_t[i].defined()) return static_cast<int64_t>(step_t[i].item<double>());
  return steps[i];
}

std::vector<size_t> AdamW::params_with_grad() const {
  std::vector<size_t> idx;
  for (size_t i = 0; i < params.size(); i++) {
    if (params[i].grad().defined()) idx.push_back(i);
  }
  return idx;
}

void AdamW::step_lr(const at::Tensor& lr) {
#ifdef LT_TENSOR_LR
  if (!fused) throw std::invalid_argument("a step with the learning rate in a tensor needs the fused AdamW");
  c10::AutoGradMode no_grad(false);
  std::vector<size_t> idx = params_with_grad();
  if (idx.empty()) return;
  for (size_t i : idx) {
    if (steps[i] == 0 || !step_t[i].defined()) {
      throw std::runtime_error("parameter " + std::to_string(i) +
                               " has no AdamW state yet: take an ordinary step first (a graph cannot create state)");
    }
  }
  Lists l = lists(idx);
  fused_update(l, lr);
#else
  (void)lr;
  throw std::runtime_error(std::string("a step with the learning rate in a tensor needs libtorch 2.4 or later (this is libtorch ") +
                           TORCH_VERSION + ")");
#endif
}

}  // namespace

void add_optim_ops(OpTable& t) {
  t.insert(t.end(), {
      {"adamw_step_lr_compiled",
       [](Ctx& c) {
#ifdef LT_TENSOR_LR
         c.ret_i(1);
#else
         c.ret_i(0);
#endif
       }},
      // in: params; dbls: max_norm
      {"clip_grad_norm", [](Ctx& c) { c.ret_d(clip_grad_norm(c.tensors(0, c.n_in()), c.d(0))); }},
      // in: params; dbls: max_norm (inf: measure only). out: the norm.
      {"clip_grad_norm_device", [](Ctx& c) { c.ret(clip_grad_norm_device(c.tensors(0, c.n_in()), c.d(0))); }},
  });
  size_t from = t.size();
  t.insert(t.end(), {
      // in: params; dbls: lr, beta1, beta2, eps, weight_decay; ints: amsgrad,
      // impl (0 auto, 1 foreach, 2 fused). sout: the implementation chosen.
      {"adamw_new",
       [](Ctx& c) {
         auto ps = c.tensors(0, c.n_in());
         bool all_fusable = !ps.empty();
         for (size_t i = 0; i < ps.size(); i++) {
           if (!ps[i].is_leaf()) throw std::invalid_argument("parameter " + std::to_string(i) + " is not a leaf tensor");
           if (!at::isFloatingType(ps[i].scalar_type())) {
             throw std::invalid_argument("parameter " + std::to_string(i) + " is " + describe(ps[i]) +
                                         ": AdamW needs floating-point parameters");
           }
           all_fusable = all_fusable && fused_available(ps[i].device()) && ps[i].device() == ps[0].device() &&
                         ps[i].scalar_type() == ps[0].scalar_type();
         }
         int64_t impl = c.i(1);
         if (impl < kAuto || impl > kFused) throw std::invalid_argument("unknown AdamW implementation " + std::to_string(impl));
         if (impl == kFused && !all_fusable) {
           throw std::invalid_argument(std::string("fused AdamW needs every parameter on one CUDA device (libtorch 2 or "
                                                   "later) or on the CPU (libtorch 2.4 or later), all of one dtype (this "
                                                   "is libtorch ") +
                                       TORCH_VERSION + ", parameter 0 " + (ps.empty() ? "none" : describe(ps[0])) + ")");
         }
         auto* o = new AdamW();
         o->params = std::move(ps);
         o->lr = c.d(0);
         o->beta1 = c.d(1);
         o->beta2 = c.d(2);
         o->eps = c.d(3);
         o->weight_decay = c.d(4);
         o->amsgrad = c.b(0);
         // auto takes the fused kernel wherever libtorch has it: one pass
         // over each parameter's state instead of one per foreach op, which
         // on the CPU is never the slower of the two (docs/performance.md).
         o->fused = impl == kFused || (impl == kAuto && all_fusable);
         size_t n = o->params.size();
         o->steps.assign(n, 0);
         o->exp_avg.resize(n);
         o->exp_avg_sq.resize(n);
         o->max_exp_avg_sq.resize(n);
         o->step_t.resize(n);
         c.ret_handle(o);
         c.ret_s(impl_name(*o));
       }},
      {"adamw_free", [](Ctx& c) { delete adamw(c); }},
      {"adamw_step", [](Ctx& c) { adamw(c)->step(); }},
      // in: optimizer, lr (a float32 scalar on the parameters' device).
      {"adamw_step_lr", [](Ctx& c) { adamw(c)->step_lr(c.t(1)); }},
      {"adamw_zero_grad",
       [](Ctx& c) {
         // Gradients are set to none, as PyTorch 2's zero_grad does by default.
         for (auto& p : adamw(c)->params) p.mutable_grad().reset();
       }},
      {"adamw_set_lr", [](Ctx& c) { adamw(c)->lr = c.d(0); }},
      {"adamw_lr", [](Ctx& c) { c.ret_d(adamw(c)->lr); }},
      // iout: per param, its step count (-1 without state) and how many
      // tensors follow in out: exp_avg, exp_avg_sq (and max_exp_avg_sq with amsgrad).
      {"adamw_state",
       [](Ctx& c) {
         auto* o = adamw(c);
         for (size_t i = 0; i < o->params.size(); i++) {
           if (o->steps[i] == 0) {
             c.ret_i(-1);
             c.ret_i(0);
             continue;
           }
           bool has_max = o->max_exp_avg_sq[i].defined();
           c.ret_i(o->step_count(i));
           c.ret_i(has_max ? 3 : 2);
           c.ret(o->exp_avg[i].detach().clone());
           c.ret(o->exp_avg_sq[i].detach().clone());
           if (has_max) c.ret(o->max_exp_avg_sq[i].detach().clone());
         }
       }},
      // in: optimizer, then per param index i: exp_avg, exp_avg_sq, max_exp_avg_sq (nil when absent);
      // ints: per param, step (-1 = no state). Checked whole before anything changes.
      {"adamw_load_state",
       [](Ctx& c) {
         auto* o = adamw(c);
         int64_t n = static_cast<int64_t>(o->params.size());
         if (c.a->nints != n || c.n_in() != 1 + 3 * n) {
           throw std::invalid_argument("state is for " + std::to_string(c.a->nints) + " parameters, optimizer has " +
                                       std::to_string(n));
         }
         for (int64_t i = 0; i < n; i++) {
           if (c.i(i) < 0) continue;
           if (c.i(i) == 0) throw std::invalid_argument("parameter " + std::to_string(i) + " has step 0 with a state");
           const auto& p = o->params[i];
           for (int64_t k = 0; k < 3; k++) {
             if (k == 2 && !c.has(3 + 3 * i)) continue;
             const auto& v = c.t(1 + 3 * i + k);
             if (!v.sizes().equals(p.sizes())) {
               throw std::invalid_argument("state of parameter " + std::to_string(i) + " is " + describe(v) +
                                           ", parameter is " + describe(p));
             }
           }
           if (o->amsgrad && !c.has(3 + 3 * i)) {
             throw std::invalid_argument("parameter " + std::to_string(i) + " has no max_exp_avg_sq, which AMSGrad needs");
           }
         }
         c10::AutoGradMode no_grad(false);
         for (int64_t i = 0; i < n; i++) {
           const auto& p = o->params[i];
           o->step_t[i] = at::Tensor();
           if (c.i(i) < 0) {
             o->steps[i] = 0;
             o->exp_avg[i] = o->exp_avg_sq[i] = o->max_exp_avg_sq[i] = at::Tensor();
             continue;
           }
           o->steps[i] = c.i(i);
           o->exp_avg[i] = c.t(1 + 3 * i).to(p.options()).clone();
           o->exp_avg_sq[i] = c.t(2 + 3 * i).to(p.options()).clone();
           o->max_exp_avg_sq[i] = c.has(3 + 3 * i) ? c.t(3 + 3 * i).to(p.options()).clone() : at::Tensor();
         }
       }},
  });
  mark_handles(t, from);
}

}  // namespace lt
