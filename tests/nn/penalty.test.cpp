#include <catch2/catch.hpp>
#include <gradflow/nn/dense.hpp>
#include <gradflow/nn/penalty.hpp>

using namespace gradflow;
using namespace gradflow::nn;

TEST_CASE("l1_penalty and l2_penalty cover only the chosen parameters", "[nn][penalty]") {
  Dense<double> fc(DenseOptions(2, 2));
  fc.weight().value() << 1, -2, 3, -4;
  fc.bias()->value() << 10, 20;
  Tape<double> tape;
  auto l1 = l1_penalty(tape, {&fc.weight()}, 0.5);
  CHECK(l1.item() == Approx(0.5 * 10.0));
  auto l2 = l2_penalty(tape, {&fc.weight(), fc.bias()}, 0.1);
  CHECK(l2.item() == Approx(0.1 * (30.0 + 500.0)));
  sum(concat({l1, l2}, Axis::Cols)).backward();
  // d/dw: 0.5 sign(w) + 0.2 w;  d/db: 0.2 b.
  CHECK(fc.weight().grad()(0, 1) == Approx(-0.5 - 0.4));
  CHECK(fc.weight().grad()(1, 0) == Approx(0.5 + 0.6));
  CHECK(fc.bias()->grad()(0, 1) == Approx(4.0));
}

TEST_CASE("A penalty added to a loss shares the parameter's tape node", "[nn][penalty]") {
  Dense<double> fc(DenseOptions(3, 1).bias(false).seed(1));
  Tape<double> tape;
  auto y = fc(tape.constant(Matrix<double>::Ones(2, 3)));
  auto loss = sum(y) + l2_penalty(tape, fc.parameters(), 1.0);
  loss.backward();
  const Matrix<double> expected = Matrix<double>::Constant(1, 3, 2.0) + 2.0 * fc.weight().value();
  CHECK((fc.weight().grad() - expected).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("Penalties of nothing are zero and negative coefficients are rejected",
          "[nn][penalty][errors]") {
  Tape<double> tape;
  CHECK(l2_penalty<double>(tape, {}, 1.0).item() == 0.0);
  Parameter<double> p(Matrix<double>::Ones(2, 2));
  CHECK_THROWS_AS(l1_penalty(tape, {&p}, -1.0), ArgumentError);
  CHECK_THROWS_AS(l1_penalty<double>(tape, {nullptr}, 1.0), ArgumentError);
}

TEMPLATE_TEST_CASE("Penalties run in float and double", "[nn][penalty]", float, double) {
  Parameter<TestType> p(Matrix<TestType>::Constant(2, 2, TestType(-0.5)));
  Tape<TestType> tape;
  l1_penalty(tape, {&p}, 2.0).backward();
  CHECK(p.grad()(1, 1) == Approx(-2.0));
}
