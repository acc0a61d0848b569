#pragma once
/// \file
/// The optional BLAS back-end of the recurrent layers' products.
///
/// Off by default (gradflow stays header-only on Eigen alone). Configure with
/// `-DGRADFLOW_USE_BLAS=ON` (optionally `-DBLA_VENDOR=OpenBLAS`): the `gradflow` target then
/// defines GRADFLOW_USE_BLAS and links CMake's `BLAS::BLAS`, and every GEMM of the fused
/// recurrent kernel (the whole-sequence products and the per-step W_hh products) calls the
/// BLAS `sgemm_`/`dgemm_` instead of Eigen's kernel. Measured on an AVX2 EPYC (1 thread,
/// GFLOP/s, Eigen 3.4 vs Debian's OpenBLAS 0.3.21): [1024x256][256x32] 42 vs 61,
/// [2048x512][512x3200] 55 vs 82.
///
/// Threads are the BLAS's own (OpenBLAS: OPENBLAS_NUM_THREADS, or omp_set_num_threads for
/// its OpenMP build); Eigen::setNbThreads does not reach them.
/// On AMD Zen 5, OpenBLAS 0.3.21 does not recognise the CPU and runs its AVX2 kernel unless
/// the environment sets OPENBLAS_CORETYPE=SkylakeX (see benchmarks/README.md).
///
/// Do not combine with EIGEN_USE_BLAS: Eigen declares the same Fortran symbols with an int
/// return type.

#include <type_traits>

#include <Eigen/Core>

#include "gradflow/config.hpp"

#ifdef GRADFLOW_USE_BLAS
extern "C" {
// The Fortran BLAS interface every BLAS exports (reference BLAS, OpenBLAS, BLIS, MKL).
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
}
#endif

namespace gradflow::detail {

#ifdef GRADFLOW_USE_BLAS
inline constexpr bool kUseBlas = true;
#else
inline constexpr bool kUseBlas = false;
#endif

/// res [rows x cols] (column-major, stride res_stride) += lhs [rows x depth] * rhs
/// [depth x cols] through the BLAS; `LhsOrder`/`RhsOrder` say how lhs/rhs are stored with
/// their strides (a row-major operand is the transpose of a column-major one: no copy).
/// Only callable when GRADFLOW_USE_BLAS is defined.
template <int LhsOrder, int RhsOrder, typename T>
void blas_gemm_add(Index rows, Index cols, Index depth, const T* lhs, Index lhs_stride,
                   const T* rhs, Index rhs_stride, T* res, Index res_stride) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "the BLAS back-end multiplies float and double");
#ifdef GRADFLOW_USE_BLAS
  if (rows == 0 || cols == 0 || depth == 0) return;
  const char ta = LhsOrder == Eigen::RowMajor ? 'T' : 'N';
  const char tb = RhsOrder == Eigen::RowMajor ? 'T' : 'N';
  const int m = int(rows), n = int(cols), k = int(depth);
  const int lda = int(lhs_stride), ldb = int(rhs_stride), ldc = int(res_stride);
  const T one = T(1);
  if constexpr (std::is_same_v<T, float>)
    sgemm_(&ta, &tb, &m, &n, &k, &one, lhs, &lda, rhs, &ldb, &one, res, &ldc);
  else
    dgemm_(&ta, &tb, &m, &n, &k, &one, lhs, &lda, rhs, &ldb, &one, res, &ldc);
#else
  (void)rows, (void)cols, (void)depth, (void)lhs, (void)lhs_stride, (void)rhs, (void)rhs_stride,
      (void)res, (void)res_stride;
#endif
}

}  // namespace gradflow::detail
