#pragma once
/// \file
/// gradcheck: compares tape gradients with central finite differences.

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "gradflow/core/tape.hpp"

namespace gradflow::diag {

/// Result of gradcheck(): the worst disagreement between the tape's gradient and the
/// finite-difference one, and where it is.
struct GradCheckReport {
  bool passed = true;
  double max_abs_error = 0.0;
  /// max over elements of |analytic - numeric| / max(|analytic|, |numeric|, 1).
  double max_rel_error = 0.0;
  std::size_t worst_input = 0;  ///< which input holds the worst element
  Index worst_row = 0, worst_col = 0;
  double worst_analytic = 0.0, worst_numeric = 0.0;

  /// One line for a test failure message.
  std::string summary() const {
    std::ostringstream s;
    s << (passed ? "passed" : "FAILED") << ": max relative error " << max_rel_error << " at input "
      << worst_input << " (" << worst_row << ", " << worst_col << "): analytic " << worst_analytic
      << " vs numeric " << worst_numeric;
    return s.str();
  }
};

/// Options of gradcheck(). Defaults suit double precision.
struct GradCheckOptions {
  double step = 1e-6;       ///< finite-difference step h
  double tolerance = 1e-6;  ///< pass when max_rel_error <= tolerance
};

/// Checks d f / d inputs, where `f(tape, vars)` builds a [1x1] value from Vars made of
/// `inputs`, against (f(x + h) - f(x - h)) / 2h for every element of every input.
/// \code
///   auto report = diag::gradcheck<double>(
///       [](Tape<double>&, const std::vector<Var<double>>& v) { return sum(tanh(v[0])); },
///       {Matrix<double>::Random(3, 4)});
///   REQUIRE(report.passed);
/// \endcode
template <typename T>
GradCheckReport gradcheck(const std::function<Var<T>(Tape<T>&, const std::vector<Var<T>>&)>& f,
                          std::vector<Matrix<T>> inputs, GradCheckOptions options = {}) {
  Tape<T> tape;
  auto evaluate = [&](bool differentiate, std::vector<Matrix<T>>* grads) {
    tape.clear();
    std::vector<Var<T>> vars;
    for (const Matrix<T>& m : inputs) vars.push_back(tape.variable(m));
    Var<T> out = f(tape, vars);
    if (out.rows() != 1 || out.cols() != 1)
      throw ShapeError("gradcheck: function must return [1x1], got " +
                       gradflow::detail::shape_str(out.rows(), out.cols()));
    const T value = out.item();
    if (differentiate) {
      tape.backward(out);
      for (const Var<T>& v : vars) grads->push_back(Matrix<T>(v.grad()));
    }
    return static_cast<double>(value);
  };

  std::vector<Matrix<T>> analytic;
  evaluate(true, &analytic);

  GradCheckReport report;
  const T h = static_cast<T>(options.step);
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    for (Index c = 0; c < inputs[k].cols(); ++c) {
      for (Index r = 0; r < inputs[k].rows(); ++r) {
        const T saved = inputs[k](r, c);
        inputs[k](r, c) = saved + h;
        const double up = evaluate(false, nullptr);
        inputs[k](r, c) = saved - h;
        const double down = evaluate(false, nullptr);
        inputs[k](r, c) = saved;
        const double numeric = (up - down) / (2.0 * static_cast<double>(h));
        const double a = static_cast<double>(analytic[k](r, c));
        const double abs_err = std::abs(a - numeric);
        const double rel_err = abs_err / std::max({std::abs(a), std::abs(numeric), 1.0});
        report.max_abs_error = std::max(report.max_abs_error, abs_err);
        if (rel_err > report.max_rel_error || !std::isfinite(rel_err)) {
          report.max_rel_error = rel_err;
          report.worst_input = k;
          report.worst_row = r;
          report.worst_col = c;
          report.worst_analytic = a;
          report.worst_numeric = numeric;
        }
      }
    }
  }
  report.passed = std::isfinite(report.max_rel_error) && report.max_rel_error <= options.tolerance;
  return report;
}

}  // namespace gradflow::diag
