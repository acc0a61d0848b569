#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/core/anomaly.hpp>
#include <gradflow/core/ops.hpp>

#include "core_test_util.hpp"

using namespace gradflow;
using Catch::Matchers::Contains;

TEST_CASE("Anomaly mode names the op and tape position of a NaN made in forward",
          "[core][anomaly]") {
  Tape<double> tape;
  AnomalyGuard<double> guard(tape);
  REQUIRE(tape.anomaly_mode());
  auto x = tape.variable(Matrix<double>::Constant(2, 2, -1.0));  // node #0
  auto y = x * 2.0;                                              // node #1
  REQUIRE_THROWS_AS(log(y), AnomalyError);                       // node #2
  tape.clear();
  x = tape.variable(Matrix<double>::Constant(2, 2, -1.0));
  y = x * 2.0;
  REQUIRE_THROWS_WITH(
      log(y), Contains("NaN") && Contains("forward") && Contains("'log'") && Contains("#2"));
}

TEST_CASE("Without anomaly mode a NaN flows through silently", "[core][anomaly]") {
  Tape<double> tape;
  REQUIRE_FALSE(tape.anomaly_mode());
  auto x = tape.variable(Matrix<double>::Constant(1, 1, -1.0));
  auto y = log(x);
  REQUIRE(std::isnan(y.item()));
}

TEST_CASE("Anomaly mode names the op whose backward rule made an Inf", "[core][anomaly]") {
  Tape<double> tape;
  AnomalyGuard<double> guard(tape);
  Matrix<double> xv(1, 2);
  xv << 0.0, 4.0;
  auto x = tape.variable(xv);  // #0
  auto r = sqrt(x);            // #1: finite forward, d/dx = 1/(2 sqrt 0) = Inf
  auto s = r * 3.0;            // #2
  auto loss = sum(s);          // #3
  REQUIRE_THROWS_AS(loss.backward(), AnomalyError);
  tape.clear();
  x = tape.variable(xv);
  loss = sum(sqrt(x) * 3.0);
  REQUIRE_THROWS_WITH(loss.backward(), Contains("Inf") && Contains("backward") &&
                                           Contains("'sqrt'") && Contains("#1"));
}

TEST_CASE("Anomaly mode catches a NaN made only in backward", "[core][anomaly]") {
  Tape<double> tape;
  AnomalyGuard<double> guard(tape);
  // sqrt at 0 with a zero upstream gradient: its rule g / (2 sqrt x) gives 0 / 0 = NaN,
  // while every forward value and the gradient reaching sqrt are finite.
  auto x = tape.variable(Matrix<double>::Zero(1, 1));  // #0
  auto r = sqrt(x);                                    // #1
  auto loss = sum(r * 0.0);                            // #2, #3
  REQUIRE(loss.item() == 0.0);
  REQUIRE_THROWS_WITH(loss.backward(), Contains("NaN") && Contains("backward of op 'sqrt'") &&
                                           Contains("#1") && !Contains("mul_scalar"));
}

TEST_CASE("AnomalyGuard restores the previous mode", "[core][anomaly]") {
  Tape<float> tape;
  {
    AnomalyGuard<float> guard(tape);
    REQUIRE(tape.anomaly_mode());
  }
  REQUIRE_FALSE(tape.anomaly_mode());
  auto x = tape.variable(Matrix<float>::Constant(1, 1, -1.0f));
  REQUIRE_NOTHROW(log(x));
}
