#pragma once
/// \file
/// fit_growth(): the per-step growth factor of a sequence of gradient norms.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gradflow/config.hpp"
#include "gradflow/core/error.hpp"

namespace gradflow::diag {

/// Least-squares fit log ||g_t|| ~ intercept + slope * t (see fit_growth()).
///
/// A geometric sequence ||g_t|| = c r^t gives slope = log r, so factor() = r exactly.
struct GrowthFit {
  double slope = std::numeric_limits<double>::quiet_NaN();      ///< d log||g_t|| / dt
  double intercept = std::numeric_limits<double>::quiet_NaN();  ///< fitted log||g_0||
  /// Coefficient of determination of the fit in log space (1 = exactly geometric).
  double r_squared = std::numeric_limits<double>::quiet_NaN();
  Index points = 0;  ///< norms that entered the fit (finite and > 0)

  /// Per-step factor exp(slope): ||g_{t+1}|| / ||g_t|| on average.
  double factor() const { return std::exp(slope); }
  /// exp(-slope) = 1 / factor(): how much the norm is multiplied per step as the gradient
  /// travels backward from t to t-1. This is the number to compare with the bound
  /// ||dh_t / dh_{t-1}|| <= ||W|| max|f'| (tanh_step_bound()).
  double backward_factor() const { return std::exp(-slope); }
  /// At least two points entered the fit.
  bool valid() const { return points >= 2; }
};

/// Fits log norms[i] = intercept + slope * x[i] by least squares.
///
/// Entries that are zero, negative or not finite have no logarithm and are skipped (a
/// gradient that underflowed to 0 is below any line anyway). Fewer than two usable points
/// give a fit with NaN slope and valid() false.
/// \code
///   std::vector<double> x = {0, 1, 2, 3}, n = {8, 4, 2, 1};
///   diag::GrowthFit f = diag::fit_growth(x, n);   // f.factor() == 0.5
/// \endcode
/// Maths: with u_i = log n_i, slope = sum (x_i - xbar)(u_i - ubar) / sum (x_i - xbar)^2,
/// intercept = ubar - slope xbar, R^2 = 1 - SS_res / SS_tot (1 when SS_tot = 0).
inline GrowthFit fit_growth(const std::vector<double>& x, const std::vector<double>& norms) {
  if (x.size() != norms.size())
    throw ArgumentError("fit_growth: " + std::to_string(x.size()) + " positions for " +
                        std::to_string(norms.size()) + " norms");
  std::vector<double> xs, us;
  for (std::size_t i = 0; i < norms.size(); ++i) {
    if (std::isfinite(norms[i]) && norms[i] > 0.0 && std::isfinite(x[i])) {
      xs.push_back(x[i]);
      us.push_back(std::log(norms[i]));
    }
  }
  GrowthFit fit;
  fit.points = static_cast<Index>(xs.size());
  if (xs.size() < 2) return fit;
  const double n = static_cast<double>(xs.size());
  double xbar = 0.0, ubar = 0.0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    xbar += xs[i];
    ubar += us[i];
  }
  xbar /= n;
  ubar /= n;
  double sxx = 0.0, sxu = 0.0, suu = 0.0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    sxx += (xs[i] - xbar) * (xs[i] - xbar);
    sxu += (xs[i] - xbar) * (us[i] - ubar);
    suu += (us[i] - ubar) * (us[i] - ubar);
  }
  if (sxx <= 0.0) {  // every point at the same x: no slope
    fit.points = 1;
    return fit;
  }
  fit.slope = sxu / sxx;
  fit.intercept = ubar - fit.slope * xbar;
  const double ss_res = std::max(0.0, suu - fit.slope * sxu);
  fit.r_squared = suu > 0.0 ? 1.0 - ss_res / suu : 1.0;
  return fit;
}

/// fit_growth() with x = 0, 1, 2, ...: norms[t] is the norm at step t.
/// \code
///   diag::GrowthFit f = diag::fit_growth({1.0, 1.5, 2.25, 3.375});   // f.factor() == 1.5
/// \endcode
inline GrowthFit fit_growth(const std::vector<double>& norms) {
  std::vector<double> x(norms.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  return fit_growth(x, norms);
}

}  // namespace gradflow::diag
