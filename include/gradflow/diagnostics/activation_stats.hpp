#pragma once
/// \file
/// Activation statistics of a layer: mean, spread, saturated and dead units.

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "gradflow/config.hpp"
#include "gradflow/core/error.hpp"
#include "gradflow/core/tape.hpp"

namespace gradflow::diag {

/// Which nonlinearity produced the values, which decides what "saturated" means.
enum class ActivationKind { Identity, Tanh, Sigmoid, ReLU };

/// "tanh", "Tanh", "sigmoid", "ReLU", "relu", "identity", ... (case-insensitive; a layer's
/// type_name() or an op name) to ActivationKind; throws ArgumentError for anything else.
inline ActivationKind activation_kind_from_name(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (n == "tanh") return ActivationKind::Tanh;
  if (n == "sigmoid") return ActivationKind::Sigmoid;
  if (n == "relu") return ActivationKind::ReLU;
  if (n == "identity" || n == "linear" || n == "none") return ActivationKind::Identity;
  throw ArgumentError("activation_kind_from_name: unknown activation '" + name + "'");
}

/// Name of an ActivationKind ("tanh", "sigmoid", "relu", "identity").
inline const char* to_string(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::Tanh:
      return "tanh";
    case ActivationKind::Sigmoid:
      return "sigmoid";
    case ActivationKind::ReLU:
      return "relu";
    default:
      return "identity";
  }
}

/// Thresholds of activation_stats(), with the defaults the issue asks for.
struct ActivationStatsOptions {
  double tanh_saturation = 0.97;  ///< tanh unit saturated when |h| > this (tanh' < 0.06)
  double sigmoid_low = 0.03;      ///< sigmoid unit saturated when h < this ...
  double sigmoid_high = 0.97;     ///< ... or h > this (sigmoid' < 0.03)

  ActivationStatsOptions& set_tanh_saturation(double v) { return tanh_saturation = v, *this; }
  ActivationStatsOptions& set_sigmoid_range(double lo, double hi) {
    sigmoid_low = lo;
    sigmoid_high = hi;
    return *this;
  }
};

/// What activation_stats() measured on one [batch x units] value.
struct ActivationStats {
  ActivationKind kind = ActivationKind::Identity;
  Index samples = 0;    ///< rows
  Index units = 0;      ///< columns
  double mean = 0.0;    ///< over all elements
  double stddev = 0.0;  ///< population standard deviation over all elements
  /// Fraction of elements in the flat region of tanh / sigmoid (0 for other kinds).
  double saturated_fraction = 0.0;
  /// Fraction of units (columns) that are exactly 0 for every sample of the batch: a dead
  /// ReLU passes no gradient to its weights. Measured for every kind.
  double dead_fraction = 0.0;
  Index dead_units = 0;
};

/// Statistics of the activations `values` ([batch x units], one row per sample, as every
/// layer here outputs) produced by a `kind` nonlinearity.
///
/// Saturated tanh elements (|h| > 0.97) and sigmoid elements (h outside [0.03, 0.97]) have
/// a derivative below about 0.06 and 0.03, so the gradient through them nearly stops;
/// a dead ReLU unit (0 for every sample) passes none at all.
/// \code
///   Var<float> h = tanh(matmul_nt(x, tape.param(w)));
///   diag::ActivationStats s = diag::activation_stats(h, diag::ActivationKind::Tanh);
///   if (s.saturated_fraction > 0.5) ...
/// \endcode
/// Maths: mean = (1/N) sum h, stddev = sqrt((1/N) sum (h - mean)^2), N = batch * units.
template <typename Derived>
ActivationStats activation_stats(const Eigen::MatrixBase<Derived>& values, ActivationKind kind,
                                 const ActivationStatsOptions& options = {}) {
  ActivationStats s;
  s.kind = kind;
  s.samples = values.rows();
  s.units = values.cols();
  if (values.size() == 0) return s;
  const double n = static_cast<double>(values.size());
  // Thresholds compare in the values' own type: float's -0.97f lies just above 0.97 in double.
  using S = typename Derived::Scalar;
  const auto v = values.array();
  const auto wide = v.template cast<double>();
  s.mean = wide.sum() / n;
  s.stddev = std::sqrt((wide - s.mean).square().sum() / n);
  Index saturated = 0;
  if (kind == ActivationKind::Tanh) saturated = (v.abs() > S(options.tanh_saturation)).count();
  if (kind == ActivationKind::Sigmoid)
    saturated = ((v < S(options.sigmoid_low)) || (v > S(options.sigmoid_high))).count();
  s.dead_units = (v == S(0)).colwise().all().count();
  s.saturated_fraction = static_cast<double>(saturated) / n;
  s.dead_fraction = static_cast<double>(s.dead_units) / static_cast<double>(s.units);
  return s;
}

/// activation_stats() of a recorded value (its forward value).
template <typename T>
ActivationStats activation_stats(const Var<T>& value, ActivationKind kind,
                                 const ActivationStatsOptions& options = {}) {
  return activation_stats(value.value(), kind, options);
}

}  // namespace gradflow::diag
