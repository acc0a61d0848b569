// Backprop-through-time: one training step of a recurrent layer (see benchmarks/README.md).
//
// One step = record the forward over the whole sequence on a Tape<float>, backward with an
// upstream gradient of ones on every output (loss = sum of all outputs) into every weight
// and into the input, then tape.clear(). No optimizer step. Parameter gradients are not
// zeroed between steps: backward accumulates into them with +=, the same work either way
// (PyTorch's peer does the same). Random float32 data; Google Benchmark's warm-up plus
// three untimed steps first, so the arena has reached its size.
//
//   bptt/<cell>/<config>/<threads>       gradflow's fused recurrent layers (one tape node)
//   bptt_ops/<cell>/<config>/<threads>   the same cell written with core ops (matmul,
//                                        slices, sigmoid, tanh, ...): what the tape costs
//                                        without a fused kernel
//
// Counters: GFLOPS (3 x forward GEMM flops per step, see configs.hpp), allocs_per_step
// (every malloc/operator new in the timed loop), page_faults_per_step (minor faults: memory
// the kernel had to map, or map again, during the step), tape_bytes (arena capacity the step
// needed), tape_nodes, peak_rss_bytes (the process's, so meaningful for one benchmark
// run alone). Threads: Eigen::setNbThreads, i.e. OpenMP inside Eigen's GEMMs only.

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <string>
#include <vector>

#include "../common/alloc_counter.hpp"
#include "../common/configs.hpp"
#include "gradflow/core/ops.hpp"
#include "gradflow/core/parameter.hpp"
#include "gradflow/core/tape.hpp"

namespace {

using gradflow::Axis;
using gradflow::Index;
using gradflow::Matrix;
using gradflow::Parameter;
using gradflow::Tape;
using gradflow::Var;
using gradflow::bench::BpttConfig;

enum class Cell { RnnTanh, Lstm, Gru };

const char* cell_name(Cell c) {
  switch (c) {
    case Cell::RnnTanh:
      return "rnn_tanh";
    case Cell::Lstm:
      return "lstm";
    case Cell::Gru:
      return "gru";
  }
  return "?";
}

int gates_of(Cell c) {
  switch (c) {
    case Cell::RnnTanh:
      return gradflow::bench::kRnnGates;
    case Cell::Lstm:
      return gradflow::bench::kLstmGates;
    case Cell::Gru:
      return gradflow::bench::kGruGates;
  }
  return 0;
}

long peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss * 1024L;  // Linux reports KiB
}

// Minor page faults so far: first touches of memory the process got from the kernel.
long page_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// ------------------------------------------------- the cell written with core ops

// Weights stored as [in x G*H] so the products need no transpose; gate order as PyTorch
// (LSTM: i f g o; GRU: r z n).
struct OpsLayer {
  OpsLayer(Cell c, const BpttConfig& cfg)
      : cell(c),
        w_ih(Matrix<float>::Random(cfg.input, gates_of(c) * cfg.hidden) /
             static_cast<float>(cfg.hidden)),
        w_hh(Matrix<float>::Random(cfg.hidden, gates_of(c) * cfg.hidden) /
             static_cast<float>(cfg.hidden)),
        b_ih(Matrix<float>::Random(1, gates_of(c) * cfg.hidden) / static_cast<float>(cfg.hidden)),
        b_hh(Matrix<float>::Random(1, gates_of(c) * cfg.hidden) / static_cast<float>(cfg.hidden)) {}

  // Returns the [(T*B) x H] outputs, time-major.
  Var<float> forward(Tape<float>& tape, Var<float> x, const BpttConfig& cfg,
                     std::vector<Var<float>>& outputs) {
    const Index B = cfg.batch, H = cfg.hidden;
    Var<float> wih = tape.param(w_ih), whh = tape.param(w_hh), bih = tape.param(b_ih),
               bhh = tape.param(b_hh);
    Var<float> xproj = gradflow::matmul(x, wih) + bih;  // all time steps at once
    Var<float> h = tape.filled(B, H, 0.0f, "h0");
    Var<float> c = tape.filled(B, H, 0.0f, "c0");
    outputs.clear();
    for (Index t = 0; t < cfg.steps; ++t) {
      Var<float> xt = gradflow::slice_rows(xproj, t * B, B);
      switch (cell) {
        case Cell::RnnTanh:
          h = gradflow::tanh(xt + gradflow::matmul(h, whh) + bhh);
          break;
        case Cell::Lstm: {
          Var<float> g = xt + gradflow::matmul(h, whh) + bhh;
          Var<float> i = gradflow::sigmoid(gradflow::slice_cols(g, 0, H));
          Var<float> f = gradflow::sigmoid(gradflow::slice_cols(g, H, H));
          Var<float> n = gradflow::tanh(gradflow::slice_cols(g, 2 * H, H));
          Var<float> o = gradflow::sigmoid(gradflow::slice_cols(g, 3 * H, H));
          c = f * c + i * n;
          h = o * gradflow::tanh(c);
          break;
        }
        case Cell::Gru: {
          Var<float> hh = gradflow::matmul(h, whh) + bhh;
          Var<float> r =
              gradflow::sigmoid(gradflow::slice_cols(xt, 0, H) + gradflow::slice_cols(hh, 0, H));
          Var<float> z =
              gradflow::sigmoid(gradflow::slice_cols(xt, H, H) + gradflow::slice_cols(hh, H, H));
          Var<float> n = gradflow::tanh(gradflow::slice_cols(xt, 2 * H, H) +
                                        r * gradflow::slice_cols(hh, 2 * H, H));
          h = n + z * (h - n);  // (1 - z) n + z h
          break;
        }
      }
      outputs.push_back(h);
    }
    return gradflow::concat(outputs, Axis::Rows);
  }

  Cell cell;
  Parameter<float> w_ih, w_hh, b_ih, b_hh;
};

// ------------------------------------------------------------------ the driver

template <typename Layer>
void bm_bptt(benchmark::State& state, Cell cell, BpttConfig cfg, int threads) {
  Eigen::setNbThreads(threads);
  Layer layer(cell, cfg);
  const Matrix<float> x = Matrix<float>::Random(cfg.batch * cfg.steps, cfg.input);
  const Matrix<float> ones = Matrix<float>::Ones(cfg.batch * cfg.steps, cfg.hidden);
  std::vector<Var<float>> scratch;
  scratch.reserve(static_cast<std::size_t>(cfg.steps));
  Tape<float> tape;
  auto step = [&] {
    Var<float> input = tape.variable(x, "input");
    Var<float> out = layer.forward(tape, input, cfg, scratch);
    tape.backward(out, ones);
    benchmark::DoNotOptimize(tape.grad(input).data());
  };
  for (int i = 0; i < 3; ++i) {
    step();
    tape.clear();
  }
  std::size_t nodes = 0;
  const auto allocs = gradflow::bench::malloc_count();
  const long faults = page_faults();
  for (auto _ : state) {
    step();
    nodes = tape.size();
    tape.clear();
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["page_faults_per_step"] = static_cast<double>(page_faults() - faults) / iterations;
  state.counters["allocs_per_step"] =
      static_cast<double>(gradflow::bench::malloc_count() - allocs) / iterations;
  state.counters["GFLOPS"] =
      benchmark::Counter(gradflow::bench::bptt_step_flops(cfg, gates_of(cell)) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tape_bytes"] = static_cast<double>(tape.capacity_bytes());
  state.counters["tape_nodes"] = static_cast<double>(nodes);
  state.counters["peak_rss_bytes"] = static_cast<double>(peak_rss_bytes());
  Eigen::setNbThreads(1);
}

template <typename Layer>
void register_family(const char* prefix) {
  for (const BpttConfig& cfg : gradflow::bench::kBpttConfigs) {
    for (Cell cell : {Cell::RnnTanh, Cell::Lstm, Cell::Gru}) {
      for (int threads : {1, 2}) {
        const std::string name = std::string(prefix) + "/" + cell_name(cell) + "/" + cfg.name +
                                 "/" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), bm_bptt<Layer>, cell, cfg, threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_family<OpsLayer>("bptt_ops");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
