#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/diagnostics/verdict.hpp>

using namespace gradflow;

TEST_CASE("Verdict from norms: vanishing below 1e-3, exploding above 1e3, healthy between",
          "[diagnostics][verdict]") {
  CHECK(diag::verdict_from_norms({1e-4, 1e-2, 1.0}).vanishing());
  CHECK(diag::verdict_from_norms({1e4, 10.0, 1.0}).exploding());
  CHECK(diag::verdict_from_norms({0.1, 0.5, 1.0}).healthy());
  CHECK(diag::verdict_from_norms({2e-3, 1.0}).healthy());
  CHECK_THAT(diag::verdict_from_norms({1e-4, 1.0}).ratio, Catch::Matchers::WithinRel(1e-4, 1e-12));
}

TEST_CASE("Verdict thresholds come from the options", "[diagnostics][verdict]") {
  const auto strict = diag::VerdictOptions().set_vanishing_ratio(0.5).set_exploding_ratio(2.0);
  CHECK(diag::verdict_from_norms({0.1, 1.0}, strict).vanishing());
  CHECK(diag::verdict_from_norms({3.0, 1.0}, strict).exploding());
  CHECK(diag::verdict_from_norms({0.1, 1.0}).healthy());
  const auto capped = diag::VerdictOptions().set_max_grad_norm(100.0);
  CHECK(diag::verdict_from_norms({1.0, 500.0, 1.0}, capped).exploding());
  CHECK(diag::verdict_from_norms({1.0, 500.0, 1.0}).healthy());
}

TEST_CASE("Any non-finite gradient norm is exploding, even in the middle",
          "[diagnostics][verdict]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const diag::Verdict v = diag::verdict_from_norms({1.0, nan, 1.0}, {}, {"a", "b", "c"});
  CHECK(v.exploding());
  CHECK(v.reason.find("b") != std::string::npos);
  CHECK(diag::verdict_from_norms({1.0, inf}).exploding());
}

TEST_CASE("All-zero gradients are vanishing; a zero last norm with a live first is exploding",
          "[diagnostics][verdict]") {
  CHECK(diag::verdict_from_norms({0.0, 0.0}).vanishing());
  CHECK(diag::verdict_from_norms({1.0, 0.0}).exploding());
  CHECK(diag::verdict_from_norms({1.0}).healthy());
}

TEST_CASE("Verdict of a snapshot compares the first and last layer", "[diagnostics][verdict]") {
  diag::GradientSnapshot s;
  s.layers.resize(3);
  s.layers[0].layer = "0";
  s.layers[0].grad_norm = 1e-6;
  s.layers[1].layer = "1";
  s.layers[1].grad_norm = 1e3;  // the middle does not enter the ratio
  s.layers[2].layer = "2";
  s.layers[2].grad_norm = 1.0;
  CHECK(diag::verdict(s).vanishing());
  s.layers[0].grad_norm = 1e-2;
  CHECK(diag::verdict(s).healthy());
  s.layers[1].finite = false;
  CHECK(diag::verdict(s).exploding());
}

TEST_CASE("Verdict of a trace skips steps that were never recorded", "[diagnostics][verdict]") {
  diag::HiddenGradientTrace<double> trace;
  trace.record_norm(0, 0, 1, 1e-5);  // step 0 missing
  trace.record_norm(0, 0, 3, 1.0);   // step 2 missing
  const diag::Verdict v = diag::verdict(trace);
  CHECK(v.vanishing());
  CHECK_THAT(v.ratio, Catch::Matchers::WithinRel(1e-5, 1e-12));
  trace.record_norm(0, 0, 2, std::numeric_limits<double>::quiet_NaN());  // a real NaN
  CHECK(diag::verdict(trace).exploding());
}

TEST_CASE("GradientHealth names", "[diagnostics][verdict]") {
  CHECK(std::string(diag::to_string(diag::GradientHealth::Vanishing)) == "vanishing");
  CHECK(std::string(diag::to_string(diag::GradientHealth::Exploding)) == "exploding");
  CHECK(std::string(diag::to_string(diag::GradientHealth::Healthy)) == "healthy");
}
