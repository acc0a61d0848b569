// 03 - Long-range dependencies: the adding problem (Hochreiter & Schmidhuber 1997, exp. 4).
//
// Each step carries two features: a value drawn from U[0,1] and a marker. Exactly two steps
// are marked, one in each half of the sequence; the target, read from the last hidden
// state, is the sum of the two marked values. Answering the constant 1 scores the variance
// of a sum of two U[0,1], 2/12 = 0.167 MSE: a network below that line has learned to carry
// a value across up to T steps.
//
// A vanilla tanh RNN, an LSTM (forget-gate bias 1, Gers et al. 2000) and a GRU (Cho et al.
// 2014) of the same width train with Adam and global-norm clipping at growing lengths T.
// The LSTM's additive cell state c_t = f c_{t-1} + i g carries the gradient back without
// the product of W^T diag(tanh') factors that makes the vanilla RNN's vanish (column
// "dh_1/dh_T at init", from diag::HiddenGradientTrace).
//
// Usage: adding_problem [--fast] [--check] [--out DIR]

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "example_util.hpp"
#include "gradflow/core/ops.hpp"
#include "gradflow/core/tape.hpp"
#include "gradflow/diagnostics/diagnostics.hpp"
#include "gradflow/nn/nn.hpp"
#include "gradflow/nn/recurrent/recurrent.hpp"
#include "gradflow/optim/optim.hpp"

using namespace gradflow;
using F = float;

namespace {

constexpr Index kHidden = 32;
constexpr Index kBatch = 32;
constexpr double kBaseline = 1.0 / 6.0;  // MSE of always answering 1

/// A batch of adding-problem sequences, time-major: row t*B + b is step t of sample b.
struct Batch {
  Matrix<F> x;  // [(T*B) x 2]: value, marker
  Matrix<F> y;  // [B x 1]
};

Batch make_batch(Index steps, Index batch, Generator& gen) {
  Batch d{Matrix<F>::Zero(steps * batch, 2), Matrix<F>(batch, 1)};
  const Index half = steps / 2;
  for (Index b = 0; b < batch; ++b) {
    for (Index t = 0; t < steps; ++t) d.x(t * batch + b, 0) = F(gen.uniform());
    // One marker in each half (the form used by Arjovsky, Shah & Bengio 2016).
    const Index first = std::min(half - 1, Index(gen.uniform() * double(half)));
    const Index second =
        half + std::min(steps - half - 1, Index(gen.uniform() * double(steps - half)));
    d.x(first * batch + b, 1) = 1;
    d.x(second * batch + b, 1) = 1;
    d.y(b, 0) = d.x(first * batch + b, 0) + d.x(second * batch + b, 0);
  }
  return d;
}

enum class Cell { Rnn, Lstm, Gru };
const char* name(Cell c) { return c == Cell::Rnn ? "RNN" : c == Cell::Lstm ? "LSTM" : "GRU"; }

std::unique_ptr<nn::RecurrentLayer<F>> make_cell(Cell c, std::uint64_t seed) {
  auto o = nn::RecurrentOptions(2, kHidden).seed(seed);
  switch (c) {
    case Cell::Rnn:
      return std::make_unique<nn::RNN<F>>(o);
    case Cell::Lstm:
      return std::make_unique<nn::LSTM<F>>(o.forget_bias_one(true));
    case Cell::Gru:
      break;
  }
  return std::make_unique<nn::GRU<F>>(o);
}

struct Result {
  Cell cell = Cell::Rnn;
  Index steps = 0;
  double init_ratio = NAN;  // ||dL/dh_0|| / ||dL/dh_T-1|| on the first batch
  double final_mse = NAN;   // on the held-out set
  double best_mse = NAN;
  int solved_at = -1;  // first evaluation below 0.1 x baseline, -1 never
  std::vector<double> curve;
};

Result train(Cell cell, Index steps, int iterations, int eval_every, const Batch& val,
             std::ostream& csv) {
  Result r;
  r.cell = cell;
  r.steps = steps;
  auto rnn = make_cell(cell, 7);
  nn::Dense<F> head(nn::DenseOptions(kHidden, 1).seed(8));
  std::vector<Parameter<F>*> params = rnn->parameters();
  for (Parameter<F>* p : head.parameters()) params.push_back(p);
  optim::Adam<F> opt(params, optim::AdamOptions(3e-3));
  diag::HiddenGradientTrace<F> trace;
  rnn->set_hidden_grad_hook(trace.hook());
  Generator gen(1000 + std::uint64_t(steps));  // the same batches for every cell
  Tape<F> tape;
  double running = 0;
  for (int it = 0; it <= iterations; ++it) {
    if (it % eval_every == 0) {
      tape.clear();
      const Index vb = val.y.rows();
      Var<F> pred = head(rnn->forward(tape.constant(val.x), vb).h_n);
      const double mse = double(nn::mse_loss(pred, tape.constant(val.y)).item());
      r.curve.push_back(mse);
      r.best_mse = std::isnan(r.best_mse) ? mse : std::min(r.best_mse, mse);
      if (r.solved_at < 0 && mse < 0.1 * kBaseline) r.solved_at = it;
      csv << name(cell) << ',' << steps << ',' << it << ',' << mse << ','
          << (it == 0 ? NAN : running / eval_every) << '\n';
      running = 0;
      r.final_mse = mse;
    }
    if (it == iterations) break;
    const Batch b = make_batch(steps, kBatch, gen);
    tape.clear();
    opt.zero_grad();
    Var<F> loss =
        nn::mse_loss(head(rnn->forward(tape.constant(b.x), kBatch).h_n), tape.constant(b.y));
    loss.backward();
    if (it == 0) {
      r.init_ratio = trace.first_last_ratio();
      rnn->set_hidden_grad_hook({});  // the rest of the run needs no trace
    }
    optim::clip_grad_norm_(params, 1.0);  // Pascanu et al. 2013
    opt.step();
    running += double(loss.item());
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const examples::Args args = examples::parse_args(
      argc, argv, "The adding problem: RNN vs LSTM vs GRU at growing sequence lengths.");
  examples::Stopwatch clock;
  const std::vector<Index> lengths =
      args.fast ? std::vector<Index>{10} : std::vector<Index>{10, 25, 50};
  const int iterations = args.fast ? 600 : 2000;
  const int eval_every = 50;
  const Cell cells[] = {Cell::Rnn, Cell::Lstm, Cell::Gru};

  std::printf(
      "Adding problem: H = %ld, batch %ld, Adam lr 3e-3, global-norm clip 1, %d steps of fresh\n"
      "batches; MSE on 512 held-out sequences. Baseline (always answer 1): %.3f.\n\n",
      long(kHidden), long(kBatch), iterations, kBaseline);
  auto csv = examples::open_csv(args, "03_adding_curves.csv");
  csv << "cell,T,step,val_mse,train_mse\n";

  std::vector<Result> results;
  for (Index steps : lengths) {
    Generator val_gen(42 + std::uint64_t(steps));
    const Batch val = make_batch(steps, 512, val_gen);
    for (Cell c : cells) results.push_back(train(c, steps, iterations, eval_every, val, csv));
  }

  auto summary = examples::open_csv(args, "03_adding_summary.csv");
  summary << "cell,T,init_ratio,final_mse,best_mse,solved_at\n";
  std::printf("%-5s %4s %12s %10s %9s %9s %8s  %s\n", "cell", "T", "dh_1/dh_T", "final MSE",
              "best MSE", "vs 0.167", "solved", "validation MSE over training (log scale)");
  std::printf("%-5s %4s %12s\n", "", "", "at init");
  const diag::ChartOptions chart = diag::ChartOptions().set_range(1e-4, 0.3);
  for (const Result& r : results) {
    summary << name(r.cell) << ',' << r.steps << ',' << r.init_ratio << ',' << r.final_mse << ','
            << r.best_mse << ',' << r.solved_at << '\n';
    std::printf("%-5s %4ld %12.1e %10.4f %9.4f %8.0f%% %8s  %s\n", name(r.cell), long(r.steps),
                r.init_ratio, r.final_mse, r.best_mse, 100.0 * r.final_mse / kBaseline,
                r.solved_at < 0 ? "-" : examples::format("%d", r.solved_at).c_str(),
                diag::sparkline(r.curve, chart).c_str());
  }
  std::printf(
      "(dh_1/dh_T: ||dL/dh_t|| at the first step over the last, first batch; solved: first\n"
      " evaluation below 10%% of the baseline; sparklines 1e-4 .. 0.3)\n\n");

  auto find = [&](Cell c, Index steps) -> const Result& {
    for (const Result& r : results)
      if (r.cell == c && r.steps == steps) return r;
    return results.front();
  };
  std::string line;
  for (Index steps : lengths)
    line += examples::format("%sT=%ld: RNN %.4f, LSTM %.4f, GRU %.4f", line.empty() ? "" : "; ",
                             long(steps), find(Cell::Rnn, steps).final_mse,
                             find(Cell::Lstm, steps).final_mse, find(Cell::Gru, steps).final_mse);
  std::printf("Conclusion (final MSE, baseline 0.167): %s.\n\n", line.c_str());

  examples::Checks checks;
  const Index shortest = lengths.front();
  const Result &rnn = find(Cell::Rnn, shortest), &lstm = find(Cell::Lstm, shortest);
  checks.expect(lstm.final_mse < 0.5 * kBaseline,
                examples::format("LSTM at T = %ld gets below half the baseline", long(shortest)),
                examples::format("%.4f < %.4f", lstm.final_mse, 0.5 * kBaseline));
  checks.expect(lstm.final_mse < 0.7 * rnn.final_mse,
                examples::format("LSTM beats the vanilla RNN at T = %ld", long(shortest)),
                examples::format("%.4f < 0.7 x %.4f", lstm.final_mse, rnn.final_mse));
  checks.expect(rnn.init_ratio < lstm.init_ratio,
                "the vanilla RNN's gradient at the first step is the smaller fraction",
                examples::format("%.1e < %.1e", rnn.init_ratio, lstm.init_ratio));
  if (lengths.size() > 1) {  // full mode: the long sequences
    const Index longest = lengths.back();
    const Result &rnn_l = find(Cell::Rnn, longest), &lstm_l = find(Cell::Lstm, longest),
                 &gru_l = find(Cell::Gru, longest);
    checks.expect(
        rnn_l.final_mse > 0.5 * kBaseline,
        examples::format("the vanilla RNN at T = %ld stays near the baseline", long(longest)),
        examples::format("%.4f > %.4f", rnn_l.final_mse, 0.5 * kBaseline));
    checks.expect(
        lstm_l.final_mse < 0.1 * kBaseline && gru_l.final_mse < 0.1 * kBaseline,
        examples::format("LSTM and GRU at T = %ld solve it (< 10%% of the baseline)",
                         long(longest)),
        examples::format("%.4f, %.4f < %.4f", lstm_l.final_mse, gru_l.final_mse, 0.1 * kBaseline));
  }
  std::printf("time %.1f s\n", clock.seconds());
  return checks.exit_code(args);
}
