#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/diagnostics/growth_rate.hpp>

using namespace gradflow;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

TEST_CASE("Growth fit recovers the factor of a geometric sequence", "[diagnostics][growth]") {
  for (double r : {0.5, 0.93, 1.0, 1.5}) {
    std::vector<double> n;
    for (int t = 0; t < 20; ++t) n.push_back(3.0 * std::pow(r, t));
    const diag::GrowthFit f = diag::fit_growth(n);
    CHECK(f.valid());
    CHECK(f.points == 20);
    CHECK_THAT(f.factor(), WithinRel(r, 1e-10));
    CHECK_THAT(f.backward_factor(), WithinRel(1.0 / r, 1e-10));
    CHECK_THAT(f.intercept, WithinAbs(std::log(3.0), 1e-10));
    CHECK_THAT(f.r_squared, WithinAbs(1.0, 1e-12));
  }
}

TEST_CASE("Growth fit averages multiplicative noise and reports a lower R^2",
          "[diagnostics][growth]") {
  std::vector<double> n;
  for (int t = 0; t < 40; ++t) n.push_back(std::pow(0.8, t) * (t % 2 == 0 ? 1.2 : 1.0 / 1.2));
  const diag::GrowthFit f = diag::fit_growth(n);
  CHECK_THAT(f.factor(), WithinRel(0.8, 0.01));
  CHECK(f.r_squared < 1.0);
  CHECK(f.r_squared > 0.9);
}

TEST_CASE("Growth fit skips zero and non-finite norms", "[diagnostics][growth]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const diag::GrowthFit f = diag::fit_growth({1.0, 0.0, 4.0, nan, 16.0});
  CHECK(f.points == 3);
  CHECK_THAT(f.factor(), WithinRel(2.0, 1e-12));
}

TEST_CASE("Growth fit with explicit positions uses them", "[diagnostics][growth]") {
  const diag::GrowthFit f = diag::fit_growth({0.0, 2.0, 4.0}, {1.0, 4.0, 16.0});
  CHECK_THAT(f.factor(), WithinRel(2.0, 1e-12));
  CHECK_THROWS_AS(diag::fit_growth({0.0, 1.0}, {1.0}), ArgumentError);
}

TEST_CASE("Growth fit of fewer than two usable points is invalid", "[diagnostics][growth]") {
  CHECK_FALSE(diag::fit_growth({}).valid());
  CHECK_FALSE(diag::fit_growth({5.0}).valid());
  CHECK_FALSE(diag::fit_growth({5.0, 0.0}).valid());
  CHECK(std::isnan(diag::fit_growth({5.0}).slope));
}
