#include <catch2/catch.hpp>
#include <gradflow/core/ops/reduce.hpp>
#include <vector>

#include "core_test_util.hpp"

using namespace gradflow;
using gradflow::test::probe;
using gradflow::test::require_gradcheck;
using gradflow::test::uniform_matrix;

namespace {
using VarList = std::vector<Var<double>>;
}  // namespace

TEST_CASE("sum and mean of all elements have correct values and gradients", "[core][reduce]") {
  const Matrix<double> x = uniform_matrix(3, 4, 31);
  Tape<double> tape;
  REQUIRE(sum(tape.constant(x)).item() == Approx(x.sum()));
  REQUIRE(mean(tape.constant(x)).item() == Approx(x.mean()));
  // Squared so the gradient depends on the value, not only on the count.
  require_gradcheck([](Tape<double>&, const VarList& v) { return square(sum(v[0])); }, {x});
  require_gradcheck([](Tape<double>&, const VarList& v) { return square(mean(v[0])); }, {x});
}

TEST_CASE("sum and mean along an axis have the right shapes, values and gradients",
          "[core][reduce]") {
  const Matrix<double> x = uniform_matrix(3, 4, 32);
  Tape<double> tape;
  auto c = tape.constant(x);
  auto sr = sum(c, Axis::Rows), sc = sum(c, Axis::Cols);
  auto mr = mean(c, Axis::Rows), mc = mean(c, Axis::Cols);
  REQUIRE((sr.rows() == 1 && sr.cols() == 4));
  REQUIRE((sc.rows() == 3 && sc.cols() == 1));
  REQUIRE((mr.rows() == 1 && mr.cols() == 4));
  REQUIRE((mc.rows() == 3 && mc.cols() == 1));
  REQUIRE(sr.value().isApprox(x.colwise().sum()));
  REQUIRE(sc.value().isApprox(x.rowwise().sum()));
  REQUIRE(mr.value().isApprox(x.colwise().mean()));
  REQUIRE(mc.value().isApprox(x.rowwise().mean()));
  for (Axis axis : {Axis::Rows, Axis::Cols}) {
    CAPTURE(static_cast<int>(axis));
    require_gradcheck(
        [axis](Tape<double>&, const VarList& v) { return probe(square(sum(v[0], axis))); }, {x});
    require_gradcheck(
        [axis](Tape<double>&, const VarList& v) { return probe(square(mean(v[0], axis))); }, {x});
  }
}

TEMPLATE_TEST_CASE("Reductions give the right values and gradients in float and double",
                   "[core][reduce][float]", float, double) {
  using T = TestType;
  Tape<T> tape;
  Matrix<T> xv(2, 2);
  xv << T(1), T(2), T(3), T(4);
  auto x = tape.variable(xv);
  auto y = sum(mean(x, Axis::Rows)) + T(2) * mean(x) + sum(sum(x, Axis::Cols));
  REQUIRE(y.item() == Approx(5.0 + 5.0 + 10.0));
  y.backward();
  // d/dx = 1/2 + 2/4 + 1
  REQUIRE(x.grad().isApprox(Matrix<T>::Constant(2, 2, T(2))));
}
