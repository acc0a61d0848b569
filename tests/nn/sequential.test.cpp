#include <catch2/catch.hpp>
#include <gradflow/nn/activation.hpp>
#include <gradflow/nn/dense.hpp>
#include <gradflow/nn/dropout.hpp>
#include <gradflow/nn/sequential.hpp>
#include <memory>

#include "nn_test_util.hpp"

using namespace gradflow;
using namespace gradflow::nn;

TEST_CASE("Sequential applies its layers in order and names them by position", "[nn][sequential]") {
  auto first = std::make_shared<Dense<double>>(DenseOptions(3, 4).seed(1));
  Sequential<double> net{first, std::make_shared<Tanh<double>>()};
  net.push_back(Dense<double>(DenseOptions(4, 2).seed(2)));
  REQUIRE(net.size() == 3);

  std::vector<std::string> names;
  for (auto& [name, p] : net.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});

  Tape<double> tape;
  Matrix<double> x = Matrix<double>::Random(5, 3);
  Matrix<double> y = net(tape.constant(x)).value();
  auto& last = dynamic_cast<Dense<double>&>(net[2]);
  Matrix<double> h =
      ((x * first->weight().value().transpose()).rowwise() + first->bias()->value().row(0))
          .array()
          .tanh()
          .matrix();
  Matrix<double> expected =
      (h * last.weight().value().transpose()).rowwise() + last.bias()->value().row(0);
  CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-12);
  CHECK_THROWS_AS(net.at(3), ArgumentError);
}

TEST_CASE("Sequential gradients pass gradcheck", "[nn][sequential][gradcheck]") {
  Sequential<double> net;
  net.push_back(Dense<double>(DenseOptions(3, 5).seed(3)))
      .push_back(Sigmoid<double>())
      .push_back(Dense<double>(DenseOptions(5, 2).seed(4)));
  Matrix<double> x = Matrix<double>::Random(4, 3), r = Matrix<double>::Random(4, 2);
  auto report = diag::gradcheck<double>(
      [&](Tape<double>&, const std::vector<Var<double>>& v) {
        return test::weighted_sum(net(v[0]), r);
      },
      {x});
  INFO(report.summary());
  CHECK(report.passed);
  CHECK(test::parameter_grad_error(net, [&](Tape<double>& t) {
          return test::weighted_sum(net(t.constant(x)), r);
        }) < 1e-7);
}

TEST_CASE("Sequential passes train and eval mode to its layers", "[nn][sequential]") {
  auto drop = std::make_shared<Dropout<double>>(DropoutOptions(0.5).seed(1));
  Sequential<double> net{drop};
  CHECK(drop->is_training());
  net.eval();
  CHECK_FALSE(drop->is_training());
  net.train();
  CHECK(drop->is_training());
}

TEST_CASE("Sequential reports the failing layer's error", "[nn][sequential][errors]") {
  Sequential<double> net;
  net.push_back(Dense<double>(DenseOptions(3, 4))).push_back(Dense<double>(DenseOptions(5, 2)));
  Tape<double> tape;
  CHECK_THROWS_WITH(net(tape.constant(Matrix<double>::Zero(2, 3))),
                    Catch::Contains("Dense(5 -> 2)") && Catch::Contains("[2x4]"));
  CHECK_THROWS_AS(net.push_back(std::shared_ptr<Layer<double>>()), ArgumentError);
}

TEMPLATE_TEST_CASE("Sequential runs in float and double", "[nn][sequential]", float, double) {
  Sequential<TestType> net;
  net.push_back(Dense<TestType>(DenseOptions(2, 3).seed(5))).push_back(ReLU<TestType>());
  Tape<TestType> tape;
  auto y = net(tape.constant(Matrix<TestType>::Ones(4, 2)));
  CHECK(y.rows() == 4);
  CHECK(y.cols() == 3);
  CHECK(y.value().minCoeff() >= TestType(0));
}
