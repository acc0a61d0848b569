// Backprop-through-time: one training step of a recurrent layer (see benchmarks/README.md).
//
// One step = record the forward over the whole sequence on a Tape<float>, backward with an
// upstream gradient of ones on every output (loss = sum of all outputs) into every weight
// and into the input, then tape.clear(). No optimizer step. Parameter gradients are not
// zeroed between steps: backward accumulates into them with +=, the same work either way
// (PyTorch's peer does the same). Random float32 data; Google Benchmark's warm-up plus
// three untimed steps first, so the arena has reached its size.
//
//   bptt/<cell>/<config>/<threads>       nn::RNN / nn::LSTM / nn::GRU, fused (the default:
//                                        one tape node per layer)
//   bptt_ops/<cell>/<config>/<threads>   the same layers with options.fused(false): one cell
//                                        step of core ops per time step, i.e. what the tape
//                                        costs without the fused kernel
//   bptt_ckpt/<cell>/LONG/<threads>      fused with checkpoint_every(32) (about sqrt(T)):
//                                        the memory gradient checkpointing saves (tape_bytes)
//                                        and the recomputation it costs
//
// Counters: GFLOPS (3 x forward GEMM flops per step, see configs.hpp), allocs_per_step
// (every malloc/operator new in the timed loop), page_faults_per_step (minor faults: memory
// the kernel had to map, or map again, during the step), tape_bytes (arena capacity the step
// needed), tape_nodes, peak_rss_bytes (the process's, so meaningful for one benchmark
// run alone). Threads: Eigen::setNbThreads, which the fused layers read to cut their step
// loops and GEMMs into OpenMP parts (and the BLAS's OpenMP threads outside those parts when
// built with -DGRADFLOW_USE_BLAS=ON).

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <memory>
#include <string>

#ifdef GRADFLOW_USE_BLAS
#include <omp.h>
#endif

#include "../common/alloc_counter.hpp"
#include "../common/configs.hpp"
#include "gradflow/core/tape.hpp"
#include "gradflow/nn/recurrent/recurrent.hpp"

namespace {

using gradflow::Matrix;
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

// ------------------------------------------------------------------ the layers

// nn::RNN / nn::LSTM / nn::GRU, one layer, PyTorch's default initialisation. Fused: the
// default, one tape node per layer (detail::FusedRecurrence). Not fused
// (options.fused(false)): the library's composed path, one cell step of core ops per time
// step.
template <bool Fused, gradflow::Index CheckpointEvery = 0>
struct Layer {
  Layer(Cell c, const BpttConfig& cfg) : module(make(c, cfg)) {}

  static std::unique_ptr<gradflow::nn::RecurrentLayer<float>> make(Cell c, const BpttConfig& cfg) {
    const auto options = gradflow::nn::RecurrentOptions(cfg.input, cfg.hidden)
                             .fused(Fused)
                             .checkpoint_every(CheckpointEvery);
    switch (c) {
      case Cell::RnnTanh:
        return std::make_unique<gradflow::nn::RNN<float>>(options);
      case Cell::Lstm:
        return std::make_unique<gradflow::nn::LSTM<float>>(options);
      case Cell::Gru:
        return std::make_unique<gradflow::nn::GRU<float>>(options);
    }
    return nullptr;
  }

  // The [(T*B) x H] outputs, time-major.
  Var<float> forward(Var<float> x, const BpttConfig& cfg) {
    return module->forward(x, cfg.batch).output;
  }

  std::unique_ptr<gradflow::nn::RecurrentLayer<float>> module;
};

// ------------------------------------------------------------------ the driver

// The thread count for Eigen's products, and for the BLAS's with GRADFLOW_USE_BLAS (an
// OpenMP BLAS such as Debian's libopenblas0-openmp reads omp_get_max_threads()).
void set_threads(int threads) {
  Eigen::setNbThreads(threads);
#ifdef GRADFLOW_USE_BLAS
  omp_set_num_threads(threads);
#endif
}

template <typename Layer>
void bm_bptt(benchmark::State& state, Cell cell, BpttConfig cfg, int threads) {
  set_threads(threads);
  Layer layer(cell, cfg);
  const Matrix<float> x = Matrix<float>::Random(cfg.batch * cfg.steps, cfg.input);
  // Loss = sum of all outputs (h_n and c_n are not part of it).
  const Matrix<float> ones = Matrix<float>::Ones(cfg.batch * cfg.steps, cfg.hidden);
  Tape<float> tape;
  auto step = [&] {
    // The batch by reference, as the peers take theirs: no copy into the tape.
    Var<float> input = tape.variable_view(x, "input");
    Var<float> out = layer.forward(input, cfg);
    tape.backward(out, ones);
    benchmark::DoNotOptimize(tape.grad(input).data());
  };
  for (int i = 0; i < 3; ++i) {
    step();
    tape.clear();
  }
  std::size_t nodes = 0;
  // Counted around the step itself: Google Benchmark allocates twice per run of the loop
  // (its own bookkeeping), which read as 1-2 allocations per step at M and L, where a run
  // is only 1-3 steps.
  std::size_t allocs = 0;
  const long faults = page_faults();
  for (auto _ : state) {
    const auto before = gradflow::bench::malloc_count();
    step();
    nodes = tape.size();
    tape.clear();
    allocs += gradflow::bench::malloc_count() - before;
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["page_faults_per_step"] = static_cast<double>(page_faults() - faults) / iterations;
  state.counters["allocs_per_step"] = static_cast<double>(allocs) / iterations;
  state.counters["GFLOPS"] =
      benchmark::Counter(gradflow::bench::bptt_step_flops(cfg, gates_of(cell)) * 1e-9,
                         benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tape_bytes"] = static_cast<double>(tape.capacity_bytes());
  state.counters["tape_nodes"] = static_cast<double>(nodes);
  state.counters["peak_rss_bytes"] = static_cast<double>(peak_rss_bytes());
  set_threads(1);
}

template <typename Layer>
void register_family(const char* prefix, const char* only_config = nullptr) {
  for (const BpttConfig& cfg : gradflow::bench::kBpttConfigs) {
    if (only_config != nullptr && std::string(cfg.name) != only_config) continue;
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
  register_family<Layer<true>>("bptt");
  register_family<Layer<false>>("bptt_ops");
  register_family<Layer<true, 32>>("bptt_ckpt", "LONG");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
