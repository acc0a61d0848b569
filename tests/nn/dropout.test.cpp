#include <catch2/catch.hpp>
#include <gradflow/nn/dropout.hpp>

using namespace gradflow;
using namespace gradflow::nn;

TEST_CASE("Dropout zeroes about p of the elements and scales the rest in training",
          "[nn][dropout]") {
  Dropout<double> drop(DropoutOptions(0.3).seed(1));
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Ones(200, 100));
  auto y = drop(x);
  const auto v = y.value().array();
  const double zero_fraction = (v == 0.0).cast<double>().mean();
  CHECK(zero_fraction == Approx(0.3).margin(0.01));
  CHECK(((v == 0.0) || (v - 1.0 / 0.7).abs() < 1e-12).all());
  CHECK(v.mean() == Approx(1.0).margin(0.02));
  sum(y).backward();
  CHECK((x.grad().array() == v).all());  // dx = mask / (1 - p)
}

TEST_CASE("Dropout is the identity in evaluation mode", "[nn][dropout]") {
  Dropout<double> drop(DropoutOptions(0.9));
  drop.eval();
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Random(3, 4));
  auto y = drop(x);
  CHECK(y.value() == x.value());
}

TEST_CASE("Dropout masks are reproducible from a seed", "[nn][dropout]") {
  Dropout<double> a(DropoutOptions(0.5).seed(7)), b(DropoutOptions(0.5).seed(7)),
      c(DropoutOptions(0.5).seed(8));
  Tape<double> tape;
  auto x = tape.constant(Matrix<double>::Ones(10, 10));
  Matrix<double> ya = a(x).value(), yb = b(x).value(), yc = c(x).value();
  CHECK(ya == yb);
  CHECK(ya != yc);
  CHECK(a(x).value() != ya);  // the next mask differs
}

TEST_CASE("Dropout rejects a probability outside [0, 1)", "[nn][dropout][errors]") {
  CHECK_THROWS_AS(Dropout<double>(DropoutOptions(1.0)), ArgumentError);
  CHECK_THROWS_AS(Dropout<double>(DropoutOptions(-0.1)), ArgumentError);
}

TEMPLATE_TEST_CASE("Dropout runs in float and double", "[nn][dropout]", float, double) {
  Dropout<TestType> drop(DropoutOptions(0.5).seed(3));
  Tape<TestType> tape;
  auto y = drop(tape.constant(Matrix<TestType>::Ones(4, 4)));
  CHECK(((y.value().array() == TestType(0)) || (y.value().array() == TestType(2))).all());
}
