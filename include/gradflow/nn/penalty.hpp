#pragma once
/// \file
/// L1 and L2 weight penalties to add to a loss.

#include <string>
#include <vector>

#include "gradflow/core/ops/elementwise.hpp"
#include "gradflow/core/ops/math.hpp"
#include "gradflow/core/ops/reduce.hpp"

namespace gradflow::detail {
template <typename T, typename Term>
Var<T> weight_penalty(const char* who, Tape<T>& tape, const std::vector<Parameter<T>*>& params,
                      double coefficient, Term term) {
  if (!(coefficient >= 0.0))
    throw ArgumentError(std::string(who) + ": coefficient " + std::to_string(coefficient) +
                        " must be non-negative");
  Var<T> total;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (params[i] == nullptr)
      throw ArgumentError(std::string(who) + ": parameter " + std::to_string(i) + " is null");
    Var<T> s = sum(term(tape.param(*params[i])));
    total = total.valid() ? add(total, s) : s;
  }
  if (!total.valid()) return tape.scalar(T(0));
  return mul_scalar(total, static_cast<T>(coefficient));
}
}  // namespace gradflow::detail

namespace gradflow::nn {

/// lambda * sum_p sum_ij |p_ij| over the chosen parameters (lasso; drives weights to
/// exactly zero). Add it to the loss: `loss = loss + nn::l1_penalty(tape, {&w}, 1e-4)`.
/// Backward: dp = lambda sign(p).
template <typename T>
Var<T> l1_penalty(Tape<T>& tape, const std::vector<Parameter<T>*>& params, double lambda) {
  return gradflow::detail::weight_penalty("l1_penalty", tape, params, lambda,
                                          [](Var<T> p) { return abs(p); });
}

/// lambda * sum_p sum_ij p_ij^2 over the chosen parameters (ridge / Tikhonov).
/// Backward: dp = 2 lambda p, so lambda = wd / 2 matches an optimizer's weight_decay wd.
/// \code
///   std::vector<Parameter<double>*> weights;
///   for (auto& [name, p] : net.named_parameters())
///     if (name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0)
///       weights.push_back(p);                                  // no penalty on biases
///   Var<double> loss = nn::mse_loss(net(x), y) + nn::l2_penalty(tape, weights, 1e-4);
/// \endcode
template <typename T>
Var<T> l2_penalty(Tape<T>& tape, const std::vector<Parameter<T>*>& params, double lambda) {
  return gradflow::detail::weight_penalty("l2_penalty", tape, params, lambda,
                                          [](Var<T> p) { return square(p); });
}

}  // namespace gradflow::nn
