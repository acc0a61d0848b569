#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/nn/batch_norm.hpp>

#include "nn_test_util.hpp"

using namespace gradflow;
using namespace gradflow::nn;

namespace {
Matrix<double> sample_input() {
  Matrix<double> x(4, 2);
  x << 1.0, 10.0, 2.0, 20.0, 4.0, 0.0, 5.0, -10.0;
  return x;
}
}  // namespace

TEST_CASE("BatchNorm1d normalizes with the biased batch variance in training", "[nn][batch_norm]") {
  BatchNorm1d<double> bn(BatchNorm1dOptions(2).eps(1e-3));
  bn.weight()->value() << 2.0, 0.5;
  bn.bias()->value() << 0.1, -0.2;
  Tape<double> tape;
  const Matrix<double> x = sample_input();
  Matrix<double> y = bn(tape.constant(x)).value();
  // Feature 0: mean 3, biased variance (4 + 1 + 1 + 4) / 4 = 2.5.
  CHECK(y(0, 0) == Approx(2.0 * (1.0 - 3.0) / std::sqrt(2.5 + 1e-3) + 0.1));
  CHECK(y(3, 0) == Approx(2.0 * (5.0 - 3.0) / std::sqrt(2.5 + 1e-3) + 0.1));
  // Feature 1: mean 5, biased variance (25 + 225 + 25 + 225) / 4 = 125.
  CHECK(y(1, 1) == Approx(0.5 * 15.0 / std::sqrt(125.0 + 1e-3) - 0.2));
}

TEST_CASE("BatchNorm1d updates running statistics with the unbiased variance", "[nn][batch_norm]") {
  BatchNorm1d<double> bn(BatchNorm1dOptions(2).momentum(0.25));
  Tape<double> tape;
  bn(tape.constant(sample_input()));
  const Matrix<double>& rm = *bn.running_mean();
  const Matrix<double>& rv = *bn.running_var();
  CHECK(rm(0, 0) == Approx(0.25 * 3.0));
  CHECK(rm(0, 1) == Approx(0.25 * 5.0));
  CHECK(rv(0, 0) == Approx(0.75 * 1.0 + 0.25 * 10.0 / 3.0));
  CHECK(rv(0, 1) == Approx(0.75 * 1.0 + 0.25 * 500.0 / 3.0));
  std::vector<std::string> names;
  for (auto& [name, b] : bn.named_buffers()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"running_mean", "running_var"});
}

TEST_CASE("BatchNorm1d uses the running statistics in evaluation mode and leaves them alone",
          "[nn][batch_norm]") {
  BatchNorm1d<double> bn(BatchNorm1dOptions(2));
  *bn.running_mean() << 1.0, -2.0;
  *bn.running_var() << 4.0, 0.25;
  bn.weight()->value() << 3.0, 1.0;
  bn.eval();
  Tape<double> tape;
  Matrix<double> y = bn(tape.constant(sample_input())).value();
  CHECK(y(2, 0) == Approx(3.0 * (4.0 - 1.0) / std::sqrt(4.0 + 1e-5)));
  CHECK(y(0, 1) == Approx((10.0 + 2.0) / std::sqrt(0.25 + 1e-5)));
  CHECK((*bn.running_mean())(0, 0) == 1.0);
  CHECK((*bn.running_var())(0, 1) == 0.25);
  // A batch of one is fine in evaluation mode.
  CHECK(bn(tape.constant(Matrix<double>::Ones(1, 2))).rows() == 1);
}

TEST_CASE("BatchNorm1d's hand-written backward passes gradcheck in both modes",
          "[nn][batch_norm][gradcheck]") {
  Matrix<double> x = Matrix<double>::Random(6, 3) * 2.0, r = Matrix<double>::Random(6, 3);
  for (bool training : {true, false}) {
    for (bool affine : {true, false}) {
      BatchNorm1d<double> bn(BatchNorm1dOptions(3).affine(affine).eps(1e-2));
      if (affine) {
        bn.weight()->value() << 1.5, 0.7, -0.4;
        bn.bias()->value() << 0.1, 0.2, 0.3;
      }
      *bn.running_mean() << 0.2, -0.1, 0.4;
      *bn.running_var() << 1.5, 0.6, 2.0;
      bn.train(training);
      auto report = diag::gradcheck<double>(
          [&](Tape<double>&, const std::vector<Var<double>>& v) {
            return test::weighted_sum(bn(v[0]), r);
          },
          {x});
      INFO("training " << training << ", affine " << affine << ": " << report.summary());
      CHECK(report.passed);
      if (affine)
        CHECK(test::parameter_grad_error(bn, [&](Tape<double>& t) {
                return test::weighted_sum(bn(t.constant(x)), r);
              }) < 1e-7);
    }
  }
}

TEST_CASE("BatchNorm1d without running statistics normalizes by the batch in eval mode",
          "[nn][batch_norm]") {
  BatchNorm1d<double> bn(BatchNorm1dOptions(2).track_running_stats(false));
  CHECK(bn.named_buffers().empty());
  bn.eval();
  Tape<double> tape;
  Matrix<double> y = bn(tape.constant(sample_input())).value();
  CHECK(y.colwise().mean().cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("BatchNorm1d rejects a wrong width and a training batch of one",
          "[nn][batch_norm][errors]") {
  BatchNorm1d<double> bn(BatchNorm1dOptions(3));
  Tape<double> tape;
  CHECK_THROWS_WITH(
      bn(tape.constant(Matrix<double>::Zero(4, 5))),
      Catch::Contains("BatchNorm1d(3)") && Catch::Contains("[4x5]") && Catch::Contains("[4x3]"));
  CHECK_THROWS_WITH(bn(tape.constant(Matrix<double>::Zero(1, 3))),
                    Catch::Contains("BatchNorm1d(3)") && Catch::Contains("more than one"));
  CHECK_THROWS_AS(BatchNorm1d<double>(BatchNorm1dOptions(3).eps(0.0)), ArgumentError);
}

TEMPLATE_TEST_CASE("BatchNorm1d runs in float and double", "[nn][batch_norm]", float, double) {
  BatchNorm1d<TestType> bn(BatchNorm1dOptions(2));
  Tape<TestType> tape;
  Matrix<TestType> x(3, 2);
  x << 1, 2, 3, 4, 5, 9;
  auto xv = tape.variable(x);
  auto y = bn(xv);
  CHECK(y.value().col(0).mean() == Approx(0.0).margin(1e-6));
  sum(y).backward();
  // The output's column sums do not depend on x: its gradient vanishes.
  CHECK(xv.grad().cwiseAbs().maxCoeff() < TestType(1e-5));
  CHECK(bn.bias()->grad()(0, 1) == Approx(3.0));
}
