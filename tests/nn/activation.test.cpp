#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/nn/activation.hpp>
#include <memory>

#include "nn_test_util.hpp"

using namespace gradflow;
using namespace gradflow::nn;

namespace {
template <typename T>
Matrix<T> run(Layer<T>& layer, const Matrix<T>& x) {
  Tape<T> tape;
  return layer(tape.constant(x)).value();
}
}  // namespace

TEST_CASE("Activation layers compute their functions", "[nn][activation]") {
  Matrix<double> x(1, 4);
  x << -2.0, -0.5, 0.0, 1.5;
  Identity<double> identity;
  Sigmoid<double> sigmoid_layer;
  Tanh<double> tanh_layer;
  ReLU<double> relu_layer;
  LeakyReLU<double> leaky(LeakyReLUOptions().negative_slope(0.2));
  ELU<double> elu_layer(ELUOptions().alpha(2.0));
  GELU<double> gelu_exact;
  GELU<double> gelu_tanh(GELUOptions().approximate(GeluApproximation::Tanh));

  CHECK(run(identity, x) == x);
  CHECK(run(sigmoid_layer, x)(0, 0) == Approx(1.0 / (1.0 + std::exp(2.0))));
  CHECK(run(tanh_layer, x)(0, 1) == Approx(std::tanh(-0.5)));
  CHECK(run(relu_layer, x)(0, 0) == 0.0);
  CHECK(run(relu_layer, x)(0, 3) == Approx(1.5));
  CHECK(run(leaky, x)(0, 0) == Approx(-0.4));
  CHECK(run(elu_layer, x)(0, 1) == Approx(2.0 * std::expm1(-0.5)));
  CHECK(run(gelu_exact, x)(0, 3) == Approx(1.5 * 0.5 * (1 + std::erf(1.5 / std::sqrt(2.0)))));
  CHECK(run(gelu_tanh, x)(0, 3) == Approx(run(gelu_exact, x)(0, 3)).epsilon(1e-3));
  CHECK(run(gelu_tanh, x)(0, 3) != run(gelu_exact, x)(0, 3));
  CHECK(LeakyReLU<double>().options().negative_slope() == Approx(0.01));
}

TEST_CASE("Activation layers pass gradcheck", "[nn][activation][gradcheck]") {
  // Inputs away from the kinks of ReLU-like functions.
  Matrix<double> x(3, 4);
  x << -2.0, -0.7, 0.3, 1.1, 0.9, -1.3, 2.2, -0.2, 0.45, 1.7, -0.6, -2.5;
  Matrix<double> r = Matrix<double>::Random(3, 4);
  std::vector<std::shared_ptr<Layer<double>>> layers = {
      std::make_shared<Identity<double>>(),
      std::make_shared<Sigmoid<double>>(),
      std::make_shared<Tanh<double>>(),
      std::make_shared<ReLU<double>>(),
      std::make_shared<LeakyReLU<double>>(LeakyReLUOptions().negative_slope(0.1)),
      std::make_shared<ELU<double>>(ELUOptions().alpha(1.5)),
      std::make_shared<GELU<double>>(),
      std::make_shared<GELU<double>>(GELUOptions().approximate(GeluApproximation::Tanh))};
  for (auto& layer : layers) {
    auto report = diag::gradcheck<double>(
        [&](Tape<double>&, const std::vector<Var<double>>& v) {
          return test::weighted_sum((*layer)(v[0]), r);
        },
        {x});
    INFO(layer->type_name() << ": " << report.summary());
    CHECK(report.passed);
    CHECK(layer->named_parameters().empty());
  }
}

TEMPLATE_TEST_CASE("Activation layers run in float and double", "[nn][activation]", float, double) {
  GELU<TestType> gelu_layer;
  Tape<TestType> tape;
  auto x = tape.variable(Matrix<TestType>::Constant(2, 2, TestType(1)));
  sum(gelu_layer(x)).backward();
  // d/dx x Phi(x) at 1 = Phi(1) + phi(1)
  CHECK(x.grad()(0, 0) == Approx(0.8413447 + 0.2419707).epsilon(1e-5));
}
