#include <catch2/catch.hpp>
#include <gradflow/core/ops/matmul.hpp>
#include <vector>

#include "core_test_util.hpp"

using namespace gradflow;
using Catch::Matchers::Contains;
using gradflow::test::probe;
using gradflow::test::require_gradcheck;
using gradflow::test::uniform_matrix;

TEST_CASE("matmul has correct values and gradients for all four transpose combinations",
          "[core][matmul]") {
  // op(A) is 3x4 and op(B) is 4x2 in every combination.
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      CAPTURE(ta, tb);
      const Matrix<double> a = ta ? uniform_matrix(4, 3, 21) : uniform_matrix(3, 4, 21);
      const Matrix<double> b = tb ? uniform_matrix(2, 4, 22) : uniform_matrix(4, 2, 22);
      const Matrix<double> opa = ta ? Matrix<double>(a.transpose()) : a;
      const Matrix<double> opb = tb ? Matrix<double>(b.transpose()) : b;
      Tape<double> tape;
      auto y = matmul(tape.constant(a), tape.constant(b), ta, tb);
      REQUIRE(y.rows() == 3);
      REQUIRE(y.cols() == 2);
      REQUIRE(y.value().isApprox(opa * opb));
      require_gradcheck(
          [ta = ta, tb = tb](Tape<double>&, const std::vector<Var<double>>& v) {
            return probe(matmul(v[0], v[1], ta, tb));
          },
          {a, b});
    }
  }
}

TEST_CASE("matmul_nt and matmul_tn transpose the right operand", "[core][matmul]") {
  Tape<double> tape;
  const Matrix<double> a = uniform_matrix(3, 4, 23), b = uniform_matrix(5, 4, 24);
  const Matrix<double> c = uniform_matrix(3, 5, 25);
  REQUIRE(matmul_nt(tape.constant(a), tape.constant(b)).value().isApprox(a * b.transpose()));
  REQUIRE(matmul_tn(tape.constant(a), tape.constant(c)).value().isApprox(a.transpose() * c));
}

TEST_CASE("matmul of a value with itself gets both gradient contributions", "[core][matmul]") {
  require_gradcheck(
      [](Tape<double>&, const std::vector<Var<double>>& v) {
        return probe(matmul(v[0], v[0], false, true));
      },
      {uniform_matrix(3, 3, 26)});
}

TEMPLATE_TEST_CASE("matmul gives the right values and gradients in float and double",
                   "[core][matmul][float]", float, double) {
  using T = TestType;
  Tape<T> tape;
  Matrix<T> av(1, 2), bv(2, 1);
  av << T(1), T(2);
  bv << T(3), T(-4);
  auto a = tape.variable(av), b = tape.variable(bv);
  auto y = matmul(a, b);
  REQUIRE(y.item() == Approx(-5.0));
  y.backward();
  REQUIRE(a.grad()(0, 0) == Approx(3.0));
  REQUIRE(a.grad()(0, 1) == Approx(-4.0));
  REQUIRE(b.grad()(0, 0) == Approx(1.0));
  REQUIRE(b.grad()(1, 0) == Approx(2.0));
}

TEST_CASE("matmul shape mismatches name the op and both shapes", "[core][matmul][errors]") {
  Tape<double> tape;
  auto a = tape.variable(Matrix<double>::Ones(2, 3));
  auto b = tape.variable(Matrix<double>::Ones(2, 4));
  REQUIRE_THROWS_AS(matmul(a, b), ShapeError);
  REQUIRE_THROWS_WITH(matmul(a, b), Contains("matmul") && Contains("[2x3]") && Contains("[2x4]"));
  // With a transpose the message shows the shapes as multiplied.
  REQUIRE_THROWS_WITH(matmul(a, a, false, false),
                      Contains("matmul") && Contains("[2x3] and [2x3]"));
  REQUIRE_THROWS_WITH(matmul(a, b, false, true),
                      Contains("[2x3] and [4x2]") && Contains("after transposes"));
  REQUIRE_NOTHROW(matmul(a, b, true, false));
}
