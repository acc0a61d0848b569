// 01 - Vanishing gradients in a deep MLP, and the four remedies that fix them.
//
// A 20-layer MLP (width 64) classifies synthetic data under six choices of activation,
// initialization and architecture. For each we measure ||dL/dW_l|| of every hidden layer at
// initialization and after training, the ratio first/last layer, and the final loss.
//
//   sigmoid, N(0,1)     the "naive" init: pre-activations of std ~8 saturate the sigmoid,
//                       sigma' ~ 0 and the gradient dies on the way down.
//   sigmoid, Xavier     Glorot & Bengio 2010: Var[W] = 2/(fan_in+fan_out) keeps the
//                       variance, but sigma'(x) <= 1/4 still shrinks the gradient per layer.
//   tanh, Xavier        tanh'(0) = 1: the gradient survives 20 layers.
//   ReLU, He            He et al. 2015: ReLU halves the variance, so Var[W] = 2/fan_in.
//   ReLU, He + BN       batch normalization (Ioffe & Szegedy 2015) after each Dense.
//   ReLU, He, residual  x_{l+1} = x_l + W_l relu(x_l): the identity path carries the gradient
//                       (He et al. 2016); the branch is He-initialized and scaled by
//                       1/sqrt(depth) so the forward variance stays bounded (as Fixup does).
//
// Usage: deep_mlp_gradients [--fast] [--check] [--out DIR]

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "example_util.hpp"
#include "gradflow/core/tape.hpp"
#include "gradflow/init/init.hpp"
#include "gradflow/nn/nn.hpp"
#include "gradflow/optim/optim.hpp"

using namespace gradflow;
using T = float;  // the smallest gradient here, ~1e-13, is far above float's 1e-38

namespace {

enum class Act { Sigmoid, Tanh, Relu };
enum class Init { Naive, Xavier, He };

struct Config {
  const char* name;
  const char* id;  // for the CSV files
  Act act;
  Init init;
  bool batch_norm;
  bool residual;
};

const Config kConfigs[] = {
    {"sigmoid, N(0,1)", "sigmoid_normal", Act::Sigmoid, Init::Naive, false, false},
    {"sigmoid, Xavier", "sigmoid_xavier", Act::Sigmoid, Init::Xavier, false, false},
    {"tanh, Xavier", "tanh_xavier", Act::Tanh, Init::Xavier, false, false},
    {"ReLU, He", "relu_he", Act::Relu, Init::He, false, false},
    {"ReLU, He + BN", "relu_he_bn", Act::Relu, Init::He, true, false},
    {"ReLU, He, residual", "relu_he_residual", Act::Relu, Init::He, false, true},
};

constexpr int kDepth = 20;     // hidden Dense layers
constexpr Index kWidth = 64;   // units per hidden layer
constexpr Index kInputs = 32;  // input features
constexpr Index kClasses = 4;

std::shared_ptr<nn::Layer<T>> activation(Act a) {
  switch (a) {
    case Act::Sigmoid:
      return std::make_shared<nn::Sigmoid<T>>();
    case Act::Tanh:
      return std::make_shared<nn::Tanh<T>>();
    case Act::Relu:
      break;
  }
  return std::make_shared<nn::ReLU<T>>();
}

std::shared_ptr<nn::Dense<T>> dense(Index in, Index out, Init init, Generator& gen,
                                    double scale = 1.0) {
  auto d = std::make_shared<nn::Dense<T>>(nn::DenseOptions(in, out), gen);
  Matrix<T>& w = d->weight().value();
  switch (init) {
    case Init::Naive:
      init::normal_(w, gen, 0.0, 1.0);
      break;
    case Init::Xavier:
      init::xavier_uniform_(w, gen);  // the paper's "normalized initialization", gain 1
      break;
    case Init::He:
      init::kaiming_normal_(w, gen, 0.0, init::FanMode::FanIn, init::Nonlinearity::Relu);
      break;
  }
  w *= T(scale);
  init::zeros_(d->bias()->value());
  return d;
}

/// The network of one configuration, with pointers to its 20 hidden Dense layers.
struct Net {
  nn::Sequential<T> model;
  std::vector<nn::Dense<T>*> hidden;
};

std::unique_ptr<Net> build(const Config& c, std::uint64_t seed) {
  Generator gen(seed);
  auto net = std::make_unique<Net>();
  auto first = dense(kInputs, kWidth, c.init, gen);
  net->hidden.push_back(first.get());
  net->model.push_back(first);
  if (c.batch_norm)
    net->model.push_back(std::make_shared<nn::BatchNorm1d<T>>(nn::BatchNorm1dOptions(kWidth)));
  net->model.push_back(activation(c.act));
  for (int l = 1; l < kDepth; ++l) {
    if (c.residual) {
      // Pre-activation block x + W relu(x).
      auto d = dense(kWidth, kWidth, c.init, gen, 1.0 / std::sqrt(double(kDepth)));
      net->hidden.push_back(d.get());
      auto body = std::make_shared<nn::Sequential<T>>();
      body->push_back(activation(c.act));
      body->push_back(d);
      net->model.push_back(std::make_shared<nn::Residual<T>>(body));
      continue;
    }
    auto d = dense(kWidth, kWidth, c.init, gen);
    net->hidden.push_back(d.get());
    net->model.push_back(d);
    if (c.batch_norm)
      net->model.push_back(std::make_shared<nn::BatchNorm1d<T>>(nn::BatchNorm1dOptions(kWidth)));
    net->model.push_back(activation(c.act));
  }
  if (c.residual) net->model.push_back(activation(c.act));
  net->model.push_back(dense(kWidth, kClasses, c.init, gen));
  return net;
}

/// Synthetic task: 4 classes given by the argmax of a random one-hidden-layer tanh teacher.
struct Data {
  Matrix<T> x;
  std::vector<Index> y;
};

Data make_data(Index n, std::uint64_t seed) {
  Generator gen(seed);
  Generator teacher_gen(12345);  // the same teacher for every split
  Matrix<T> a(kInputs, 32), b(32, kClasses);
  init::normal_(a, teacher_gen, 0.0, 1.0 / std::sqrt(double(kInputs)));
  init::normal_(b, teacher_gen, 0.0, 1.0);
  Data d{Matrix<T>(n, kInputs), std::vector<Index>(static_cast<std::size_t>(n))};
  init::normal_(d.x, gen);
  Matrix<T> scores = (d.x * a).array().tanh().matrix() * b;
  for (Index i = 0; i < n; ++i) scores.row(i).maxCoeff(&d.y[static_cast<std::size_t>(i)]);
  return d;
}

/// Loss on rows [begin, begin+count) and, when `grads` is given, ||dL/dW_l|| per hidden layer.
T evaluate(Net& net, Tape<T>& tape, const Data& d, Index begin, Index count,
           std::vector<double>* grads) {
  tape.clear();
  net.model.zero_grad();
  std::vector<Index> y(d.y.begin() + begin, d.y.begin() + begin + count);
  Var<T> loss = nn::cross_entropy(net.model(tape.constant(d.x.middleRows(begin, count))), y);
  const T value = loss.item();
  if (grads != nullptr) {
    loss.backward();
    grads->clear();
    for (nn::Dense<T>* l : net.hidden) grads->push_back(double(l->weight().grad().norm()));
  }
  return value;
}

/// Eight-level bar per value on a log scale between lo and hi decades.
std::string sparkline(const std::vector<double>& v, double lo, double hi) {
  static const char* bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::string s;
  for (double x : v) {
    double t = (std::log10(std::max(x, 1e-300)) - lo) / (hi - lo);
    int k = static_cast<int>(std::lround(std::clamp(t, 0.0, 1.0) * 7));
    s += bars[k];
  }
  return s;
}

struct Result {
  std::vector<double> grad_init, grad_trained;
  double loss_init = 0, loss_final = 0;
  double ratio_init() const { return grad_init.front() / grad_init.back(); }
  double ratio_trained() const { return grad_trained.front() / grad_trained.back(); }
};

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(
      argc, argv,
      "Per-layer gradient norms of a 20-layer MLP under six init/architecture choices.");
  examples::Stopwatch clock;
  const int steps = args.fast ? 256 : 1024;  // multiples of the 16 batches of an epoch
  const Index n_train = 2048, batch = 128, n_probe = 256;
  const double lr = 0.02;
  const int epoch = static_cast<int>(n_train / batch);

  Data train = make_data(n_train, 1);
  Data probe = make_data(n_probe, 2);  // fixed batch on which gradients are measured

  auto grads_csv = examples::open_csv(args, "01_layer_grad_norms.csv");
  grads_csv << "config,phase,layer,grad_norm\n";
  auto loss_csv = examples::open_csv(args, "01_loss_curves.csv");
  loss_csv << "config,step,train_loss\n";

  std::printf(
      "Deep MLP: %d hidden layers of %ld units, %ld classes, SGD lr %.2g momentum 0.9,\n"
      "batch %ld, %d steps. Gradient norms ||dL/dW_l|| on a fixed batch of %ld.\n\n",
      kDepth, long(kWidth), long(kClasses), lr, long(batch), steps, long(n_probe));

  std::vector<Result> results;
  Tape<T> tape;
  for (const Config& c : kConfigs) {
    auto net = build(c, 7);
    Result r;
    r.loss_init = evaluate(*net, tape, probe, 0, n_probe, &r.grad_init);

    optim::SGD<T> opt(net->model.parameters(), optim::SGDOptions(lr).momentum(0.9));
    for (int step = 0; step < steps; ++step) {
      const Index begin = (step * batch) % n_train;
      tape.clear();
      opt.zero_grad();
      std::vector<Index> y(train.y.begin() + begin, train.y.begin() + begin + batch);
      Var<T> loss =
          nn::cross_entropy(net->model(tape.constant(train.x.middleRows(begin, batch))), y);
      loss.backward();
      opt.step();
      if (step % 8 == 0) loss_csv << c.id << ',' << step << ',' << loss.item() << '\n';
      if (step >= steps - epoch) r.loss_final += double(loss.item()) / double(epoch);
    }
    r.grad_trained.clear();
    evaluate(*net, tape, probe, 0, n_probe, &r.grad_trained);
    for (int l = 0; l < kDepth; ++l) {
      grads_csv << c.id << ",init," << l + 1 << ',' << r.grad_init[l] << '\n';
      grads_csv << c.id << ",trained," << l + 1 << ',' << r.grad_trained[l] << '\n';
    }
    results.push_back(r);
  }

  // Table.
  const double chance = std::log(double(kClasses));
  double lo = 1e300, hi = 0;
  for (const Result& r : results)
    for (double g : r.grad_init) lo = std::min(lo, g), hi = std::max(hi, g);
  const double dlo = std::floor(std::log10(lo)), dhi = std::ceil(std::log10(hi));
  std::printf("%-19s %-20s %10s %9s %10s %7s %7s  %s\n", "config", "||dL/dW_l|| l=1..20",
              "first/last", "per-layer", "first/last", "loss", "loss", "trains");
  std::printf("%-19s %-20s %10s %9s %10s %7s %7s\n", "", "at init, log scale", "at init", "factor",
              "trained", "init", "final");
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    std::printf("%-19s %s %10.1e %9.3f %10.1e %7.3f %7.3f  %s\n", kConfigs[i].name,
                sparkline(r.grad_init, dlo, dhi).c_str(), r.ratio_init(),
                std::pow(r.ratio_init(), 1.0 / (kDepth - 1)), r.ratio_trained(), r.loss_init,
                r.loss_final, r.loss_final < 0.5 * chance ? "yes" : "no");
  }
  std::printf(
      "(sparkline: 1e%+.0f to 1e%+.0f; per-layer factor = (first/last)^(1/19); final loss = "
      "mean over the last epoch; trains = below half the chance loss ln 4 = %.3f)\n\n",
      dlo, dhi, chance);

  const Result &sig_naive = results[0], &sig_xavier = results[1], &tanh_xavier = results[2];
  const Result &relu_he = results[3], &bn = results[4], &residual = results[5];
  std::printf(
      "Conclusion: sigmoid layers lose the gradient on the way down (first/last %.0e with "
      "N(0,1), saturated; %.0e with Xavier, ~1/4 per layer since sigma' <= 1/4: Glorot & Bengio "
      "2010), while tanh+Xavier, ReLU+He (He et al. 2015), batch norm and residual connections "
      "keep it within %.0fx of the last layer's and train.\n\n",
      sig_naive.ratio_init(), sig_xavier.ratio_init(),
      std::max({1 / tanh_xavier.ratio_init(), 1 / relu_he.ratio_init(), bn.ratio_init(),
                1 / residual.ratio_init()}));

  examples::Checks checks;
  checks.expect(sig_naive.ratio_init() < 1e-2 * bn.ratio_init(),
                "sigmoid-N(0,1) first/last gradient ratio is orders of magnitude (>100x) below "
                "ReLU+He+BN's",
                examples::format("%.2e vs %.2e", sig_naive.ratio_init(), bn.ratio_init()));
  checks.expect(sig_xavier.ratio_init() < 1e-8, "sigmoid-Xavier gradient vanishes (ratio < 1e-8)",
                examples::format("%.2e", sig_xavier.ratio_init()));
  for (const Result* r : {&tanh_xavier, &relu_he, &bn, &residual}) {
    const std::size_t i = static_cast<std::size_t>(r - results.data());
    checks.expect(r->ratio_init() > 1e-2 && r->ratio_init() < 1e2,
                  std::string(kConfigs[i].name) + " keeps first/last within [1e-2, 1e2]",
                  examples::format("%.2e", r->ratio_init()));
  }
  // Fast mode trains for 16 epochs only, so "trains" there means clearly below chance.
  const double bar = args.fast ? 0.8 * chance : 0.5 * chance;
  for (const Result* r : {&tanh_xavier, &bn, &residual}) {
    const std::size_t i = static_cast<std::size_t>(r - results.data());
    checks.expect(r->loss_final < bar, std::string(kConfigs[i].name) + " trains",
                  examples::format("final loss %.3f < %.3f", r->loss_final, bar));
  }
  checks.expect(sig_xavier.loss_final > 0.95 * chance, "sigmoid-Xavier does not train",
                examples::format("final loss %.3f > %.3f", sig_xavier.loss_final, 0.95 * chance));
  std::printf("time %.1f s\n", clock.seconds());
  return checks.exit_code(args);
}
