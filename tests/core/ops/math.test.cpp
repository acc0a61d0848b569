#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/core/ops/math.hpp>
#include <vector>

#include "core_test_util.hpp"

using namespace gradflow;
using gradflow::test::probe;
using gradflow::test::require_gradcheck;
using gradflow::test::uniform_matrix;

namespace {
using VarList = std::vector<Var<double>>;
}  // namespace

TEST_CASE("square has correct gradients", "[core][math]") {
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(square(v[0])); },
                    {uniform_matrix(3, 4, 11, -2.0, 2.0)});
}

TEST_CASE("sqrt has correct gradients", "[core][math]") {
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(sqrt(v[0])); },
                    {uniform_matrix(3, 4, 12, 0.3, 3.0)});
}

TEST_CASE("exp has correct gradients", "[core][math]") {
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(exp(v[0])); },
                    {uniform_matrix(3, 4, 13, -2.0, 2.0)});
}

TEST_CASE("log has correct gradients", "[core][math]") {
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(log(v[0])); },
                    {uniform_matrix(3, 4, 14, 0.3, 3.0)});
}

TEST_CASE("abs has correct gradients away from zero", "[core][math]") {
  Matrix<double> x = uniform_matrix(3, 4, 15, 0.2, 2.0);
  x(0, 0) = -x(0, 0);
  x(2, 1) = -x(2, 1);
  x(1, 3) = -x(1, 3);
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(abs(v[0])); }, {x});
}

TEST_CASE("pow has correct gradients for integer, fractional and negative exponents",
          "[core][math]") {
  for (double p : {3.0, 2.5, -1.5, 1.0}) {
    CAPTURE(p);
    require_gradcheck([p](Tape<double>&, const VarList& v) { return probe(pow(v[0], p)); },
                      {uniform_matrix(3, 4, 16, 0.3, 2.0)});
  }
  // An odd integer power of a negative base is defined.
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(pow(v[0], 3.0)); },
                    {uniform_matrix(3, 4, 17, -2.0, -0.3)});
}

TEST_CASE("pow with exponent zero has gradient zero even at x = 0, as PyTorch", "[core][math]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Zero(1, 2));
  auto y = sum(pow(x, 0.0));
  REQUIRE(y.item() == Approx(2.0));
  y.backward();
  REQUIRE(x.grad()(0, 0) == 0.0);
  REQUIRE(x.grad()(0, 1) == 0.0);
}

TEST_CASE("clamp has correct gradients inside and outside the bounds", "[core][math]") {
  Matrix<double> x(2, 3);
  x << -2.0, -0.3, 0.1, 0.5, 0.9, 3.0;
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(clamp(v[0], -0.5, 0.7)); },
                    {x});
}

TEST_CASE("clamp gives the bounds and passes the gradient at the bounds inclusive, as PyTorch",
          "[core][math][kink]") {
  Tape<double> tape;
  Matrix<double> xv(1, 5);
  xv << -1.0, -0.5, 0.2, 0.7, 1.0;
  auto x = tape.variable(xv);
  auto y = clamp(x, -0.5, 0.7);
  Matrix<double> expected(1, 5);
  expected << -0.5, -0.5, 0.2, 0.7, 0.7;
  REQUIRE(y.value().isApprox(expected));
  sum(y).backward();
  Matrix<double> grad(1, 5);
  grad << 0.0, 1.0, 1.0, 1.0, 0.0;
  REQUIRE(x.grad().isApprox(grad));
}

TEST_CASE("clamp rejects a lower bound above the upper bound", "[core][math][errors]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Ones(1, 1));
  REQUIRE_THROWS_AS(clamp(x, 1.0, -1.0), ArgumentError);
  REQUIRE_THROWS_WITH(clamp(x, 1.0, -1.0), Catch::Matchers::Contains("clamp"));
}

TEST_CASE("abs has gradient zero at exactly zero, as PyTorch", "[core][math][kink]") {
  Tape<double> tape;
  Matrix<double> xv(1, 3);
  xv << -2.0, 0.0, 3.0;
  auto x = tape.variable(xv);
  sum(abs(x)).backward();
  REQUIRE(x.grad()(0, 0) == -1.0);
  REQUIRE(x.grad()(0, 1) == 0.0);
  REQUIRE(x.grad()(0, 2) == 1.0);
}

TEMPLATE_TEST_CASE("Elementwise maths gives the right values and gradients in float and double",
                   "[core][math][float]", float, double) {
  using T = TestType;
  const double tol = gradflow::test::tolerance<T>();
  Tape<T> tape;
  Matrix<T> xv(1, 2);
  xv << T(0.5), T(2);
  auto x = tape.variable(xv);
  auto y = square(x) + sqrt(x) + exp(x) + log(x) + abs(x) + pow(x, T(3)) + clamp(x, T(0), T(1));
  for (Index c = 0; c < 2; ++c) {
    const double v = static_cast<double>(xv(0, c));
    const double expected =
        v * v + std::sqrt(v) + std::exp(v) + std::log(v) + v + v * v * v + std::min(v, 1.0);
    REQUIRE(y.value()(0, c) == Approx(expected).epsilon(tol));
  }
  sum(y).backward();
  for (Index c = 0; c < 2; ++c) {
    const double v = static_cast<double>(xv(0, c));
    const double expected =
        2 * v + 0.5 / std::sqrt(v) + std::exp(v) + 1 / v + 1 + 3 * v * v + (v <= 1.0 ? 1.0 : 0.0);
    REQUIRE(x.grad()(0, c) == Approx(expected).epsilon(tol));
  }
}
