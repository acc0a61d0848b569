#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/core/ops.hpp>
#include <gradflow/diagnostics/activation_stats.hpp>

using namespace gradflow;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

TEMPLATE_TEST_CASE("tanh statistics count |h| > 0.97 as saturated", "[diagnostics][activation]",
                   float, double) {
  Matrix<TestType> h(2, 3);
  h << TestType(0.99), TestType(-0.98), TestType(0.5),  //
      TestType(-0.97), TestType(0.0), TestType(-0.5);
  const auto s = diag::activation_stats(h, diag::ActivationKind::Tanh);
  CHECK(s.samples == 2);
  CHECK(s.units == 3);
  CHECK_THAT(s.saturated_fraction, WithinRel(2.0 / 6.0, 1e-6));  // 0.97 itself is not
  CHECK_THAT(s.mean, WithinAbs((0.99 - 0.98 - 0.97) / 6.0, 1e-6));
  double var = 0.0;
  for (double v : {0.99, -0.98, 0.5, -0.97, 0.0, -0.5}) var += std::pow(v - s.mean, 2);
  CHECK_THAT(s.stddev, WithinRel(std::sqrt(var / 6.0), 1e-6));
  CHECK(s.dead_units == 0);
}

TEST_CASE("sigmoid statistics count values outside [0.03, 0.97] as saturated",
          "[diagnostics][activation]") {
  Matrix<double> h(1, 5);
  h << 0.01, 0.03, 0.5, 0.97, 0.995;
  const auto s = diag::activation_stats(h, diag::ActivationKind::Sigmoid);
  CHECK_THAT(s.saturated_fraction, WithinRel(2.0 / 5.0, 1e-12));
  const auto wide = diag::activation_stats(
      h, diag::ActivationKind::Sigmoid, diag::ActivationStatsOptions().set_sigmoid_range(0.1, 0.9));
  CHECK_THAT(wide.saturated_fraction, WithinRel(4.0 / 5.0, 1e-12));
}

TEST_CASE("ReLU units that are zero for every sample are dead; saturation does not apply",
          "[diagnostics][activation]") {
  Matrix<double> h(3, 4);
  h << 0, 1, 0, 0,  //
      0, 0, 2, 0,   //
      0, 3, 0, 0;   // units 0 and 3 never fire
  const auto s = diag::activation_stats(h, diag::ActivationKind::ReLU);
  CHECK(s.dead_units == 2);
  CHECK_THAT(s.dead_fraction, WithinRel(0.5, 1e-12));
  CHECK(s.saturated_fraction == 0.0);
  CHECK_THAT(s.mean, WithinRel(6.0 / 12.0, 1e-12));
}

TEST_CASE("Activation statistics read a Var's forward value", "[diagnostics][activation]") {
  Tape<double> tape;
  Matrix<double> a(2, 2);
  a << 5, -5, 0, 0.1;
  Var<double> h = tanh(tape.constant(a));
  const auto s = diag::activation_stats(h, diag::ActivationKind::Tanh);
  CHECK_THAT(s.saturated_fraction, WithinRel(0.5, 1e-12));  // tanh(+-5) = +-0.9999
}

TEST_CASE("Activation kinds parse from layer and op names", "[diagnostics][activation]") {
  CHECK(diag::activation_kind_from_name("Tanh") == diag::ActivationKind::Tanh);
  CHECK(diag::activation_kind_from_name("sigmoid") == diag::ActivationKind::Sigmoid);
  CHECK(diag::activation_kind_from_name("ReLU") == diag::ActivationKind::ReLU);
  CHECK(diag::activation_kind_from_name("Identity") == diag::ActivationKind::Identity);
  CHECK_THROWS_AS(diag::activation_kind_from_name("swish"), ArgumentError);
  CHECK(std::string(diag::to_string(diag::ActivationKind::ReLU)) == "relu");
}
