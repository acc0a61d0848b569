#include <catch2/catch.hpp>
#include <gradflow/optim/optim.hpp>
#include <memory>
#include <type_traits>
#include <vector>

using namespace gradflow;

namespace {

// Minimises f(p) = 0.5 |p - target|^2 (gradient p - target) for `steps` steps.
template <typename T, typename Opt>
T run_quadratic(Opt& opt, Parameter<T>& p, const Matrix<T>& target, int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    p.grad() = p.value() - target;
    opt.step();
  }
  return (p.value() - target).norm();
}

template <typename T>
Matrix<T> start() {
  Matrix<T> m(2, 3);
  m << 3, -2, 1, 0.5, -4, 2;
  return m;
}

}  // namespace

TEMPLATE_TEST_CASE("Every optimizer drives a quadratic to its minimum", "[optim]", float, double) {
  using T = TestType;
  const Matrix<T> target = Matrix<T>::Constant(2, 3, T(0.25));
  const T initial = (start<T>() - target).norm();
  Parameter<T> p(start<T>());
  std::vector<Parameter<T>*> params{&p};

  SECTION("SGD") {
    optim::SGD<T> opt(params, optim::SGDOptions(0.1));
    REQUIRE(run_quadratic(opt, p, target, 200) < T(1e-3) * initial);
  }
  SECTION("SGD with Nesterov momentum") {
    optim::SGD<T> opt(params, optim::SGDOptions(0.05).momentum(0.9).nesterov(true));
    REQUIRE(run_quadratic(opt, p, target, 300) < T(1e-3) * initial);
  }
  SECTION("Adam") {
    optim::Adam<T> opt(params, optim::AdamOptions(0.05));
    REQUIRE(run_quadratic(opt, p, target, 600) < T(1e-2) * initial);
  }
  SECTION("AdamW without decay") {
    optim::AdamW<T> opt(params, optim::AdamWOptions(0.05).weight_decay(0.0));
    REQUIRE(run_quadratic(opt, p, target, 600) < T(1e-2) * initial);
  }
  SECTION("RMSprop centered with momentum") {
    optim::RMSprop<T> opt(params, optim::RMSpropOptions(0.01).centered(true).momentum(0.5));
    REQUIRE(run_quadratic(opt, p, target, 800) < T(2e-2) * initial);
  }
  SECTION("Adagrad") {
    optim::Adagrad<T> opt(params, optim::AdagradOptions(0.5));
    REQUIRE(run_quadratic(opt, p, target, 800) < T(1e-2) * initial);
  }
}

TEST_CASE("SGD's first momentum step equals a plain step and later ones accumulate", "[optim]") {
  Parameter<double> p(Matrix<double>::Constant(1, 1, 1.0));
  optim::SGD<double> opt({&p}, optim::SGDOptions(0.1).momentum(0.9));
  p.grad().setConstant(1.0);
  opt.step();
  REQUIRE(p.value()(0, 0) == Approx(0.9));  // buffer = g on the first step
  opt.step();
  REQUIRE(p.value()(0, 0) == Approx(0.9 - 0.1 * 1.9));  // buffer = 0.9 * 1 + 1
}

TEST_CASE("Adam's first step moves every coordinate by about lr", "[optim]") {
  // With bias correction, m_hat / sqrt(v_hat) = sign(g) on step one.
  Parameter<double> p(Matrix<double>::Zero(1, 3));
  optim::Adam<double> opt({&p}, optim::AdamOptions(0.01));
  p.grad() << 5.0, -0.001, 100.0;
  opt.step();
  REQUIRE(p.value()(0, 0) == Approx(-0.01).epsilon(1e-6));
  REQUIRE(p.value()(0, 1) == Approx(0.01).epsilon(1e-4));
  REQUIRE(p.value()(0, 2) == Approx(-0.01).epsilon(1e-6));
}

TEST_CASE("AdamW decays weights even when the gradient is zero; Adam does not", "[optim]") {
  Parameter<double> a(Matrix<double>::Constant(1, 1, 2.0)), b(Matrix<double>::Constant(1, 1, 2.0));
  optim::AdamW<double> adamw({&a}, optim::AdamWOptions(0.1).weight_decay(0.5));
  optim::Adam<double> adam({&b}, optim::AdamOptions(0.1));
  adamw.step();
  adam.step();
  REQUIRE(a.value()(0, 0) == Approx(2.0 * (1 - 0.1 * 0.5)));
  REQUIRE(b.value()(0, 0) == Approx(2.0));
}

TEST_CASE("Optimizers reject invalid hyper-parameters with a message", "[optim][errors]") {
  Parameter<double> p(Matrix<double>::Zero(1, 1));
  using Catch::Matchers::Contains;
  REQUIRE_THROWS_WITH(optim::SGD<double>({&p}, optim::SGDOptions(-1.0)),
                      Contains("SGD") && Contains("learning rate"));
  REQUIRE_THROWS_WITH(optim::SGD<double>({&p}, optim::SGDOptions(0.1).nesterov(true)),
                      Contains("Nesterov"));
  REQUIRE_THROWS_WITH(optim::Adam<double>({&p}, optim::AdamOptions(0.1).betas(1.0, 0.9)),
                      Contains("beta1"));
  REQUIRE_THROWS_AS(optim::RMSprop<double>({&p}, optim::RMSpropOptions(0.1).alpha(-1)),
                    ArgumentError);
  REQUIRE_THROWS_AS(optim::Adagrad<double>({&p}, optim::AdagradOptions(0.1).lr_decay(-1)),
                    ArgumentError);
}

TEST_CASE("A parameter resized after the optimizer was made is reported", "[optim][errors]") {
  Parameter<double> p(Matrix<double>::Zero(2, 2));
  optim::Adam<double> opt({&p});
  p.assign(Matrix<double>::Zero(3, 3));
  REQUIRE_THROWS_WITH(opt.step(),
                      Catch::Matchers::Contains("[3x3]") && Catch::Matchers::Contains("[2x2]"));
}

TEST_CASE("zero_grad clears every parameter's gradient", "[optim]") {
  Parameter<float> a(Matrix<float>::Ones(2, 2)), b(Matrix<float>::Ones(1, 3));
  a.grad().setConstant(3);
  b.grad().setConstant(-1);
  optim::RMSprop<float> opt({&a, &b});
  opt.zero_grad();
  REQUIRE_THAT(a.grad().cwiseAbs().maxCoeff(), Catch::Matchers::WithinAbs(0.0f, 0.0f));
  REQUIRE_THAT(b.grad().cwiseAbs().maxCoeff(), Catch::Matchers::WithinAbs(0.0f, 0.0f));
}

namespace {

// Two steps of an optimizer made by `make` on parameters whose gradients are `grads`.
template <typename T, typename Make>
Matrix<T> after_two_steps(Make make, const Matrix<T>& g0, const Matrix<T>& g1) {
  Parameter<T> p(start<T>());
  auto opt = make(std::vector<Parameter<T>*>{&p});
  p.grad() = g0;
  opt.step();
  p.grad() = g1;
  opt.step();
  return p.value();
}

}  // namespace

TEMPLATE_TEST_CASE("maximize steps with g as minimizing steps with -g", "[optim]", float, double) {
  using T = TestType;
  using Params = std::vector<Parameter<T>*>;
  Matrix<T> g0(2, 3), g1(2, 3);
  g0 << 1, -2, 0.5, 3, 0.25, -1;
  g1 << -0.5, 1, 2, -3, 0.75, 1.5;
  auto same = [&](auto minimize, auto maximize) {
    const Matrix<T> a = after_two_steps<T>(minimize, Matrix<T>(-g0), Matrix<T>(-g1));
    const Matrix<T> b = after_two_steps<T>(maximize, g0, g1);
    REQUIRE((a - start<T>()).norm() > T(1e-3));  // the steps moved
    REQUIRE((a - b).norm() <= T(1e-6) * a.norm());
  };
  SECTION("SGD") {
    auto o = optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.1);
    same([&](Params p) { return optim::SGD<T>(p, o); },
         [&](Params p) { return optim::SGD<T>(p, optim::SGDOptions(o).maximize(true)); });
  }
  SECTION("Adam") {
    auto o = optim::AdamOptions(0.1).weight_decay(0.1).amsgrad(true);
    same([&](Params p) { return optim::Adam<T>(p, o); },
         [&](Params p) { return optim::Adam<T>(p, optim::AdamOptions(o).maximize(true)); });
  }
  SECTION("AdamW") {
    auto o = optim::AdamWOptions(0.1);
    same([&](Params p) { return optim::AdamW<T>(p, o); },
         [&](Params p) { return optim::AdamW<T>(p, optim::AdamWOptions(o).maximize(true)); });
  }
  SECTION("RMSprop") {
    auto o = optim::RMSpropOptions(0.1).centered(true).momentum(0.5).weight_decay(0.1);
    same([&](Params p) { return optim::RMSprop<T>(p, o); },
         [&](Params p) { return optim::RMSprop<T>(p, optim::RMSpropOptions(o).maximize(true)); });
  }
  SECTION("Adagrad") {
    auto o = optim::AdagradOptions(0.1).weight_decay(0.1);
    same([&](Params p) { return optim::Adagrad<T>(p, o); },
         [&](Params p) { return optim::Adagrad<T>(p, optim::AdagradOptions(o).maximize(true)); });
  }
}

TEST_CASE("AdamW takes only AdamWOptions, whose default weight decay is 1e-2", "[optim]") {
  using Params = std::vector<Parameter<double>*>;
  STATIC_REQUIRE(std::is_constructible_v<optim::AdamW<double>, Params, optim::AdamWOptions>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<optim::AdamW<double>, Params, optim::AdamOptions>);
  STATIC_REQUIRE_FALSE(std::is_constructible_v<optim::Adam<double>, Params, optim::AdamWOptions>);
  REQUIRE(optim::AdamWOptions().weight_decay() == Approx(1e-2));
  REQUIRE_THAT(optim::AdamOptions().weight_decay(), Catch::Matchers::WithinAbs(0.0, 0.0));
  // The setters keep the options' type, so a chain still builds an AdamW.
  Parameter<double> p(Matrix<double>::Zero(1, 1));
  optim::AdamW<double> opt({&p}, optim::AdamWOptions(0.1).betas(0.8, 0.9).amsgrad(true));
  REQUIRE(opt.options().beta1() == Approx(0.8));
  REQUIRE(opt.options().weight_decay() == Approx(1e-2));
}
