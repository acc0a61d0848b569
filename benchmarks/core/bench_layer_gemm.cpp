// The recurrent layers' products the way the fused kernel runs them (single-threaded, the
// kernel's own code paths), so that a kernel choice can be checked on a new machine:
//
//   layer_gemm/<config>/G<g>/<product>/<cols>
//     step_fwd   W_hh h_{t-1}: [GH x H][H x cols] through PackedLhs (W_hh packed once)
//     step_bwd   W_hh^T dG_t:  [H x GH][GH x cols] through PackedLhs (W_hh^T, no copy)
//     in_proj    W_ih X^T:     [GH x I][I x TB] through gemm_add (one whole-sequence GEMM)
//     dw_ih      dG X:         [GH x TB][TB x I]
//     dw_hh      dG H_prev^T:  [GH x TB][TB x H]
//     dx         dG^T W_ih:    [TB x GH][GH x I]
//
// <cols> of the per-step products is B (one thread runs the whole batch) or B/2 (one part of
// the 2-thread split); the whole-sequence products run at TB. The label says which kernel
// PackedLhs picked: "tiles" (OpenBLAS's small-matrix kernel, GRADFLOW_USE_BLAS builds with
// an AVX-512 OpenBLAS), "blas" (the BLAS on W_hh in place) or "eigen" (Eigen's GEBP kernel
// on the packed W_hh). GRU's forward multiplies its r,z rows (G2) and its n rows (G1) apart,
// so G2 shapes are registered too.

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <gradflow/core/detail/packed_gemm.hpp>
#include <string>
#include <vector>

#include "../common/configs.hpp"
#include "../common/gemm_rate.hpp"

namespace gradflow::bench {
namespace {

using Mat = Eigen::MatrixXf;
using Buffer = std::vector<float, Eigen::aligned_allocator<float>>;

// res [rows x cols] += A [rows x depth] * rhs, A stored as itself (ColMajor) or as the
// transpose of a stored [depth x rows] matrix (RowMajor), packed once before timing.
// `slabs` right-hand sides and results, one product each in turn, as the step loops run:
// forward takes one slab per step (T), whose result the input projection wrote long before,
// so it comes from memory; backward's operands, dG_t and dh, were just written (1). Timing
// forward on one slab over and over (before 2026-12-03's last section) kept its result in
// cache, and read 200 GFLOP/s for LSTM M where the step loop ran at about 165.
template <int Order>
void bm_step(benchmark::State& state, Index rows, Index depth, Index cols, Index slabs) {
  using Packed = gradflow::detail::PackedLhs<float, Order>;
  const Mat stored = Order == Eigen::ColMajor ? Mat::Random(rows, depth) : Mat::Random(depth, rows);
  const Mat rhs = Mat::Random(depth, cols * slabs);
  Mat res = Mat::Zero(rows, cols * slabs);
  Buffer packed_storage(std::size_t(Packed::packed_size(rows, depth, cols)));
  Buffer rhs_buffer(std::size_t(Packed::rhs_buffer_size(rows, depth, cols)));
  Packed packed;
  packed.pack(stored.data(), stored.rows(), rows, depth, cols, packed_storage.data());
  Index step = 0;
  for (auto _ : state) {
    packed.multiply_add(rhs.data() + step * cols * depth, depth, cols,
                        res.data() + step * cols * rows, rows, rhs_buffer.data());
    benchmark::DoNotOptimize(res.data());
    benchmark::ClobberMemory();
    step = step + 1 == slabs ? 0 : step + 1;
  }
  set_gemm_gflops(state, rows, depth, cols);
  state.SetLabel(packed.tiled()                                             ? "tiles"
                 : Packed::prefers_blas(cols) && gradflow::detail::kUseBlas ? "blas"
                                                                            : "eigen");
}

// res [rows x cols] += lhs [rows x depth] * rhs [depth x cols] through gemm_add, with the
// operands stored the way the fused kernel stores them (LhsOrder/RhsOrder).
template <int LhsOrder, int RhsOrder>
void bm_sequence(benchmark::State& state, Index rows, Index cols, Index depth) {
  const Mat lhs = LhsOrder == Eigen::ColMajor ? Mat::Random(rows, depth) : Mat::Random(depth, rows);
  const Mat rhs = RhsOrder == Eigen::ColMajor ? Mat::Random(depth, cols) : Mat::Random(cols, depth);
  Mat res = Mat::Zero(rows, cols);
  Buffer scratch_buffer;
  auto scratch = [&scratch_buffer](Index size) {
    if (scratch_buffer.size() < std::size_t(size)) scratch_buffer.resize(std::size_t(size));
    return scratch_buffer.data();
  };
  for (auto _ : state) {
    gradflow::detail::gemm_add<LhsOrder, RhsOrder>(rows, cols, depth, lhs.data(), lhs.rows(),
                                                   rhs.data(), rhs.rows(), res.data(), rows,
                                                   scratch);
    benchmark::DoNotOptimize(res.data());
    benchmark::ClobberMemory();
  }
  set_gemm_gflops(state, rows, depth, cols);
  state.SetLabel(gradflow::detail::kUseBlas ? "blas" : "eigen");
}

}  // namespace

void register_layer_gemm_benchmarks() {
  for (const BpttConfig& c : kBpttConfigs) {
    const Index B = c.batch, TB = c.batch * c.steps, I = c.input, H = c.hidden;
    for (int g : {kRnnGates, 2, kGruGates, kLstmGates}) {
      const Index GH = g * H;
      const std::string prefix =
          std::string("layer_gemm/") + c.name + "/G" + std::to_string(g) + "/";
      for (Index cols : {B, B / 2}) {
        const std::string suffix = "/" + std::to_string(cols);
        benchmark::RegisterBenchmark((prefix + "step_fwd" + suffix).c_str(),
                                     bm_step<Eigen::ColMajor>, GH, H, cols, c.steps);
        if (g != 2)  // the backward multiplies all gates at once
          benchmark::RegisterBenchmark((prefix + "step_bwd" + suffix).c_str(),
                                       bm_step<Eigen::RowMajor>, H, GH, cols, 1);
      }
      if (g == 2) continue;  // the whole-sequence products cover every gate
      const std::string suffix = "/" + std::to_string(TB);
      benchmark::RegisterBenchmark((prefix + "in_proj" + suffix).c_str(),
                                   bm_sequence<Eigen::ColMajor, Eigen::RowMajor>, GH, TB, I);
      benchmark::RegisterBenchmark((prefix + "dw_ih" + suffix).c_str(),
                                   bm_sequence<Eigen::ColMajor, Eigen::ColMajor>, GH, I, TB);
      benchmark::RegisterBenchmark((prefix + "dw_hh" + suffix).c_str(),
                                   bm_sequence<Eigen::ColMajor, Eigen::RowMajor>, GH, H, TB);
      benchmark::RegisterBenchmark((prefix + "dx" + suffix).c_str(),
                                   bm_sequence<Eigen::RowMajor, Eigen::ColMajor>, TB, I, GH);
    }
  }
}

}  // namespace gradflow::bench
