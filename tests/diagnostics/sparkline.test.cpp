#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/diagnostics/sparkline.hpp>

using namespace gradflow;

TEST_CASE("A sparkline of one decade per value climbs all eight levels",
          "[diagnostics][sparkline]") {
  CHECK(diag::sparkline({1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7}) ==
        "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588");
  CHECK(diag::sparkline({1e7, 1, 1e7}) == "\u2588\u2581\u2588");
}

TEST_CASE("The ASCII fallback uses eight plain characters", "[diagnostics][sparkline]") {
  const auto ascii = diag::ChartOptions().set_ascii(true);
  CHECK(diag::sparkline({1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7}, ascii) == "_.-:=+*#");
}

TEST_CASE("A linear sparkline maps values, not their logarithms", "[diagnostics][sparkline]") {
  const auto linear = diag::ChartOptions().set_ascii(true).set_log_scale(false);
  CHECK(diag::sparkline({0, 1, 7}, linear) == "_.#");
  CHECK(diag::sparkline({0, 1, 7}, diag::ChartOptions().set_ascii(true)) == " _#");
}

TEST_CASE("Sparklines mark NaN, Inf and values off the log scale", "[diagnostics][sparkline]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(diag::sparkline({1, nan, 100, inf, 0, -1}, diag::ChartOptions().set_ascii(true)) ==
        "_?#!  ");
  CHECK(diag::sparkline({}).empty());
}

TEST_CASE("A constant sparkline sits at the middle level; a fixed range clamps",
          "[diagnostics][sparkline]") {
  const auto ascii = diag::ChartOptions().set_ascii(true);
  CHECK(diag::sparkline({5, 5, 5}, ascii) == "===");  // level round(0.5 * 7) = 4
  CHECK(diag::sparkline({1e-9, 1, 1e9}, diag::ChartOptions(ascii).set_range(1e-3, 1e3)) == "_=#");
}

TEST_CASE("Bars grow with the logarithm of the value in eighths of a cell",
          "[diagnostics][sparkline]") {
  CHECK(diag::bar(1.0, 1e-4, 1.0, 4) == "\u2588\u2588\u2588\u2588");
  CHECK(diag::bar(1e-2, 1e-4, 1.0, 4) == "\u2588\u2588");
  CHECK(diag::bar(1e-3, 1e-4, 1.0, 4) == "\u2588");                        // a quarter: 1 cell
  CHECK(diag::bar(std::pow(10.0, -2.5), 1e-4, 1.0, 4) == "\u2588\u258C");  // 1.5 cells
  CHECK(diag::bar(1e-4, 1e-4, 1.0, 4) == "\u258F");  // the minimum still shows
  CHECK(diag::bar(1e-2, 1e-4, 1.0, 4, diag::ChartOptions().set_ascii(true)) == "##");
  CHECK(diag::bar(0.0, 1e-4, 1.0, 4).empty());
  CHECK(diag::bar(std::numeric_limits<double>::quiet_NaN(), 1e-4, 1.0, 4) == "?");
}
