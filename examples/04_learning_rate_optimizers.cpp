// 04 - Learning rate and optimizers on one small regression task.
//
// A ReLU MLP (8-64-64-1, PyTorch's default init) fits a fixed random teacher network from
// 512 noisy samples, mini-batches of 64. The same network and batches are trained with:
//   SGD, lr 1.0                too large a step: each update overshoots the minimum along
//                              the sharpest direction (lr > 2 / lambda_max of the Hessian)
//                              and the loss grows to Inf within a few steps (LeCun et al.
//                              1998, "Efficient BackProp", section 5).
//   SGD, lr 0.5                still too large: it does not overflow, but the first
//                              overshoots push most ReLUs into their dead zone and the
//                              network stalls at the loss of a constant.
//   SGD, lr 0.05               a smaller step converges.
//   SGD, lr 0.5, exp. decay    the same lr 0.5 start, decayed 0.5% per step, trains.
//   SGD, lr 0.5, warm-up+cos   linear warm-up from lr/10 over 300 steps (Goyal et al. 2017),
//                              then cosine annealing (Loshchilov & Hutter 2017), trains.
//   SGD, lr 0.05, step decay   x0.3 every third of the run.
//   SGD+momentum 0.9, lr 0.02
//   Adam, lr 1e-2 / 3e-3       Kingma & Ba 2015.
//   RMSprop, lr 1e-3           Tieleman & Hinton 2012.
//   Adagrad, lr 5e-2           Duchi et al. 2011.
// The table gives each run's final training and held-out loss (MSE; predicting the mean
// scores about 1) and its curve.
//
// Usage: learning_rate_optimizers [--fast] [--check] [--out DIR]

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
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

constexpr Index kInputs = 8;
constexpr Index kWidth = 64;
constexpr Index kTrain = 512, kTest = 512, kBatch = 64;

struct Data {
  Matrix<F> x, y;
};

/// y = teacher(x) + noise, scaled so that Var[y] = 1 (the loss of predicting the mean).
Data make_data(Index n, std::uint64_t seed) {
  Generator teacher(2024), gen(seed);
  Matrix<F> a(kInputs, 16), b(16, 1);
  init::normal_(a, teacher, 0.0, 1.5 / std::sqrt(double(kInputs)));
  init::normal_(b, teacher, 0.0, 1.0 / std::sqrt(16.0));
  Data d{Matrix<F>(n, kInputs), Matrix<F>(n, 1)};
  init::normal_(d.x, gen);
  d.y = (d.x * a).array().tanh().matrix() * b;
  Matrix<F> noise(n, 1);
  init::normal_(noise, gen, 0.0, 0.1);
  d.y = (d.y + noise) * F(1.6);  // the teacher's output has std ~0.6
  return d;
}

std::unique_ptr<nn::Sequential<F>> make_mlp() {
  auto net = std::make_unique<nn::Sequential<F>>();
  net->push_back(std::make_shared<nn::Dense<F>>(nn::DenseOptions(kInputs, kWidth).seed(1)));
  net->push_back(std::make_shared<nn::ReLU<F>>());
  net->push_back(std::make_shared<nn::Dense<F>>(nn::DenseOptions(kWidth, kWidth).seed(2)));
  net->push_back(std::make_shared<nn::ReLU<F>>());
  net->push_back(std::make_shared<nn::Dense<F>>(nn::DenseOptions(kWidth, 1).seed(3)));
  return net;
}

using Params = std::vector<Parameter<F>*>;
struct Run {
  const char* name;
  const char* id;
  std::function<std::unique_ptr<optim::Optimizer<F>>(Params)> optimizer;
  std::function<std::shared_ptr<optim::Schedule>(int steps)> schedule;  // null: constant
};

struct Result {
  bool diverged = false;
  int diverged_at = -1;
  double train_loss = NAN, test_loss = NAN, init_loss = NAN;
  std::vector<double> curve;  // training loss per epoch
};

double full_loss(nn::Sequential<F>& net, Tape<F>& tape, const Data& d) {
  tape.clear();
  return double(nn::mse_loss(net(tape.constant(d.x)), tape.constant(d.y)).item());
}

Result train(const Run& run, const Data& train_set, const Data& test_set, int steps,
             std::ostream& csv) {
  std::unique_ptr<nn::Sequential<F>> model = make_mlp();
  nn::Sequential<F>& net = *model;
  std::unique_ptr<optim::Optimizer<F>> opt = run.optimizer(net.parameters());
  std::unique_ptr<optim::LRScheduler<F>> sched;
  if (run.schedule) sched = std::make_unique<optim::LRScheduler<F>>(*opt, run.schedule(steps));
  Tape<F> tape;
  Result r;
  r.init_loss = full_loss(net, tape, train_set);
  const int epoch = int(kTrain / kBatch);
  double epoch_loss = 0;
  for (int step = 0; step < steps; ++step) {
    const Index begin = (step * kBatch) % kTrain;
    tape.clear();
    opt->zero_grad();
    Var<F> loss = nn::mse_loss(net(tape.constant(train_set.x.middleRows(begin, kBatch))),
                               tape.constant(train_set.y.middleRows(begin, kBatch)));
    const double value = double(loss.item());
    // Past 1e6 (or non-finite) there is no way back: call it diverged and stop.
    if (!std::isfinite(value) || value > 1e6) {
      r.diverged = true;
      r.diverged_at = step;
      r.curve.push_back(std::numeric_limits<double>::infinity());
      csv << run.id << ',' << step << ",inf," << opt->lr() << '\n';
      return r;
    }
    loss.backward();
    opt->step();
    if (sched) sched->step();
    epoch_loss += value / epoch;
    if ((step + 1) % epoch == 0) {
      r.curve.push_back(epoch_loss);
      csv << run.id << ',' << step + 1 << ',' << epoch_loss << ',' << opt->lr() << '\n';
      epoch_loss = 0;
    }
  }
  r.train_loss = full_loss(net, tape, train_set);
  r.test_loss = full_loss(net, tape, test_set);
  return r;
}

template <typename O, typename Opts>
std::function<std::unique_ptr<optim::Optimizer<F>>(Params)> make(Opts options) {
  return [options](Params p) { return std::make_unique<O>(std::move(p), options); };
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(
      argc, argv,
      "Too large a step diverges; smaller steps, schedules, Adam and RMSprop converge.");
  examples::Stopwatch clock;
  const int steps = args.fast ? 1200 : 4000;  // multiples of the 8 batches of an epoch
  const int warmup = 300;

  const Data train_set = make_data(kTrain, 1), test_set = make_data(kTest, 2);
  const std::vector<Run> runs = {
      {"SGD lr 1.0", "sgd_1.0", make<optim::SGD<F>>(optim::SGDOptions(1.0)), nullptr},
      {"SGD lr 0.5", "sgd_0.5", make<optim::SGD<F>>(optim::SGDOptions(0.5)), nullptr},
      {"SGD lr 0.05", "sgd_0.05", make<optim::SGD<F>>(optim::SGDOptions(0.05)), nullptr},
      {"SGD lr 0.5, exp decay", "sgd_0.5_expdecay", make<optim::SGD<F>>(optim::SGDOptions(0.5)),
       [](int) { return std::make_shared<optim::ExponentialDecay>(0.995); }},
      {"SGD lr 0.5, warm-up+cos", "sgd_0.5_warmup_cosine",
       make<optim::SGD<F>>(optim::SGDOptions(0.5)),
       [warmup](int n) {
         return std::make_shared<optim::SequentialSchedule>(
             std::vector<std::shared_ptr<optim::Schedule>>{
                 std::make_shared<optim::LinearWarmup>(warmup, 0.1),
                 std::make_shared<optim::CosineAnnealing>(n - warmup)},
             std::vector<long>{warmup});
       }},
      {"SGD lr 0.05, step decay", "sgd_0.05_stepdecay",
       make<optim::SGD<F>>(optim::SGDOptions(0.05)),
       [](int n) { return std::make_shared<optim::StepDecay>(n / 3, 0.3); }},
      {"SGD+momentum lr 0.02", "sgd_momentum",
       make<optim::SGD<F>>(optim::SGDOptions(0.02).momentum(0.9)), nullptr},
      {"Adam lr 1e-2", "adam_1e-2", make<optim::Adam<F>>(optim::AdamOptions(1e-2)), nullptr},
      {"Adam lr 3e-3", "adam_3e-3", make<optim::Adam<F>>(optim::AdamOptions(3e-3)), nullptr},
      {"RMSprop lr 1e-3", "rmsprop_1e-3", make<optim::RMSprop<F>>(optim::RMSpropOptions().lr(1e-3)),
       nullptr},
      {"Adagrad lr 5e-2", "adagrad_5e-2", make<optim::Adagrad<F>>(optim::AdagradOptions().lr(5e-2)),
       nullptr},
  };

  std::printf(
      "MLP %ld-%ld-%ld-1 (ReLU) regression, %ld training / %ld held-out samples, batch %ld, %d "
      "steps.\nLoss: MSE; predicting the mean scores ~1, the noise floor is ~%.3f.\n\n",
      long(kInputs), long(kWidth), long(kWidth), long(kTrain), long(kTest), long(kBatch), steps,
      0.16 * 0.16);
  auto csv = examples::open_csv(args, "04_loss_curves.csv");
  csv << "run,step,train_loss,lr\n";
  std::vector<Result> results;
  for (const Run& run : runs) results.push_back(train(run, train_set, test_set, steps, csv));

  auto summary = examples::open_csv(args, "04_final_losses.csv");
  summary << "run,diverged_at,train_loss,test_loss\n";
  std::printf("%-25s %10s %10s %10s  %s\n", "run", "outcome", "train MSE", "test MSE",
              "training loss per epoch (log scale, 1e-2 .. 1e1)");
  const diag::ChartOptions chart = diag::ChartOptions().set_range(1e-2, 1e1);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const Result& r = results[i];
    summary << runs[i].id << ',' << r.diverged_at << ',' << r.train_loss << ',' << r.test_loss
            << '\n';
    // At most 50 cells: the mean of each stretch of epochs.
    std::vector<double> curve;
    const std::size_t cell = std::max<std::size_t>(1, (std::size_t(steps / 8) + 49) / 50);
    for (std::size_t k = 0; k < r.curve.size(); k += cell) {
      double m = 0;
      const std::size_t e = std::min(r.curve.size(), k + cell);
      for (std::size_t j = k; j < e; ++j) m += r.curve[j] / double(e - k);
      curve.push_back(m);
    }
    std::printf("%-25s %10s %10s %10s  %s\n", runs[i].name,
                r.diverged ? examples::format("Inf @%d", r.diverged_at).c_str()
                : r.train_loss > 0.5 * r.init_loss ? "stalled"
                                                   : "converged",
                r.diverged ? "-" : examples::format("%.4f", r.train_loss).c_str(),
                r.diverged ? "-" : examples::format("%.4f", r.test_loss).c_str(),
                diag::sparkline(curve, chart).c_str());
  }
  std::printf(
      "(loss at init %.3f; Inf @k: the loss passed 1e6 or overflowed at step k; stalled: above\n"
      " half the initial loss)\n\n",
      results[0].init_loss);

  const Result &huge = results[0], &big = results[1], &small = results[2], &expdecay = results[3],
               &warm = results[4], &stepdecay = results[5], &momentum = results[6],
               &adam_fast = results[7], &adam = results[8], &rmsprop = results[9],
               &adagrad = results[10];
  std::printf(
      "Conclusion: SGD at lr 1.0 overflows to Inf (step %d) and at lr 0.5 stalls (%.3f, dead "
      "ReLUs), but lr 0.5 trains with exponential decay (%.4f) or warm-up then cosine (%.4f); "
      "lr 0.05 reaches %.4f, step decay %.4f, momentum %.4f, Adam %.4f, RMSprop %.4f, Adagrad "
      "%.4f (training MSE, from %.3f).\n\n",
      huge.diverged_at, big.train_loss, expdecay.train_loss, warm.train_loss, small.train_loss,
      stepdecay.train_loss, momentum.train_loss, adam.train_loss, rmsprop.train_loss,
      adagrad.train_loss, small.init_loss);

  examples::Checks checks;
  checks.expect(huge.diverged, "SGD with lr 1.0 diverges to Inf",
                examples::format("diverged at step %d", huge.diverged_at));
  checks.expect(!big.diverged && big.train_loss > 0.5 * big.init_loss,
                "SGD with lr 0.5 stalls above half the initial loss",
                examples::format("%.4f > %.4f", big.train_loss, 0.5 * big.init_loss));
  // Converged: below a tenth of the initial loss (the noise floor is ~0.026).
  const double target = 0.1 * small.init_loss;
  for (const Result* r :
       {&small, &expdecay, &warm, &stepdecay, &momentum, &adam_fast, &adam, &rmsprop, &adagrad}) {
    const std::size_t i = static_cast<std::size_t>(r - results.data());
    checks.expect(!r->diverged && r->train_loss < target,
                  std::string(runs[i].name) + " converges (below 10% of the initial loss)",
                  examples::format("%.4f < %.4f", r->train_loss, target));
  }
  // Given long enough plain SGD catches up; Adam's advantage is speed.
  auto at_epoch_150 = [](const Result& r) {
    return r.curve[std::min<std::size_t>(150, r.curve.size()) - 1];
  };
  checks.expect(at_epoch_150(adam) < 0.5 * at_epoch_150(small),
                "after 150 epochs Adam (lr 3e-3) is below half of plain SGD's loss at lr 0.05",
                examples::format("%.4f < 0.5 x %.4f", at_epoch_150(adam), at_epoch_150(small)));
  std::printf("time %.1f s\n", clock.seconds());
  return checks.exit_code(args);
}
