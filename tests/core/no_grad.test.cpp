#include <catch2/catch.hpp>
#include <gradflow/core/no_grad.hpp>
#include <gradflow/core/ops.hpp>
#include <gradflow/core/parameter.hpp>

#include "core_test_util.hpp"

using namespace gradflow;
using gradflow::test::uniform_matrix;

TEST_CASE("Under NoGradGuard values are computed but no gradient is recorded", "[core][no_grad]") {
  Tape<double> tape;
  Parameter<double> w(uniform_matrix(3, 2, 81));
  const Matrix<double> xv = uniform_matrix(4, 3, 82);
  Var<double> y;
  {
    NoGradGuard<double> guard(tape);
    REQUIRE_FALSE(tape.grad_enabled());
    auto x = tape.variable(xv);
    y = sum(tanh(matmul(x, tape.param(w))));
    REQUIRE_FALSE(x.requires_grad());
    REQUIRE_FALSE(y.requires_grad());
  }
  REQUIRE(tape.grad_enabled());
  REQUIRE(y.item() == Approx((xv * w.value()).array().tanh().sum()));
  REQUIRE_THROWS_AS(y.backward(), TapeError);
  REQUIRE(w.grad().isZero());
}

TEST_CASE("NoGradGuard restores the previous setting when nested", "[core][no_grad]") {
  Tape<float> tape;
  {
    NoGradGuard<float> outer(tape);
    {
      NoGradGuard<float> inner(tape);
      REQUIRE_FALSE(tape.grad_enabled());
    }
    REQUIRE_FALSE(tape.grad_enabled());
  }
  REQUIRE(tape.grad_enabled());
}

TEST_CASE("A parameter recorded under no_grad and again outside it gets its gradient",
          "[core][no_grad][parameter]") {
  Tape<double> tape;
  Parameter<double> w(Matrix<double>::Constant(1, 1, 2.0));
  {
    NoGradGuard<double> guard(tape);
    auto frozen = tape.param(w);
    REQUIRE_FALSE(frozen.requires_grad());
  }
  auto live = tape.param(w);
  REQUIRE(live.requires_grad());
  sum(square(live)).backward();
  REQUIRE(w.grad()(0, 0) == Approx(4.0));
}

TEST_CASE("detach stops the gradient but keeps the value", "[core][no_grad]") {
  Tape<double> tape;
  const Matrix<double> xv = uniform_matrix(2, 2, 83);
  auto x = tape.variable(xv);
  auto d = tape.detach(square(x));
  REQUIRE(d.value().isApprox(xv.cwiseAbs2()));
  REQUIRE_FALSE(d.requires_grad());
  // y = x * stop(x^2): dy/dx = x^2 only.
  sum(x * d).backward();
  REQUIRE(x.grad().isApprox(xv.cwiseAbs2()));
}

TEST_CASE("A parameter with requires_grad off receives no gradient", "[core][parameter]") {
  Tape<double> tape;
  Parameter<double> frozen(Matrix<double>::Ones(2, 2)), trained(Matrix<double>::Ones(2, 2));
  frozen.set_requires_grad(false);
  REQUIRE_FALSE(frozen.requires_grad());
  auto f = tape.param(frozen), t = tape.param(trained);
  REQUIRE_FALSE(f.requires_grad());
  sum(f * t * 3.0).backward();
  REQUIRE(frozen.grad().isZero());
  REQUIRE(trained.grad().isApprox(Matrix<double>::Constant(2, 2, 3.0)));
}

TEST_CASE("Parameter gradients accumulate across steps until zero_grad", "[core][parameter]") {
  Tape<double> tape;
  Parameter<double> w(Matrix<double>::Constant(1, 3, 2.0));
  auto step = [&] {
    tape.clear();
    sum(square(tape.param(w))).backward();  // adds 2w
  };
  step();
  REQUIRE(w.grad().isApprox(Matrix<double>::Constant(1, 3, 4.0)));
  step();
  REQUIRE(w.grad().isApprox(Matrix<double>::Constant(1, 3, 8.0)));
  const double* storage = w.grad().data();
  w.zero_grad();
  REQUIRE(w.grad().isZero());
  REQUIRE(w.grad().data() == storage);
  step();
  REQUIRE(w.grad().isApprox(Matrix<double>::Constant(1, 3, 4.0)));
}

TEST_CASE("Parameter::assign replaces the value and resets the gradient", "[core][parameter]") {
  Parameter<float> p(Matrix<float>::Ones(2, 2));
  p.grad().setOnes();
  p.assign(Matrix<float>::Zero(3, 1));
  REQUIRE(p.rows() == 3);
  REQUIRE(p.cols() == 1);
  REQUIRE(p.size() == 3);
  REQUIRE(p.grad().rows() == 3);
  REQUIRE(p.grad().isZero());
}
