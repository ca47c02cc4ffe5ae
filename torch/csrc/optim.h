// optim.h: the AdamW state that optim.cpp updates and graphs.cpp steps
// inside a CUDA graph.

#pragma once

#include "shim.h"

namespace lt {

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

  void step();
  // step_count is parameter i's steps taken: the device's count where the
  // fused kernel keeps one (graphed steps do not pass through the host).
  int64_t step_count(size_t i) const;
  // params_with_grad lists the parameters that have a gradient.
  std::vector<size_t> params_with_grad() const;
};

// adamw is the optimizer handle, operand 0 of every adamw_ op.
AdamW* adamw(Ctx& c);


}  // namespace lt
