#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/init/basic.hpp>
#include <gradflow/init/he.hpp>
#include <gradflow/nn/nn.hpp>
#include <memory>

using namespace gradflow;
using namespace gradflow::nn;

namespace {

// Dense layers: 1 stem + 2 per residual block * 4 blocks + 1 head = 10.
constexpr int kBlocks = 4;
constexpr Index kWidth = 32;
constexpr Index kInputs = 6;

std::shared_ptr<Dense<double>> he_dense(Index in, Index out, Generator& gen) {
  auto layer = std::make_shared<Dense<double>>(DenseOptions(in, out), gen);
  init::kaiming_normal_(layer->weight().value(), gen, 0.0, init::FanMode::FanIn,
                        init::Nonlinearity::Relu);
  init::zeros_(layer->bias()->value());
  return layer;
}

Sequential<double> make_model(Generator& gen) {
  Sequential<double> net;
  net.push_back(he_dense(kInputs, kWidth, gen));
  net.push_back(std::make_shared<ReLU<double>>());
  for (int b = 0; b < kBlocks; ++b) {
    auto body = std::make_shared<Sequential<double>>();
    body->push_back(he_dense(kWidth, kWidth, gen));
    body->push_back(BatchNorm1d<double>(BatchNorm1dOptions(kWidth)));
    body->push_back(ReLU<double>());
    body->push_back(he_dense(kWidth, kWidth, gen));
    body->push_back(BatchNorm1d<double>(BatchNorm1dOptions(kWidth)));
    net.push_back(std::make_shared<Residual<double>>(body));
    net.push_back(std::make_shared<ReLU<double>>());
  }
  net.push_back(he_dense(kWidth, 1, gen));
  return net;
}

int count_dense(const Module<double>& m) {
  int n = m.type_name() == "Dense" ? 1 : 0;
  for (const auto& [name, child] : m.named_children()) n += count_dense(*child);
  return n;
}

// A smooth nonlinear target with unit-order variance.
Matrix<double> target_of(const Matrix<double>& x) {
  Matrix<double> y(x.rows(), 1);
  for (Index i = 0; i < x.rows(); ++i)
    y(i, 0) = std::sin(2.0 * x(i, 0)) + x(i, 1) * x(i, 2) - 0.5 * x(i, 3) * x(i, 3) +
              0.3 * x(i, 4) - std::abs(x(i, 5));
  return y;
}

}  // namespace

TEST_CASE("A 10-layer residual ReLU MLP with batch norm fits a regression task",
          "[nn][training][e2e]") {
  Generator gen(2024);
  Sequential<double> net = make_model(gen);
  REQUIRE(count_dense(net) == 10);

  const Index n = 256, batch = 128;
  Matrix<double> x(n, kInputs);
  init::uniform_(x, gen, -1.5, 1.5);
  const Matrix<double> y = target_of(x);
  const double target_var = (y.array() - y.mean()).square().mean();

  auto eval_loss = [&]() {
    net.eval();
    Tape<double> tape;
    const double l = mse_loss(net(tape.constant(x)), tape.constant(y)).item();
    net.train();
    return l;
  };
  const double initial = eval_loss();

  // Plain SGD with momentum, written out (optimizers live in gradflow/optim), on shuffled
  // minibatches (fixed batches would let batch norm fit their particular statistics), with
  // the step size cut tenfold for the last fifth of the epochs.
  const int epochs = 100;
  const double lr = 0.02, momentum = 0.9;
  auto params = net.parameters();
  std::vector<Matrix<double>> velocity;
  for (auto* p : params) velocity.push_back(Matrix<double>::Zero(p->rows(), p->cols()));
  std::vector<Index> order(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  Matrix<double> xb(batch, kInputs), yb(batch, 1);
  Tape<double> tape;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    for (std::size_t i = order.size() - 1; i > 0; --i)
      std::swap(order[i], order[gen.next() % (i + 1)]);
    const double step = epoch >= epochs * 4 / 5 ? 0.1 * lr : lr;
    for (Index start = 0; start < n; start += batch) {
      for (Index i = 0; i < batch; ++i) {
        xb.row(i) = x.row(order[static_cast<std::size_t>(start + i)]);
        yb.row(i) = y.row(order[static_cast<std::size_t>(start + i)]);
      }
      tape.clear();
      net.zero_grad();
      mse_loss(net(tape.constant(xb)), tape.constant(yb)).backward();
      for (std::size_t k = 0; k < params.size(); ++k) {
        velocity[k] = momentum * velocity[k] + params[k]->grad();
        params[k]->value() -= step * velocity[k];
      }
    }
  }
  const double final_loss = eval_loss();
  INFO("target variance " << target_var << ", initial loss " << initial << ", final loss "
                          << final_loss);
  CHECK(std::isfinite(final_loss));
  // Measured: 0.0044 (from 15.4 at initialization; the target's variance is 1.29).
  CHECK(final_loss < 0.02);
  CHECK(final_loss < 0.02 * target_var);
}
