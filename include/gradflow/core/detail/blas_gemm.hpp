#pragma once
/// \file
/// The optional BLAS back-end of the recurrent layers' products.
///
/// Off by default (gradflow stays header-only on Eigen alone). Configure with
/// `-DGRADFLOW_USE_BLAS=ON` (optionally `-DBLA_VENDOR=OpenBLAS`): the `gradflow` target then
/// defines GRADFLOW_USE_BLAS and links CMake's `BLAS::BLAS`, and the whole-sequence GEMMs of
/// the fused recurrent kernel, and the per-step W_hh products where the BLAS is measured to
/// be faster (see PackedLhs), call the BLAS `sgemm_`/`dgemm_` instead of Eigen's kernel.
/// With an AVX-512 OpenBLAS those per-step products run its small-matrix kernel on W_hh
/// tiles laid out once; with other BLAS the narrow ones stay on Eigen's kernel with W_hh
/// packed once (see packed_gemm.hpp): the BLAS would repack W_hh on every call. Measured
/// on an AVX2 EPYC (1 thread, GFLOP/s, Eigen 3.4 vs Debian's OpenBLAS 0.3.21):
/// [1024x256][256x32] 42 vs 61, [2048x512][512x3200] 55 vs 82.
///
/// Threads: the fused kernel cuts its work into Eigen::nbThreads() parts and calls the BLAS
/// from each part's OpenMP thread; an OpenMP BLAS (Debian's libopenblas0-openmp) then runs
/// each call on its caller's thread instead of starting a second pool.
/// A pthreads OpenBLAS (Debian's preferred libopenblas0-pthread) starts a pool of its own
/// beside OpenMP's: configure warns, and bptt/lstm/L/2 ran 285 ms against 224 ms with the
/// OpenMP build on a 2-core Zen 4.
/// OpenBLAS 0.3.21's kernel choice on AMD: Zen 4 is detected as Cooperlake, whose AVX-512
/// SGEMM is slower at the per-step shapes than its Haswell one (67 vs 88 GFLOP/s at
/// [1024x256][256x32]): set OPENBLAS_CORETYPE=Haswell. Zen 5 is not recognised and gets the
/// Haswell (AVX2) kernel; OPENBLAS_CORETYPE=SkylakeX selects AVX-512, twice as fast there
/// (205 against 104 GFLOP/s at [1024x256][256x3200]; see benchmarks/README.md).
///
/// Do not combine with EIGEN_USE_BLAS: Eigen declares the same Fortran symbols with an int
/// return type.

#include <Eigen/Core>
#include <cctype>
#include <string>
#include <type_traits>

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
#if defined(__GNUC__)
// OpenBLAS only: the name of the kernel set it chose. Weak, so that any other BLAS links
// too (the address is then null).
char* openblas_get_corename(void) __attribute__((weak));
#endif
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
/// Only defined with GRADFLOW_USE_BLAS: every call sits in an `if constexpr (kUseBlas)`.
template <int LhsOrder, int RhsOrder, typename T>
void blas_gemm_add(Index rows, Index cols, Index depth, const T* lhs, Index lhs_stride,
                   const T* rhs, Index rhs_stride, T* res, Index res_stride)
#ifdef GRADFLOW_USE_BLAS
{
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "the BLAS back-end multiplies float and double");
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
}
#else
    ;
#endif

/// Whether the BLAS is an OpenBLAS running an AVX-512 kernel set (SkylakeX, Cooperlake,
/// SapphireRapids). Those have a small-matrix SGEMM kernel that multiplies products of at
/// most 10^6 multiply-adds without packing either operand; PackedLhs feeds it W_hh in
/// tiles of that size (see PackedLhs::small_kernel_tiles).
inline bool blas_has_small_sgemm_kernel() {
#if defined(GRADFLOW_USE_BLAS) && defined(__GNUC__)
  static const bool answer = [] {
    if (openblas_get_corename == nullptr) return false;
    const char* name = openblas_get_corename();
    if (name == nullptr) return false;
    std::string core(name);  // "SkylakeX", "Cooperlake", ... ("Haswell" if forced)
    for (char& c : core) c = char(std::tolower(static_cast<unsigned char>(c)));
    return core == "skylakex" || core == "cooperlake" || core == "sapphirerapids";
  }();
  return answer;
#else
  return false;
#endif
}

}  // namespace gradflow::detail
