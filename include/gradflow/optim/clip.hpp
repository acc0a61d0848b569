#pragma once
/// \file
/// Gradient clipping by global norm and by value (torch.nn.utils.clip_grad_norm_ and
/// clip_grad_value_), the remedy for exploding gradients of Pascanu, Mikolov & Bengio 2013.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gradflow/core/error.hpp"
#include "gradflow/core/parameter.hpp"

namespace gradflow::optim {

/// The norm of all gradients taken together, (sum |g|^p)^(1/p) over every element of every
/// gradient: norm_type p = 2 by default, any p > 0 (below 1 not a norm, but PyTorch allows it),
/// or infinity for the largest magnitude.
template <typename T>
double total_grad_norm(const std::vector<Parameter<T>*>& params, double norm_type = 2.0) {
  if (!(norm_type > 0.0))
    throw ArgumentError("total_grad_norm: norm_type " + std::to_string(norm_type) +
                        " must be > 0 or infinity");
  double total = 0.0;
  const bool inf = std::isinf(norm_type);
  for (const Parameter<T>* p : params) {
    if (p->grad().size() == 0) continue;
    if (inf) {
      total = std::max(total, double(p->grad().cwiseAbs().maxCoeff()));
    } else if (norm_type == 2.0) {
      total += double(p->grad().squaredNorm());
    } else {
      total += double(p->grad().array().abs().pow(T(norm_type)).sum());
    }
  }
  if (inf) return total;
  return norm_type == 2.0 ? std::sqrt(total) : std::pow(total, 1.0 / norm_type);
}

/// Scales all gradients together so that their joint norm is at most max_norm and returns
/// the norm before clipping. As PyTorch: the factor is max_norm / (norm + 1e-6), applied
/// only when below 1. With error_if_nonfinite, a NaN or Inf norm throws instead
/// (otherwise the gradients become NaN, as in PyTorch).
/// \code
///   loss.backward();
///   double norm = optim::clip_grad_norm_(model.parameters(), 1.0);
///   opt.step();
/// \endcode
template <typename T>
double clip_grad_norm_(const std::vector<Parameter<T>*>& params, double max_norm,
                       double norm_type = 2.0, bool error_if_nonfinite = false) {
  if (!(max_norm >= 0.0))
    throw ArgumentError("clip_grad_norm_: max_norm " + std::to_string(max_norm) + " < 0");
  const double total = total_grad_norm(params, norm_type);
  if (!std::isfinite(total) && error_if_nonfinite)
    throw ArgumentError("clip_grad_norm_: the total norm of order " + std::to_string(norm_type) +
                        " of the gradients is non-finite (" + std::to_string(total) +
                        "), so it cannot be clipped");
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0 || std::isnan(coef))
    for (Parameter<T>* p : params) p->grad() *= T(coef);
  return total;
}

/// Clamps every gradient element to [-clip_value, clip_value].
template <typename T>
void clip_grad_value_(const std::vector<Parameter<T>*>& params, double clip_value) {
  if (!(clip_value >= 0.0))
    throw ArgumentError("clip_grad_value_: clip_value " + std::to_string(clip_value) + " < 0");
  const T v = T(clip_value);
  for (Parameter<T>* p : params) p->grad() = p->grad().cwiseMax(-v).cwiseMin(v);
}

}  // namespace gradflow::optim
