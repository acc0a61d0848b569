// 05 - Overfitting on a small noisy data set, and four remedies.
//
// 100 training samples of a noisy regression in 2 inputs (signal variance ~1, noise
// variance 0.25), an MLP 2-128-128-1 (ReLU, ~17k weights: far more than samples) trained
// with Adam for as long as it takes to fit the noise. Validation: 1000 fresh samples of the same
// source, so the best any model can do there is the noise variance, 0.25.
//   no remedy        train loss -> noise fitted, validation loss climbs back up.
//   dropout 0.5      after each hidden ReLU (Srivastava et al. 2014).
//   L2 1e-2          lambda sum W^2 on the weights, not the biases (weight decay; Krogh &
//                    Hertz 1992).
//   early stopping   the no-remedy run, keeping the weights of the best validation epoch
//                    (stop after 50 epochs without improvement; Prechelt 1998).
//   batch norm       after each hidden Dense (Ioffe & Szegedy 2015): not meant as a
//                    regularizer, though its mini-batch noise is said to act as one; with
//                    batches of 25 here it does not.
//
// Usage: overfitting_remedies [--fast] [--check] [--out DIR]

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "example_util.hpp"
#include "gradflow/core/tape.hpp"
#include "gradflow/diagnostics/diagnostics.hpp"
#include "gradflow/init/init.hpp"
#include "gradflow/nn/nn.hpp"
#include "gradflow/optim/optim.hpp"

using namespace gradflow;
using F = float;

namespace {

constexpr Index kInputs = 2, kWidth = 128;
constexpr Index kTrain = 100, kVal = 1000, kBatch = 25;
constexpr double kNoise = 0.5;  // noise std: the best achievable MSE is 0.25

struct Data {
  Matrix<F> x, y;
};

/// y = teacher(x) + noise, the teacher's output scaled to unit variance.
Data make_data(Index n, std::uint64_t seed) {
  Generator teacher(77), gen(seed);
  Matrix<F> a(kInputs, 16), b(16, 1);
  init::normal_(a, teacher, 0.0, 1.5 / std::sqrt(double(kInputs)));
  init::normal_(b, teacher, 0.0, 1.0 / std::sqrt(16.0));
  Data d{Matrix<F>(n, kInputs), Matrix<F>(n, 1)};
  init::normal_(d.x, gen);
  Matrix<F> noise(n, 1);
  init::normal_(noise, gen, 0.0, kNoise);
  d.y = ((d.x * a).array().tanh().matrix() * b) * F(1.6) + noise;  // teacher std ~0.6
  return d;
}

enum class Remedy { None, Dropout, L2, EarlyStopping, BatchNorm };
struct Config {
  const char* name;
  const char* id;
  Remedy remedy;
  double strength;  // dropout probability or L2 lambda
};
const Config kConfigs[] = {{"no remedy", "none", Remedy::None, 0},
                           {"dropout 0.5", "dropout", Remedy::Dropout, 0.5},
                           {"L2 1e-2", "l2", Remedy::L2, 1e-2},
                           {"early stopping", "early_stopping", Remedy::EarlyStopping, 0},
                           {"batch norm", "batch_norm", Remedy::BatchNorm, 0}};

std::unique_ptr<nn::Sequential<F>> make_mlp(Remedy remedy, double p) {
  auto net = std::make_unique<nn::Sequential<F>>();
  std::uint64_t seed = 1;
  for (Index in : {kInputs, kWidth}) {
    net->push_back(std::make_shared<nn::Dense<F>>(nn::DenseOptions(in, kWidth).seed(seed++)));
    if (remedy == Remedy::BatchNorm)
      net->push_back(std::make_shared<nn::BatchNorm1d<F>>(nn::BatchNorm1dOptions(kWidth)));
    net->push_back(std::make_shared<nn::ReLU<F>>());
    if (remedy == Remedy::Dropout)
      net->push_back(std::make_shared<nn::Dropout<F>>(nn::DropoutOptions(p).seed(seed++)));
  }
  net->push_back(std::make_shared<nn::Dense<F>>(nn::DenseOptions(kWidth, 1).seed(9)));
  return net;
}

/// MSE on a whole split in evaluation mode (dropout off, batch norm's running statistics).
double eval_loss(nn::Sequential<F>& net, Tape<F>& tape, const Data& d) {
  net.eval();
  tape.clear();
  const double v = double(nn::mse_loss(net(tape.constant(d.x)), tape.constant(d.y)).item());
  net.train();
  return v;
}

struct Result {
  double train = NAN, val = NAN;  // at the end (early stopping: at the kept epoch)
  double best_val = NAN;
  int kept_epoch = -1;  // early stopping only
  std::vector<double> train_curve, val_curve;
};

Result run(const Config& c, const Data& train_set, const Data& val_set, int epochs,
           std::ostream& csv) {
  std::unique_ptr<nn::Sequential<F>> model = make_mlp(c.remedy, c.strength);
  nn::Sequential<F>& net = *model;
  std::vector<Parameter<F>*> params = net.parameters(), weights;
  for (auto& [name, p] : net.named_parameters())
    if (name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0 &&
        p->value().cols() > 1 && p->value().rows() > 1)  // Dense weights, not BN's gamma
      weights.push_back(p);
  optim::Adam<F> opt(params, optim::AdamOptions(1e-3));
  Tape<F> tape;
  Result r;
  std::vector<Matrix<F>> kept;  // early stopping: the best epoch's weights
  const int patience = 50;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    for (Index begin = 0; begin < kTrain; begin += kBatch) {
      tape.clear();
      opt.zero_grad();
      Var<F> loss = nn::mse_loss(net(tape.constant(train_set.x.middleRows(begin, kBatch))),
                                 tape.constant(train_set.y.middleRows(begin, kBatch)));
      if (c.remedy == Remedy::L2) loss = loss + nn::l2_penalty(tape, weights, c.strength);
      loss.backward();
      opt.step();
    }
    const double tr = eval_loss(net, tape, train_set), va = eval_loss(net, tape, val_set);
    r.train_curve.push_back(tr);
    r.val_curve.push_back(va);
    csv << c.id << ',' << epoch << ',' << tr << ',' << va << '\n';
    if (std::isnan(r.best_val) || va < r.best_val) {
      r.best_val = va;
      if (c.remedy == Remedy::EarlyStopping) {
        r.kept_epoch = epoch, r.train = tr, r.val = va;
        kept.clear();
        for (Parameter<F>* p : params) kept.push_back(p->value());
      }
    }
    if (c.remedy == Remedy::EarlyStopping && epoch - r.kept_epoch >= patience) break;
  }
  if (c.remedy == Remedy::EarlyStopping) {
    for (std::size_t i = 0; i < params.size(); ++i) params[i]->value() = kept[i];
    r.val = eval_loss(net, tape, val_set);  // the restored model: the kept epoch's numbers
    r.train = eval_loss(net, tape, train_set);
  } else {
    r.train = r.train_curve.back();
    r.val = r.val_curve.back();
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(
      argc, argv, "Train vs validation loss: no remedy, dropout, L2, early stopping, batch norm.");
  examples::Stopwatch clock;
  const int epochs = args.fast ? 300 : 1000;
  const Data train_set = make_data(kTrain, 1), val_set = make_data(kVal, 2);

  std::printf(
      "Noisy regression: %ld training samples, %ld validation, noise variance %.2f (the best\n"
      "possible validation MSE); MLP %ld-%ld-%ld-1 ReLU, Adam lr 1e-3, batch %ld, %d epochs.\n\n",
      long(kTrain), long(kVal), kNoise * kNoise, long(kInputs), long(kWidth), long(kWidth),
      long(kBatch), epochs);
  auto csv = examples::open_csv(args, "05_train_val_curves.csv");
  csv << "config,epoch,train_loss,val_loss\n";
  std::vector<Result> results;
  for (const Config& c : kConfigs) results.push_back(run(c, train_set, val_set, epochs, csv));

  auto summary = examples::open_csv(args, "05_final_losses.csv");
  summary << "config,train_loss,val_loss,gap,best_val\n";
  std::printf("%-15s %9s %9s %9s %9s  %s\n", "remedy", "train", "val", "val-train", "best val",
              "validation MSE per epoch (log scale, 0.25 .. 0.8)");
  const diag::ChartOptions chart = diag::ChartOptions().set_range(0.25, 0.8);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    summary << kConfigs[i].id << ',' << r.train << ',' << r.val << ',' << r.val - r.train << ','
            << r.best_val << '\n';
    std::vector<double> curve;  // at most 50 cells
    const std::size_t cell = std::max<std::size_t>(1, (r.val_curve.size() + 49) / 50);
    for (std::size_t k = 0; k < r.val_curve.size(); k += cell) curve.push_back(r.val_curve[k]);
    std::printf("%-15s %9.4f %9.4f %9.4f %9.4f  %s%s\n", kConfigs[i].name, r.train, r.val,
                r.val - r.train, r.best_val, diag::sparkline(curve, chart).c_str(),
                r.kept_epoch > 0 ? examples::format(" (kept epoch %d)", r.kept_epoch).c_str() : "");
  }
  std::printf("(MSE in evaluation mode on the whole split; noise floor %.2f)\n\n", kNoise * kNoise);

  const Result &none = results[0], &dropout = results[1], &l2 = results[2], &early = results[3],
               &bn = results[4];
  std::printf(
      "Conclusion: with no remedy the network fits the noise (train %.3f, validation %.3f); "
      "dropout (%.3f), L2 (%.3f) and early stopping (%.3f) bring the validation loss back "
      "toward the 0.25 floor; batch norm (%.3f) is no remedy here.\n\n",
      none.train, none.val, dropout.val, l2.val, early.val, bn.val);

  examples::Checks checks;
  checks.expect(
      none.val - none.train > 0.2,
      "without a remedy validation loss exceeds training loss by a clear gap (> 0.2)",
      examples::format("%.4f - %.4f = %.4f", none.val, none.train, none.val - none.train));
  checks.expect(none.train < 0.5 * kNoise * kNoise,
                "without a remedy the network fits the noise (train < half the noise variance)",
                examples::format("%.4f < %.4f", none.train, 0.5 * kNoise * kNoise));
  for (const Result* r : {&l2, &early, &dropout}) {
    const std::size_t i = static_cast<std::size_t>(r - results.data());
    checks.expect(r->val < 0.85 * none.val,
                  std::string(kConfigs[i].name) + " lowers validation loss by > 15%",
                  examples::format("%.4f < 0.85 x %.4f", r->val, none.val));
  }
  std::printf("time %.1f s\n", clock.seconds());
  return checks.exit_code(args);
}
