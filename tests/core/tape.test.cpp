#include <catch2/catch.hpp>

#include <gradflow/core/ops.hpp>
#include <gradflow/core/tape.hpp>

using namespace gradflow;

TEST_CASE("A variable used twice receives the sum of both gradients", "[core][tape]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Constant(2, 3, 1.5));
  auto y = sum(x * x + x);  // d/dx = 2x + 1
  y.backward();
  REQUIRE(x.grad()(1, 2) == Approx(4.0));
}
