// Eigen SGEMM at the shapes the recurrent layers multiply, and a large square SGEMM for
// the machine's attainable peak (the roofline the comparison reports against).
//
//   gemm/peak/<n>/<threads>                    C = A B with n x n x n
//   gemm/blas_peak/<n>/<threads>               the same through the BLAS's sgemm_, in
//                                              GRADFLOW_USE_BLAS builds only
//   gemm/<config>/G<g>/<shape>/<threads>      the shapes of one BPTT config and cell:
//     step      [B x H] [H x GH]      hidden-to-gates, once per time step (forward)
//     step_dh   [B x GH] [GH x H]     gradient into the previous hidden state (backward)
//     step_dw   [B x H]^T [B x GH]    weight gradient of one time step
//     in_proj   [TB x I] [I x GH]     input projection of the whole sequence at once
//     in_dx     [TB x GH] [GH x I]    input gradient of the whole sequence
//     in_dw     [TB x I]^T [TB x GH]  input-weight gradient of the whole sequence
//
// Threads: Eigen parallelises a GEMM with OpenMP (this target links it) when asked with
// Eigen::setNbThreads and the product is large enough; nothing else here is parallel.

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <gradflow/core/detail/blas_gemm.hpp>
#include <string>

#include "../common/configs.hpp"
#include "../common/gemm_rate.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradflow::bench {
namespace {

using Mat = Eigen::MatrixXf;

enum class Op { NN, TN };

void bm_gemm(benchmark::State& state, Eigen::Index m, Eigen::Index k, Eigen::Index n, Op op,
             int threads) {
  Eigen::setNbThreads(threads);
  Mat a = op == Op::NN ? Mat::Random(m, k) : Mat::Random(k, m);
  Mat b = Mat::Random(k, n);
  Mat c = Mat::Zero(m, n);
  for (auto _ : state) {
    if (op == Op::NN)
      c.noalias() = a * b;
    else
      c.noalias() = a.transpose() * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gemm_gflops(state, m, k, n);
  state.counters["threads_used"] = Eigen::nbThreads();
  Eigen::setNbThreads(1);
}

#ifdef GRADFLOW_USE_BLAS
// The BLAS build's whole-sequence GEMMs run the BLAS's kernel, which can beat both Eigen's
// and oneDNN's (OpenBLAS's AVX-512 SGEMM on Zen 5), so it belongs in the roofline.
void bm_blas_gemm(benchmark::State& state, Eigen::Index n, int threads) {
#ifdef _OPENMP
  const int threads_before = omp_get_max_threads();
  omp_set_num_threads(threads);  // an OpenMP BLAS sizes its team from this
#endif
  const Mat a = Mat::Random(n, n), b = Mat::Random(n, n);
  Mat c = Mat::Zero(n, n);
  for (auto _ : state) {
    gradflow::detail::blas_gemm_add<Eigen::ColMajor, Eigen::ColMajor>(
        n, n, n, a.data(), n, b.data(), n, c.data(), n);  // c += a b: the same flops as c = a b
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gemm_gflops(state, n, n, n);
#ifdef _OPENMP
  omp_set_num_threads(threads_before);
#endif
}
#endif

}  // namespace

void register_gemm_benchmarks() {
  for (int threads : {1, 2}) {
    for (Eigen::Index n : {512, 1024, 2048}) {
      const std::string name = "gemm/peak/" + std::to_string(n) + "/" + std::to_string(threads);
      benchmark::RegisterBenchmark(name.c_str(), bm_gemm, n, n, n, Op::NN, threads)->UseRealTime();
#ifdef GRADFLOW_USE_BLAS
      const std::string blas_name =
          "gemm/blas_peak/" + std::to_string(n) + "/" + std::to_string(threads);
      benchmark::RegisterBenchmark(blas_name.c_str(), bm_blas_gemm, n, threads)->UseRealTime();
#endif
    }
  }
  for (const BpttConfig& c : kBpttConfigs) {
    for (int g : {kRnnGates, kGruGates, kLstmGates}) {
      const Eigen::Index B = c.batch, TB = c.batch * c.steps, I = c.input, H = c.hidden,
                         GH = g * c.hidden;
      struct Shape {
        const char* name;
        Eigen::Index m, k, n;
        Op op;
      };
      const Shape shapes[] = {{"step", B, H, GH, Op::NN},    {"step_dh", B, GH, H, Op::NN},
                              {"step_dw", H, B, GH, Op::TN}, {"in_proj", TB, I, GH, Op::NN},
                              {"in_dx", TB, GH, I, Op::NN},  {"in_dw", I, TB, GH, Op::TN}};
      for (int threads : {1, 2}) {
        for (const Shape& s : shapes) {
          const std::string name = std::string("gemm/") + c.name + "/G" + std::to_string(g) + "/" +
                                   s.name + "/" + std::to_string(threads);
          benchmark::RegisterBenchmark(name.c_str(), bm_gemm, s.m, s.k, s.n, s.op, threads)
              ->UseRealTime();
        }
      }
    }
  }
}

}  // namespace gradflow::bench
