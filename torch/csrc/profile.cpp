// profile.cpp: libtorch's own profiler (Kineto), to learn where a run's time
// goes: the host's time per ATen op and, on CUDA, the card's time per
// kernel. A timing says how long the work took; on a GPU it cannot say
// whether the card or the host launching its kernels was the bound, and the
// answer decides what to speed up next.
//
// The profiler follows the thread that starts it (and autograd's threads,
// which inherit its state), so it is started and stopped on the worker's
// thread. Its events come back as text, one per line: the device (0 the
// host, 1 a GPU), the thread, the start and the duration in nanoseconds and
// the name, separated by tabs; Go makes the summary.
//
// The code is compiled with LAVASCOPE_PROFILER, which scripts/build-torch.sh
// defines when this file compiles with it against the libtorch at hand;
// otherwise the ops say the profiler is off.

#include "shim.h"

#if defined(LAVASCOPE_PROFILER)
#include <torch/csrc/autograd/profiler_kineto.h>

#include <set>
#endif

namespace lt {
namespace {

#if defined(LAVASCOPE_PROFILER)

namespace prof = torch::autograd::profiler;
namespace impl = torch::profiler::impl;

// Event times are in nanoseconds from libtorch 2.1 on, in microseconds
// before: the overload that compiles picks the one the headers have.
template <class E>
auto start_ns(const E& e, int) -> decltype(static_cast<int64_t>(e.startNs())) {
  return static_cast<int64_t>(e.startNs());
}
template <class E>
int64_t start_ns(const E& e, long) {
  return static_cast<int64_t>(e.startUs()) * 1000;
}
template <class E>
auto duration_ns(const E& e, int) -> decltype(static_cast<int64_t>(e.durationNs())) {
  return static_cast<int64_t>(e.durationNs());
}
template <class E>
int64_t duration_ns(const E& e, long) {
  return static_cast<int64_t>(e.durationUs()) * 1000;
}

bool g_running = false;

impl::ProfilerConfig config() { return impl::ProfilerConfig(impl::ProfilerState::KINETO); }

std::set<impl::ActivityType> activities(bool cuda) {
  std::set<impl::ActivityType> a{impl::ActivityType::CPU};
  if (cuda) a.insert(impl::ActivityType::CUDA);
  return a;
}

void begin(bool cuda) {
  if (g_running) throw std::runtime_error("the profiler is already running");
  auto acts = activities(cuda);
  prof::prepareProfiler(config(), acts);
  prof::enableProfiler(config(), acts);
  g_running = true;
}

std::string end() {
  if (!g_running) throw std::runtime_error("the profiler is not running");
  g_running = false;
  std::unique_ptr<prof::ProfilerResult> r = prof::disableProfiler();
  std::ostringstream out;
  if (!r) return out.str();
  for (const auto& e : r->events()) {
    std::string name = e.name();
    for (char& ch : name) {
      if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
    }
    out << (e.deviceType() == c10::DeviceType::CPU ? 0 : 1) << '\t' << e.startThreadId() << '\t' << start_ns(e, 0)
        << '\t' << duration_ns(e, 0) << '\t' << name << '\n';
  }
  return out.str();
}

#endif

}  // namespace

void add_profile_ops(OpTable& t) {
#if defined(LAVASCOPE_PROFILER)
  t.insert(t.end(), {
      {"profile_compiled", [](Ctx& c) { c.ret_i(1); }},
      // ints: 1 to record the GPU's kernels too.
      {"profile_begin", [](Ctx& c) { begin(c.b(0)); }},
      // sout: the events, a line each.
      {"profile_end", [](Ctx& c) { c.ret_s(end()); }},
  });
#else
  auto off = [](Ctx&) {
    throw std::runtime_error(std::string("the profiler is off in this shim: its headers did not compile (libtorch ") +
                             TORCH_VERSION + ")");
  };
  t.insert(t.end(), {
      {"profile_compiled", [](Ctx& c) { c.ret_i(0); }},
      {"profile_begin", off},
      {"profile_end", off},
  });
#endif
}

}  // namespace lt
