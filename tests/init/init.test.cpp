#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/init/init.hpp>

using namespace gradflow;
using init::FanMode;
using init::Nonlinearity;

namespace {

struct Moments {
  double mean, var, min, max;
};

template <typename T>
Moments moments(const Matrix<T>& m) {
  const Eigen::ArrayXd v = m.template cast<double>().reshaped().array();
  const double mean = v.mean();
  return {mean, (v - mean).square().sum() / static_cast<double>(v.size() - 1), v.minCoeff(),
          v.maxCoeff()};
}

}  // namespace

TEST_CASE("calculate_gain matches PyTorch's table", "[init][gain]") {
  CHECK(init::calculate_gain(Nonlinearity::Linear) == Approx(1.0));
  CHECK(init::calculate_gain(Nonlinearity::Sigmoid) == Approx(1.0));
  CHECK(init::calculate_gain(Nonlinearity::Tanh) == Approx(5.0 / 3.0));
  CHECK(init::calculate_gain(Nonlinearity::Relu) == Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain(Nonlinearity::Selu) == Approx(0.75));
  CHECK(init::calculate_gain(Nonlinearity::LeakyRelu) == Approx(std::sqrt(2.0 / 1.0001)));
  CHECK(init::calculate_gain(Nonlinearity::LeakyRelu, 0.0) == Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain(Nonlinearity::LeakyRelu, std::sqrt(5.0)) ==
        Approx(std::sqrt(1.0 / 3.0)));
}

TEMPLATE_TEST_CASE("constant_, zeros_ and ones_ fill every element", "[init][basic]", float,
                   double) {
  Matrix<TestType> m(3, 4);
  init::constant_(m, 2.5);
  CHECK((m.array() == TestType(2.5)).all());
  init::zeros_(m);
  CHECK(m.cwiseAbs().maxCoeff() == TestType(0));
  init::ones_(m);
  CHECK((m.array() == TestType(1)).all());
}

TEST_CASE("uniform_ and normal_ draws have the requested moments", "[init][basic]") {
  Generator gen(1);
  Matrix<double> m(400, 500);
  init::uniform_(m, gen, -2.0, 3.0);
  Moments s = moments(m);
  CHECK(s.mean == Approx(0.5).margin(0.02));
  CHECK(s.var == Approx(25.0 / 12.0).epsilon(0.02));
  CHECK(s.min >= -2.0);
  CHECK(s.max < 3.0);

  init::normal_(m, gen, 1.5, 0.5);
  s = moments(m);
  CHECK(s.mean == Approx(1.5).margin(0.005));
  CHECK(s.var == Approx(0.25).epsilon(0.02));
  CHECK_THROWS_AS(init::normal_(m, gen, 0.0, -1.0), ArgumentError);
  CHECK_THROWS_AS(init::uniform_(m, gen, 1.0, 0.0), ArgumentError);
}

TEST_CASE("xavier initializers have variance gain^2 * 2 / (fan_in + fan_out)", "[init][xavier]") {
  Generator gen(2);
  Matrix<double> w(300, 700);  // fan_out 300, fan_in 700
  const double gain = 5.0 / 3.0;
  const double var = gain * gain * 2.0 / 1000.0;

  init::xavier_uniform_(w, gen, gain);
  Moments s = moments(w);
  CHECK(s.mean == Approx(0.0).margin(0.003));
  CHECK(s.var == Approx(var).epsilon(0.02));
  const double bound = gain * std::sqrt(6.0 / 1000.0);
  CHECK(s.max <= bound);
  CHECK(s.min >= -bound);
  CHECK(s.max > 0.99 * bound);

  init::xavier_normal_(w, gen, gain);
  s = moments(w);
  CHECK(s.mean == Approx(0.0).margin(0.003));
  CHECK(s.var == Approx(var).epsilon(0.02));
}

TEST_CASE("kaiming initializers have variance gain^2 / fan for either fan mode", "[init][he]") {
  Generator gen(3);
  Matrix<double> w(200, 800);  // fan_out 200, fan_in 800

  init::kaiming_uniform_(w, gen, 0.0, FanMode::FanIn, Nonlinearity::Relu);
  Moments s = moments(w);
  CHECK(s.var == Approx(2.0 / 800.0).epsilon(0.02));
  CHECK(s.max <= std::sqrt(6.0 / 800.0));

  init::kaiming_normal_(w, gen, 0.0, FanMode::FanOut, Nonlinearity::Relu);
  s = moments(w);
  CHECK(s.mean == Approx(0.0).margin(0.003));
  CHECK(s.var == Approx(2.0 / 200.0).epsilon(0.02));

  // PyTorch's Linear default: a = sqrt(5) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  init::kaiming_uniform_(w, gen, std::sqrt(5.0));
  s = moments(w);
  CHECK(s.var == Approx(1.0 / (3.0 * 800.0)).epsilon(0.02));
  CHECK(s.max <= 1.0 / std::sqrt(800.0));
  CHECK(s.max > 0.99 / std::sqrt(800.0));
}

TEMPLATE_TEST_CASE("orthogonal_ gives orthonormal columns or rows for any shape",
                   "[init][orthogonal]", float, double) {
  const double tol = std::is_same<TestType, float>::value ? 1e-5 : 1e-12;
  Generator gen(4);
  for (auto [rows, cols] : {std::pair<Index, Index>{6, 6}, {9, 4}, {3, 8}}) {
    Matrix<TestType> q(rows, cols);
    init::orthogonal_(q, gen, 2.0);
    const Matrix<double> qd = q.template cast<double>() / 2.0;
    const Matrix<double> gram =
        rows >= cols ? Matrix<double>(qd.transpose() * qd) : Matrix<double>(qd * qd.transpose());
    const Index n = std::min(rows, cols);
    INFO(rows << "x" << cols);
    CHECK((gram - Matrix<double>::Identity(n, n)).cwiseAbs().maxCoeff() < tol);
  }
}

TEST_CASE("orthogonal_ is not biased by the QR sign convention", "[init][orthogonal]") {
  // Without the sign correction every diagonal entry of R is (say) positive and the
  // first column of Q correlates with the first normal column; with it, Q's entries
  // have mean zero.
  Generator gen(5);
  Matrix<double> q(2, 2);
  double diag_sum = 0.0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    init::orthogonal_(q, gen);
    diag_sum += q(0, 0) + q(1, 1);
  }
  CHECK(std::abs(diag_sum / n) < 0.05);
}

TEST_CASE("the same seed gives the same matrix and another seed another one", "[init]") {
  Matrix<double> a(5, 7), b(5, 7), c(5, 7);
  Generator g1(11), g2(11), g3(12);
  init::xavier_uniform_(a, g1);
  init::xavier_uniform_(b, g2);
  init::xavier_uniform_(c, g3);
  CHECK(a == b);
  CHECK(a != c);
  init::orthogonal_(a, g1);
  init::orthogonal_(b, g2);
  CHECK(a == b);
  init::kaiming_normal_(a, g1);
  init::kaiming_normal_(b, g2);
  CHECK(a == b);
}

TEST_CASE("initializers reject an empty matrix", "[init]") {
  Generator gen;
  Matrix<double> empty(0, 3);
  CHECK_THROWS_WITH(init::xavier_uniform_(empty, gen),
                    Catch::Contains("xavier_uniform_") && Catch::Contains("[0x3]"));
  CHECK_THROWS_AS(init::orthogonal_(empty, gen), ArgumentError);
}
