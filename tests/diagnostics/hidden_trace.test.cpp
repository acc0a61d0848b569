#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/core/ops.hpp>
#include <gradflow/diagnostics/hidden_trace.hpp>
#include <gradflow/diagnostics/step_bound.hpp>
#include <gradflow/diagnostics/verdict.hpp>
#include <gradflow/nn/recurrent/recurrent.hpp>

#include "diag_test_util.hpp"

using namespace gradflow;
using Catch::Matchers::WithinAbs;
using Catch::Matchers::WithinRel;

namespace {

constexpr Index kBatch = 4, kHidden = 8, kInput = 3;

// h_t = f(x_t U^T + h_{t-1} W^T) written in core ops, one step at a time, with the trace
// watching every h_t. Returns h_T; `hs` receives every h_t.
Var<double> composed_rnn(Tape<double>& tape, Parameter<double>& w, Parameter<double>& u,
                         Index steps, bool use_tanh, diag::HiddenGradientTrace<double>& trace,
                         std::vector<Var<double>>& hs) {
  const Eigen::MatrixXd xs = test::gaussian(steps * kBatch, kInput, 99);
  Var<double> h = tape.constant(Matrix<double>::Zero(kBatch, kHidden));
  for (Index t = 0; t < steps; ++t) {
    Var<double> x = tape.constant(xs.middleRows(t * kBatch, kBatch));
    Var<double> a = matmul_nt(x, tape.param(u)) + matmul_nt(h, tape.param(w));
    h = use_tanh ? tanh(a) : a;
    trace.watch(tape, h, t);
    hs.push_back(h);
  }
  return h;
}

}  // namespace

TEST_CASE(
    "A tanh RNN with ||W||_2 = 0.5 has vanishing dL/dh_t, never shrinking slower than "
    "the bound",
    "[diagnostics][hidden_trace]") {
  const Index steps = 30;
  Eigen::MatrixXd w0 = test::gaussian(kHidden, kHidden, 1);
  w0 *= 0.5 / diag::spectral_norm(w0);
  Parameter<double> w(w0), u(test::gaussian(kHidden, kInput, 2));
  Tape<double> tape;
  diag::HiddenGradientTrace<double> trace;
  std::vector<Var<double>> hs;
  sum(composed_rnn(tape, w, u, steps, true, trace, hs)).backward();

  REQUIRE(trace.steps() == steps);
  // The trace holds exactly the norms of the hidden states' gradients.
  for (Index t = 0; t < steps; ++t)
    CHECK_THAT(trace.norms()[static_cast<std::size_t>(t)],
               WithinRel(Matrix<double>(hs[static_cast<std::size_t>(t)].grad()).norm(), 1e-12));
  CHECK_THAT(trace.norms().back(), WithinRel(std::sqrt(double(kBatch * kHidden)), 1e-12));

  // Each step back multiplies the norm by at most ||W||_2 max|tanh'| = 0.5.
  const double bound = diag::tanh_step_bound(w.value());
  CHECK_THAT(bound, WithinRel(0.5, 1e-12));
  for (std::size_t t = 1; t < trace.norms().size(); ++t)
    CHECK(trace.norms()[t - 1] <= bound * trace.norms()[t] * (1 + 1e-12));
  CHECK(trace.growth().backward_factor() <= bound);
  CHECK(trace.first_last_ratio() <= diag::predicted_gradient_ratio(bound, steps) * (1 + 1e-9));

  const diag::Verdict v = diag::verdict(trace);
  CHECK(v.vanishing());
  CHECK(v.ratio < 1e-8);
}

TEST_CASE(
    "A linear RNN with spectral radius 1.5 has exploding dL/dh_t growing 1.5x per step "
    "back",
    "[diagnostics][hidden_trace]") {
  const Index steps = 30;
  Eigen::VectorXd ev(kHidden);
  ev << 1.5, 1.0, 0.7, -0.5, 0.3, -0.2, 0.1, 0.0;
  Parameter<double> w(test::symmetric_with_eigenvalues(ev, 3)),
      u(test::gaussian(kHidden, kInput, 4));
  REQUIRE_THAT(diag::spectral_radius(w.value()), WithinRel(1.5, 1e-10));
  Tape<double> tape;
  diag::HiddenGradientTrace<double> trace;
  std::vector<Var<double>> hs;
  sum(composed_rnn(tape, w, u, steps, false, trace, hs)).backward();

  const diag::GrowthFit fit = trace.growth();
  CHECK_THAT(fit.backward_factor(), WithinRel(1.5, 0.03));
  CHECK(fit.r_squared > 0.99);
  const diag::Verdict v = diag::verdict(trace);
  CHECK(v.exploding());
  CHECK(v.ratio > 1e3);
}

TEST_CASE(
    "A fused RNN layer feeds the trace through its hidden-gradient hook, in run order "
    "for both directions",
    "[diagnostics][hidden_trace]") {
  const Index steps = 12;
  nn::RNN<double> rnn(nn::RNNOptions(kInput, kHidden).bidirectional(true).seed(5));
  for (Index d = 0; d < 2; ++d) {
    Matrix<double>& w = rnn.weight_hh(0, d).value();
    w *= 0.5 / diag::spectral_norm(w);
  }
  diag::HiddenGradientTrace<double> trace;
  rnn.set_hidden_grad_hook(trace.hook());
  Tape<double> tape;
  auto out = rnn.forward(tape.constant(test::gaussian(steps * kBatch, kInput, 6)), kBatch);
  sum(out.h_n).backward();  // the loss sees only the final state of each direction

  REQUIRE(trace.series().size() == 2);
  for (Index d = 0; d < 2; ++d) {
    REQUIRE(trace.has(0, d));
    CHECK(trace.steps(0, d) == steps);
    // The step next to the loss gets dL/dh_n = ones: t = T-1 forward, t = 0 reversed.
    const std::vector<double> run = trace.norms_in_run_order(0, d);
    CHECK_THAT(run.back(), WithinRel(std::sqrt(double(kBatch * kHidden)), 1e-12));
    for (std::size_t k = 1; k < run.size(); ++k) CHECK(run[k - 1] <= 0.5 * run[k] * (1 + 1e-9));
    CHECK(diag::verdict(trace, {}, 0, d).vanishing());
  }
  CHECK_THAT(trace.norms(0, 1).front(), WithinRel(std::sqrt(double(kBatch * kHidden)), 1e-12));
}

TEST_CASE(
    "HiddenGradientTrace records Frobenius norms, keeps layers apart and overwrites a "
    "repeated step",
    "[diagnostics][hidden_trace]") {
  diag::HiddenGradientTrace<float> trace;
  Matrix<float> g(2, 2);
  g << 3, 0, 0, 4;
  trace.record(1, 0, 2, g);
  trace.record_norm(0, 0, 0, 7.0);
  REQUIRE(trace.series().size() == 2);
  CHECK(trace.series()[0].layer == 0);  // ordered by layer
  CHECK(trace.steps(1, 0) == 3);
  CHECK(std::isnan(trace.norms(1, 0)[0]));  // steps 0, 1 not seen
  CHECK_FALSE(trace.at(1, 0).recorded[0]);
  CHECK_THAT(trace.norms(1, 0)[2], WithinAbs(5.0, 1e-6));
  trace.record_norm(1, 0, 2, 1.0);
  CHECK(trace.norms(1, 0)[2] == 1.0);
  CHECK_FALSE(trace.has(2, 0));
  CHECK_THROWS_AS(trace.norms(2, 0), ArgumentError);
  CHECK_THROWS_AS(trace.record_norm(0, 0, -1, 1.0), ArgumentError);
  trace.clear();
  CHECK(trace.series().empty());
}

TEST_CASE("The reversed direction's ratio and growth run from t = T-1 down to t = 0",
          "[diagnostics][hidden_trace]") {
  diag::HiddenGradientTrace<double> trace;
  for (Index t = 0; t < 5; ++t) {
    trace.record_norm(0, 0, t, std::pow(2.0, double(t)));  // grows with t: vanishes backward
    trace.record_norm(0, 1, t, std::pow(2.0, double(t)));  // reversed: grows as it runs back
  }
  CHECK_THAT(trace.first_last_ratio(0, 0), WithinRel(1.0 / 16, 1e-12));
  CHECK_THAT(trace.first_last_ratio(0, 1), WithinRel(16.0, 1e-12));
  CHECK_THAT(trace.growth(0, 0).backward_factor(), WithinRel(0.5, 1e-12));
  CHECK_THAT(trace.growth(0, 1).backward_factor(), WithinRel(2.0, 1e-12));
}
