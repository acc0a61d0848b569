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
//                                        one tape node per layer), the sequence as columns
//                                        (feature_major: the memory layout of the peers'
//                                        (T, B, features) tensors)
//   bptt_rows/<cell>/<config>/<threads>  the same with the sequence as rows, [(T*B) x I]
//                                        (the layers' default layout): what the transposes
//                                        of that layout cost
//   bptt_ops/<cell>/<config>/<threads>   the rows layers with options.fused(false): one cell
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
// run alone with --benchmark_min_time=0: Google Benchmark sets a benchmark up again for
// each of its runs, and the peak then counts the heap that earlier runs left). Threads: Eigen::setNbThreads, which the fused layers read to cut their step
// loops and GEMMs into OpenMP parts (and the BLAS's OpenMP threads outside those parts when
// built with -DGRADFLOW_USE_BLAS=ON).

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <string>

#include "../common/alloc_counter.hpp"
#include "../common/configs.hpp"
#include "bptt_step.hpp"

namespace {

using gradflow::bench::BpttConfig;
using gradflow::bench::Cell;
using gradflow::bench::Layer;
using gradflow::bench::set_threads;

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

template <typename Layer>
void bm_bptt(benchmark::State& state, Cell cell, BpttConfig cfg, int threads) {
  set_threads(threads);
  gradflow::bench::BpttStep<Layer> step(cell, cfg);
  for (int i = 0; i < 3; ++i) step.run();
  std::size_t nodes = 0;
  // Counted around the step itself: Google Benchmark allocates twice per run of the loop
  // (its own bookkeeping), which read as 1-2 allocations per step at M and L, where a run
  // is only 1-3 steps.
  std::size_t allocs = 0;
  const long faults = page_faults();
  for (auto _ : state) {
    const auto before = gradflow::bench::malloc_count();
    nodes = step.run();
    allocs += gradflow::bench::malloc_count() - before;
  }
  const double iterations = static_cast<double>(state.iterations());
  state.counters["page_faults_per_step"] = static_cast<double>(page_faults() - faults) / iterations;
  state.counters["allocs_per_step"] = static_cast<double>(allocs) / iterations;
  state.counters["GFLOPS"] = benchmark::Counter(
      gradflow::bench::bptt_step_flops(cfg, gradflow::bench::gates_of(cell)) * 1e-9,
      benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tape_bytes"] = static_cast<double>(step.tape.capacity_bytes());
  state.counters["tape_nodes"] = static_cast<double>(nodes);
  state.counters["peak_rss_bytes"] = static_cast<double>(peak_rss_bytes());
  set_threads(1);
}

template <typename Layer>
void register_family(const char* prefix, const char* only_config = nullptr) {
  for (const BpttConfig& cfg : gradflow::bench::kBpttConfigs) {
    if (only_config != nullptr && std::string(cfg.name) != only_config) continue;
    for (Cell cell : gradflow::bench::kCells) {
      for (int threads : {1, 2}) {
        const std::string name = std::string(prefix) + "/" + gradflow::bench::cell_name(cell) +
                                 "/" + cfg.name + "/" + std::to_string(threads);
        benchmark::RegisterBenchmark(name.c_str(), bm_bptt<Layer>, cell, cfg, threads)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_family<Layer<true, true>>("bptt");
  register_family<Layer<true, false>>("bptt_rows");
  register_family<Layer<false, false>>("bptt_ops");
  register_family<Layer<true, true, 32>>("bptt_ckpt", "LONG");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
