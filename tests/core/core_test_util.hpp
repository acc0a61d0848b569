#pragma once
// Shared helpers of the core test suite: deterministic inputs and a gradcheck wrapper.

#include <catch2/catch.hpp>
#include <functional>
#include <gradflow/core/ops/elementwise.hpp>
#include <gradflow/core/ops/reduce.hpp>
#include <gradflow/core/random.hpp>
#include <gradflow/core/tape.hpp>
#include <gradflow/diagnostics/grad_check.hpp>
#include <utility>
#include <vector>

namespace gradflow::test {

using Fn = std::function<Var<double>(Tape<double>&, const std::vector<Var<double>>&)>;

/// rows x cols of uniform draws in [lo, hi), the same for the same seed.
template <typename T = double>
Matrix<T> uniform_matrix(Index rows, Index cols, std::uint64_t seed, double lo = -1.0,
                         double hi = 1.0) {
  Generator gen(seed);
  Matrix<T> m(rows, cols);
  for (Index c = 0; c < cols; ++c)
    for (Index r = 0; r < rows; ++r) m(r, c) = static_cast<T>(gen.uniform(lo, hi));
  return m;
}

/// Reduces y to a scalar that depends on every element with a different weight, so a
/// gradcheck sees the whole Jacobian (a plain sum would hide errors in ops like softmax,
/// whose rows always sum to one).
template <typename T>
Var<T> probe(Var<T> y) {
  Tape<T>& t = y.tape();
  Var<T> w = t.constant(uniform_matrix<T>(y.rows(), y.cols(), 977, 0.5, 1.5), "probe_weights");
  return sum(mul(y, w));
}

/// Runs diag::gradcheck in double precision and fails the test with its summary.
inline void require_gradcheck(const Fn& f, std::vector<Matrix<double>> inputs,
                              double tolerance = 1e-6) {
  diag::GradCheckOptions options;
  options.tolerance = tolerance;
  const diag::GradCheckReport report = diag::gradcheck<double>(f, std::move(inputs), options);
  INFO(report.summary());
  REQUIRE(report.passed);
}

/// Tolerance for forward values computed in T.
template <typename T>
constexpr double tolerance() {
  return sizeof(T) == sizeof(float) ? 1e-5 : 1e-12;
}

}  // namespace gradflow::test
