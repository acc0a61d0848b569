#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/core/random.hpp>
#include <vector>

using namespace gradflow;

TEST_CASE("Generators with the same seed make the same draws", "[core][random]") {
  Generator a(42), b(42), c(43);
  bool differs = false;
  int mismatches = 0;
  for (int i = 0; i < 1000; ++i) {
    const double ua = a.uniform(), ub = b.uniform(), uc = c.uniform();
    mismatches += ua != ub;
    mismatches += a.normal() != b.normal();
    mismatches += a.next() != b.next();
    differs = differs || ua != uc;
    c.normal();
    c.next();
  }
  REQUIRE(mismatches == 0);
  REQUIRE(differs);
}

TEST_CASE("Reseeding a generator replays its draws, normal pairs included", "[core][random]") {
  Generator g(7);
  std::vector<double> first;
  for (int i = 0; i < 5; ++i) first.push_back(g.normal());  // leaves a spare normal cached
  g.seed(7);
  for (int i = 0; i < 5; ++i) REQUIRE(g.normal() == first[static_cast<std::size_t>(i)]);
}

TEST_CASE("Uniform draws lie in [lo, hi) with mean and variance of the uniform law",
          "[core][random]") {
  Generator g(1);
  const int n = 100000;
  double total = 0, total_sq = 0, lo = 1, hi = 0;
  int outside = 0;
  for (int i = 0; i < n; ++i) {
    const double u = g.uniform();
    outside += !(u >= 0.0 && u < 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    total += u;
    total_sq += u * u;
  }
  REQUIRE(outside == 0);
  const double mean = total / n, var = total_sq / n - mean * mean;
  REQUIRE(mean == Approx(0.5).margin(0.005));
  REQUIRE(var == Approx(1.0 / 12).margin(0.002));
  REQUIRE(lo < 0.001);
  REQUIRE(hi > 0.999);
  for (int i = 0; i < 1000; ++i) {
    const double v = g.uniform(-3.0, 5.0);
    outside += !(v >= -3.0 && v < 5.0);
  }
  REQUIRE(outside == 0);
}

TEST_CASE("100k normal draws have the requested mean and variance", "[core][random]") {
  Generator g(2024);
  const int n = 100000;
  double total = 0, total_sq = 0;
  int beyond_two_sigma = 0;
  for (int i = 0; i < n; ++i) {
    const double z = g.normal(1.5, 2.0);
    total += z;
    total_sq += z * z;
    beyond_two_sigma += std::abs(z - 1.5) > 4.0;
  }
  const double mean = total / n, var = total_sq / n - mean * mean;
  // Standard errors: 2/sqrt(n) = 0.0063 for the mean, ~4*sqrt(2/n) = 0.018 for the variance.
  REQUIRE(mean == Approx(1.5).margin(0.03));
  REQUIRE(var == Approx(4.0).margin(0.09));
  // P(|z| > 2) = 4.55% for a normal law.
  REQUIRE(beyond_two_sigma == Approx(0.0455 * n).margin(0.003 * n));
}
