#include <catch2/catch.hpp>
#include <gradflow/nn/activation.hpp>
#include <gradflow/nn/dense.hpp>
#include <gradflow/nn/residual.hpp>
#include <gradflow/nn/sequential.hpp>
#include <memory>

#include "nn_test_util.hpp"

using namespace gradflow;
using namespace gradflow::nn;

TEST_CASE("Residual adds its input to the body's output", "[nn][residual]") {
  auto body = std::make_shared<Tanh<double>>();
  Residual<double> res(body);
  Tape<double> tape;
  Matrix<double> x = Matrix<double>::Random(3, 4);
  Matrix<double> y = res(tape.constant(x)).value();
  CHECK((y - (x + Matrix<double>(x.array().tanh()))).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(res.projection() == nullptr);
}

TEST_CASE("Residual with a projection passes gradcheck", "[nn][residual][gradcheck]") {
  auto body = std::make_shared<Sequential<double>>();
  body->push_back(Dense<double>(DenseOptions(4, 3).seed(1))).push_back(Tanh<double>());
  Residual<double> res(body,
                       std::make_shared<Dense<double>>(DenseOptions(4, 3).bias(false).seed(2)));
  std::vector<std::string> names;
  for (auto& [name, p] : res.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"body.0.weight", "body.0.bias", "projection.weight"});

  Matrix<double> x = Matrix<double>::Random(5, 4), r = Matrix<double>::Random(5, 3);
  auto report = diag::gradcheck<double>(
      [&](Tape<double>&, const std::vector<Var<double>>& v) {
        return test::weighted_sum(res(v[0]), r);
      },
      {x});
  INFO(report.summary());
  CHECK(report.passed);
  CHECK(test::parameter_grad_error(res, [&](Tape<double>& t) {
          return test::weighted_sum(res(t.constant(x)), r);
        }) < 1e-7);
}

TEST_CASE("Residual without a projection rejects a body that changes the width",
          "[nn][residual][errors]") {
  Residual<double> res(std::make_shared<Dense<double>>(DenseOptions(4, 3)));
  Tape<double> tape;
  CHECK_THROWS_AS(res(tape.constant(Matrix<double>::Zero(2, 4))), ShapeError);
  CHECK_THROWS_WITH(res(tape.constant(Matrix<double>::Zero(2, 4))), Catch::Contains("Residual") &&
                                                                        Catch::Contains("[2x3]") &&
                                                                        Catch::Contains("[2x4]"));
  CHECK_THROWS_AS(Residual<double>(nullptr), ArgumentError);
}

TEMPLATE_TEST_CASE("Residual runs in float and double", "[nn][residual]", float, double) {
  Residual<TestType> res(std::make_shared<ReLU<TestType>>());
  Tape<TestType> tape;
  auto x = tape.variable(Matrix<TestType>::Constant(2, 2, TestType(0.5)));
  sum(res(x)).backward();
  CHECK(x.grad()(1, 1) == Approx(2.0));
}
