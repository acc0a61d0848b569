#pragma once
/// \file
/// The GFLOP/s counter every GEMM benchmark reports.

#include <benchmark/benchmark.h>

#include <Eigen/Core>

namespace gradflow::bench {

/// Sets the `GFLOPS` counter of an [m x k][k x n] product: 2 m k n flops per iteration.
inline void set_gemm_gflops(benchmark::State& state, Eigen::Index m, Eigen::Index k,
                            Eigen::Index n) {
  const double flops =
      2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace gradflow::bench
