#pragma once
/// \file
/// The per-step Jacobian bound of a tanh recurrence (Pascanu et al. 2013).

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "gradflow/config.hpp"
#include "gradflow/core/error.hpp"
#include "gradflow/diagnostics/spectral.hpp"

namespace gradflow::diag {

/// Derivative statistics of tanh over a set of hidden states (see tanh_derivative_stats()).
struct ActivationDerivativeStats {
  double mean = 0.0;  ///< mean over elements of f'(a)
  double max = 0.0;   ///< largest f'(a)
};

/// tanh'(a) = 1 - h^2 with h = tanh(a), averaged and maximised over all elements of `h`
/// (hidden states as recorded, any shape).
/// \code
///   auto d = diag::tanh_derivative_stats(h.value());   // d.mean < 1 once units saturate
/// \endcode
template <typename Derived>
ActivationDerivativeStats tanh_derivative_stats(const Eigen::MatrixBase<Derived>& h) {
  ActivationDerivativeStats s;
  if (h.size() == 0) return s;
  double sum = 0.0;
  for (Index c = 0; c < h.cols(); ++c)
    for (Index r = 0; r < h.rows(); ++r) {
      const double v = static_cast<double>(h(r, c));
      const double d = 1.0 - v * v;
      sum += d;
      s.max = std::max(s.max, d);
    }
  s.mean = sum / static_cast<double>(h.size());
  return s;
}

/// Bound on the per-step gradient factor of h_t = tanh(W h_{t-1} + U x_t + b):
/// ||dh_t / dh_{t-1}||_2 = ||diag(1 - h_t^2) W||_2 <= ||W||_2 * max|tanh'| (Pascanu,
/// Mikolov & Bengio 2013, "On the difficulty of training recurrent neural networks").
///
/// With the default `derivative` = 1 (the largest tanh' can be) it is a true bound: below 1
/// the gradient must shrink at least geometrically going back in time (vanishing); above 1
/// it can grow (necessary, not sufficient, for exploding). Pass the measured max of
/// tanh_derivative_stats() for a tighter bound on the steps seen, or its mean for an
/// estimate (no longer a bound) of the typical factor. Compare with the measured
/// HiddenGradientTrace::growth().backward_factor(). The same holds for W^T (row-vector
/// layout h_t = tanh(h_{t-1} W^T + ...)), whose spectral norm is the same.
/// \code
///   double bound = diag::tanh_step_bound(w);                          // ||W||_2
///   double typical = diag::tanh_step_bound(w, diag::tanh_derivative_stats(hs).mean);
/// \endcode
template <typename Derived>
double tanh_step_bound(const Eigen::MatrixBase<Derived>& w, double derivative = 1.0) {
  if (!(derivative >= 0.0))
    throw ArgumentError("tanh_step_bound: derivative must be >= 0, got " +
                        std::to_string(derivative));
  return spectral_norm(w) * derivative;
}

/// The bound on ||dL/dh_1|| / ||dL/dh_T|| that a per-step bound implies over `steps`
/// steps, for a loss on the last step only: step_bound^(steps - 1).
/// \code
///   diag::predicted_gradient_ratio(0.5, 30);   // 0.5^29 ~ 1.9e-9: vanishing
/// \endcode
inline double predicted_gradient_ratio(double step_bound, Index steps) {
  if (steps < 1) throw ArgumentError("predicted_gradient_ratio: steps must be >= 1");
  return std::pow(step_bound, static_cast<double>(steps - 1));
}

}  // namespace gradflow::diag
