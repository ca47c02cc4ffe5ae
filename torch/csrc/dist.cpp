// dist.cpp: PyTorch's distributed engine (c10d) for several processes that
// train or evaluate together: a TCP store for the rendezvous (rank 0 serves
// it), a Gloo process group on the CPU and, where the libtorch has CUDA and
// NCCL, an NCCL one; all-reduce, broadcast, all-gather and barrier. No
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
  });
  mark_handles(t, from);
#endif
}

}  // namespace lt
