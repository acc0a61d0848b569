#include <catch2/catch.hpp>
#include <gradflow/core/ops/elementwise.hpp>
#include <gradflow/core/ops/reduce.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core_test_util.hpp"

using namespace gradflow;
using Catch::Matchers::Contains;
using gradflow::test::probe;
using gradflow::test::require_gradcheck;
using gradflow::test::uniform_matrix;

namespace {

using Shape = std::pair<Index, Index>;

// Same shape, then [1xN] row, [Bx1] column and [1x1] scalar broadcasting on either side,
// and a column against a row (both sides broadcast).
const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{3, 4}, {3, 4}}, {{3, 4}, {1, 4}}, {{1, 4}, {3, 4}}, {{3, 4}, {3, 1}},
    {{3, 1}, {3, 4}}, {{3, 4}, {1, 1}}, {{1, 1}, {3, 4}}, {{3, 1}, {1, 4}}};

using BinaryOp = Var<double> (*)(Var<double>, Var<double>);

void gradcheck_binary(BinaryOp op, double b_lo, double b_hi) {
  for (const auto& [sa, sb] : kShapePairs) {
    CAPTURE(sa.first, sa.second, sb.first, sb.second);
    require_gradcheck(
        [op](Tape<double>&, const std::vector<Var<double>>& v) { return probe(op(v[0], v[1])); },
        {uniform_matrix(sa.first, sa.second, 1),
         uniform_matrix(sb.first, sb.second, 2, b_lo, b_hi)});
  }
}

// Reference: the broadcast operand expanded by hand.
Matrix<double> expand_to(const Matrix<double>& m, Index rows, Index cols) {
  Matrix<double> out(rows, cols);
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < cols; ++c) out(r, c) = m(m.rows() == 1 ? 0 : r, m.cols() == 1 ? 0 : c);
  return out;
}

}  // namespace

TEST_CASE("add has correct gradients for equal shapes and every broadcast", "[core][elementwise]") {
  gradcheck_binary([](Var<double> a, Var<double> b) { return add(a, b); }, -1.0, 1.0);
}

TEST_CASE("sub has correct gradients for equal shapes and every broadcast", "[core][elementwise]") {
  gradcheck_binary([](Var<double> a, Var<double> b) { return sub(a, b); }, -1.0, 1.0);
}

TEST_CASE("mul has correct gradients for equal shapes and every broadcast", "[core][elementwise]") {
  gradcheck_binary([](Var<double> a, Var<double> b) { return mul(a, b); }, -1.0, 1.0);
}

TEST_CASE("div has correct gradients for equal shapes and every broadcast", "[core][elementwise]") {
  gradcheck_binary([](Var<double> a, Var<double> b) { return div(a, b); }, 0.5, 2.0);
}

TEST_CASE("Broadcast ops compute the values of the expanded operands", "[core][elementwise]") {
  for (const auto& [sa, sb] : kShapePairs) {
    CAPTURE(sa.first, sa.second, sb.first, sb.second);
    const Matrix<double> a = uniform_matrix(sa.first, sa.second, 3);
    const Matrix<double> b = uniform_matrix(sb.first, sb.second, 4, 0.5, 2.0);
    const Index rows = std::max(sa.first, sb.first), cols = std::max(sa.second, sb.second);
    const Matrix<double> ea = expand_to(a, rows, cols), eb = expand_to(b, rows, cols);
    Tape<double> tape;
    auto x = tape.constant(a), y = tape.constant(b);
    REQUIRE((x + y).value().isApprox(ea + eb));
    REQUIRE((x - y).value().isApprox(ea - eb));
    REQUIRE((x * y).value().isApprox(ea.cwiseProduct(eb)));
    REQUIRE((x / y).value().isApprox(ea.cwiseQuotient(eb)));
  }
}

TEST_CASE("A broadcast operand's gradient is summed over the broadcast dimensions",
          "[core][elementwise]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Ones(3, 4));
  auto row = tape.variable(Matrix<double>::Ones(1, 4));
  auto col = tape.variable(Matrix<double>::Ones(3, 1));
  auto s = tape.variable(Matrix<double>::Ones(1, 1));
  sum(((x + row) + col) + s).backward();
  REQUIRE(row.grad().rows() == 1);
  REQUIRE(row.grad()(0, 2) == Approx(3.0));
  REQUIRE(col.grad()(1, 0) == Approx(4.0));
  REQUIRE(s.grad()(0, 0) == Approx(12.0));
}

TEST_CASE("neg has correct gradients", "[core][elementwise]") {
  require_gradcheck([](Tape<double>&, const std::vector<Var<double>>& v) { return probe(-v[0]); },
                    {uniform_matrix(3, 2, 5)});
}

TEST_CASE("Scalar ops on either side have correct values and gradients", "[core][elementwise]") {
  using Op = Var<double> (*)(Var<double>);
  const std::vector<std::pair<std::string, Op>> ops = {
      {"x + 2", [](Var<double> x) { return x + 2.0; }},
      {"2 + x", [](Var<double> x) { return 2.0 + x; }},
      {"x - 2", [](Var<double> x) { return x - 2.0; }},
      {"2 - x", [](Var<double> x) { return 2.0 - x; }},
      {"x * 3", [](Var<double> x) { return x * 3.0; }},
      {"3 * x", [](Var<double> x) { return 3.0 * x; }},
      {"x / 4", [](Var<double> x) { return x / 4.0; }},
      {"4 / x", [](Var<double> x) { return 4.0 / x; }},
  };
  const Matrix<double> x0 = uniform_matrix(2, 3, 6, 0.5, 2.0);
  const std::vector<Matrix<double>> expected = {
      x0.array() + 2.0, 2.0 + x0.array(), x0.array() - 2.0, 2.0 - x0.array(),
      x0.array() * 3.0, 3.0 * x0.array(), x0.array() / 4.0, 4.0 / x0.array()};
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const auto& [name, op] = ops[i];
    CAPTURE(name);
    Tape<double> tape;
    REQUIRE(op(tape.constant(x0)).value().isApprox(expected[i]));
    require_gradcheck(
        [op = op](Tape<double>&, const std::vector<Var<double>>& v) { return probe(op(v[0])); },
        {x0});
  }
}

TEMPLATE_TEST_CASE("Elementwise ops give the right values and gradients in float and double",
                   "[core][elementwise][float]", float, double) {
  using T = TestType;
  Tape<T> tape;
  Matrix<T> av(1, 2), bv(1, 2);
  av << T(1.5), T(-2);
  bv << T(0.5), T(4);
  auto a = tape.variable(av), b = tape.variable(bv);
  auto y = sum(a * b + a / b - T(2) * a);
  // y = 1.5*0.5 + 3 - 3 + (-8) - 0.5 + 4 = -3.75
  REQUIRE(y.item() == Approx(-3.75).epsilon(1e-6));
  y.backward();
  // dy/da = b + 1/b - 2, dy/db = a - a/b^2
  REQUIRE(a.grad()(0, 0) == Approx(0.5).epsilon(1e-6));
  REQUIRE(a.grad()(0, 1) == Approx(2.25).epsilon(1e-6));
  REQUIRE(b.grad()(0, 0) == Approx(-4.5).epsilon(1e-6));
  REQUIRE(b.grad()(0, 1) == Approx(-1.875).epsilon(1e-6));
}

TEST_CASE("Elementwise shape mismatches name the op and both shapes",
          "[core][elementwise][errors]") {
  Tape<double> tape;
  auto a = tape.variable(Matrix<double>::Ones(2, 3));
  auto b = tape.variable(Matrix<double>::Ones(3, 2));
  REQUIRE_THROWS_MATCHES(
      add(a, b), ShapeError,
      Catch::Matchers::Message("add: shapes [2x3] and [3x2] cannot be broadcast (each dimension "
                               "must match or be 1)"));
  REQUIRE_THROWS_WITH(sub(a, b), Contains("sub") && Contains("[2x3]") && Contains("[3x2]"));
  REQUIRE_THROWS_WITH(mul(a, b), Contains("mul") && Contains("[2x3]") && Contains("[3x2]"));
  REQUIRE_THROWS_WITH(div(b, a), Contains("div") && Contains("[3x2]") && Contains("[2x3]"));
  auto c = tape.variable(Matrix<double>::Ones(2, 2));
  REQUIRE_THROWS_AS(a + c, ShapeError);
}
