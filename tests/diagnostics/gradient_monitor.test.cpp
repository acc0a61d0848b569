#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/core/ops.hpp>
#include <gradflow/diagnostics/gradient_monitor.hpp>
#include <gradflow/nn/activation.hpp>
#include <gradflow/nn/dense.hpp>
#include <gradflow/nn/loss.hpp>
#include <gradflow/nn/sequential.hpp>

using namespace gradflow;
using Catch::Matchers::WithinRel;

namespace {

template <typename T>
std::shared_ptr<nn::Sequential<T>> small_mlp() {
  auto net = std::make_shared<nn::Sequential<T>>();
  net->push_back(nn::Dense<T>(nn::DenseOptions(3, 5).seed(1)));
  net->push_back(nn::Tanh<T>());
  net->push_back(nn::Dense<T>(nn::DenseOptions(5, 2).seed(2)));
  return net;
}

template <typename T>
void one_backward(nn::Sequential<T>& net, std::uint64_t seed) {
  Tape<T> tape;
  Generator gen(seed);
  Matrix<T> x(4, 3), y(4, 2);
  for (Index i = 0; i < x.size(); ++i) x(i) = static_cast<T>(gen.normal());
  for (Index i = 0; i < y.size(); ++i) y(i) = static_cast<T>(gen.normal());
  net.zero_grad();
  nn::mse_loss(net(tape.constant(x)), tape.constant(y)).backward();
}

}  // namespace

TEMPLATE_TEST_CASE("The monitor records each parameter's gradient norm, max and ratio",
                   "[diagnostics][monitor]", float, double) {
  auto net = small_mlp<TestType>();
  diag::GradientMonitor<TestType> monitor(*net);
  one_backward(*net, 7);
  const diag::GradientSnapshot& s = monitor.record(0);
  REQUIRE(s.parameters.size() == 4);
  for (const auto& [name, p] : net->named_parameters()) {
    const diag::ParameterGradStats* ps = s.parameter(name);
    REQUIRE(ps != nullptr);
    const double gn = static_cast<double>(p->grad().norm());
    CHECK(gn > 0.0);
    CHECK_THAT(ps->grad_norm, WithinRel(gn, 1e-5));
    CHECK_THAT(ps->grad_max_abs,
               WithinRel(static_cast<double>(p->grad().cwiseAbs().maxCoeff()), 1e-6));
    CHECK_THAT(ps->weight_norm, WithinRel(static_cast<double>(p->value().norm()), 1e-5));
    CHECK_THAT(ps->ratio, WithinRel(gn / static_cast<double>(p->value().norm()), 1e-5));
    CHECK(ps->size == p->size());
    CHECK(ps->finite);
  }
}

TEST_CASE("The monitor groups parameters into layers by module prefix with type names",
          "[diagnostics][monitor]") {
  auto net = small_mlp<double>();
  diag::GradientMonitor<double> monitor(*net);
  CHECK(monitor.layer_names() == std::vector<std::string>{"0", "2"});
  one_backward(*net, 8);
  const diag::GradientSnapshot& s = monitor.record(3);
  CHECK(s.step == 3);
  REQUIRE(s.layers.size() == 2);
  const diag::LayerGradStats* l0 = s.layer("0");
  REQUIRE(l0 != nullptr);
  CHECK(l0->type_name == "Dense");
  CHECK(l0->size == 3 * 5 + 5);
  const double w = s.parameter("0.weight")->grad_norm, b = s.parameter("0.bias")->grad_norm;
  CHECK_THAT(l0->grad_norm, WithinRel(std::sqrt(w * w + b * b), 1e-12));
  CHECK_THAT(l0->grad_max_abs, WithinRel(std::max(s.parameter("0.weight")->grad_max_abs,
                                                  s.parameter("0.bias")->grad_max_abs),
                                         1e-12));
}

TEST_CASE("The monitor keeps a history, one snapshot per record", "[diagnostics][monitor]") {
  auto net = small_mlp<double>();
  diag::GradientMonitor<double> monitor(*net);
  CHECK_THROWS_AS(monitor.latest(), ArgumentError);
  for (std::uint64_t k = 0; k < 3; ++k) {
    one_backward(*net, 20 + k);
    monitor.record();
  }
  REQUIRE(monitor.history().size() == 3);
  CHECK(monitor.history()[2].step == 2);
  CHECK(monitor.latest().step == 2);
  const std::vector<double> series = monitor.layer_series("2");
  REQUIRE(series.size() == 3);
  CHECK(series[0] != series[1]);  // different batches, different gradients
  CHECK_THAT(series[2], WithinRel(monitor.latest().layer("2")->grad_norm, 1e-15));
  monitor.clear();
  CHECK(monitor.history().empty());
}

TEST_CASE("The monitor works on a plain list of named parameters and skips frozen ones",
          "[diagnostics][monitor]") {
  Parameter<double> a(Matrix<double>::Constant(2, 2, 1.0)), b(Matrix<double>::Constant(1, 3, 2.0)),
      frozen(Matrix<double>::Ones(1, 1), false);
  a.grad().setConstant(0.5);   // norm 1, max 0.5
  b.grad() << 0.0, -3.0, 4.0;  // norm 5, max 4
  diag::GradientMonitor<double> monitor({{"enc.a", &a}, {"enc.b", &b}, {"head.w", &frozen}});
  CHECK(monitor.parameters().size() == 2);
  const diag::GradientSnapshot& s = monitor.record(0);
  CHECK_THAT(s.parameter("enc.a")->grad_norm, WithinRel(1.0, 1e-12));
  CHECK_THAT(s.parameter("enc.a")->ratio, WithinRel(0.5, 1e-12));  // 1 / ||ones(2,2)|| = 1/2
  CHECK_THAT(s.parameter("enc.b")->grad_max_abs, WithinRel(4.0, 1e-12));
  REQUIRE(s.layers.size() == 1);
  CHECK(s.layers[0].layer == "enc");
  CHECK(s.layers[0].type_name.empty());
  CHECK_THAT(s.layers[0].grad_norm, WithinRel(std::sqrt(26.0), 1e-12));
}

TEST_CASE("The monitor flags non-finite gradients", "[diagnostics][monitor]") {
  Parameter<float> p(Matrix<float>::Ones(2, 2));
  p.grad() << 1.0f, std::numeric_limits<float>::infinity(), 0.0f, 0.0f;
  diag::GradientMonitor<float> monitor({{"w", &p}});
  const diag::GradientSnapshot& s = monitor.record(0);
  CHECK_FALSE(s.all_finite());
  CHECK_FALSE(s.layers[0].finite);
  CHECK(std::isinf(s.parameters[0].grad_max_abs));
  p.grad()(0, 0) = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(monitor.record(1).parameters[0].grad_max_abs));
  p.grad().setZero();
  CHECK(monitor.record(2).all_finite());
}

TEST_CASE("Parameter names group by everything before the last dot", "[diagnostics][monitor]") {
  CHECK(diag::layer_of("3.weight") == "3");
  CHECK(diag::layer_of("encoder.lstm.weight_hh_l0") == "encoder.lstm");
  CHECK(diag::layer_of("weight") == "");
}

TEST_CASE("A zero weight with a gradient has an infinite ratio, a zero one a zero ratio",
          "[diagnostics][monitor]") {
  Parameter<double> b(Matrix<double>::Zero(1, 2)), c(Matrix<double>::Zero(1, 2));
  b.grad() << 1.0, 0.0;
  const diag::GradientSnapshot s = diag::gradient_snapshot<double>({{"b", &b}, {"c", &c}});
  CHECK(std::isinf(s.parameter("b")->ratio));
  CHECK(s.parameter("c")->ratio == 0.0);
}
