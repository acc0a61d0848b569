#include <catch2/catch.hpp>
#include <gradflow/core/ops/dropout.hpp>
#include <vector>

#include "core_test_util.hpp"

using namespace gradflow;
using gradflow::test::probe;
using gradflow::test::require_gradcheck;
using gradflow::test::uniform_matrix;

TEST_CASE("dropout zeroes elements with probability p and scales the rest by 1/(1-p)",
          "[core][dropout]") {
  Tape<double> tape;
  Generator gen(3);
  auto x = tape.constant(Matrix<double>::Ones(200, 100));
  auto y = dropout(x, 0.25, gen);
  Index zeros = 0;
  for (Index i = 0; i < y.size(); ++i) {
    const double v = y.value().data()[i];
    if (v == 0.0) {
      ++zeros;
    } else {
      REQUIRE(v == Approx(1.0 / 0.75));
    }
  }
  // 20000 Bernoulli(0.25) draws: the count is within 5 standard deviations (~61) of 5000.
  REQUIRE(zeros > 5000 - 310);
  REQUIRE(zeros < 5000 + 310);
  REQUIRE(y.value().mean() == Approx(1.0).epsilon(0.03));
}

TEST_CASE("dropout's gradient is the upstream gradient times its mask", "[core][dropout]") {
  require_gradcheck(
      [](Tape<double>&, const std::vector<Var<double>>& v) {
        Generator gen(9);  // the same mask for every evaluation
        return probe(square(dropout(v[0], 0.5, gen)));
      },
      {uniform_matrix(4, 5, 61)});

  Tape<double> tape;
  Generator gen(10);
  auto x = tape.variable(uniform_matrix(4, 5, 62));
  auto y = dropout(x, 0.5, gen);
  sum(y).backward();
  for (Index i = 0; i < x.size(); ++i)
    REQUIRE(x.grad().data()[i] == (y.value().data()[i] == 0.0 ? 0.0 : 2.0));
}

TEST_CASE("dropout with p = 0 is the identity and a bad p is rejected", "[core][dropout]") {
  Tape<double> tape;
  Generator gen(11);
  auto x = tape.variable(uniform_matrix(2, 2, 63));
  REQUIRE(dropout(x, 0.0, gen).value().isApprox(x.value()));
  REQUIRE_THROWS_AS(dropout(x, 1.0, gen), ArgumentError);
  REQUIRE_THROWS_AS(dropout(x, -0.1, gen), ArgumentError);
  REQUIRE_THROWS_WITH(dropout(x, 1.5, gen), Catch::Matchers::Contains("dropout"));
}

TEMPLATE_TEST_CASE("dropout masks are reproducible from the generator seed in float and double",
                   "[core][dropout][float]", float, double) {
  using T = TestType;
  Tape<T> tape;
  auto x = tape.constant(Matrix<T>::Ones(8, 8));
  Generator g1(5), g2(5), g3(6);
  auto a = dropout(x, 0.5, g1), b = dropout(x, 0.5, g2), c = dropout(x, 0.5, g3);
  REQUIRE(a.value() == b.value());
  REQUIRE_FALSE(a.value() == c.value());
}
