#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/optim/clip.hpp>
#include <limits>

using namespace gradflow;

TEMPLATE_TEST_CASE("clip_grad_norm_ returns the norm before clipping and scales to max_norm",
                   "[optim][clip]", float, double) {
  using T = TestType;
  Parameter<T> a(Matrix<T>::Zero(1, 2)), b(Matrix<T>::Zero(1, 1));
  a.grad() << T(3), T(0);
  b.grad() << T(4);  // joint norm 5
  const double total = optim::clip_grad_norm_<T>({&a, &b}, 1.0);
  REQUIRE(total == Approx(5.0));
  const double after = std::sqrt(double(a.grad().squaredNorm() + b.grad().squaredNorm()));
  REQUIRE(after == Approx(1.0).epsilon(1e-5));
  REQUIRE(a.grad()(0, 0) / b.grad()(0, 0) == Approx(0.75));  // direction kept
}

TEST_CASE("clip_grad_norm_ leaves gradients below the threshold unchanged", "[optim][clip]") {
  Parameter<double> a(Matrix<double>::Zero(1, 2));
  a.grad() << 0.3, 0.4;
  REQUIRE(optim::clip_grad_norm_<double>({&a}, 1.0) == Approx(0.5));
  REQUIRE_THAT(a.grad()(0, 0), Catch::Matchers::WithinULP(0.3, 0));  // untouched, bit for bit
  REQUIRE_THAT(a.grad()(0, 1), Catch::Matchers::WithinULP(0.4, 0));
}

TEST_CASE("clip_grad_norm_ with the infinity norm uses the largest magnitude", "[optim][clip]") {
  Parameter<double> a(Matrix<double>::Zero(1, 3));
  a.grad() << 1.0, -8.0, 2.0;
  const double inf = std::numeric_limits<double>::infinity();
  REQUIRE(optim::clip_grad_norm_<double>({&a}, 2.0, inf) == Approx(8.0));
  REQUIRE(a.grad()(0, 1) == Approx(-2.0).epsilon(1e-6));
}

TEST_CASE("clip_grad_norm_ can refuse a non-finite norm", "[optim][clip][errors]") {
  Parameter<double> a(Matrix<double>::Zero(1, 2));
  a.grad() << std::nan(""), 1.0;
  REQUIRE_THROWS_WITH(optim::clip_grad_norm_<double>({&a}, 1.0, 2.0, true),
                      Catch::Matchers::Contains("non-finite"));
  REQUIRE_NOTHROW(optim::clip_grad_norm_<double>({&a}, 1.0, 2.0, false));
}

TEST_CASE("clip_grad_value_ clamps each element", "[optim][clip]") {
  Parameter<float> a(Matrix<float>::Zero(1, 4));
  a.grad() << -3.0f, -0.5f, 0.2f, 9.0f;
  optim::clip_grad_value_<float>({&a}, 1.0);
  using Catch::Matchers::WithinULP;
  REQUIRE_THAT(a.grad()(0, 0), WithinULP(-1.0f, 0));
  REQUIRE_THAT(a.grad()(0, 1), WithinULP(-0.5f, 0));
  REQUIRE_THAT(a.grad()(0, 2), WithinULP(0.2f, 0));
  REQUIRE_THAT(a.grad()(0, 3), WithinULP(1.0f, 0));
  REQUIRE_THROWS_AS(optim::clip_grad_value_<float>({&a}, -1.0), ArgumentError);
}

TEST_CASE("clip_grad_norm_ takes any p-norm over all gradients together", "[optim][clip]") {
  Parameter<double> a(Matrix<double>::Zero(1, 2)), b(Matrix<double>::Zero(2, 1));
  a.grad() << 1.0, -2.0;
  b.grad() << 0.0, 2.0;
  // p = 3: (1 + 8 + 8)^(1/3); p = 1: 5; p = 0.5 (allowed, as in PyTorch): (1 + 2 sqrt 2)^2.
  REQUIRE(optim::total_grad_norm<double>({&a, &b}, 3.0) == Approx(std::cbrt(17.0)));
  REQUIRE(optim::total_grad_norm<double>({&a, &b}, 1.0) == Approx(5.0));
  REQUIRE(optim::total_grad_norm<double>({&a, &b}, 0.5) ==
          Approx(std::pow(1.0 + 2.0 * std::sqrt(2.0), 2.0)));
  REQUIRE(optim::clip_grad_norm_<double>({&a, &b}, 2.5, 1.0) == Approx(5.0));
  REQUIRE(b.grad()(1, 0) == Approx(1.0).epsilon(1e-6));
  REQUIRE_THROWS_AS(optim::total_grad_norm<double>({&a}, 0.0), ArgumentError);
  REQUIRE_THROWS_AS(optim::clip_grad_norm_<double>({&a}, -1.0), ArgumentError);
}

TEST_CASE("clip_grad_norm_ of no gradients is zero", "[optim][clip]") {
  REQUIRE_THAT(optim::clip_grad_norm_<float>({}, 1.0), Catch::Matchers::WithinAbs(0.0, 0.0));
}
