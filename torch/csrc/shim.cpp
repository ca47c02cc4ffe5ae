// liblavascope_torch: the C ABI that package torch (pure Go, loaded with purego)
// calls. It compiles against libtorch 1.13 and 2.x, with or without CUDA.
//
// The whole surface is a handful of extern "C" functions. Tensor operations go
// through one entry point, lt_call(op, args), with op a number that Go looks up
// once by name (lt_op_id); an op reads its tensors, integers and doubles from
// the argument block and writes tensors, integers, doubles or a string back.
// One generic entry point keeps the Go binding small and every call the same
// cost. Every entry point catches every C++ exception and returns it as an
// owned error string (freed with lt_free), so a bad shape never aborts the
// process. Tensor handles are heap-allocated at::Tensor objects; lt_tensor_free
// releases one, and a counter tracks how many are alive.

#include "shim.h"

#include <ATen/Version.h>
#include <link.h>
#include <ATen/autocast_mode.h>

// The version of this ABI: the Go side refuses a shim with another one, so a
// stale build/liblavascope_torch.so is reported instead of misread.
#define LT_ABI_VERSION 2

namespace lt {

std::atomic<int64_t> g_live{0};

char* dup(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p != nullptr) {
    std::memcpy(p, s.c_str(), s.size() + 1);
  }
  return p;
}

// Dtype codes shared with package torch.
at::ScalarType scalar_type(int64_t code) {
  switch (code) {
    case 0: return at::kFloat;
    case 1: return at::kHalf;
    case 2: return at::kBFloat16;
    case 3: return at::kDouble;
    case 4: return at::kLong;
    case 5: return at::kInt;
    case 6: return at::kByte;
    case 7: return at::kBool;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(code));
}

int64_t dtype_code(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return 0;
    case at::kHalf: return 1;
    case at::kBFloat16: return 2;
    case at::kDouble: return 3;
    case at::kLong: return 4;
    case at::kInt: return 5;
    case at::kByte: return 6;
    case at::kBool: return 7;
    default: return -1;
  }
}

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "f32";
    case at::kHalf: return "f16";
    case at::kBFloat16: return "bf16";
    case at::kDouble: return "f64";
    case at::kLong: return "i64";
    case at::kInt: return "i32";
    case at::kByte: return "u8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

// Device codes: type 0 = cpu, 1 = cuda; index -1 = the current device.
at::Device device(int64_t type, int64_t index) {
  switch (type) {
    case 0: return at::Device(at::kCPU);
    case 1:
      if (!torch::cuda::is_available()) {
        throw std::runtime_error("cuda:" + std::to_string(index < 0 ? 0 : index) +
                                 " requested but this libtorch has no CUDA or sees no GPU");
      }
      return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index < 0 ? 0 : index));
  }
  throw std::invalid_argument("unknown device type code " + std::to_string(type));
}

std::string describe(const at::Tensor& t) {
  if (!t.defined()) {
    return "undefined";
  }
  std::ostringstream o;
  o << dtype_name(t.scalar_type()) << "[";
  for (int64_t i = 0; i < t.dim(); i++) {
    if (i > 0) o << ",";
    o << t.size(i);
  }
  o << "] " << t.device();
  return o.str();
}

at::Scalar scalar_for(const at::Tensor& t, double v) {
  // An integral value applied to an integral tensor stays integral, as in
  // Python (ids + 1 is still int64).
  if (t.defined() && at::isIntegralType(t.scalar_type(), /*includeBool=*/false) &&
      std::floor(v) == v && std::abs(v) < 9.0e15) {
    return at::Scalar(static_cast<int64_t>(v));
  }
  return at::Scalar(v);
}

at::Tensor normalize(const at::Tensor& x, double p, int64_t dim, double eps) {
  auto n = at::linalg_vector_norm(x, p, at::IntArrayRef{dim}, true);
  return x / n.clamp_min(eps).expand_as(x);
}

// Attention as F.scaled_dot_product_attention computes it, for libtorch 1.13,
// which has no public kernel. A bool mask marks the positions that take part.
at::Tensor sdpa_plain(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                      const at::Tensor& mask, bool causal) {
  double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = at::matmul(q, k.transpose(-2, -1)) * scale;
  if (causal) {
    auto keep = at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask.defined()) {
    if (mask.scalar_type() == at::kBool) {
      scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
    } else {
      scores = scores + mask;
    }
  }
  return at::matmul(at::softmax(scores, -1), v);
}

void check_cuda_index(int64_t dev) {
  int64_t n = static_cast<int64_t>(torch::cuda::device_count());
  if (dev < 0 || dev >= n) {
    throw std::out_of_range("cuda:" + std::to_string(dev) + " does not exist (" + std::to_string(n) +
                            " CUDA devices)");
  }
}

#ifndef LAVASCOPE_CUDA
[[noreturn]] void no_cuda() {
  throw std::runtime_error("the shim was built without CUDA (rebuild with `make torch` against a CUDA libtorch)");
}
#endif

// The caching allocator starts lazily with the first CUDA tensor, and until
// then refuses statistics ("Invalid device argument"): allocate one.
void init_cuda_allocator(int64_t dev) {
  at::empty({1}, at::TensorOptions().device(at::kCUDA, static_cast<c10::DeviceIndex>(dev)));
}

// The op table. Argument conventions are documented beside each op's Go
// wrapper in package torch; both sides must agree.
// clear_grad_accumulator drops t's reference to the node that accumulates
// its gradient, whose weak pointer type changed in libtorch 2 (std::weak_ptr,
// then c10::weak_intrusive_ptr): W is set's parameter, an empty one made from
// an empty strong pointer.
template <typename W>
void clear_grad_accumulator(void (*set)(const torch::autograd::Variable&, W), const at::Tensor& t) {
  using Strong = decltype(torch::autograd::impl::try_get_grad_accumulator(t));
  set(t, W(Strong()));
}

// blas_info is what `lavascope doctor` asks about BLAS: a line "loaded: PATH"
// for each shared object of this process whose file name names a BLAS or
// LAPACK (what the dynamic linker really mapped, which the build settings
// alone do not tell: Debian picks libblas.so.3 by alternatives), then
// "config:" and ATen's build settings (at::show_config, BLAS_INFO=...).
std::string blas_info() {
  std::vector<std::string> libs;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) -> int {
        if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
        std::string path(info->dlpi_name);
        std::string base = path.substr(path.find_last_of('/') + 1);
        for (const char* k : {"blas", "lapack", "mkl", "blis", "flame", "accelerate"}) {
          if (base.find(k) != std::string::npos) {
            static_cast<std::vector<std::string>*>(data)->push_back(path);
            break;
          }
        }
        return 0;
      },
      &libs);
  std::string out;
  for (const auto& l : libs) out += "loaded: " + l + "\n";
  return out + "config:\n" + at::show_config();
}

OpTable make_ops() {
  OpTable table = {
      // --- process-wide ---------------------------------------------------
      {"version", [](Ctx& c) { c.ret_s(TORCH_VERSION); }},
      {"abi", [](Ctx& c) { c.ret_i(LT_ABI_VERSION); }},
      {"blas_info", [](Ctx& c) { c.ret_s(blas_info()); }},
      {"live", [](Ctx& c) { c.ret_i(g_live.load()); }},
      {"cuda_available", [](Ctx& c) { c.ret_i(torch::cuda::is_available() ? 1 : 0); }},
      {"cuda_device_count", [](Ctx& c) { c.ret_i(static_cast<int64_t>(torch::cuda::device_count())); }},
      {"cuda_compiled",
       [](Ctx& c) {
#ifdef LAVASCOPE_CUDA
         c.ret_i(1);
#else
         c.ret_i(0);
#endif
       }},
      {"cuda_synchronize",
       [](Ctx& c) {
         if (!torch::cuda::is_available()) throw std::runtime_error("CUDA is not available in this libtorch");
         check_cuda_index(c.i(0));
         torch::cuda::synchronize(c.i(0));
       }},
      {"cuda_memory",
       [](Ctx& c) {
#ifdef LAVASCOPE_CUDA
         check_cuda_index(c.i(0));
         init_cuda_allocator(c.i(0));
         int dev = static_cast<int>(c.i(0));
         auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev);
         c.ret_i(stats.allocated_bytes[0].current);
         c.ret_i(stats.allocated_bytes[0].peak);
         c.ret_i(stats.reserved_bytes[0].current);
         int prev = 0;
         if (cudaGetDevice(&prev) != cudaSuccess) throw std::runtime_error("cudaGetDevice failed");
         if (cudaSetDevice(dev) != cudaSuccess) throw std::runtime_error("cudaSetDevice failed");
         size_t free_b = 0, total_b = 0;
         cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
         cudaSetDevice(prev);
         if (e != cudaSuccess) throw std::runtime_error(std::string("cudaMemGetInfo: ") + cudaGetErrorString(e));
         c.ret_i(static_cast<int64_t>(free_b));
         c.ret_i(static_cast<int64_t>(total_b));
         cudaDeviceProp prop;
         e = cudaGetDeviceProperties(&prop, dev);
         if (e != cudaSuccess) throw std::runtime_error(std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(e));
         c.ret_s(prop.name);
#else
         (void)c;
         no_cuda();
#endif
       }},
      {"cuda_reset_peak",
       [](Ctx& c) {
#ifdef LAVASCOPE_CUDA
         check_cuda_index(c.i(0));
         init_cuda_allocator(c.i(0));
         c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<int>(c.i(0)));
#else
         (void)c;
         no_cuda();
#endif
       }},
      {"set_num_threads",
       [](Ctx& c) {
         if (c.i(0) < 1) throw std::invalid_argument("thread count must be at least 1");
         at::set_num_threads(static_cast<int>(c.i(0)));
       }},
      // TF32 for float32 matmuls (cuBLAS) and convolutions (cuDNN); a no-op
      // without CUDA. ints: on.
      {"set_allow_tf32",
       [](Ctx& c) {
         at::globalContext().setAllowTF32CuBLAS(c.b(0));
         at::globalContext().setAllowTF32CuDNN(c.b(0));
       }},
      // Autocast (mixed precision) of this thread, as torch.autocast sets it:
      // matrix products and attention in the given dtype, the parameters
      // left as they are. Autocast state is thread-local, and every op of a
      // model runs on its torch worker's one thread. ints: on, cuda (0: the
      // CPU's autocast, 1: CUDA's), dtype code. iout: whether it was on.
      // Turning it off clears the cache of casted weights, which would
      // otherwise keep stale copies after an optimizer step.
      {"set_autocast",
       [](Ctx& c) {
         bool on = c.b(0);
         bool cuda = c.b(1);
         at::ScalarType dt = scalar_type(c.i(2));
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
         // 2.4 took the device as an argument and made the per-device
         // calls print a deprecation warning on every use.
         at::DeviceType dev = cuda ? at::kCUDA : at::kCPU;
         c.ret_i(at::autocast::is_autocast_enabled(dev) ? 1 : 0);
         at::autocast::set_autocast_dtype(dev, dt);
         at::autocast::set_autocast_enabled(dev, on);
#else
         if (cuda) {
           c.ret_i(at::autocast::is_enabled() ? 1 : 0);
           at::autocast::set_autocast_gpu_dtype(dt);
           at::autocast::set_enabled(on);
         } else {
           c.ret_i(at::autocast::is_cpu_enabled() ? 1 : 0);
           at::autocast::set_autocast_cpu_dtype(dt);
           at::autocast::set_cpu_enabled(on);
         }
#endif
         if (!on) at::autocast::clear_cache();
       }},
      {"get_num_threads", [](Ctx& c) { c.ret_i(at::get_num_threads()); }},
      {"manual_seed", [](Ctx& c) { at::manual_seed(static_cast<uint64_t>(c.i(0))); }},
      {"set_grad_enabled",
       [](Ctx& c) {
         c.ret_i(c10::GradMode::is_enabled() ? 1 : 0);
         c10::GradMode::set_enabled(c.b(0));
       }},
      {"is_grad_enabled", [](Ctx& c) { c.ret_i(c10::GradMode::is_enabled() ? 1 : 0); }},

      // --- metadata and values ----------------------------------------------
      // iout: dtype, device type, device index, requires_grad, dim, sizes...
      {"meta",
       [](Ctx& c) {
         const auto& t = c.t(0);
         c.ret_i(dtype_code(t.scalar_type()));
         c.ret_i(t.device().is_cuda() ? 1 : (t.device().is_cpu() ? 0 : 2));
         c.ret_i(t.device().has_index() ? t.device().index() : -1);
         c.ret_i(t.requires_grad() ? 1 : 0);
         c.ret_i(t.dim());
         for (int64_t i = 0; i < t.dim(); i++) c.ret_i(t.size(i));
       }},
      {"item",
       [](Ctx& c) {
         const auto& t = c.t(0);
         if (t.numel() != 1) throw std::invalid_argument("item needs exactly one element");
         c.ret_d(t.item<double>());
       }},
      {"is_leaf", [](Ctx& c) { c.ret_i(c.t(0).is_leaf() ? 1 : 0); }},

      // --- creation ---------------------------------------------------------
      // options are ints[k..k+2] = dtype, device type, device index.
      {"zeros", [](Ctx& c) { c.ret(at::zeros(c.ints_from(3), c.options(0))); }},
      {"ones", [](Ctx& c) { c.ret(at::ones(c.ints_from(3), c.options(0))); }},
      {"full", [](Ctx& c) { c.ret(at::full(c.ints_from(3), c.d(0), c.options(0))); }},
      {"randn", [](Ctx& c) { c.ret(at::randn(c.ints_from(3), c.options(0))); }},
      {"rand", [](Ctx& c) { c.ret(at::rand(c.ints_from(3), c.options(0))); }},
      {"eye", [](Ctx& c) { c.ret(at::eye(c.i(3), c.options(0))); }},
      {"arange", [](Ctx& c) { c.ret(at::arange(c.d(0), c.d(1), c.d(2), c.options(0))); }},
      {"scalar_tensor", [](Ctx& c) { c.ret(at::scalar_tensor(c.d(0), c.options(0))); }},
      {"zeros_like", [](Ctx& c) { c.ret(at::zeros_like(c.t(0))); }},
      {"ones_like", [](Ctx& c) { c.ret(at::ones_like(c.t(0))); }},
      {"full_like", [](Ctx& c) { c.ret(at::full_like(c.t(0), scalar_for(c.t(0), c.d(0)))); }},

      // --- conversion -------------------------------------------------------
      // ints: device type, device index, dtype (-1 = keep)
      {"to",
       [](Ctx& c) {
         const auto& t = c.t(0);
         at::ScalarType st = c.i(2) < 0 ? t.scalar_type() : scalar_type(c.i(2));
         c.ret(t.to(device(c.i(0), c.i(1)), st));
       }},
      {"to_dtype", [](Ctx& c) { c.ret(c.t(0).to(scalar_type(c.i(0)))); }},
      {"clone", [](Ctx& c) { c.ret(c.t(0).clone()); }},
      {"detach", [](Ctx& c) { c.ret(c.t(0).detach()); }},
      {"contiguous", [](Ctx& c) { c.ret(c.t(0).contiguous()); }},

      // --- arithmetic -------------------------------------------------------
      {"add", [](Ctx& c) { c.ret(at::add(c.t(0), c.t(1))); }},
      {"sub", [](Ctx& c) { c.ret(at::sub(c.t(0), c.t(1))); }},
      {"mul", [](Ctx& c) { c.ret(at::mul(c.t(0), c.t(1))); }},
      {"div", [](Ctx& c) { c.ret(at::div(c.t(0), c.t(1))); }},
      {"add_scalar", [](Ctx& c) { c.ret(at::add(c.t(0), scalar_for(c.t(0), c.d(0)))); }},
      {"sub_scalar", [](Ctx& c) { c.ret(at::sub(c.t(0), scalar_for(c.t(0), c.d(0)))); }},
      {"mul_scalar", [](Ctx& c) { c.ret(at::mul(c.t(0), scalar_for(c.t(0), c.d(0)))); }},
      {"div_scalar", [](Ctx& c) { c.ret(at::div(c.t(0), at::Scalar(c.d(0)))); }},
      {"neg", [](Ctx& c) { c.ret(at::neg(c.t(0))); }},
      {"pow_scalar", [](Ctx& c) { c.ret(at::pow(c.t(0), at::Scalar(c.d(0)))); }},
      {"pow", [](Ctx& c) { c.ret(at::pow(c.t(0), c.t(1))); }},
      {"exp", [](Ctx& c) { c.ret(at::exp(c.t(0))); }},
      {"log", [](Ctx& c) { c.ret(at::log(c.t(0))); }},
      {"sqrt", [](Ctx& c) { c.ret(at::sqrt(c.t(0))); }},
      {"rsqrt", [](Ctx& c) { c.ret(at::rsqrt(c.t(0))); }},
      {"abs", [](Ctx& c) { c.ret(at::abs(c.t(0))); }},
      {"sigmoid", [](Ctx& c) { c.ret(at::sigmoid(c.t(0))); }},
      {"tanh", [](Ctx& c) { c.ret(at::tanh(c.t(0))); }},
      {"relu", [](Ctx& c) { c.ret(at::relu(c.t(0))); }},
      {"gelu", [](Ctx& c) { c.ret(at::gelu(c.t(0), c.b(0) ? "tanh" : "none")); }},
      // CLIP's activation: x * sigmoid(1.702 x), in one call.
      {"quick_gelu", [](Ctx& c) { c.ret(c.t(0) * at::sigmoid(c.t(0) * 1.702)); }},

      // --- linear algebra -----------------------------------------------------
      {"matmul", [](Ctx& c) { c.ret(at::matmul(c.t(0), c.t(1))); }},
      {"bmm", [](Ctx& c) { c.ret(at::bmm(c.t(0), c.t(1))); }},
      {"linear", [](Ctx& c) { c.ret(at::linear(c.t(0), c.t(1), c.opt(2))); }},

      // --- shape --------------------------------------------------------------
      {"reshape", [](Ctx& c) { c.ret(c.t(0).reshape(c.ints_from(0))); }},
      {"view", [](Ctx& c) { c.ret(c.t(0).view(c.ints_from(0))); }},
      {"permute", [](Ctx& c) { c.ret(c.t(0).permute(c.ints_from(0))); }},
      {"transpose", [](Ctx& c) { c.ret(c.t(0).transpose(c.i(0), c.i(1))); }},
      {"t", [](Ctx& c) { c.ret(c.t(0).t()); }},
      {"expand", [](Ctx& c) { c.ret(c.t(0).expand(c.ints_from(0))); }},
      {"repeat", [](Ctx& c) { c.ret(c.t(0).repeat(c.ints_from(0))); }},
      {"unsqueeze", [](Ctx& c) { c.ret(c.t(0).unsqueeze(c.i(0))); }},
      {"squeeze", [](Ctx& c) { c.ret(c.t(0).squeeze(c.i(0))); }},
      {"flatten", [](Ctx& c) { c.ret(c.t(0).flatten(c.i(0), c.i(1))); }},
      {"narrow", [](Ctx& c) { c.ret(c.t(0).narrow(c.i(0), c.i(1), c.i(2))); }},
      {"slice", [](Ctx& c) { c.ret(c.t(0).slice(c.i(0), c.i(1), c.i(2), c.i(3))); }},
      {"select", [](Ctx& c) { c.ret(c.t(0).select(c.i(0), c.i(1))); }},
      {"index_select", [](Ctx& c) { c.ret(at::index_select(c.t(0), c.i(0), c.t(1))); }},
      {"gather", [](Ctx& c) { c.ret(at::gather(c.t(0), c.i(0), c.t(1))); }},
      {"scatter", [](Ctx& c) { c.ret(at::scatter(c.t(0), c.i(0), c.t(1), c.t(2))); }},
      {"scatter_value",
       [](Ctx& c) { c.ret(at::scatter(c.t(0), c.i(0), c.t(1), scalar_for(c.t(0), c.d(0)))); }},
      {"one_hot", [](Ctx& c) { c.ret(at::one_hot(c.t(0), c.i(0))); }},
      {"cat", [](Ctx& c) { c.ret(at::cat(c.tensors(0, c.n_in()), c.i(0))); }},
      {"stack", [](Ctx& c) { c.ret(at::stack(c.tensors(0, c.n_in()), c.i(0))); }},

      // --- neural network -------------------------------------------------
      {"embedding", [](Ctx& c) { c.ret(at::embedding(c.t(0), c.t(1))); }},
      // ints: stride h,w, padding h,w, dilation h,w, groups
      {"conv2d",
       [](Ctx& c) {
         c.ret(at::conv2d(c.t(0), c.t(1), c.opt(2), c.ints_range(0, 2), c.ints_range(2, 2),
                          c.ints_range(4, 2), c.i(6)));
       }},
      // dbls: eps; ints: normalized shape
      {"layer_norm",
       [](Ctx& c) { c.ret(at::layer_norm(c.t(0), c.ints_from(0), c.opt(1), c.opt(2), c.d(0))); }},
      {"softmax", [](Ctx& c) { c.ret(at::softmax(c.t(0), c.i(0))); }},
      {"log_softmax", [](Ctx& c) { c.ret(at::log_softmax(c.t(0), c.i(0))); }},
      {"cross_entropy",
       [](Ctx& c) { c.ret(at::cross_entropy_loss(c.t(0), c.t(1), {}, at::Reduction::Mean, -100, 0.0)); }},
      {"interpolate_bilinear",
       [](Ctx& c) {
         c.ret(at::upsample_bilinear2d(c.t(0), at::IntArrayRef{c.i(0), c.i(1)}, c.b(2), LT_NULLOPT,
                                       LT_NULLOPT));
       }},
      // in: q, k, v, mask (optional); ints: causal
      {"sdpa",
       [](Ctx& c) {
#if TORCH_VERSION_MAJOR >= 2
         // The fused kernel refuses a mask together with is_causal: fold the
         // causal mask into the given one instead.
         if (c.b(0) && c.has(3)) {
           const auto& q = c.t(0);
           auto keep = at::ones({q.size(-2), c.t(1).size(-2)}, q.options().dtype(at::kBool)).tril();
           at::Tensor m = c.t(3);
           m = m.scalar_type() == at::kBool ? m.logical_and(keep)
                                            : m.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
           c.ret(at::scaled_dot_product_attention(q, c.t(1), c.t(2), m, 0.0, false));
         } else {
           c.ret(at::scaled_dot_product_attention(c.t(0), c.t(1), c.t(2), c.opt(3), 0.0, c.b(0)));
         }
#else
         c.ret(sdpa_plain(c.t(0), c.t(1), c.t(2), c.or_undef(3), c.b(0)));
#endif
       }},
      {"sdpa_plain", [](Ctx& c) { c.ret(sdpa_plain(c.t(0), c.t(1), c.t(2), c.or_undef(3), c.b(0))); }},

      // --- reductions -------------------------------------------------------
      // ints: keepdim, dims...
      {"sum", [](Ctx& c) { c.ret(at::sum(c.t(0), c.ints_from(1), c.b(0))); }},
      {"sum_all", [](Ctx& c) { c.ret(at::sum(c.t(0))); }},
      {"mean", [](Ctx& c) { c.ret(at::mean(c.t(0), c.ints_from(1), c.b(0))); }},
      {"mean_all", [](Ctx& c) { c.ret(at::mean(c.t(0))); }},
      {"max", [](Ctx& c) { c.ret(std::get<0>(at::max(c.t(0), c.i(0), c.b(1)))); }},
      {"min", [](Ctx& c) { c.ret(std::get<0>(at::min(c.t(0), c.i(0), c.b(1)))); }},
      {"max_all", [](Ctx& c) { c.ret(at::max(c.t(0))); }},
      {"min_all", [](Ctx& c) { c.ret(at::min(c.t(0))); }},
      {"argmax", [](Ctx& c) { c.ret(at::argmax(c.t(0), c.i(0), c.b(1))); }},
      // dbls: p; ints: keepdim, dims... (none = all)
      {"norm",
       [](Ctx& c) {
         if (c.a->nints > 1) {
           c.ret(at::linalg_vector_norm(c.t(0), c.d(0), c.ints_from(1), c.b(0)));
         } else {
           c.ret(at::linalg_vector_norm(c.t(0), c.d(0)));
         }
       }},
      // dbls: p, eps; ints: dim
      {"normalize", [](Ctx& c) { c.ret(normalize(c.t(0), c.d(0), c.i(0), c.d(1))); }},

      // --- comparison and selection -------------------------------------------
      {"eq", [](Ctx& c) { c.ret(at::eq(c.t(0), c.t(1))); }},
      {"gt", [](Ctx& c) { c.ret(at::gt(c.t(0), c.t(1))); }},
      {"lt", [](Ctx& c) { c.ret(at::lt(c.t(0), c.t(1))); }},
      {"eq_scalar", [](Ctx& c) { c.ret(at::eq(c.t(0), scalar_for(c.t(0), c.d(0)))); }},
      {"gt_scalar", [](Ctx& c) { c.ret(at::gt(c.t(0), scalar_for(c.t(0), c.d(0)))); }},
      {"lt_scalar", [](Ctx& c) { c.ret(at::lt(c.t(0), scalar_for(c.t(0), c.d(0)))); }},
      {"clamp",
       [](Ctx& c) { c.ret(at::clamp(c.t(0), scalar_for(c.t(0), c.d(0)), scalar_for(c.t(0), c.d(1)))); }},
      {"clamp_min", [](Ctx& c) { c.ret(at::clamp_min(c.t(0), scalar_for(c.t(0), c.d(0)))); }},
      {"triu", [](Ctx& c) { c.ret(at::triu(c.t(0), c.i(0))); }},
      {"tril", [](Ctx& c) { c.ret(at::tril(c.t(0), c.i(0))); }},
      {"masked_fill", [](Ctx& c) { c.ret(c.t(0).masked_fill(c.t(1), scalar_for(c.t(0), c.d(0)))); }},
      {"where", [](Ctx& c) { c.ret(at::where(c.t(0), c.t(1), c.t(2))); }},

      // --- in place ---------------------------------------------------------
      // copy_ loads values into an existing tensor (a parameter), so it runs
      // without recording a gradient.
      {"copy_",
       [](Ctx& c) {
         c10::AutoGradMode g(false);
         at::Tensor dst = c.t(0);
         if (!dst.sizes().equals(c.t(1).sizes())) {
           throw std::invalid_argument("shapes differ (" + describe(dst) + " ← " + describe(c.t(1)) + ")");
         }
         dst.copy_(c.t(1));
       }},
      {"fill_",
       [](Ctx& c) {
         c10::AutoGradMode g(false);
         at::Tensor t = c.t(0);
         t.fill_(scalar_for(t, c.d(0)));
       }},
      {"normal_",
       [](Ctx& c) {
         c10::AutoGradMode g(false);
         at::Tensor t = c.t(0);
         t.normal_(c.d(0), c.d(1));
       }},
      {"uniform_",
       [](Ctx& c) {
         c10::AutoGradMode g(false);
         at::Tensor t = c.t(0);
         t.uniform_(c.d(0), c.d(1));
       }},

      // --- autograd -----------------------------------------------------------
      {"set_requires_grad",
       [](Ctx& c) {
         at::Tensor t = c.t(0);
         t.set_requires_grad(c.b(0));
       }},
      {"retain_grad",
       [](Ctx& c) {
         at::Tensor t = c.t(0);
         t.retain_grad();
       }},
      // in: tensor, seed (optional); ints: retain_graph
      {"backward",
       [](Ctx& c) {
         const auto& t = c.t(0);
         at::Tensor seed = c.or_undef(1);
         if (!seed.defined() && t.numel() != 1) {
           throw std::invalid_argument("backward without a seed gradient needs a one-element tensor, got " +
                                       describe(t));
         }
         t.backward(seed, c.b(0) ? lt_optional<bool>(true) : LT_NULLOPT);
       }},
      // in: leaf tensors. Autograd keeps a leaf's gradient accumulator while
      // any graph built over the leaf lives, and (libtorch 2.11 at least)
      // runs on the stream it was made on: a graph captured on a side stream
      // must not reach one of the default stream's. Dropped, the next graph makes
      // its own on the stream current then; older graphs keep theirs.
      {"reset_grad_accumulators",
       [](Ctx& c) {
         for (const auto& t : c.tensors(0, c.n_in())) {
           if (!t.is_leaf()) throw std::invalid_argument("not a leaf: " + describe(t));
           clear_grad_accumulator(&torch::autograd::impl::set_grad_accumulator, t);
         }
       }},
      {"grad",
       [](Ctx& c) {
         const auto& g = c.t(0).grad();
         if (!g.defined()) {
           throw std::runtime_error(
               "tensor has no gradient (requires_grad is false, backward has not reached it, or it is not a "
               "leaf and retain_grad was not called)");
         }
         c.ret(g);
       }},
      // in: outputs, inputs, grad_outputs (nil = ones); ints: n_outputs, n_inputs, create_graph
      {"autograd_grad",
       [](Ctx& c) {
         int64_t no = c.i(0), ni = c.i(1);
         auto outs = c.tensors(0, no);
         auto ins = c.tensors(no, ni);
         std::vector<at::Tensor> gos;
         if (c.n_in() > no + ni) gos = c.tensors_or_undef(no + ni, no);
         bool create = c.b(2);
         auto gs = torch::autograd::grad(outs, ins, gos, lt_optional<bool>(create), create, false);
         for (auto& g : gs) c.ret(g);
       }},
  };
  add_optim_ops(table);
  add_fused_ops(table);
  add_graph_ops(table);
  add_profile_ops(table);
  add_dist_ops(table);
  return table;
}

const OpTable& ops() {
  static const OpTable table = make_ops();
  return table;
}

std::string failure(Ctx& c, const char* what) {
  std::ostringstream o;
  bool any = false;
  for (int64_t i = 0; i < c.a->nin; i++) {
    if (any) o << ", ";
    if (c.a->in[i] == nullptr) {
      o << "nil";
    } else {
      o << describe(*static_cast<at::Tensor*>(c.a->in[i]));
    }
    any = true;
  }
  std::string msg(what);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (any) return o.str() + ": " + msg;
  return msg;
}

}  // namespace lt

using namespace lt;


LT_API void lt_free(void* p) { std::free(p); }

LT_API void lt_tensor_free(void* t) {
  if (t != nullptr) {
    delete static_cast<at::Tensor*>(t);
    g_live.fetch_sub(1, std::memory_order_relaxed);
  }
}

// lt_op_id returns the number of the named op, or -1.
LT_API int64_t lt_op_id(const char* name) {
  const auto& t = ops();
  for (size_t i = 0; i < t.size(); i++) {
    if (std::strcmp(t[i].name, name) == 0) return static_cast<int64_t>(i);
  }
  return -1;
}

// lt_call runs op with the arguments in a; on failure a->err holds the
// message (owned by the caller) and no tensor result is left allocated.
LT_API void lt_call(int64_t op, Args* a) {
  Ctx c{a};
  a->err = nullptr;
  a->sout = nullptr;
  const auto& t = ops();
  if (op < 0 || static_cast<size_t>(op) >= t.size()) {
    a->err = dup("unknown op " + std::to_string(op));
    return;
  }
  bool handle_op = t[op].handle;
  std::string msg;
  try {
    t[op].fn(c);
    a->nout = c.nout;
    a->ndout = c.ndout;
    a->niout = c.niout;
    return;
  } catch (const c10::Error& e) {
    msg = e.what_without_backtrace();
  } catch (const std::exception& e) {
    msg = e.what();
  } catch (...) {
    msg = "unknown C++ exception";
  }
  if (!handle_op) {
    for (int64_t i = 0; i < c.nout; i++) lt_tensor_free(a->out[i]);
  }
  a->nout = 0;
  a->ndout = 0;
  a->niout = 0;
  if (a->sout != nullptr) {
    std::free(a->sout);
    a->sout = nullptr;
  }
  a->err = dup(handle_op ? msg : failure(c, msg.c_str()));
}

// lt_from_data copies nbytes of little-endian data of the given dtype and
// shape into a new CPU tensor (*out); on failure *err holds the message.
LT_API void lt_from_data(const void* data, int64_t nbytes, int64_t dtype, const int64_t* shape, int64_t ndim,
                         void** out, char** err) {
  *err = nullptr;
  try {
    at::ScalarType st = scalar_type(dtype);
    std::vector<int64_t> dims(shape, shape + ndim);
    int64_t numel = 1;
    int64_t want = 0;
    for (auto d : dims) {
      if (d < 0) throw std::invalid_argument("negative dimension in shape");
      if (__builtin_mul_overflow(numel, d, &numel)) throw std::invalid_argument("shape too large");
    }
    if (__builtin_mul_overflow(numel, static_cast<int64_t>(c10::elementSize(st)), &want)) {
      throw std::invalid_argument("shape too large");
    }
    if (want != nbytes) {
      std::ostringstream o;
      o << "shape " << at::IntArrayRef(dims) << " of " << dtype_name(st) << " needs " << want << " bytes, got "
        << nbytes;
      throw std::invalid_argument(o.str());
    }
    at::Tensor t = at::empty(dims, at::TensorOptions().dtype(st));
    if (nbytes > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(nbytes));
    *out = new at::Tensor(std::move(t));
    g_live.fetch_add(1, std::memory_order_relaxed);
  } catch (const c10::Error& e) {
    *err = dup(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = dup(e.what());
  } catch (...) {
    *err = dup("unknown C++ exception");
  }
}

// lt_to_data converts t to dtype on the CPU and copies its nbytes into dst;
// on failure *err holds the message.
LT_API void lt_to_data(void* t, int64_t dtype, void* dst, int64_t nbytes, char** err) {
  *err = nullptr;
  try {
    const at::Tensor& src = *static_cast<at::Tensor*>(t);
    at::Tensor c = src.detach().to(at::kCPU, scalar_type(dtype)).contiguous();
    int64_t have = c.numel() * static_cast<int64_t>(c.element_size());
    if (have != nbytes) {
      throw std::invalid_argument("tensor " + describe(src) + " has " + std::to_string(have) +
                                  " bytes, destination " + std::to_string(nbytes));
    }
    if (nbytes > 0) std::memcpy(dst, c.data_ptr(), static_cast<size_t>(nbytes));
  } catch (const c10::Error& e) {
    *err = dup(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = dup(e.what());
  } catch (...) {
    *err = dup("unknown C++ exception");
  }
}
