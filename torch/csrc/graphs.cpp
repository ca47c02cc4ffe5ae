// graphs.cpp: CUDA graphs. A piece of work of fixed shapes (one pair's
// relevance, one pair's scores) launches hundreds of small kernels; captured
// once in a CUDA graph it is replayed with one launch, and the host's cost
// per kernel is gone.
//
// Capture runs the work from Go as usual, op by op, on a side stream made
// current for the worker's thread; autograd's backward runs on the forward's
// stream, so it is captured too. The code needs libtorch ≥ 2 built with CUDA
// and is compiled only with LAVASCOPE_GRAPHS, which scripts/build-torch.sh
// defines when this file compiles with it against the libtorch at hand;
// otherwise every op says why graphs are off.

#include "shim.h"

#if defined(LAVASCOPE_GRAPHS)
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace lt {
namespace {

#if defined(LAVASCOPE_GRAPHS)

struct Graph {
  at::cuda::CUDAGraph graph;
  c10::DeviceIndex dev;
  c10::cuda::CUDAStream side;
  c10::cuda::CUDAStream prev;
  bool on_side = false;
  bool capturing = false;
  bool captured = false;

  explicit Graph(c10::DeviceIndex d)
      : dev(d), side(c10::cuda::getStreamFromPool(false, d)), prev(c10::cuda::getCurrentCUDAStream(d)) {}

  // enter makes the side stream current, after everything queued on the
  // current stream (the inputs being copied in).
  void enter() {
    if (on_side) return;
    prev = c10::cuda::getCurrentCUDAStream(dev);
    at::cuda::CUDAEvent ready;
    ready.record(prev);
    ready.block(side);
    c10::cuda::setCurrentCUDAStream(side);
    on_side = true;
  }

  // leave makes the previous stream current again, waiting for the side
  // stream's work.
  void leave() {
    if (!on_side) return;
    at::cuda::CUDAEvent done;
    done.record(side);
    done.block(prev);
    c10::cuda::setCurrentCUDAStream(prev);
    on_side = false;
  }
};

Graph* graph(Ctx& c) {
  if (c.a->nin < 1 || c.a->in[0] == nullptr) throw std::invalid_argument("nil CUDA graph");
  return static_cast<Graph*>(c.a->in[0]);
}

#else

[[noreturn]] void no_graphs() {
  throw std::runtime_error(std::string("CUDA graphs are off in this shim: they need libtorch 2 or later built with CUDA "
                                       "(this is libtorch ") +
                           TORCH_VERSION + ")");
}

#endif

}  // namespace

void add_graph_ops(OpTable& t) {
#if defined(LAVASCOPE_GRAPHS)
  t.push_back({"cuda_graphs_compiled", [](Ctx& c) { c.ret_i(1); }});
  size_t from = t.size();
  t.insert(t.end(), {
      // ints: device index. Returns the graph's handle.
      {"cuda_graph_new",
       [](Ctx& c) {
         check_cuda_index(c.i(0));
         c.ret_handle(new Graph(static_cast<c10::DeviceIndex>(c.i(0))));
       }},
      // ints: 1 to run on the graph's side stream (warm-up runs belong
      // there: libraries set up per stream), 0 to return.
      {"cuda_graph_stream",
       [](Ctx& c) {
         auto* g = graph(c);
         if (g->capturing) throw std::runtime_error("the graph is capturing");
         if (c.b(0)) {
           g->enter();
         } else {
           g->leave();
         }
       }},
      {"cuda_graph_capture_begin",
       [](Ctx& c) {
         auto* g = graph(c);
         if (g->captured || g->capturing) throw std::runtime_error("the graph has already been captured");
         g->enter();
         g->graph.capture_begin();
         g->capturing = true;
       }},
      // Ends the capture whatever happened during it; an error says why the
      // capture is unusable. The previous stream is current again after.
      {"cuda_graph_capture_end",
       [](Ctx& c) {
         auto* g = graph(c);
         if (!g->capturing) throw std::runtime_error("the graph is not capturing");
         g->capturing = false;
         std::string err;
         try {
           g->graph.capture_end();
           g->captured = true;
         } catch (const c10::Error& e) {
           err = e.what_without_backtrace();
         } catch (const std::exception& e) {
           err = e.what();
         }
         g->leave();
         if (!err.empty()) throw std::runtime_error("capturing the CUDA graph failed: " + err);
       }},
      {"cuda_graph_replay",
       [](Ctx& c) {
         auto* g = graph(c);
         if (!g->captured) throw std::runtime_error("the graph has not been captured");
         g->graph.replay();
       }},
      {"cuda_graph_free",
       [](Ctx& c) {
         auto* g = graph(c);
         if (g->capturing) {
           try {
             g->graph.capture_end();
           } catch (...) {
           }
         }
         g->leave();
         delete g;
       }},
  });
#else
  t.push_back({"cuda_graphs_compiled", [](Ctx& c) { c.ret_i(0); }});
  size_t from = t.size();
  t.insert(t.end(), {
      {"cuda_graph_new", [](Ctx&) { no_graphs(); }},
      {"cuda_graph_stream", [](Ctx&) { no_graphs(); }},
      {"cuda_graph_capture_begin", [](Ctx&) { no_graphs(); }},
      {"cuda_graph_capture_end", [](Ctx&) { no_graphs(); }},
      {"cuda_graph_replay", [](Ctx&) { no_graphs(); }},
      {"cuda_graph_free", [](Ctx&) { no_graphs(); }},
  });
#endif
  mark_handles(t, from);
}

}  // namespace lt
