// Micro-benchmarks of the tape itself: what recording one op and running its backward
// cost on matrices so small that the arithmetic is negligible (see benchmarks/README.md).
//
//   tape/record/<chain>/<n>     record a chain of kChain ops on n x n values, then clear()
//   tape/backward/<chain>/<n>   backward over that chain (only backward is timed)
//   tape/eigen/<chain>/<n>      the same forward arithmetic in plain Eigen, no tape
//
// Counters: time_per_op (per recorded op or per backward op; CPU time, except backward,
// which is timed by hand around backward() alone), allocs_per_step (heap allocations).

#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "../common/alloc_counter.hpp"
#include "gradflow/core/ops.hpp"
#include "gradflow/core/parameter.hpp"
#include "gradflow/core/tape.hpp"

namespace {

using gradflow::Matrix;
using gradflow::Parameter;
using gradflow::Tape;
using gradflow::Var;

constexpr int kChain = 64;  // ops per recorded chain

enum class Chain { Add, Matmul, Tanh, Layer };

const char* chain_name(Chain c) {
  switch (c) {
    case Chain::Add:
      return "add";
    case Chain::Matmul:
      return "matmul";
    case Chain::Tanh:
      return "tanh";
    case Chain::Layer:
      return "layer";  // tanh(y W + b): 3 ops per link
  }
  return "?";
}

int ops_per_link(Chain c) { return c == Chain::Layer ? 3 : 1; }

struct Fixture {
  explicit Fixture(int n)
      : x(Matrix<float>::Random(n, n)),
        w(Matrix<float>::Random(n, n) * 0.5f),
        b(Matrix<float>::Random(1, n)),
        seed(Matrix<float>::Ones(n, n)) {}
  Matrix<float> x;
  Parameter<float> w, b;
  Matrix<float> seed;
};

Var<float> record(Tape<float>& tape, Fixture& f, Chain c) {
  Var<float> y = tape.variable(f.x);
  Var<float> w = tape.param(f.w);
  Var<float> b = tape.param(f.b);
  const int links = kChain / ops_per_link(c);
  for (int i = 0; i < links; ++i) {
    switch (c) {
      case Chain::Add:
        y = y + b;
        break;
      case Chain::Matmul:
        y = gradflow::matmul(y, w);
        break;
      case Chain::Tanh:
        y = gradflow::tanh(y);
        break;
      case Chain::Layer:
        y = gradflow::tanh(gradflow::matmul(y, w) + b);
        break;
    }
  }
  return y;
}

void set_per_op(benchmark::State& state, int ops) {
  // Seconds per op; the console shows it with an SI prefix ("85.2ns").
  state.counters["time_per_op"] =
      benchmark::Counter(static_cast<double>(ops), benchmark::Counter::kIsIterationInvariantRate |
                                                       benchmark::Counter::kInvert);
}

void bm_record(benchmark::State& state, Chain c, int n) {
  Tape<float> tape;
  Fixture f(n);
  for (int i = 0; i < 3; ++i) {  // warm-up: the arena grows to the chain's size
    record(tape, f, c);
    tape.clear();
  }
  const auto allocs = gradflow::bench::malloc_count();
  for (auto _ : state) {
    Var<float> y = record(tape, f, c);
    benchmark::DoNotOptimize(tape.value(y).data());
    tape.clear();
  }
  state.counters["allocs_per_step"] =
      static_cast<double>(gradflow::bench::malloc_count() - allocs) /
      static_cast<double>(state.iterations());
  set_per_op(state, kChain);
}

void bm_backward(benchmark::State& state, Chain c, int n) {
  Tape<float> tape;
  Fixture f(n);
  for (int i = 0; i < 3; ++i) {
    tape.backward(record(tape, f, c), f.seed);
    tape.clear();
  }
  const auto allocs = gradflow::bench::malloc_count();
  for (auto _ : state) {
    Var<float> y = record(tape, f, c);
    const auto t0 = std::chrono::steady_clock::now();
    tape.backward(y, f.seed);
    const auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    tape.clear();
  }
  state.counters["allocs_per_step"] =
      static_cast<double>(gradflow::bench::malloc_count() - allocs) /
      static_cast<double>(state.iterations());
  set_per_op(state, kChain);
}

void bm_eigen(benchmark::State& state, Chain c, int n) {
  Fixture f(n);
  Matrix<float> y(n, n), tmp(n, n);
  for (auto _ : state) {
    y = f.x;
    const int links = kChain / ops_per_link(c);
    for (int i = 0; i < links; ++i) {
      switch (c) {
        case Chain::Add:
          y.rowwise() += f.b.value().row(0);
          break;
        case Chain::Matmul:
          tmp.noalias() = y * f.w.value();
          y.swap(tmp);
          break;
        case Chain::Tanh:
          y = y.array().tanh().matrix();
          break;
        case Chain::Layer:
          tmp.noalias() = y * f.w.value();
          tmp.rowwise() += f.b.value().row(0);
          y = tmp.array().tanh().matrix();
          break;
      }
    }
    benchmark::DoNotOptimize(y.data());
  }
  set_per_op(state, kChain);
}

void register_tape_benchmarks() {
  for (Chain c : {Chain::Add, Chain::Matmul, Chain::Tanh, Chain::Layer}) {
    for (int n : {4, 32}) {
      const std::string suffix = std::string(chain_name(c)) + "/" + std::to_string(n);
      benchmark::RegisterBenchmark(("tape/record/" + suffix).c_str(), bm_record, c, n);
      benchmark::RegisterBenchmark(("tape/backward/" + suffix).c_str(), bm_backward, c, n)
          ->UseManualTime();
      benchmark::RegisterBenchmark(("tape/eigen/" + suffix).c_str(), bm_eigen, c, n);
    }
  }
}

}  // namespace

namespace gradflow::bench {
void register_gemm_benchmarks();
void register_layer_gemm_benchmarks();
}  // namespace gradflow::bench

int main(int argc, char** argv) {
  register_tape_benchmarks();
  gradflow::bench::register_gemm_benchmarks();
  gradflow::bench::register_layer_gemm_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
