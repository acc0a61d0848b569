#pragma once
/// \file
/// Verdict: is the gradient vanishing, exploding or healthy?

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "gradflow/diagnostics/gradient_monitor.hpp"
#include "gradflow/diagnostics/hidden_trace.hpp"

namespace gradflow::diag {

/// The three answers of verdict().
enum class GradientHealth { Healthy, Vanishing, Exploding };

/// "healthy", "vanishing", "exploding".
inline const char* to_string(GradientHealth h) {
  switch (h) {
    case GradientHealth::Vanishing:
      return "vanishing";
    case GradientHealth::Exploding:
      return "exploding";
    default:
      return "healthy";
  }
}

/// Thresholds of verdict(). The ratio compared is "far from the loss" over "next to the
/// loss": first layer / last layer of a feed-forward network, ||dL/dh_1|| / ||dL/dh_T|| of
/// a recurrence.
///
/// Defaults: three orders of magnitude either way. For a network of depth (or length) n
/// the ratio is about q^(n-1) for a per-layer factor q, so 1e-3 over 20 layers means
/// q < 0.7 and over 100 steps q < 0.93: enough that the far end learns a thousand times
/// slower, which is when plain SGD visibly stalls there.
struct VerdictOptions {
  double vanishing_ratio = 1e-3;  ///< Vanishing when ratio < this
  double exploding_ratio = 1e3;   ///< Exploding when ratio > this
  /// Also Exploding when any layer's (or step's) gradient norm exceeds this (default: off).
  double max_grad_norm = std::numeric_limits<double>::infinity();

  VerdictOptions& set_vanishing_ratio(double v) { return vanishing_ratio = v, *this; }
  VerdictOptions& set_exploding_ratio(double v) { return exploding_ratio = v, *this; }
  VerdictOptions& set_max_grad_norm(double v) { return max_grad_norm = v, *this; }
};

/// A verdict with the evidence behind it.
struct Verdict {
  GradientHealth health = GradientHealth::Healthy;
  double ratio = std::numeric_limits<double>::quiet_NaN();  ///< far / near gradient norm
  std::string reason;                                       ///< one readable sentence

  bool healthy() const { return health == GradientHealth::Healthy; }
  bool vanishing() const { return health == GradientHealth::Vanishing; }
  bool exploding() const { return health == GradientHealth::Exploding; }
};

/// Verdict on a sequence of gradient norms ordered from the loss's far end to its near end
/// (first layer ... last layer, or dL/dh_1 ... dL/dh_T):
///  - Exploding if any norm is NaN or Inf, or above options.max_grad_norm, or
///    norms.front() / norms.back() > options.exploding_ratio;
///  - Vanishing if that ratio < options.vanishing_ratio (also when every norm is 0);
///  - Healthy otherwise (and for fewer than two norms, which have no ratio).
/// `what` names the ends in the reason ("layer" or "step").
/// \code
///   diag::Verdict v = diag::verdict_from_norms({1e-6, 1e-3, 1.0});   // vanishing, 1e-6
/// \endcode
inline Verdict verdict_from_norms(const std::vector<double>& norms,
                                  const VerdictOptions& options = {},
                                  const std::vector<std::string>& names = {}) {
  Verdict v;
  auto name = [&](std::size_t i) { return i < names.size() ? names[i] : "#" + std::to_string(i); };
  std::ostringstream why;
  for (std::size_t i = 0; i < norms.size(); ++i) {
    if (!std::isfinite(norms[i])) {
      v.health = GradientHealth::Exploding;
      why << "non-finite gradient norm (" << norms[i] << ") at " << name(i);
      v.reason = why.str();
      return v;
    }
  }
  for (std::size_t i = 0; i < norms.size(); ++i) {
    if (norms[i] > options.max_grad_norm) {
      v.health = GradientHealth::Exploding;
      why << "gradient norm " << norms[i] << " at " << name(i) << " exceeds "
          << options.max_grad_norm;
      v.reason = why.str();
      return v;
    }
  }
  if (norms.size() < 2) {
    v.reason = "fewer than two norms: no ratio to judge";
    return v;
  }
  const double first = norms.front(), last = norms.back();
  if (first == 0.0 && last == 0.0) {
    v.health = GradientHealth::Vanishing;
    v.ratio = 0.0;
    v.reason = "gradient is exactly zero at both " + name(0) + " and " + name(norms.size() - 1);
    return v;
  }
  v.ratio = last > 0.0 ? first / last : std::numeric_limits<double>::infinity();
  why << "||g|| at " << name(0) << " / at " << name(norms.size() - 1) << " = " << v.ratio;
  if (v.ratio < options.vanishing_ratio) {
    v.health = GradientHealth::Vanishing;
    why << " < " << options.vanishing_ratio;
  } else if (v.ratio > options.exploding_ratio) {
    v.health = GradientHealth::Exploding;
    why << " > " << options.exploding_ratio;
  } else {
    why << " within [" << options.vanishing_ratio << ", " << options.exploding_ratio << "]";
  }
  v.reason = why.str();
  return v;
}

/// Verdict on one backward pass of a layered network: first-layer gradient norm over
/// last-layer norm (layers in the snapshot's order, i.e. registration order), and
/// Exploding for any non-finite parameter gradient.
/// \code
///   diag::Verdict v = diag::verdict(monitor.record(step));
///   if (!v.healthy()) std::cerr << to_string(v.health) << ": " << v.reason << '\n';
/// \endcode
inline Verdict verdict(const GradientSnapshot& snapshot, const VerdictOptions& options = {}) {
  std::vector<double> norms;
  std::vector<std::string> names;
  for (const LayerGradStats& l : snapshot.layers) {
    norms.push_back(l.finite ? l.grad_norm : std::numeric_limits<double>::quiet_NaN());
    names.push_back("layer '" + l.layer + "'");
  }
  return verdict_from_norms(norms, options, names);
}

/// Verdict on one layer-direction of a recurrence: ||dL/dh_1|| / ||dL/dh_T|| in run order
/// (HiddenGradientTrace::first_last_ratio()), Exploding for a non-finite step. Steps never
/// recorded (NaN gaps) are ignored.
/// \code
///   diag::Verdict v = diag::verdict(trace);   // layer 0, direction 0
/// \endcode
template <typename T>
Verdict verdict(const HiddenGradientTrace<T>& trace, const VerdictOptions& options = {},
                Index layer = 0, Index direction = 0) {
  const HiddenGradientSeries& series = trace.at(layer, direction);
  const std::size_t steps = series.norms.size();
  std::vector<double> norms;
  std::vector<std::string> names;
  for (std::size_t k = 0; k < steps; ++k) {
    const std::size_t t = direction % 2 == 1 ? steps - 1 - k : k;
    if (!series.recorded[t]) continue;
    norms.push_back(series.norms[t]);
    names.push_back("t=" + std::to_string(t));
  }
  return verdict_from_norms(norms, options, names);
}

}  // namespace gradflow::diag
