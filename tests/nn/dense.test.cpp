#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/nn/dense.hpp>

#include "nn_test_util.hpp"

using namespace gradflow;
using namespace gradflow::nn;

TEST_CASE("Dense computes x W^T + b", "[nn][dense]") {
  Dense<double> fc(DenseOptions(3, 2).seed(1));
  fc.weight().value() << 1, 2, 3, -1, 0, 1;
  fc.bias()->value() << 0.5, -0.5;
  Tape<double> tape;
  Matrix<double> x(2, 3);
  x << 1, 1, 1, 2, 0, -1;
  Matrix<double> y = fc(tape.constant(x)).value();
  Matrix<double> expected(2, 2);
  expected << 6.5, -0.5, -0.5, -3.5;
  CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("Dense gradients pass gradcheck for input, weight and bias", "[nn][dense][gradcheck]") {
  Dense<double> fc(DenseOptions(4, 3).seed(2));
  Generator gen(3);
  Matrix<double> x = Matrix<double>::Random(5, 4), r = Matrix<double>::Random(5, 3);
  auto input_report = diag::gradcheck<double>(
      [&](Tape<double>&, const std::vector<Var<double>>& v) {
        return test::weighted_sum(fc(v[0]), r);
      },
      {x});
  INFO(input_report.summary());
  CHECK(input_report.passed);
  CHECK(test::parameter_grad_error(
            fc, [&](Tape<double>& t) { return test::weighted_sum(fc(t.constant(x)), r); }) < 1e-7);
}

TEST_CASE("Dense has PyTorch's default initialization U(-1/sqrt(in), 1/sqrt(in))",
          "[nn][dense][init]") {
  Dense<double> fc(DenseOptions(400, 300).seed(4));
  const double bound = 1.0 / 20.0;
  const Matrix<double>& w = fc.weight().value();
  CHECK(w.rows() == 300);
  CHECK(w.cols() == 400);
  CHECK(w.cwiseAbs().maxCoeff() <= bound);
  CHECK(w.cwiseAbs().maxCoeff() > 0.99 * bound);
  const double var = w.array().square().mean();
  CHECK(var == Approx(bound * bound / 3.0).epsilon(0.02));
  CHECK(fc.bias()->value().cwiseAbs().maxCoeff() <= bound);
  CHECK(fc.bias()->value().cwiseAbs().maxCoeff() > 0.5 * bound);
}

TEST_CASE("Dense initialization is reproducible from a seed or a generator", "[nn][dense]") {
  Dense<double> a(DenseOptions(5, 4).seed(9)), b(DenseOptions(5, 4).seed(9)),
      c(DenseOptions(5, 4).seed(10));
  CHECK(a.weight().value() == b.weight().value());
  CHECK(a.weight().value() != c.weight().value());
  Generator g1(5), g2(5);
  Dense<double> d(DenseOptions(5, 4), g1), e(DenseOptions(5, 4), g2);
  CHECK(d.weight().value() == e.weight().value());
  CHECK(*d.bias()->value().data() == *e.bias()->value().data());
  // Without a seed, successive layers draw different weights from the default generator.
  Dense<double> f(DenseOptions(5, 4)), g(DenseOptions(5, 4));
  CHECK(f.weight().value() != g.weight().value());
}

TEST_CASE("Dense without bias has only a weight", "[nn][dense]") {
  Dense<double> fc(DenseOptions(3, 2).bias(false));
  CHECK(fc.bias() == nullptr);
  auto named = fc.named_parameters();
  REQUIRE(named.size() == 1);
  CHECK(named[0].first == "weight");
  Tape<double> tape;
  Matrix<double> x = Matrix<double>::Random(4, 3);
  Matrix<double> y = fc(tape.constant(x)).value();
  CHECK((y - x * fc.weight().value().transpose()).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("Dense rejects an input of the wrong width, naming itself and both shapes",
          "[nn][dense][errors]") {
  Dense<double> fc(DenseOptions(4, 3));
  Tape<double> tape;
  auto x = tape.constant(Matrix<double>::Zero(5, 6));
  CHECK_THROWS_AS(fc(x), ShapeError);
  CHECK_THROWS_WITH(fc(x), Catch::Contains("Dense(4 -> 3)") && Catch::Contains("[5x6]") &&
                               Catch::Contains("[5x4]"));
  CHECK_THROWS_AS(Dense<double>(DenseOptions(0, 3)), ArgumentError);
}

TEMPLATE_TEST_CASE("Dense runs forward and backward in float and double", "[nn][dense]", float,
                   double) {
  Dense<TestType> fc(DenseOptions(3, 2).seed(1));
  Tape<TestType> tape;
  auto y = fc(tape.constant(Matrix<TestType>::Ones(4, 3)));
  sum(y).backward();
  // d sum / dW = column sums of x = 4 everywhere, d sum / db = batch size.
  CHECK(fc.weight().grad()(1, 2) == Approx(4.0));
  CHECK(fc.bias()->grad()(0, 1) == Approx(4.0));
}
