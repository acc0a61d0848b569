#pragma once
/// \file
/// Spectral norm and spectral radius of a weight matrix.

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "gradflow/config.hpp"
#include "gradflow/core/error.hpp"
#include "gradflow/core/random.hpp"

namespace gradflow::diag {

/// Largest singular value ||W||_2 = max_{|v|=1} |W v| = sqrt(lambda_max(W^T W)).
///
/// Computed in double with Eigen's JacobiSVD (exact up to rounding). It bounds the growth
/// of any vector through W, and is what tanh_step_bound() uses. An empty matrix gives 0, a
/// matrix with a NaN or Inf gives NaN.
/// \code
///   double s = diag::spectral_norm(rnn.weight_hh(0).value());
/// \endcode
template <typename Derived>
double spectral_norm(const Eigen::MatrixBase<Derived>& w) {
  if (w.size() == 0) return 0.0;
  const Eigen::MatrixXd m = w.template cast<double>();
  if (!m.allFinite()) return std::numeric_limits<double>::quiet_NaN();
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(m);  // singular values only, sorted descending
  return svd.singularValues()(0);
}

/// Spectral radius rho(W) = max_i |lambda_i(W)| of a square matrix.
///
/// Computed in double with Eigen's EigenSolver (real Schur form, so complex pairs of a
/// general real matrix count with their modulus). rho(W) <= ||W||_2 always; for a normal
/// matrix (symmetric, orthogonal) they are equal. By Gelfand's formula ||W^k||^(1/k) -> rho,
/// so rho is the long-run per-step factor of a linear recurrence h_t = W h_{t-1}, while
/// ||W||_2 bounds every single step. Throws ShapeError for a non-square matrix (an LSTM's
/// stacked [4H x H] W_hh has no eigenvalues: take a gate's H x H block).
/// \code
///   Matrix<double> r(2, 2);
///   r << 0, -1, 1, 0;                       // rotation by 90 degrees: eigenvalues +-i
///   diag::spectral_radius(r);               // 1
/// \endcode
template <typename Derived>
double spectral_radius(const Eigen::MatrixBase<Derived>& w) {
  if (w.rows() != w.cols())
    throw ShapeError("spectral_radius: matrix " + gradflow::detail::shape_str(w.rows(), w.cols()) +
                     " is not square");
  if (w.size() == 0) return 0.0;
  const Eigen::MatrixXd m = w.template cast<double>();
  if (!m.allFinite()) return std::numeric_limits<double>::quiet_NaN();
  Eigen::EigenSolver<Eigen::MatrixXd> solver(m, /*computeEigenvectors=*/false);
  if (solver.info() != Eigen::Success)
    throw Error("spectral_radius: the eigenvalue iteration did not converge");
  return solver.eigenvalues().cwiseAbs().maxCoeff();
}

/// Options of spectral_norm_power_iteration().
struct PowerIterationOptions {
  /// Stop when the estimate changes by at most tolerance * estimate between iterations.
  /// The error left is about tolerance / (1 - (s2/s1)^2), s1 > s2 the top singular values:
  /// small when they are well separated, larger when they are close.
  double tolerance = 1e-10;
  int max_iterations = 1000;
  std::uint64_t seed = 7;  ///< of the random start vector

  PowerIterationOptions& set_tolerance(double v) { return tolerance = v, *this; }
  PowerIterationOptions& set_max_iterations(int v) { return max_iterations = v, *this; }
};

/// Result of spectral_norm_power_iteration().
struct PowerIterationResult {
  double value = 0.0;  ///< estimate of ||W||_2 (from below: |W v| with |v| = 1)
  int iterations = 0;
  bool converged = false;
};

/// ||W||_2 by power iteration on W^T W: v <- W^T W v / |W^T W v|, estimate |W v|.
///
/// Cheaper than spectral_norm() for large matrices (two matrix-vector products per
/// iteration) and what spectral-norm regularisation uses; spectral_norm() is exact.
/// \code
///   auto r = diag::spectral_norm_power_iteration(
///       w, diag::PowerIterationOptions().set_tolerance(1e-8));
/// \endcode
template <typename Derived>
PowerIterationResult spectral_norm_power_iteration(const Eigen::MatrixBase<Derived>& w,
                                                   const PowerIterationOptions& options = {}) {
  PowerIterationResult result;
  if (w.size() == 0) {
    result.converged = true;
    return result;
  }
  const Eigen::MatrixXd m = w.template cast<double>();
  if (!m.allFinite()) {
    result.value = std::numeric_limits<double>::quiet_NaN();
    return result;
  }
  Generator gen(options.seed);
  Eigen::VectorXd v(m.cols());
  for (Index i = 0; i < v.size(); ++i) v(i) = gen.normal();
  v.normalize();
  double estimate = 0.0;
  for (int k = 1; k <= options.max_iterations; ++k) {
    const Eigen::VectorXd u = m * v;
    const double next = u.norm();
    result.iterations = k;
    if (next == 0.0) {  // v in the null space (or W = 0)
      result.value = 0.0;
      result.converged = m.isZero(0.0);
      if (!result.converged) {  // restart from another direction
        for (Index i = 0; i < v.size(); ++i) v(i) = gen.normal();
        v.normalize();
        continue;
      }
      return result;
    }
    const bool done = std::abs(next - estimate) <= options.tolerance * next;
    estimate = next;
    result.value = estimate;
    if (done) {
      result.converged = true;
      return result;
    }
    v = m.transpose() * u;
    v /= v.norm();
  }
  return result;
}

/// Both spectral quantities of one (recurrent) weight matrix.
struct SpectralSummary {
  double spectral_norm = 0.0;                                         ///< ||W||_2
  double spectral_radius = std::numeric_limits<double>::quiet_NaN();  ///< NaN if not square
};

/// spectral_norm() and, for a square matrix, spectral_radius().
template <typename Derived>
SpectralSummary spectral_summary(const Eigen::MatrixBase<Derived>& w) {
  SpectralSummary s;
  s.spectral_norm = spectral_norm(w);
  if (w.rows() == w.cols()) s.spectral_radius = spectral_radius(w);
  return s;
}

}  // namespace gradflow::diag
