// shim.h: what the shim's translation units share: the argument block of
// lt_call, the Ctx that reads and writes it, dtype and device codes, and the
// op table's type. Each .cpp adds its ops to the table (see ops() in
// shim.cpp); the names are what package torch looks up.

#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/api/include/torch/cuda.h>
#include <torch/csrc/api/include/torch/version.h>

#ifdef LAVASCOPE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <cuda_runtime_api.h>
#endif

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if TORCH_VERSION_MAJOR >= 2
#include <optional>
#define LT_NULLOPT std::nullopt
template <class T>
using lt_optional = std::optional<T>;
#else
#define LT_NULLOPT c10::nullopt
template <class T>
using lt_optional = c10::optional<T>;
#endif

#define LT_API extern "C" __attribute__((visibility("default")))

namespace lt {

// Tensors alive in the shim (handles not yet freed): the Go tests' leak check.
extern std::atomic<int64_t> g_live;


// Argument block, laid out exactly as package torch's frame struct.
struct Args {
  void** in;
  int64_t nin;
  const int64_t* ints;
  int64_t nints;
  const double* dbls;
  int64_t ndbls;
  void** out;
  int64_t nout;  // capacity on entry, count on return
  double* dout;
  int64_t ndout;  // capacity on entry, count on return
  int64_t* iout;
  int64_t niout;  // capacity on entry, count on return
  char* sout;     // owned string result, or null
  char* err;      // owned error message, or null on success
};

char* dup(const std::string& s);
// Dtype codes shared with package torch.
at::ScalarType scalar_type(int64_t code);
int64_t dtype_code(at::ScalarType t);
const char* dtype_name(at::ScalarType t);
// Device codes: type 0 = cpu, 1 = cuda; index -1 = the current device.
at::Device device(int64_t type, int64_t index);
// describe is a tensor as error messages show it: f32[2,3] cuda:0.
std::string describe(const at::Tensor& t);
// check_cuda_index throws unless cuda:dev exists.
void check_cuda_index(int64_t dev);
// scalar_for is v as a Scalar for an op on t: integral for integral t.
at::Scalar scalar_for(const at::Tensor& t, double v);

// Attention as F.scaled_dot_product_attention computes it, for libtorch 1.13,
// which has no public kernel. A bool mask marks the positions that take part.
at::Tensor sdpa_plain(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                      bool causal);

struct Ctx {
  Args* a;
  int64_t nout = 0;
  int64_t ndout = 0;
  int64_t niout = 0;

  int64_t n_in() const { return a->nin; }
  bool has(int64_t i) const { return i < a->nin && a->in[i] != nullptr; }
  const at::Tensor& t(int64_t i) const {
    if (i >= a->nin) throw std::invalid_argument("missing tensor operand " + std::to_string(i + 1));
    if (a->in[i] == nullptr) throw std::invalid_argument("tensor operand " + std::to_string(i + 1) + " is nil");
    return *static_cast<at::Tensor*>(a->in[i]);
  }
  lt_optional<at::Tensor> opt(int64_t i) const {
    if (!has(i)) return LT_NULLOPT;
    return t(i);
  }
  at::Tensor or_undef(int64_t i) const { return has(i) ? t(i) : at::Tensor(); }
  std::vector<at::Tensor> tensors(int64_t from, int64_t n) const {
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int64_t i = from; i < from + n; i++) v.push_back(t(i));
    return v;
  }
  std::vector<at::Tensor> tensors_or_undef(int64_t from, int64_t n) const {
    std::vector<at::Tensor> v;
    v.reserve(n);
    for (int64_t i = from; i < from + n; i++) v.push_back(or_undef(i));
    return v;
  }
  int64_t i(int64_t k) const {
    if (k >= a->nints) throw std::invalid_argument("missing integer argument " + std::to_string(k + 1));
    return a->ints[k];
  }
  bool b(int64_t k) const { return i(k) != 0; }
  double d(int64_t k) const {
    if (k >= a->ndbls) throw std::invalid_argument("missing float argument " + std::to_string(k + 1));
    return a->dbls[k];
  }
  at::IntArrayRef ints_from(int64_t k) const {
    if (k > a->nints) throw std::invalid_argument("missing integer list");
    return at::IntArrayRef(a->ints + k, static_cast<size_t>(a->nints - k));
  }
  at::IntArrayRef ints_range(int64_t k, int64_t n) const {
    if (k + n > a->nints) throw std::invalid_argument("missing integer list");
    return at::IntArrayRef(a->ints + k, static_cast<size_t>(n));
  }
  at::TensorOptions options(int64_t k) const {
    return at::TensorOptions().dtype(scalar_type(i(k))).device(device(i(k + 1), i(k + 2)));
  }

  void ret(at::Tensor t) {
    if (!t.defined()) throw std::runtime_error("result is undefined");
    if (nout >= a->nout) throw std::runtime_error("too many tensor results");
    a->out[nout++] = new at::Tensor(std::move(t));
    g_live.fetch_add(1, std::memory_order_relaxed);
  }
  void ret_handle(void* p) {
    if (nout >= a->nout) throw std::runtime_error("too many results");
    a->out[nout++] = p;
  }
  void ret_d(double v) {
    if (ndout >= a->ndout) throw std::runtime_error("too many float results");
    a->dout[ndout++] = v;
  }
  void ret_i(int64_t v) {
    if (niout >= a->niout) throw std::runtime_error("too many integer results");
    a->iout[niout++] = v;
  }
  void ret_s(const std::string& s) { a->sout = dup(s); }
};

using OpFn = void (*)(Ctx&);
// Op is one entry of the op table. A handle op takes a handle (an
// optimizer, a CUDA graph), not a tensor, as operand 0, or returns one: its
// failures describe no operand and free no result as a tensor.
struct Op {
  const char* name;
  OpFn fn;
  bool handle = false;
};
using OpTable = std::vector<Op>;

// mark_handles makes the ops of t from index from on handle ops.
inline void mark_handles(OpTable& t, size_t from) {
  for (size_t i = from; i < t.size(); i++) t[i].handle = true;
}

// The ops of optim.cpp (AdamW, gradient clipping), fused.cpp (encoder layer
// stacks, gradient-weighted rollout), graphs.cpp (CUDA graphs), profile.cpp
// (libtorch's profiler) and dist.cpp (c10d process groups).
void add_optim_ops(OpTable& t);
void add_fused_ops(OpTable& t);
void add_graph_ops(OpTable& t);
void add_profile_ops(OpTable& t);
void add_dist_ops(OpTable& t);

}  // namespace lt
