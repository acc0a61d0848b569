#include <catch2/catch.hpp>
#include <gradflow/core/ops/shape.hpp>
#include <vector>

#include "core_test_util.hpp"

using namespace gradflow;
using Catch::Matchers::Contains;
using gradflow::test::probe;
using gradflow::test::require_gradcheck;
using gradflow::test::uniform_matrix;

namespace {
using VarList = std::vector<Var<double>>;
}  // namespace

TEST_CASE("transpose has correct values and gradients", "[core][shape]") {
  const Matrix<double> x = uniform_matrix(3, 4, 41);
  Tape<double> tape;
  REQUIRE(transpose(tape.constant(x)).value().isApprox(x.transpose()));
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(transpose(v[0])); }, {x});
}

TEST_CASE("reshape views the elements in column-major order and has correct gradients",
          "[core][shape]") {
  const Matrix<double> x = uniform_matrix(3, 4, 42);
  Tape<double> tape;
  auto y = reshape(tape.constant(x), 2, 6);
  REQUIRE((y.rows() == 2 && y.cols() == 6));
  REQUIRE(y.value()(1, 2) == x(2, 1));  // element 5 in column-major order
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(reshape(v[0], 6, 2)); },
                    {x});
  // A reshape feeding another op that also reads the original.
  require_gradcheck(
      [](Tape<double>&, const VarList& v) {
        return probe(reshape(square(reshape(v[0], 12, 1)), 3, 4) * v[0]);
      },
      {x});
}

TEST_CASE("slice_rows and slice_cols pick the block and have correct gradients", "[core][shape]") {
  const Matrix<double> x = uniform_matrix(4, 5, 43);
  Tape<double> tape;
  REQUIRE(slice_rows(tape.constant(x), 1, 2).value().isApprox(x.middleRows(1, 2)));
  REQUIRE(slice_cols(tape.constant(x), 2, 3).value().isApprox(x.middleCols(2, 3)));
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(slice_rows(v[0], 1, 2)); },
                    {x});
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(slice_cols(v[0], 2, 3)); },
                    {x});
  // Overlapping slices of one value accumulate.
  require_gradcheck(
      [](Tape<double>&, const VarList& v) {
        return probe(slice_cols(v[0], 0, 3) * slice_cols(v[0], 1, 3) +
                     square(slice_cols(slice_rows(v[0], 0, 4), 2, 3)));
      },
      {x});
}

TEST_CASE("concat stacks along both axes and has correct gradients", "[core][shape]") {
  const Matrix<double> a = uniform_matrix(2, 3, 44), b = uniform_matrix(1, 3, 45);
  const Matrix<double> c = uniform_matrix(2, 2, 46);
  Tape<double> tape;
  auto vertical = concat({tape.constant(a), tape.constant(b)}, Axis::Rows);
  Matrix<double> ev(3, 3);
  ev << a, b;
  REQUIRE(vertical.value().isApprox(ev));
  auto horizontal = concat({tape.constant(a), tape.constant(c)}, Axis::Cols);
  Matrix<double> eh(2, 5);
  eh << a, c;
  REQUIRE(horizontal.value().isApprox(eh));
  require_gradcheck(
      [](Tape<double>&, const VarList& v) {
        return probe(concat({v[0], v[1], v[0]}, Axis::Rows));
      },
      {a, b});
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(concat(v, Axis::Cols)); },
                    {a, c, a});
}

TEST_CASE("concat passes gradients only to the inputs that need them", "[core][shape]") {
  Tape<double> tape;
  auto k = tape.constant(Matrix<double>::Ones(1, 2));
  auto x = tape.variable(Matrix<double>::Ones(1, 2));
  auto y = concat({k, x}, Axis::Rows);
  sum(y * tape.constant(uniform_matrix(2, 2, 47))).backward();
  REQUIRE_FALSE(k.requires_grad());
  REQUIRE(x.grad().isApprox(uniform_matrix(2, 2, 47).row(1)));
}

TEMPLATE_TEST_CASE("Shape ops give the right values and gradients in float and double",
                   "[core][shape][float]", float, double) {
  using T = TestType;
  Tape<T> tape;
  Matrix<T> xv(2, 3);
  xv << T(1), T(2), T(3), T(4), T(5), T(6);
  auto x = tape.variable(xv);
  // [x[:, 1:3]; x[0, :] reshaped to 1x... ] built from every shape op.
  auto top = slice_cols(x, 1, 2);                                           // [[2 3] [5 6]]
  auto bottom = reshape(transpose(slice_rows(x, 1, 1)), 1, 3);              // [4 5 6]
  auto y = concat({transpose(top), slice_cols(bottom, 0, 2)}, Axis::Rows);  // 3x2
  Matrix<T> expected(3, 2);
  expected << T(2), T(5), T(3), T(6), T(4), T(5);
  REQUIRE(y.value().isApprox(expected));
  Matrix<T> w(3, 2);
  w << T(1), T(2), T(3), T(4), T(5), T(6);
  sum(y * tape.constant(w)).backward();
  Matrix<T> grad(2, 3);
  grad << T(0), T(1), T(3), T(5), T(2) + T(6), T(4);
  REQUIRE(x.grad().isApprox(grad));
}

TEST_CASE("Shape op errors name the op and the shapes", "[core][shape][errors]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Ones(2, 3));
  auto y = tape.variable(Matrix<double>::Ones(3, 3));
  REQUIRE_THROWS_AS(reshape(x, 4, 2), ShapeError);
  REQUIRE_THROWS_WITH(reshape(x, 4, 2),
                      Contains("reshape") && Contains("[2x3]") && Contains("[4x2]"));
  REQUIRE_THROWS_WITH(slice_cols(x, 2, 2), Contains("slice_cols") && Contains("[2x3]"));
  REQUIRE_THROWS_WITH(slice_rows(x, -1, 1), Contains("slice_rows") && Contains("[2x3]"));
  REQUIRE_THROWS_WITH(slice_rows(x, 0, 0), Contains("slice_rows"));
  REQUIRE_THROWS_WITH(concat({x, y}, Axis::Cols),
                      Contains("concat") && Contains("[3x3]") && Contains("[2x3]"));
  REQUIRE_NOTHROW(concat({x, y}, Axis::Rows));
  REQUIRE_THROWS_AS(concat(std::vector<Var<double>>{}, Axis::Rows), ShapeError);
}
