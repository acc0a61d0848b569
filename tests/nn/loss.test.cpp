#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/nn/loss.hpp>

using namespace gradflow;
using namespace gradflow::nn;

TEST_CASE("mse_loss averages or sums the squared errors", "[nn][loss]") {
  Tape<double> tape;
  Matrix<double> a(2, 2), b(2, 2);
  a << 1, 2, 3, 4;
  b << 1, 0, 0, 4;
  auto x = tape.constant(a), y = tape.constant(b);
  CHECK(mse_loss(x, y).item() == Approx(13.0 / 4.0));
  CHECK(mse_loss(x, y, Reduction::Sum).item() == Approx(13.0));
  CHECK(mse_loss(x, y, Reduction::None).value()(1, 0) == Approx(9.0));
  CHECK_THROWS_WITH(
      mse_loss(x, tape.constant(Matrix<double>::Zero(2, 3))),
      Catch::Contains("mse_loss") && Catch::Contains("[2x2]") && Catch::Contains("[2x3]"));
}

TEST_CASE("cross_entropy is the mean negative log-likelihood of the target classes", "[nn][loss]") {
  Tape<double> tape;
  Matrix<double> z(2, 3);
  z << 1.0, 2.0, 3.0, 0.5, 0.5, -1.0;
  auto logits = tape.constant(z);
  auto nll = [&](Index r, Index c) { return std::log(z.row(r).array().exp().sum()) - z(r, c); };
  CHECK(cross_entropy(logits, {2, 0}).item() == Approx((nll(0, 2) + nll(1, 0)) / 2));
  CHECK(cross_entropy(logits, {1, 2}, Reduction::Sum).item() == Approx(nll(0, 1) + nll(1, 2)));
  Matrix<double> per_row = cross_entropy(logits, {1, 2}, Reduction::None).value();
  CHECK(per_row.rows() == 2);
  CHECK(per_row(1, 0) == Approx(nll(1, 2)));
}

TEST_CASE("cross_entropy stays finite for huge logits", "[nn][loss]") {
  Tape<double> tape;
  Matrix<double> z(1, 3);
  z << 1000.0, -1000.0, 0.0;
  auto logits = tape.variable(z);
  auto loss = cross_entropy(logits, {1});
  CHECK(loss.item() == Approx(2000.0));
  loss.backward();
  CHECK(logits.grad()(0, 0) == Approx(1.0));
  CHECK(logits.grad()(0, 1) == Approx(-1.0));
}

TEST_CASE("cross_entropy rejects bad targets", "[nn][loss][errors]") {
  Tape<double> tape;
  auto logits = tape.constant(Matrix<double>::Zero(2, 3));
  CHECK_THROWS_WITH(cross_entropy(logits, {0, 3}),
                    Catch::Contains("target 3") && Catch::Contains("row 1"));
  CHECK_THROWS_AS(cross_entropy(logits, {0, -1}), ArgumentError);
  CHECK_THROWS_WITH(cross_entropy(logits, {0}),
                    Catch::Contains("cross_entropy") && Catch::Contains("[2x3]"));
}

TEST_CASE("binary_cross_entropy_with_logits is stable for large logits", "[nn][loss]") {
  Tape<double> tape;
  Matrix<double> z(1, 4), t(1, 4);
  z << 800.0, -800.0, 0.0, 2.0;
  t << 0.0, 0.0, 1.0, 1.0;
  auto x = tape.variable(z);
  auto per = binary_cross_entropy_with_logits(x, tape.constant(t), Reduction::None);
  CHECK(per.value()(0, 0) == Approx(800.0));
  CHECK(per.value()(0, 1) == Approx(0.0).margin(1e-300));
  CHECK(per.value()(0, 2) == Approx(std::log(2.0)));
  CHECK(per.value()(0, 3) == Approx(std::log1p(std::exp(-2.0))));
  auto loss = binary_cross_entropy_with_logits(x, tape.constant(t));
  loss.backward();
  CHECK(loss.item() == Approx((800.0 + std::log(2.0) + std::log1p(std::exp(-2.0))) / 4));
  CHECK(x.grad()(0, 0) == Approx(0.25));
  CHECK(x.grad()(0, 3) == Approx((1.0 / (1.0 + std::exp(-2.0)) - 1.0) / 4));
}

TEST_CASE("Every loss and reduction passes gradcheck", "[nn][loss][gradcheck]") {
  Matrix<double> a = Matrix<double>::Random(4, 3) * 3.0, b = Matrix<double>::Random(4, 3);
  Matrix<double> probs = (b.array() + 1.0) / 2.0;
  Matrix<double> r = Matrix<double>::Random(4, 3);
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    auto finish = [&](Var<double> l) {
      return red == Reduction::None
                 ? sum(mul(l, l.tape().constant(r.topLeftCorner(l.rows(), l.cols()))))
                 : l;
    };
    auto mse = diag::gradcheck<double>(
        [&](Tape<double>&, const std::vector<Var<double>>& v) {
          return finish(mse_loss(v[0], v[1], red));
        },
        {a, b});
    auto ce = diag::gradcheck<double>(
        [&](Tape<double>&, const std::vector<Var<double>>& v) {
          return finish(cross_entropy(v[0], {2, 0, 1, 1}, red));
        },
        {a});
    auto bce = diag::gradcheck<double>(
        [&](Tape<double>&, const std::vector<Var<double>>& v) {
          return finish(binary_cross_entropy_with_logits(v[0], v[1], red));
        },
        {a, probs});
    INFO("reduction " << static_cast<int>(red));
    INFO("mse: " << mse.summary());
    INFO("ce: " << ce.summary());
    INFO("bce: " << bce.summary());
    CHECK(mse.passed);
    CHECK(ce.passed);
    CHECK(bce.passed);
  }
}

TEMPLATE_TEST_CASE("Losses run in float and double", "[nn][loss]", float, double) {
  Tape<TestType> tape;
  auto x = tape.variable(Matrix<TestType>::Zero(2, 2));
  auto target = tape.constant(Matrix<TestType>::Ones(2, 2));
  auto loss =
      mse_loss(x, target) + cross_entropy(x, {0, 1}) + binary_cross_entropy_with_logits(x, target);
  CHECK(loss.item() == Approx(1.0 + 2.0 * std::log(2.0)).epsilon(1e-5));
  loss.backward();
  // mse: 2(0 - 1)/4; ce: (1/2 - 1)/2 on the target, 1/4 elsewhere; bce: (1/2 - 1)/4.
  CHECK(x.grad()(0, 0) == Approx(-0.5 - 0.25 - 0.125));
  CHECK(x.grad()(0, 1) == Approx(-0.5 + 0.25 - 0.125));
}
