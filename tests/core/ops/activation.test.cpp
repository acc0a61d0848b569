#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/core/ops/activation.hpp>
#include <vector>

#include "core_test_util.hpp"

using namespace gradflow;
using gradflow::test::probe;
using gradflow::test::require_gradcheck;
using gradflow::test::uniform_matrix;

namespace {
using VarList = std::vector<Var<double>>;

// Inputs at least 0.1 away from zero, where relu, leaky_relu and elu have their kink.
Matrix<double> away_from_zero(std::uint64_t seed) {
  Matrix<double> x = uniform_matrix(3, 4, seed, 0.1, 2.5);
  for (Index i = 0; i < x.size(); i += 2) x.data()[i] = -x.data()[i];
  return x;
}

// Reference softmax along `axis` in long double, straight from the definition.
Matrix<double> reference_softmax(const Matrix<double>& x, Axis axis, bool take_log) {
  Matrix<double> out(x.rows(), x.cols());
  const bool per_row = axis == Axis::Cols;
  const Index groups = per_row ? x.rows() : x.cols(), n = per_row ? x.cols() : x.rows();
  for (Index g = 0; g < groups; ++g) {
    long double total = 0;
    for (Index k = 0; k < n; ++k)
      total += std::exp(static_cast<long double>(per_row ? x(g, k) : x(k, g)));
    for (Index k = 0; k < n; ++k) {
      double& o = per_row ? out(g, k) : out(k, g);
      const long double e = std::exp(static_cast<long double>(per_row ? x(g, k) : x(k, g)));
      o = static_cast<double>(take_log ? std::log(e / total) : e / total);
    }
  }
  return out;
}
}  // namespace

TEST_CASE("sigmoid and tanh have correct values and gradients", "[core][activation]") {
  const Matrix<double> x = uniform_matrix(3, 4, 51, -3.0, 3.0);
  Tape<double> tape;
  auto c = tape.constant(x);
  REQUIRE(sigmoid(c).value().isApprox((1.0 / (1.0 + (-x.array()).exp())).matrix()));
  REQUIRE(tanh(c).value().isApprox(x.array().tanh().matrix()));
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(sigmoid(v[0])); }, {x});
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(tanh(v[0])); }, {x});
}

TEST_CASE("relu, leaky_relu and elu have correct values and gradients away from zero",
          "[core][activation]") {
  const Matrix<double> x = away_from_zero(52);
  Tape<double> tape;
  auto c = tape.constant(x);
  REQUIRE(relu(c).value().isApprox(x.cwiseMax(0.0)));
  REQUIRE(leaky_relu(c, 0.2).value().isApprox((x.array() > 0).select(x, 0.2 * x)));
  REQUIRE(leaky_relu(c).value().isApprox((x.array() > 0).select(x, 0.01 * x)));
  REQUIRE(elu(c, 0.5).value().isApprox(
      (x.array() > 0).select(x, (0.5 * (x.array().exp() - 1.0)).matrix())));
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(relu(v[0])); }, {x});
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(leaky_relu(v[0], 0.2)); },
                    {x});
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(elu(v[0])); }, {x});
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(elu(v[0], 0.5)); }, {x});
}

TEST_CASE("relu, leaky_relu and elu at exactly zero use PyTorch's one-sided gradients",
          "[core][activation][kink]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Zero(1, 1));
  auto y = relu(x) + 2.0 * leaky_relu(x, 0.2) + 4.0 * elu(x, 0.5);
  REQUIRE(y.item() == 0.0);
  y.backward();
  // relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha.
  REQUIRE(x.grad()(0, 0) == Approx(0.0 + 2.0 * 0.2 + 4.0 * 0.5));
}

TEST_CASE("gelu matches PyTorch in its exact and tanh forms and has correct gradients",
          "[core][activation]") {
  Tape<double> tape;
  Matrix<double> xv(1, 3);
  xv << -1.0, 0.5, 1.0;
  auto c = tape.constant(xv);
  auto exact = gelu(c), approx = gelu(c, GeluApproximation::Tanh);
  // torch.nn.functional.gelu(torch.tensor([-1., .5, 1.], dtype=torch.float64))
  REQUIRE(exact.value()(0, 0) == Approx(-0.15865525393145707).epsilon(1e-12));
  REQUIRE(exact.value()(0, 1) == Approx(0.34573123063700656).epsilon(1e-12));
  REQUIRE(exact.value()(0, 2) == Approx(0.8413447460685429).epsilon(1e-12));
  // ... approximate='tanh'
  REQUIRE(approx.value()(0, 0) == Approx(-0.15880800939172324).epsilon(1e-12));
  REQUIRE(approx.value()(0, 2) == Approx(0.8411919906082768).epsilon(1e-12));
  const Matrix<double> x = uniform_matrix(3, 4, 53, -3.0, 3.0);
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(gelu(v[0])); }, {x});
  require_gradcheck(
      [](Tape<double>&, const VarList& v) { return probe(gelu(v[0], GeluApproximation::Tanh)); },
      {x});
}

TEST_CASE("softmax and log_softmax have correct values and gradients along both axes",
          "[core][activation]") {
  const Matrix<double> x = uniform_matrix(3, 4, 54, -3.0, 3.0);
  for (Axis axis : {Axis::Rows, Axis::Cols}) {
    CAPTURE(static_cast<int>(axis));
    Tape<double> tape;
    auto c = tape.constant(x);
    auto s = softmax(c, axis);
    REQUIRE(s.value().isApprox(reference_softmax(x, axis, false)));
    REQUIRE(log_softmax(c, axis).value().isApprox(reference_softmax(x, axis, true)));
    // Each group sums to one along the reduced axis.
    const Matrix<double> totals = axis == Axis::Cols ? Matrix<double>(s.value().rowwise().sum())
                                                     : Matrix<double>(s.value().colwise().sum());
    REQUIRE(totals.isApprox(Matrix<double>::Ones(totals.rows(), totals.cols())));
    require_gradcheck(
        [axis](Tape<double>&, const VarList& v) { return probe(softmax(v[0], axis)); }, {x});
    require_gradcheck(
        [axis](Tape<double>&, const VarList& v) { return probe(log_softmax(v[0], axis)); }, {x});
  }
}

TEST_CASE("softmax defaults to one distribution per row", "[core][activation]") {
  Tape<double> tape;
  const Matrix<double> x = uniform_matrix(2, 5, 55);
  auto c = tape.constant(x);
  REQUIRE(softmax(c).value().isApprox(reference_softmax(x, Axis::Cols, false)));
  REQUIRE(log_softmax(c).value().isApprox(reference_softmax(x, Axis::Cols, true)));
}

TEMPLATE_TEST_CASE("Activations stay finite and correct at |x| = 1000",
                   "[core][activation][stability]", float, double) {
  using T = TestType;
  Tape<T> tape;
  Matrix<T> xv(1, 3);
  xv << T(-1000), T(0), T(1000);
  auto x = tape.variable(xv);

  auto s = sigmoid(x);
  REQUIRE(s.value().allFinite());
  REQUIRE(s.value()(0, 0) == Approx(0.0).margin(1e-6));
  REQUIRE(s.value()(0, 1) == Approx(0.5));
  REQUIRE(s.value()(0, 2) == Approx(1.0));

  auto th = tanh(x);
  REQUIRE(th.value()(0, 0) == Approx(-1.0));
  REQUIRE(th.value()(0, 2) == Approx(1.0));

  auto e = elu(x);
  REQUIRE(e.value()(0, 0) == Approx(-1.0));
  REQUIRE(e.value()(0, 2) == Approx(1000.0));

  auto sm = softmax(x);  // one row: [0, e^-1000, 1]
  REQUIRE(sm.value().allFinite());
  REQUIRE(sm.value()(0, 2) == Approx(1.0));
  REQUIRE(sm.value()(0, 0) == Approx(0.0).margin(1e-30));

  auto ls = log_softmax(x);
  REQUIRE(ls.value().allFinite());
  REQUIRE(ls.value()(0, 0) == Approx(-2000.0));
  REQUIRE(ls.value()(0, 1) == Approx(-1000.0));
  REQUIRE(ls.value()(0, 2) == Approx(0.0).margin(1e-6));

  Matrix<T> w(1, 3);
  w << T(1), T(2), T(3);
  auto wc = tape.constant(w);
  sum((s + th + e + sm + ls) * wc).backward();
  REQUIRE(x.grad().allFinite());
  // At |x| = 1000 sigmoid, tanh, softmax are flat; elu is flat on the left, 1 on the right;
  // log_softmax: dx = g - p sum(g) = w - [0, 0, 1] * 6.
  REQUIRE(x.grad()(0, 0) == Approx(1.0 * 1.0).margin(1e-4));
  // At 0 (weight 2): sigmoid' 1/4, tanh' 1, elu' 1, softmax' 0 (p = e^-1000), log_softmax' 1.
  REQUIRE(x.grad()(0, 1) == Approx(2.0 * (0.25 + 1.0 + 1.0 + 0.0 + 1.0)).margin(1e-4));
  REQUIRE(x.grad()(0, 2) == Approx(3.0 * 1.0 + 3.0 - 6.0).margin(1e-4));
}

TEMPLATE_TEST_CASE("Activations give the right gradients in float and double",
                   "[core][activation][float]", float, double) {
  using T = TestType;
  Tape<T> tape;
  Matrix<T> xv(1, 2);
  xv << T(-0.5), T(0.75);
  auto x = tape.variable(xv);
  sum(sigmoid(x) + tanh(x) + relu(x) + leaky_relu(x, T(0.1)) + elu(x)).backward();
  for (Index c = 0; c < 2; ++c) {
    const double v = static_cast<double>(xv(0, c));
    const double s = 1.0 / (1.0 + std::exp(-v));
    const double expected = s * (1 - s) + (1 - std::tanh(v) * std::tanh(v)) + (v > 0 ? 1.0 : 0.0) +
                            (v > 0 ? 1.0 : 0.1) + (v > 0 ? 1.0 : std::exp(v));
    REQUIRE(x.grad()(0, c) == Approx(expected).epsilon(1e-5));
  }
}
