#include <catch2/catch.hpp>
#include <gradflow/core/detail/arena.hpp>
#include <gradflow/core/detail/packed_gemm.hpp>

#include "core_test_util.hpp"

using namespace gradflow;

namespace {

// res + A * rhs through PackedLhs, A given column-major or as the transpose of a stored
// matrix (RowMajor), against Eigen's own product.
template <typename T, int Order>
void check_product(Index rows, Index depth, Index cols) {
  const Matrix<T> stored = Order == Eigen::ColMajor ? test::uniform_matrix<T>(rows, depth, 1)
                                                    : test::uniform_matrix<T>(depth, rows, 1);
  const Matrix<T> a = Order == Eigen::ColMajor ? stored : Matrix<T>(stored.transpose());
  const Matrix<T> rhs = test::uniform_matrix<T>(depth, cols, 2);
  Matrix<T> res = test::uniform_matrix<T>(rows, cols, 3);
  const Matrix<T> expected = res + a * rhs;

  detail::Arena arena;
  using Packed = detail::PackedLhs<T, Order>;
  T* storage = arena.allocate_array<T>(std::size_t(Packed::packed_size(rows, depth, cols)));
  T* buffer = arena.allocate_array<T>(std::size_t(Packed::rhs_buffer_size(rows, depth, cols)));
  Packed packed;
  packed.pack(stored.data(), stored.rows(), rows, depth, cols, storage);
  packed.multiply_add(rhs.data(), rhs.rows(), cols, res.data(), res.rows(), buffer);
  packed.multiply_add(rhs.data(), rhs.rows(), cols, res.data(), res.rows(), buffer);  // twice
  const Matrix<T> twice = expected + a * rhs;
  const double tol = std::is_same<T, float>::value ? 1e-4 : 1e-12;
  CHECK((res - twice).cwiseAbs().maxCoeff() <= tol * double(depth));
}

}  // namespace

TEST_CASE("PackedLhs multiplies like Eigen's product, packed once and reused",
          "[core][packed_gemm]") {
  // Tiny, odd, larger than one cache block (depth 700 > kc), and the recurrent shapes.
  // With an AVX-512 OpenBLAS (GRADFLOW_USE_BLAS, OPENBLAS_CORETYPE=SkylakeX), the float
  // 512 x 128 x 8, 128 x 512 x 8 and 64 x 256 x 16 products take its direct small SGEMM.
  const Index shapes[][3] = {{1, 1, 1},       {3, 4, 2},     {13, 7, 5},    {97, 33, 17},
                             {1024, 256, 32}, {300, 700, 9}, {64, 256, 70}, {512, 128, 8},
                             {128, 512, 8},   {64, 256, 16}};
  for (const auto& s : shapes) {
    DYNAMIC_SECTION(s[0] << " x " << s[1] << " times " << s[1] << " x " << s[2]) {
      check_product<double, Eigen::ColMajor>(s[0], s[1], s[2]);
      check_product<double, Eigen::RowMajor>(s[0], s[1], s[2]);
      check_product<float, Eigen::ColMajor>(s[0], s[1], s[2]);
      check_product<float, Eigen::RowMajor>(s[0], s[1], s[2]);
    }
  }
}

TEST_CASE("gemm_add adds the product of stored or transposed operands, buffers from the caller",
          "[core][packed_gemm]") {
  const Index shapes[][3] = {{1, 1, 1}, {5, 3, 4}, {1024, 300, 256}, {40, 7, 900}};
  for (const auto& s : shapes) {
    const Index rows = s[0], cols = s[1], depth = s[2];
    DYNAMIC_SECTION(rows << " x " << depth << " times " << depth << " x " << cols) {
      const Matrix<double> a = test::uniform_matrix<double>(rows, depth, 4);
      const Matrix<double> b = test::uniform_matrix<double>(depth, cols, 5);
      const Matrix<double> at = a.transpose(), bt = b.transpose();
      const Matrix<double> start = test::uniform_matrix<double>(rows, cols, 6);
      const Matrix<double> expected = start + a * b;
      detail::Arena arena;
      auto scratch = [&arena](Index n) { return arena.allocate_array<double>(std::size_t(n)); };
      Matrix<double> r1 = start, r2 = start, r3 = start;
      detail::gemm_add<Eigen::ColMajor, Eigen::ColMajor>(rows, cols, depth, a.data(), rows,
                                                         b.data(), depth, r1.data(), rows, scratch);
      detail::gemm_add<Eigen::RowMajor, Eigen::ColMajor>(rows, cols, depth, at.data(), depth,
                                                         b.data(), depth, r2.data(), rows, scratch);
      detail::gemm_add<Eigen::ColMajor, Eigen::RowMajor>(rows, cols, depth, a.data(), rows,
                                                         bt.data(), cols, r3.data(), rows, scratch);
      CHECK((r1 - expected).cwiseAbs().maxCoeff() < 1e-11);
      CHECK((r2 - expected).cwiseAbs().maxCoeff() < 1e-11);
      CHECK((r3 - expected).cwiseAbs().maxCoeff() < 1e-11);
    }
  }
}

TEST_CASE("The direct small SGEMM rule matches OpenBLAS 0.3.21's permit conditions",
          "[core][packed_gemm]") {
  // Untransposed A: any product of at most 10^6 multiply-adds.
  CHECK(detail::blas_direct_small_sgemm_applies(false, 512, 128, 8));          // lstm LONG, W_hh h
  CHECK(detail::blas_direct_small_sgemm_applies(false, 256, 64, 16));          // lstm S
  CHECK(detail::blas_direct_small_sgemm_applies(false, 1000, 1000, 1));        // exactly 10^6
  CHECK_FALSE(detail::blas_direct_small_sgemm_applies(false, 1024, 256, 32));  // lstm M
  CHECK_FALSE(detail::blas_direct_small_sgemm_applies(false, 1000, 1001, 1));
  // Transposed A (W_hh^T dG): also at most 1200 results and a depth of at least 32.
  CHECK(detail::blas_direct_small_sgemm_applies(true, 128, 512, 8));  // 1024 results
  CHECK(detail::blas_direct_small_sgemm_applies(true, 64, 256, 16));
  CHECK_FALSE(detail::blas_direct_small_sgemm_applies(true, 256, 256, 8));  // 2048 results
  CHECK_FALSE(detail::blas_direct_small_sgemm_applies(true, 16, 31, 8));    // depth < 32
  // Without the BLAS back-end there is no OpenBLAS to ask.
  if (!detail::kUseBlas) CHECK_FALSE(detail::blas_has_direct_small_sgemm());
}
