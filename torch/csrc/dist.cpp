// dist.cpp: PyTorch's distributed engine (c10d) for several processes that
// train or evaluate together: a TCP store for the rendezvous (rank 0 serves
// it), a Gloo process group on the CPU and, where the libtorch has CUDA and
// NCCL, an NCCL one; all-reduce, broadcast, all-gather, barrier and the
// gradient reducer that overlaps all-reduce with the backward pass. No
// transport of our own: a run talks to torchrun-launched PyTorch processes'
// conventions (MASTER_ADDR, MASTER_PORT) and its bytes go through c10d.
//
// Gloo is compiled with LAVASCOPE_GLOO (its headers come from libgloo-dev or
// the PyTorch wheel), NCCL with LAVASCOPE_NCCL (a CUDA libtorch);
// scripts/build-torch.sh tries them and, should the headers not compile,
// builds this file without them, and the ops then say distributed is off.

#include "shim.h"

#if defined(LAVASCOPE_GLOO) || defined(LAVASCOPE_NCCL)
#define LT_DIST 1
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#if defined(LAVASCOPE_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(LAVASCOPE_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <mutex>
#include <string>
#endif

namespace lt {
namespace {

#if defined(LT_DIST)

constexpr int64_t kGloo = 0;
constexpr int64_t kNCCL = 1;

// Since PyTorch 2.0 the Gloo and NCCL groups are c10d::Backends (a
// ProcessGroup wraps one or more); in 1.x they are ProcessGroups. Both have
// the same collectives.
#if TORCH_VERSION_MAJOR >= 2
using PGBase = c10d::Backend;
#else
using PGBase = c10d::ProcessGroup;
#endif

// no_libuv asks for the TCP store's classic event loop where the options
// have the choice (PyTorch ≥ 2.2 defaults to libuv, which some libtorch
// builds, Debian's among them, lack); the protocol on the wire is the same.
template <typename T>
auto no_libuv(T& o, int) -> decltype(o.useLibUV = false, void()) {
  o.useLibUV = false;
}
template <typename T>
void no_libuv(T&, long) {}

// Group is one process's membership: the store must outlive the group,
// which keeps using it to exchange addresses and errors.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PGBase> pg;
  int64_t rank = 0;
  int64_t world = 1;
};

Group* group(Ctx& c) {
  if (c.n_in() < 1 || c.a->in[0] == nullptr) throw std::invalid_argument("process group is nil");
  return static_cast<Group*>(c.a->in[0]);
}

// text reads a string passed as its length then one byte per int, from
// integer k on; k is moved past it.
std::string text(Ctx& c, int64_t& k) {
  int64_t n = c.i(k++);
  if (n < 0 || n > 4096) throw std::invalid_argument("string of " + std::to_string(n) + " bytes");
  std::string s;
  s.reserve(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; j++) {
    int64_t b = c.i(k++);
    if (b < 1 || b > 255) throw std::invalid_argument("string byte " + std::to_string(b));
    s.push_back(static_cast<char>(b));
  }
  return s;
}

// ints: rank, world, port, backend, timeout in ms, whether torchrun's agent
// serves the store (1) or rank 0 does (0), then the master's host
// and the Gloo device (text): "host:ADDR" binds Gloo to ADDR, "iface:NAME"
// to that interface, "" lets Gloo pick from the hostname.
Group* make(Ctx& c) {
  int64_t rank = c.i(0), world = c.i(1), port = c.i(2), backend = c.i(3), timeout_ms = c.i(4);
  if (world < 1 || rank < 0 || rank >= world) {
    throw std::invalid_argument("rank " + std::to_string(rank) + " is not in a world of " + std::to_string(world));
  }
  if (port < 1 || port > 65535) throw std::invalid_argument("port " + std::to_string(port) + " is not in 1..65535");
  if (timeout_ms < 1) throw std::invalid_argument("timeout must be positive");
  bool agent_store = c.i(5) != 0;
  int64_t k = 6;
  std::string host = text(c, k);
  std::string dev = text(c, k);
  std::chrono::milliseconds timeout(timeout_ms);

  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  // Rank 0 serves the store, as torch.distributed's env:// does, unless
  // torchrun's agent already serves it on that port.
  so.isServer = rank == 0 && !agent_store;
  no_libuv(so, 0);
  so.numWorkers = static_cast<std::size_t>(world);
  so.waitWorkers = true;
  so.timeout = timeout;
  auto g = std::make_unique<Group>();
  g->rank = rank;
  g->world = world;
  g->store = c10::make_intrusive<c10d::TCPStore>(host, so);

  if (backend == kGloo) {
#if defined(LAVASCOPE_GLOO)
    auto o = c10d::ProcessGroupGloo::Options::create(timeout);
    if (dev.rfind("host:", 0) == 0) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(dev.substr(5)));
    } else if (dev.rfind("iface:", 0) == 0) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(dev.substr(6)));
    } else {
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, static_cast<int>(rank), static_cast<int>(world), o);
#else
    throw std::runtime_error(std::string("this shim has no Gloo: its headers did not compile (libtorch ") +
                             TORCH_VERSION + "; install libgloo-dev and rebuild)");
#endif
  } else if (backend == kNCCL) {
#if defined(LAVASCOPE_NCCL)
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, static_cast<int>(rank), static_cast<int>(world), o);
#else
    throw std::runtime_error(std::string("this shim has no NCCL (libtorch ") + TORCH_VERSION +
                             " without CUDA and NCCL, or its headers did not compile)");
#endif
  } else {
    throw std::invalid_argument("unknown backend " + std::to_string(backend));
  }
  return g.release();
}

void check_tensors(const std::vector<at::Tensor>& ts) {
  for (size_t i = 0; i < ts.size(); i++) {
    if (!ts[i].defined()) throw std::invalid_argument("tensor " + std::to_string(i) + " is undefined");
  }
}

// all_reduce sums (or averages) ts across the ranks in place. Consecutive
// tensors of one dtype and device are flattened into buckets of at most
// bucket_bytes (a larger tensor goes alone): one collective per bucket
// instead of per tensor, since each costs a round trip whatever its size.
// All buckets are sent before the first is awaited, so their transfers
// overlap one another.
void all_reduce(Group& g, const std::vector<at::Tensor>& ts, bool avg, int64_t bucket_bytes) {
  check_tensors(ts);
  at::NoGradGuard no_grad;
  struct Bucket {
    size_t from, to;
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> bs;
  for (size_t i = 0; i < ts.size();) {
    size_t j = i;
    int64_t bytes = 0;
    while (j < ts.size() && ts[j].scalar_type() == ts[i].scalar_type() && ts[j].device() == ts[i].device()) {
      int64_t nb = ts[j].numel() * static_cast<int64_t>(ts[j].element_size());
      if (j > i && bytes + nb > bucket_bytes) break;
      bytes += nb;
      j++;
    }
    std::vector<at::Tensor> parts;
    for (size_t k = i; k < j; k++) parts.push_back(ts[k].reshape({-1}));
    bs.push_back(Bucket{i, j, parts.size() == 1 ? parts[0].clone() : at::cat(parts), {}});
    i = j;
  }
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp(c10d::ReduceOp::SUM);
  for (auto& b : bs) {
    std::vector<at::Tensor> v{b.flat};
    b.work = g.pg->allreduce(v, o);
  }
  for (auto& b : bs) {
    b.work->wait();
    if (avg) b.flat.div_(static_cast<double>(g.world));
    int64_t off = 0;
    for (size_t k = b.from; k < b.to; k++) {
      int64_t n = ts[k].numel();
      const_cast<at::Tensor&>(ts[k]).copy_(b.flat.narrow(0, off, n).view(ts[k].sizes()));
      off += n;
    }
  }
}

// Reducer sums the gradients of a fixed list of parameters over the ranks
// while the backward pass is still running, the way DDP's Reducer does:
// the parameters are grouped into buckets in reverse order (backward
// produces the last layers' gradients first), a hook on each parameter
// copies its gradient into its bucket's flat buffer, and the moment a
// bucket is complete its all-reduce is launched asynchronously. finish()
// launches what is left, waits for every bucket and writes the sums back
// into the .grad of the parameters.
//
// The hook is Tensor::register_hook on the parameter (libtorch 1.13 and
// 2.x alike): it fires once per backward with the gradient about to be
// accumulated, not the accumulated one (the post-accumulate hooks are
// 2.1+ only), so it adds a .grad already present itself. Buckets are
// launched strictly in their order, whatever order the hooks fire in,
// since every rank must issue its collectives in the same order.
//
// A parameter whose hook did not fire in a step (unused by this rank's
// graph) is sent as zeros at finish(), so no rank waits for a gradient
// that never comes. Each bucket also carries one flag per parameter, 1
// where this rank produced its gradient: summed, the flags say whether any
// rank did, and a parameter no rank touched keeps no .grad, as it would in
// one process (AdamW then skips it instead of decaying it).
struct Reducer {
  struct Bucket {
    std::vector<size_t> params;  // indices into Reducer::params
    at::Tensor flat;             // the gradients, then one flag per parameter
    int64_t grads = 0;           // elements before the flags
    size_t pending = 0;          // hooks not yet fired this step
    c10::intrusive_ptr<c10d::Work> work;
  };
  c10::intrusive_ptr<PGBase> pg;
  int64_t world = 1;
  bool avg = false;
  std::vector<at::Tensor> params;
  std::vector<size_t> bucket_of;   // per parameter
  std::vector<int64_t> offset_of;  // per parameter, in its bucket
  std::vector<size_t> slot_of;     // per parameter, its place in its bucket
  std::vector<char> ready;         // per parameter, this step
  std::vector<unsigned> hooks;
  std::vector<Bucket> buckets;
  size_t next = 0;  // the first bucket not launched
  bool armed = false;
  // Hooks run on autograd's device thread on CUDA, the caller's on the CPU.
  std::mutex mu;

  ~Reducer() {
    drain();
    for (size_t i = 0; i < hooks.size(); i++) params[i].remove_hook(hooks[i]);
  }

  at::Tensor slice(size_t i) {
    auto& b = buckets[bucket_of[i]];
    return b.flat.narrow(0, offset_of[i], params[i].numel()).view(params[i].sizes());
  }
  at::Tensor flag(size_t i) {
    auto& b = buckets[bucket_of[i]];
    return b.flat.narrow(0, b.grads + static_cast<int64_t>(slot_of[i]), 1);
  }

  void launch(Bucket& b) {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp(c10d::ReduceOp::SUM);
    std::vector<at::Tensor> v{b.flat};
    b.work = pg->allreduce(v, o);
  }
  void launch_ready() {
    while (next < buckets.size() && buckets[next].pending == 0) launch(buckets[next++]);
  }

  // drain waits for transfers still running (after a failed step) so that
  // their buffers are not reused or freed under them.
  void drain() {
    for (auto& b : buckets) {
      if (!b.work) continue;
      try {
        b.work->wait();
      } catch (...) {
      }
      b.work.reset();
    }
  }

  void hook(size_t i, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;
    if (ready[i]) {
      throw std::runtime_error("parameter " + std::to_string(i) +
                               " got a second gradient in one step; a data-parallel step has one backward pass");
    }
    at::NoGradGuard no_grad;
    at::Tensor s = slice(i);
    s.copy_(grad);
    const at::Tensor& acc = params[i].grad();
    if (acc.defined()) s.add_(acc);
    flag(i).fill_(1);
    ready[i] = 1;
    buckets[bucket_of[i]].pending--;
    launch_ready();
  }

  void prepare() {
    std::lock_guard<std::mutex> lock(mu);
    drain();
    std::fill(ready.begin(), ready.end(), 0);
    for (auto& b : buckets) b.pending = b.params.size();
    next = 0;
    armed = true;
  }

  // finish returns how many buckets the backward pass launched: those
  // whose transfer overlapped it.
  size_t finish() {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) throw std::runtime_error("gradient reducer: finish without prepare");
    armed = false;
    size_t early = next;
    at::NoGradGuard no_grad;
    // What the hooks did not see: a .grad from before the step, or none.
    for (size_t i = 0; i < params.size(); i++) {
      if (ready[i]) continue;
      const at::Tensor& acc = params[i].grad();
      if (acc.defined()) {
        slice(i).copy_(acc);
        flag(i).fill_(1);
      } else {
        slice(i).zero_();
        flag(i).fill_(0);
      }
    }
    for (auto& b : buckets) b.pending = 0;
    launch_ready();
    for (auto& b : buckets) {
      b.work->wait();
      b.work.reset();
      at::Tensor flags = b.flat.narrow(0, b.grads, static_cast<int64_t>(b.params.size())).to(at::kCPU, at::kDouble);
      auto fa = flags.accessor<double, 1>();
      if (avg) b.flat.narrow(0, 0, b.grads).div_(static_cast<double>(world));
      for (size_t k = 0; k < b.params.size(); k++) {
        size_t i = b.params[k];
        at::Tensor& g = params[i].mutable_grad();
        if (fa[static_cast<int64_t>(k)] == 0) {
          g.reset();
        } else if (g.defined()) {
          g.copy_(slice(i));
        } else {
          g = slice(i).clone();
        }
      }
    }
    return early;
  }
};

// make_reducer: buckets of at most bucket_bytes of one dtype and device
// (a larger parameter goes alone), filled from the last parameter back.
Reducer* make_reducer(Group& g, const std::vector<at::Tensor>& ps, int64_t bucket_bytes, bool avg) {
  check_tensors(ps);
  if (ps.empty()) throw std::invalid_argument("no parameters");
  if (bucket_bytes < 1) throw std::invalid_argument("bucket of " + std::to_string(bucket_bytes) + " bytes");
  for (size_t i = 0; i < ps.size(); i++) {
    if (!ps[i].is_leaf() || !ps[i].requires_grad()) {
      throw std::invalid_argument("parameter " + std::to_string(i) + " (" + describe(ps[i]) +
                                  ") is not a leaf that requires grad");
    }
    for (size_t j = 0; j < i; j++) {
      if (ps[j].is_same(ps[i])) throw std::invalid_argument("parameter " + std::to_string(i) + " is given twice");
    }
  }
  auto r = std::make_unique<Reducer>();
  r->pg = g.pg;
  r->world = g.world;
  r->avg = avg;
  r->params = ps;
  size_t n = ps.size();
  r->bucket_of.assign(n, 0);
  r->offset_of.assign(n, 0);
  r->slot_of.assign(n, 0);
  r->ready.assign(n, 0);
  int64_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const auto& p = ps[k];
    int64_t nb = p.numel() * static_cast<int64_t>(p.element_size());
    bool fresh = r->buckets.empty();
    if (!fresh) {
      const auto& first = ps[r->buckets.back().params[0]];
      fresh = first.scalar_type() != p.scalar_type() || first.device() != p.device() || bytes + nb > bucket_bytes;
    }
    if (fresh) {
      r->buckets.emplace_back();
      bytes = 0;
    }
    auto& b = r->buckets.back();
    r->bucket_of[k] = r->buckets.size() - 1;
    r->offset_of[k] = b.grads;
    r->slot_of[k] = b.params.size();
    b.params.push_back(k);
    b.grads += p.numel();
    bytes += nb;
  }
  for (auto& b : r->buckets) {
    const auto& p = ps[b.params[0]];
    b.flat = at::zeros({b.grads + static_cast<int64_t>(b.params.size())}, p.options().requires_grad(false));
  }
  Reducer* raw = r.get();
  for (size_t i = 0; i < n; i++) {
    r->hooks.push_back(ps[i].register_hook([raw, i](const at::Tensor& grad) { raw->hook(i, grad); }));
  }
  return r.release();
}

Reducer* reducer(Ctx& c) {
  if (c.n_in() < 1 || c.a->in[0] == nullptr) throw std::invalid_argument("gradient reducer is nil");
  return static_cast<Reducer*>(c.a->in[0]);
}

void broadcast(Group& g, const std::vector<at::Tensor>& ts, int64_t root) {
  check_tensors(ts);
  if (root < 0 || root >= g.world) throw std::invalid_argument("root " + std::to_string(root) + " is not a rank");
  at::NoGradGuard no_grad;
  c10d::BroadcastOptions o;
  o.rootRank = root;
  for (const auto& t : ts) {
    // c10d writes into its operand: a non-contiguous one goes through a copy.
    at::Tensor buf = t.is_contiguous() ? t : t.contiguous();
    std::vector<at::Tensor> v{buf};
    g.pg->broadcast(v, o)->wait();
    if (!buf.is_same(t)) const_cast<at::Tensor&>(t).copy_(buf);
  }
}

// all_gather concatenates every rank's t along dim 0, rank by rank; the
// ranks' tensors may differ in dim 0 (a pair may have more than two
// readings), not in the others. With keep_grad this rank's part is t
// itself, so a loss over the whole gets a gradient into t (the others'
// parts are constants), as open_clip's gather with local_loss=False.
at::Tensor all_gather(Group& g, const at::Tensor& t, bool keep_grad) {
  if (!t.defined()) throw std::invalid_argument("tensor is undefined");
  if (t.dim() < 1) throw std::invalid_argument("all-gather needs at least one dimension, got " + describe(t));
  std::vector<at::Tensor> parts;
  {
    at::NoGradGuard no_grad;
    // c10d gathers equal shapes: first the lengths, then every part padded
    // to the longest.
    std::vector<at::Tensor> nin{at::full({1}, t.size(0), t.options().dtype(at::kLong))};
    std::vector<std::vector<at::Tensor>> nout(1);
    for (int64_t r = 0; r < g.world; r++) nout[0].push_back(at::empty_like(nin[0]));
    g.pg->allgather(nout, nin)->wait();
    std::vector<int64_t> lens;
    int64_t longest = 0;
    for (const auto& n : nout[0]) {
      lens.push_back(n.item<int64_t>());
      longest = std::max(longest, lens.back());
    }
    at::Tensor local = t.detach().contiguous();
    if (local.size(0) < longest) {
      std::vector<int64_t> pad(local.sizes().begin(), local.sizes().end());
      pad[0] = longest - local.size(0);
      local = at::cat({local, at::zeros(pad, local.options())}, 0);
    }
    std::vector<at::Tensor> in{local};
    std::vector<std::vector<at::Tensor>> out(1);
    for (int64_t r = 0; r < g.world; r++) out[0].push_back(at::empty_like(local));
    g.pg->allgather(out, in)->wait();
    for (int64_t r = 0; r < g.world; r++) {
      if (out[0][r].sizes().slice(1) != t.sizes().slice(1)) {
        throw std::invalid_argument("rank " + std::to_string(r) + " gathers " + describe(out[0][r]) + ", this rank " +
                                    describe(t));
      }
      parts.push_back(out[0][r].narrow(0, 0, lens[static_cast<size_t>(r)]));
    }
  }
  if (keep_grad) parts[static_cast<size_t>(g.rank)] = t;
  return at::cat(parts, 0);
}

#endif

}  // namespace

void add_dist_ops(OpTable& t) {
#if defined(LT_DIST)
  t.insert(t.end(), {
      // iout: Gloo compiled, NCCL compiled (1 or 0).
      {"dist_backends",
       [](Ctx& c) {
#if defined(LAVASCOPE_GLOO)
         c.ret_i(1);
#else
         c.ret_i(0);
#endif
#if defined(LAVASCOPE_NCCL)
         c.ret_i(1);
#else
         c.ret_i(0);
#endif
       }},
  });
  size_t from = t.size();
  t.insert(t.end(), {
      {"dist_new", [](Ctx& c) { c.ret_handle(make(c)); }},
      {"dist_free", [](Ctx& c) { delete group(c); }},
      // in: group, tensors; ints: 1 to average, bucket bytes.
      {"dist_all_reduce", [](Ctx& c) { all_reduce(*group(c), c.tensors(1, c.n_in() - 1), c.b(0), c.i(1)); }},
      // in: group, tensors; ints: root rank.
      {"dist_broadcast", [](Ctx& c) { broadcast(*group(c), c.tensors(1, c.n_in() - 1), c.i(0)); }},
      // in: group, tensor; ints: 1 to keep this rank's gradient.
      {"dist_all_gather", [](Ctx& c) { c.ret(all_gather(*group(c), c.t(1), c.b(0))); }},
      {"dist_barrier", [](Ctx& c) { group(c)->pg->barrier()->wait(); }},
      // in: group, parameters; ints: bucket bytes, 1 to average. iout: the
      // number of buckets, then each parameter's bucket.
      {"dist_reducer_new",
       [](Ctx& c) {
         Reducer* r = make_reducer(*group(c), c.tensors(1, c.n_in() - 1), c.i(0), c.b(1));
         c.ret_handle(r);
         c.ret_i(static_cast<int64_t>(r->buckets.size()));
         for (size_t b : r->bucket_of) c.ret_i(static_cast<int64_t>(b));
       }},
      {"dist_reducer_free", [](Ctx& c) { delete reducer(c); }},
      {"dist_reducer_prepare", [](Ctx& c) { reducer(c)->prepare(); }},
      // iout: the buckets launched during the backward pass.
      {"dist_reducer_finish", [](Ctx& c) { c.ret_i(static_cast<int64_t>(reducer(c)->finish())); }},
  });
  mark_handles(t, from);
#else
  auto off = [](Ctx&) {
    throw std::runtime_error(std::string("distributed is off in this shim: the c10d headers did not compile (libtorch ") +
                             TORCH_VERSION + "; install libgloo-dev and rebuild)");
  };
  t.insert(t.end(), {
      {"dist_backends",
       [](Ctx& c) {
         c.ret_i(0);
         c.ret_i(0);
       }},
  });
  size_t from = t.size();
  t.insert(t.end(), {
      {"dist_new", off},
      {"dist_free", off},
      {"dist_all_reduce", off},
      {"dist_broadcast", off},
      {"dist_all_gather", off},
      {"dist_barrier", off},
      {"dist_reducer_new", off},
      {"dist_reducer_free", off},
      {"dist_reducer_prepare", off},
      {"dist_reducer_finish", off},
  });
  mark_handles(t, from);
#endif
}

}  // namespace lt
