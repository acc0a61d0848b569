#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/diagnostics/spectral.hpp>

#include "diag_test_util.hpp"

using namespace gradflow;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

TEMPLATE_TEST_CASE("Spectral norm and radius of a diagonal matrix are its largest |entry|",
                   "[diagnostics][spectral]", float, double) {
  Matrix<TestType> d = Matrix<TestType>::Zero(3, 3);
  d.diagonal() << TestType(3), TestType(-5), TestType(2);
  CHECK_THAT(diag::spectral_norm(d), WithinRel(5.0, 1e-6));
  CHECK_THAT(diag::spectral_radius(d), WithinRel(5.0, 1e-6));
}

TEST_CASE("A scaled rotation has spectral norm and radius equal to its scale",
          "[diagnostics][spectral]") {
  const double s = 1.7, a = 0.6;
  Matrix<double> r(2, 2);
  r << std::cos(a), -std::sin(a), std::sin(a), std::cos(a);
  r *= s;  // eigenvalues s e^{+-ia}: a complex pair, modulus s
  CHECK_THAT(diag::spectral_norm(r), WithinRel(s, 1e-12));
  CHECK_THAT(diag::spectral_radius(r), WithinRel(s, 1e-12));
}

TEST_CASE("A nilpotent matrix has spectral radius 0 but spectral norm 1",
          "[diagnostics][spectral]") {
  Matrix<double> n(2, 2);
  n << 0, 1, 0, 0;
  CHECK_THAT(diag::spectral_norm(n), WithinRel(1.0, 1e-12));
  CHECK_THAT(diag::spectral_radius(n), WithinAbs(0.0, 1e-12));
}

TEST_CASE("Spectral norm of a random matrix is sqrt of the top eigenvalue of W^T W",
          "[diagnostics][spectral]") {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const Eigen::MatrixXd w = test::gaussian(7, 5, seed);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> gram(w.transpose() * w);
    const double expected = std::sqrt(gram.eigenvalues().maxCoeff());
    CHECK_THAT(diag::spectral_norm(w), WithinRel(expected, 1e-10));
    CHECK_THAT(diag::spectral_norm(w.transpose()), WithinRel(expected, 1e-10));
  }
}

TEST_CASE(
    "Spectral radius of a random square matrix is below its spectral norm and matches "
    "the characteristic roots",
    "[diagnostics][spectral]") {
  const Eigen::MatrixXd w = test::gaussian(6, 6, 11);
  const double rho = diag::spectral_radius(w);
  CHECK(rho <= diag::spectral_norm(w) + 1e-12);
  // rho is where ||W^k||^(1/k) is heading (Gelfand); k = 200 is close for a 6 x 6 matrix.
  Eigen::MatrixXd p = Eigen::MatrixXd::Identity(6, 6);
  double log_norm = 0.0;
  for (int k = 0; k < 200; ++k) {
    p = p * w;
    const double n = p.norm();
    log_norm += std::log(n);
    p /= n;
  }
  CHECK_THAT(rho, WithinRel(std::exp(log_norm / 200.0), 0.05));
}

TEST_CASE("Symmetric matrices with chosen eigenvalues report them", "[diagnostics][spectral]") {
  Eigen::VectorXd ev(5);
  ev << 1.5, -0.9, 0.3, 0.0, 1.2;
  const Eigen::MatrixXd w = test::symmetric_with_eigenvalues(ev, 4);
  const diag::SpectralSummary s = diag::spectral_summary(w);
  CHECK_THAT(s.spectral_norm, WithinRel(1.5, 1e-10));
  CHECK_THAT(s.spectral_radius, WithinRel(1.5, 1e-10));
}

TEST_CASE("Spectral radius rejects a non-square matrix; the summary leaves it NaN",
          "[diagnostics][spectral]") {
  const Eigen::MatrixXd w = test::gaussian(8, 2, 5);
  CHECK_THROWS_AS(diag::spectral_radius(w), ShapeError);
  const diag::SpectralSummary s = diag::spectral_summary(w);
  CHECK(std::isnan(s.spectral_radius));
  CHECK(s.spectral_norm > 0.0);
}

TEST_CASE("Non-finite weights give NaN instead of a number", "[diagnostics][spectral]") {
  Eigen::MatrixXd w = Eigen::MatrixXd::Identity(3, 3);
  w(1, 2) = std::numeric_limits<double>::infinity();
  CHECK(std::isnan(diag::spectral_norm(w)));
  CHECK(std::isnan(diag::spectral_radius(w)));
}

TEST_CASE("Power iteration converges to the exact spectral norm within its tolerance",
          "[diagnostics][spectral]") {
  const Eigen::MatrixXd w = test::gaussian(20, 12, 21);
  const double exact = diag::spectral_norm(w);
  const auto r =
      diag::spectral_norm_power_iteration(w, diag::PowerIterationOptions().set_tolerance(1e-12));
  CHECK(r.converged);
  CHECK(r.iterations > 1);
  CHECK_THAT(r.value, WithinRel(exact, 1e-8));
  CHECK(r.value <= exact * (1 + 1e-12));  // |W v| never exceeds ||W||
  // An iteration budget of 1 is not enough to converge.
  CHECK_FALSE(
      diag::spectral_norm_power_iteration(w, diag::PowerIterationOptions().set_max_iterations(1))
          .converged);
}

TEST_CASE("Power iteration of the zero matrix is 0 and converged", "[diagnostics][spectral]") {
  const auto r = diag::spectral_norm_power_iteration(Eigen::MatrixXd::Zero(3, 4));
  CHECK(r.converged);
  CHECK(r.value == 0.0);
}
