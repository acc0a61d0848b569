#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/diagnostics/step_bound.hpp>

#include "diag_test_util.hpp"

using namespace gradflow;
using Catch::Matchers::WithinRel;

TEST_CASE("tanh step bound is ||W||_2 times the derivative bound", "[diagnostics][step_bound]") {
  Matrix<double> w = Matrix<double>::Zero(2, 2);
  w.diagonal() << 0.8, -0.4;
  CHECK_THAT(diag::tanh_step_bound(w), WithinRel(0.8, 1e-12));
  CHECK_THAT(diag::tanh_step_bound(w, 0.5), WithinRel(0.4, 1e-12));
  CHECK_THROWS_AS(diag::tanh_step_bound(w, -1.0), ArgumentError);
}

TEST_CASE("tanh derivative statistics are 1 - h^2 averaged and maximised",
          "[diagnostics][step_bound]") {
  Matrix<double> h(2, 2);
  h << 0.0, 0.5, -0.5, 1.0;  // derivatives 1, 0.75, 0.75, 0
  const auto d = diag::tanh_derivative_stats(h);
  CHECK_THAT(d.mean, WithinRel(0.625, 1e-12));
  CHECK_THAT(d.max, WithinRel(1.0, 1e-12));
}

TEST_CASE("The tanh step bound really bounds ||diag(1 - h^2) W|| for random states",
          "[diagnostics][step_bound]") {
  const Eigen::MatrixXd w = test::gaussian(6, 6, 3) * 0.4;
  const Eigen::MatrixXd a = test::gaussian(1, 6, 4);
  const Eigen::MatrixXd h = a.array().tanh().matrix();
  const auto d = diag::tanh_derivative_stats(h);
  Eigen::VectorXd deriv = (1.0 - h.array().square()).matrix().transpose();
  const double jacobian = diag::spectral_norm(deriv.asDiagonal() * w);
  CHECK(jacobian <= diag::tanh_step_bound(w, d.max) + 1e-12);
  CHECK(diag::tanh_step_bound(w, d.max) <= diag::tanh_step_bound(w) + 1e-12);
}

TEST_CASE("Predicted gradient ratio is the step bound to the power steps - 1",
          "[diagnostics][step_bound]") {
  CHECK_THAT(diag::predicted_gradient_ratio(0.5, 11), WithinRel(std::pow(0.5, 10), 1e-12));
  CHECK_THAT(diag::predicted_gradient_ratio(1.5, 1), WithinRel(1.0, 1e-12));
  CHECK_THROWS_AS(diag::predicted_gradient_ratio(0.5, 0), ArgumentError);
}
