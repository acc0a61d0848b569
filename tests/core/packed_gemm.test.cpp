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
  // The layout this build and BLAS pick: small-kernel tiles only with an AVX-512 OpenBLAS.
  const bool tiles = std::is_same<T, float>::value && detail::blas_has_small_sgemm_kernel() &&
                     Packed::small_kernel_tiles(rows, depth, cols).rows > 0;
  CHECK(packed.tiled() == tiles);
  packed.multiply_add(rhs.data(), rhs.rows(), cols, res.data(), res.rows(), buffer);
  packed.multiply_add(rhs.data(), rhs.rows(), cols, res.data(), res.rows(), buffer);  // twice
  const Matrix<T> twice = expected + a * rhs;
  const double tol = std::is_same<T, float>::value ? 1e-4 : 1e-12;
  CHECK((res - twice).cwiseAbs().maxCoeff() <= tol * double(depth));

  // A right-hand side stored transposed (RowMajor), and one narrower than A was packed for:
  // the forward's input projection, chunk by chunk, on X^T.
  const Matrix<T> rhs_t = rhs.transpose();
  const Index narrow = (cols + 1) / 2;
  Matrix<T> res_t = test::uniform_matrix<T>(rows, cols, 4);
  const Matrix<T> expected_t = res_t + a * rhs;
  packed.template multiply_add<Eigen::RowMajor>(rhs_t.data(), rhs_t.rows(), narrow, res_t.data(),
                                                res_t.rows(), buffer);
  packed.template multiply_add<Eigen::RowMajor>(rhs_t.data() + narrow, rhs_t.rows(), cols - narrow,
                                                res_t.data() + narrow * rows, res_t.rows(), buffer);
  CHECK((res_t - expected_t).cwiseAbs().maxCoeff() <= tol * double(depth));
}

}  // namespace

TEST_CASE("PackedLhs multiplies like Eigen's product, packed once and reused",
          "[core][packed_gemm]") {
  // Tiny, odd, larger than one cache block (depth 700 > kc), and the recurrent shapes.
  // With an AVX-512 OpenBLAS (GRADFLOW_USE_BLAS, OPENBLAS_CORETYPE=SkylakeX) the float
  // products run on small-kernel tiles: 300 x 700 x 9 has partial tiles on both edges,
  // 64 x 256 x 70 halves the tile depth, 1024 x 256 x 600 has no tiles.
  const Index shapes[][3] = {{1, 1, 1},       {3, 4, 2},       {13, 7, 5},    {97, 33, 17},
                             {1024, 256, 32}, {256, 1024, 32}, {300, 700, 9}, {64, 256, 70},
                             {512, 128, 8},   {128, 512, 8},   {64, 256, 16}, {1024, 256, 600}};
  for (const auto& s : shapes) {
    DYNAMIC_SECTION(s[0] << " x " << s[1] << " times " << s[1] << " x " << s[2]) {
      check_product<double, Eigen::ColMajor>(s[0], s[1], s[2]);
      check_product<double, Eigen::RowMajor>(s[0], s[1], s[2]);
      check_product<float, Eigen::ColMajor>(s[0], s[1], s[2]);
      check_product<float, Eigen::RowMajor>(s[0], s[1], s[2]);
    }
  }
}

TEST_CASE("PackedLhs packed by several parts lays A out as one part does", "[core][packed_gemm]") {
  // Shapes of at least kParallelPassMinSize scalars (smaller ones stay on one part): the
  // recurrent layers' W_hh (many row blocks) and W_hh^T (one row block, many depth blocks),
  // and an odd one whose blocks differ in size. Parts run in turn here (the core tests have
  // no OpenMP); the recurrent suites run the layers' packing on two threads.
  const Index shapes[][3] = {{2048, 512, 64}, {512, 2048, 64}, {1031, 301, 13}};
  for (const auto& s : shapes) {
    const Index rows = s[0], depth = s[1], cols = s[2];
    REQUIRE(rows * depth >= detail::kParallelPassMinSize);
    const Matrix<float> a = test::uniform_matrix<float>(rows, depth, 5);
    using Packed = detail::PackedLhs<float, Eigen::ColMajor>;
    const Index size = Packed::packed_size(rows, depth, cols);
    detail::Arena arena;
    float* one = arena.allocate_array<float>(std::size_t(size));
    Packed packed;
    Eigen::Map<Eigen::VectorXf>(one, size).setZero();
    packed.pack(a.data(), rows, rows, depth, cols, one, 1);
    for (Index parts : {2, 3, 7}) {
      float* several = arena.allocate_array<float>(std::size_t(size));
      Eigen::Map<Eigen::VectorXf>(several, size).setZero();  // padding between blocks as in `one`
      packed.pack(a.data(), rows, rows, depth, cols, several, parts);
      CHECK(Eigen::Map<Eigen::VectorXf>(several, size) == Eigen::Map<Eigen::VectorXf>(one, size));
    }
  }
}

namespace {

// res + lhs * B through PackedRhs, B packed for `rows` rows, multiplied by fewer, as many
// and more rows (the backward's remainder), twice into the same result (lhs stored
// row-major, then column-major), against Eigen's own product.
template <typename T>
void check_rhs_product(Index rows, Index depth, Index cols) {
  const Matrix<T> b = test::uniform_matrix<T>(depth, cols, 6);
  using Packed = detail::PackedRhs<T, Eigen::ColMajor>;
  detail::Arena arena;
  T* storage = arena.allocate_array<T>(std::size_t(Packed::packed_size(rows, depth, cols)));
  Packed packed;
  packed.pack(b.data(), depth, depth, cols, rows, storage, 2);
  T* buffer = arena.allocate_array<T>(std::size_t(packed.lhs_buffer_size()));
  const double tol = std::is_same<T, float>::value ? 1e-4 : 1e-12;
  for (Index n : {Index(1), rows, 3 * rows + 1}) {
    const Matrix<T> stored = test::uniform_matrix<T>(depth, n, 7);  // lhs^T
    const Matrix<T> lhs = stored.transpose();
    Matrix<T> res = test::uniform_matrix<T>(n, cols, 8);
    const Matrix<T> expected = res + T(2) * lhs * b;
    packed.template multiply_add<Eigen::RowMajor>(stored.data(), depth, n, res.data(), n, buffer);
    packed.template multiply_add<Eigen::ColMajor>(lhs.data(), n, n, res.data(), n, buffer);
    CHECK((res - expected).cwiseAbs().maxCoeff() <= tol * double(depth));
    // Written over, into rows of a larger result (stride n + 2) that hold NaN, as a new
    // gradient does in debug builds: the rows outside stay as they were.
    Matrix<T> over = Matrix<T>::Constant(n + 2, cols, std::numeric_limits<T>::quiet_NaN());
    packed.template multiply_add<Eigen::RowMajor>(stored.data(), depth, n, over.data() + 1, n + 2,
                                                  buffer, true);
    CHECK_FALSE(over.middleRows(1, n).array().isNaN().any());
    CHECK((over.middleRows(1, n) - lhs * b).cwiseAbs().maxCoeff() <= tol * double(depth));
    CHECK(over.row(0).array().isNaN().all());
    CHECK(over.row(n + 1).array().isNaN().all());
  }
}

}  // namespace

TEST_CASE("PackedRhs multiplies like Eigen's product, packed once, for any number of rows",
          "[core][packed_gemm]") {
  // B as the 2-thread backward's W_ih [G*H x I] (dX = dG^T W_ih, dG^T stored row-major),
  // packed for a chunk's rows. Odd shapes cut every block.
  const Index shapes[][3] = {{160, 1024, 256}, {192, 2048, 512}, {37, 301, 29}, {5, 3, 2}};
  for (const auto& s : shapes) {
    DYNAMIC_SECTION(s[0] << " rows, " << s[1] << " x " << s[2]) {
      check_rhs_product<double>(s[0], s[1], s[2]);
      check_rhs_product<float>(s[0], s[1], s[2]);
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

TEST_CASE("gemm_add_shared adds each piece's products, each as gemm_add would",
          "[core][packed_gemm]") {
  // Rows of the first piece, of the other two, depth, then the two products' columns. The
  // pieces are laid out as GRU's: the first adds to rows [0, rows1) of both results, the
  // second (another block of the same lhs) to the rest of the second result only, the third
  // (its own lhs and stride) to the rest of the first result only. The first right-hand side
  // is stored row-major (like H_prev^T), the second column-major (like X). Odd sizes, a depth
  // of several blocks at a result over 128 x 128 (the AVX-512 depth cap), a piece with
  // results over 4 MiB in double (row blocks outermost), an empty product and an empty piece.
  const Index shapes[][5] = {{1, 1, 1, 1, 1},
                             {13, 5, 7, 5, 3},
                             {97, 50, 300, 17, 40},
                             {512, 256, 900, 256, 128},
                             {1500, 700, 1100, 300, 200},
                             {200, 0, 1000, 64, 70},
                             {30, 10, 20, 0, 9}};
  for (const auto& s : shapes) {
    const Index rows1 = s[0], rows2 = s[1], depth = s[2], cols1 = s[3], cols2 = s[4];
    const Index rows = rows1 + rows2;
    // Unlimited, then a buffer small enough to make the blocking shrink (mc, then kc).
    for (Index capacity : {std::numeric_limits<Index>::max(), Index(8000)}) {
      DYNAMIC_SECTION(rows1 << " + " << rows2 << " x " << depth << " times " << cols1 << " and "
                            << cols2 << " columns, capacity " << capacity) {
        auto check = [&](auto zero, double tol) {
          using T = decltype(zero);
          const Matrix<T> a = test::uniform_matrix<T>(rows, depth, 9);
          const Matrix<T> a3 = test::uniform_matrix<T>(rows2 + 3, depth, 14);  // stride + 3
          const Matrix<T> b1 = test::uniform_matrix<T>(depth, cols1, 10);
          const Matrix<T> b2 = test::uniform_matrix<T>(depth, cols2, 11);
          const Matrix<T> b1_stored = b1.transpose();  // b1 row-major
          const Matrix<T> start1 = test::uniform_matrix<T>(rows, cols1, 12);
          const Matrix<T> start2 = test::uniform_matrix<T>(rows, cols2, 13);
          Matrix<T> r1 = start1, r2 = start2;
          detail::Arena arena;
          Index asked = 0;
          auto scratch = [&](Index n) {
            asked = n;
            return arena.allocate_array<T>(std::size_t(n));
          };
          const detail::SharedLhs<T> pieces[] = {
              {a.data(), rows, rows1, 0, true, true},
              {a.data() + rows1, rows, rows2, rows1, false, true},
              {a3.data(), rows2 + 3, rows2, rows1, true, false}};
          detail::gemm_add_shared(
              depth, pieces, 3,
              detail::RhsAndResult<T, Eigen::RowMajor>{cols1, b1_stored.data(), cols1, r1.data(),
                                                       rows},
              detail::RhsAndResult<T, Eigen::ColMajor>{cols2, b2.data(), depth, r2.data(), rows},
              scratch, capacity);
          if (!detail::kUseBlas && capacity < std::numeric_limits<Index>::max() && depth > 8)
            CHECK(asked <= capacity);
          // Row blocks outermost when the largest piece's results reach 4 MiB (1500 x 500 in
          // double, not in float) and the depth is several blocks (kc 504 in double without
          // AVX-512, 128 with), unless the capacity is too small.
          const detail::SharedBlocking<T> blocking(rows1, cols1, cols2, depth, capacity);
          CHECK(blocking.rows_outer ==
                (rows1 == 1500 && capacity > 8000 && std::is_same<T, double>::value));
          Matrix<T> a_first(rows, depth);  // the lhs each result's rows saw
          a_first << a.topRows(rows1), a3.topRows(rows2);
          const Matrix<T> expected1 = start1 + a_first * b1, expected2 = start2 + a * b2;
          if (cols1 > 0) CHECK((r1 - expected1).cwiseAbs().maxCoeff() <= tol * double(depth));
          if (cols2 > 0) CHECK((r2 - expected2).cwiseAbs().maxCoeff() <= tol * double(depth));
        };
        check(double(0), 1e-15);
        check(float(0), 1e-6);
      }
    }
  }
}

TEST_CASE("gemm_add_shared's row blocks go outermost from 4 MiB of results on",
          "[core][packed_gemm]") {
  // GRU L's r,z rows of dW ([1024 x 1024] floats) are exactly 4 MiB; measured faster with
  // row blocks outermost (see SharedBlocking::rows_outer).
  using B = detail::SharedBlocking<float>;
  const Index kc = 128;
  CHECK(B::prefers_rows_outer(1024, 512, 512, 3200, kc));
  CHECK_FALSE(B::prefers_rows_outer(1023, 512, 512, 3200, kc));
  CHECK_FALSE(B::prefers_rows_outer(1024, 512, 512, kc, kc));  // one depth block: no gain
  CHECK(detail::SharedBlocking<double>::prefers_rows_outer(512, 512, 512, 3200, kc));
}

TEST_CASE("gemm_add_shared leaves a product that no piece takes part in as it was",
          "[core][packed_gemm]") {
  // As for a frozen weight: the first product has columns, but no piece adds to it.
  const Index rows = 150, depth = 700, cols1 = 40, cols2 = 60;
  const Matrix<double> a = test::uniform_matrix<double>(rows, depth, 21);
  const Matrix<double> b1 = test::uniform_matrix<double>(depth, cols1, 22);
  const Matrix<double> b2 = test::uniform_matrix<double>(depth, cols2, 23);
  const Matrix<double> start1 = test::uniform_matrix<double>(rows, cols1, 24);
  const Matrix<double> start2 = test::uniform_matrix<double>(rows, cols2, 25);
  Matrix<double> r1 = start1, r2 = start2;
  detail::Arena arena;
  auto scratch = [&](Index n) { return arena.allocate_array<double>(std::size_t(n)); };
  const detail::SharedLhs<double> pieces[] = {{a.data(), rows, rows, 0, false, true}};
  detail::gemm_add_shared(
      depth, pieces, 1,
      detail::RhsAndResult<double, Eigen::ColMajor>{cols1, b1.data(), depth, r1.data(), rows},
      detail::RhsAndResult<double, Eigen::ColMajor>{cols2, b2.data(), depth, r2.data(), rows},
      scratch);
  CHECK(r1 == start1);
  CHECK((r2 - (start2 + a * b2)).cwiseAbs().maxCoeff() <= 1e-15 * double(depth));
}

TEST_CASE("Small-kernel tiles stay within OpenBLAS's 10^6 multiply-adds per call",
          "[core][packed_gemm]") {
  using Packed = detail::PackedLhs<float, Eigen::ColMajor>;
  auto tiles = [](Index rows, Index depth, Index cols) {
    const Packed::TileShape t = Packed::small_kernel_tiles(rows, depth, cols);
    return std::make_pair(t.rows, t.depth);
  };
  using Shape = std::pair<Index, Index>;
  CHECK(tiles(1024, 256, 32) == Shape(64, 128));  // lstm M, W_hh h: 64 * 128 * 32 = 262144
  CHECK(tiles(256, 1024, 64) == Shape(64, 128));  // W_hh^T dG at L: 524288
  CHECK(tiles(256, 64, 16) == Shape(64, 64));     // S: the whole depth in one tile
  CHECK(tiles(40, 7, 3) == Shape(40, 7));         // smaller than one tile
  CHECK(tiles(1024, 256, 200) == Shape(64, 64));  // 64 * 128 * 200 > 10^6: halved once
  CHECK(tiles(1024, 256, 400) == Shape(64, 32));  // halved twice
  CHECK(tiles(1024, 256, 500) == Shape(0, 0));    // 64 * 32 * 500 > 10^6: no tiles
  CHECK(tiles(16, 16, 3906) == Shape(16, 16));    // 999936 multiply-adds
  CHECK(tiles(16, 16, 3907) == Shape(0, 0));      // 1000192, and the depth cannot shrink
  // Without the BLAS back-end there is no OpenBLAS to ask, and nothing is tiled.
  if (!detail::kUseBlas) {
    CHECK_FALSE(detail::blas_has_small_sgemm_kernel());
    const Matrix<float> a = test::uniform_matrix<float>(128, 128, 1);
    detail::Arena arena;
    Packed packed;
    packed.pack(a.data(), 128, 128, 128, 8,
                arena.allocate_array<float>(std::size_t(Packed::packed_size(128, 128, 8))));
    CHECK_FALSE(packed.tiled());
  }
}

TEST_CASE("The whole-sequence GEMMs cut the depth so that A's panel fills half of L1",
          "[core][packed_gemm]") {
  // Zen 5: 48 KiB L1, Eigen's AVX-512 float panel of 48 rows, double of 24.
  CHECK(detail::depth_block_for_l1(48 * 1024, 48, 4) == 128);
  CHECK(detail::depth_block_for_l1(48 * 1024, 24, 8) == 128);
  CHECK(detail::depth_block_for_l1(32 * 1024, 48, 4) == 80);  // 85, down to a multiple of 8
  CHECK(detail::depth_block_for_l1(1024, 48, 4) == 8);        // never below one unrolled step
  // LSTM M's dW_ih shape: Eigen alone picks a depth block of 808 with AVX-512 (on a 48 KiB
  // L1; several times the cap on any L1).
  const detail::ProvidedBlocking<float> dw(1024, 256, 3200);
  CHECK(dw.kc() <= detail::max_depth_block<float>());
#ifdef EIGEN_VECTORIZE_AVX512
  CHECK(dw.kc() == detail::max_depth_block<float>());
#else
  CHECK(detail::max_depth_block<float>() == std::numeric_limits<Index>::max());
#endif
  // Results under 128 x 128 (S's [64 x 64] dW) keep Eigen's depth block.
  CHECK(detail::max_depth_block<float>(64, 64) == std::numeric_limits<Index>::max());
  CHECK(detail::max_depth_block<float>(128, 128) == detail::max_depth_block<float>());
  CHECK(detail::ProvidedBlocking<float>(64, 64, 800).kc() == 800);
  // A float product deeper than several blocks still sums every one of them.
  const Index rows = 200, cols = 70, depth = 1000;
  const Matrix<float> a = test::uniform_matrix<float>(rows, depth, 7);
  const Matrix<float> b = test::uniform_matrix<float>(depth, cols, 8);
  Matrix<float> res = Matrix<float>::Zero(rows, cols);
  detail::Arena arena;
  auto scratch = [&arena](Index n) { return arena.allocate_array<float>(std::size_t(n)); };
  detail::gemm_add<Eigen::ColMajor, Eigen::ColMajor>(rows, cols, depth, a.data(), rows, b.data(),
                                                     depth, res.data(), rows, scratch);
  const Matrix<double> expected = a.cast<double>() * b.cast<double>();
  CHECK((res.cast<double>() - expected).cwiseAbs().maxCoeff() < 1e-3);
}

TEST_CASE("A blocking fitted to a smaller buffer asks for no more and adds the same product",
          "[core][packed_gemm]") {
  // The fused layers' 2-thread backward runs shallow chunks of the whole-segment GEMMs in
  // buffers sized for the deep ones; Eigen's mc grows as the depth shrinks.
  const Index shapes[][3] = {{20, 20, 5}, {80, 40, 10}, {200, 120, 35}, {1024, 512, 160}};
  for (const auto& s : shapes) {
    const Index rows = s[0], cols = s[1], depth = s[2];
    const Matrix<double> a = test::uniform_matrix<double>(rows, depth, 14);
    const Matrix<double> b = test::uniform_matrix<double>(depth, cols, 15);
    const Matrix<double> expected = a * b;
    const Index full = detail::ProvidedBlocking<double>(rows, cols, depth).buffer_size();
    for (Index capacity : {full, full / 3, Index(200)}) {
      DYNAMIC_SECTION(rows << " x " << depth << " x " << cols << ", capacity " << capacity) {
        detail::ProvidedBlocking<double> blocking(rows, cols, depth);
        blocking.fit(capacity);
        // Down to one micro-panel each way, which is the floor.
        const Index floor = detail::ProvidedBlocking<double>::buffer_size_for(
            blocking.kc(), Eigen::internal::gebp_traits<double, double>::mr,
            Eigen::internal::gebp_traits<double, double>::nr);
        CHECK(blocking.buffer_size() <= std::max(capacity, floor));
        if (capacity == full) CHECK(blocking.buffer_size() == full);
        detail::Arena arena;
        Index asked = 0;
        auto scratch = [&](Index n) {
          asked = n;
          return arena.allocate_array<double>(std::size_t(n));
        };
        Matrix<double> res = Matrix<double>::Zero(rows, cols);
        detail::gemm_add<Eigen::ColMajor, Eigen::ColMajor>(rows, cols, depth, a.data(), rows,
                                                           b.data(), depth, res.data(), rows,
                                                           scratch, capacity);
        if (!detail::kUseBlas) CHECK(asked <= std::max(capacity, floor));
        CHECK((res - expected).cwiseAbs().maxCoeff() < 1e-12);
      }
    }
  }
}

TEST_CASE("buffer_bound covers every product cut from a shape, capped or not",
          "[core][packed_gemm]") {
  // The fused layers size one packing buffer per thread from the uncut shape, then run each
  // thread's rows or columns of it; a part may keep Eigen's deeper kc where the whole was
  // capped (lstm S at 2 threads: dW of 256 x 64, halves of 128 x 64).
  const Index shapes[][3] = {{256, 64, 800},   {1024, 256, 3200}, {3200, 256, 1024},
                             {192, 64, 800},   {512, 128, 8000},  {2048, 512, 3200},
                             {8000, 128, 512}, {128, 128, 300}};
  using Blocking = detail::ProvidedBlocking<float>;
  for (const auto& s : shapes)
    for (Index parts : {1, 2, 3, 4})
      for (bool cut_rows : {true, false}) {
        const Index rows = cut_rows ? (s[0] + parts - 1) / parts : s[0];
        const Index cols = cut_rows ? s[1] : (s[1] + parts - 1) / parts;
        INFO(s[0] << " x " << s[1] << " x " << s[2] << ", part " << rows << " x " << cols);
        CHECK(Blocking(rows, cols, s[2]).buffer_size() <= Blocking::buffer_bound(s[0], s[1], s[2]));
      }
}

TEST_CASE("SharedBlocking::bound covers every row range of a shape, unfitted",
          "[core][packed_gemm]") {
  // gemm_add_shared's buffer in the fused layers is sized from the uncut weight gradients
  // (GH rows, H and I columns); each thread takes a row range, and GRU's pieces are 2H and H
  // rows: none of them may need to shrink its blocking to fit.
  const Index shapes[][4] = {{256, 64, 64, 800},   {1024, 256, 256, 3200}, {768, 256, 256, 3200},
                             {192, 64, 64, 800},   {512, 128, 128, 8000},  {2048, 512, 512, 3200},
                             {1536, 512, 512, 64}, {384, 128, 128, 300}};
  using Blocking = detail::SharedBlocking<float>;
  for (const auto& s : shapes)
    for (Index parts : {1, 2, 3, 4, 6}) {
      const Index rows = (s[0] + parts - 1) / parts;
      INFO(s[0] << " x (" << s[1] << " + " << s[2] << ") x " << s[3] << ", " << rows << " rows");
      const Index bound = Blocking::bound(s[0], s[1], s[2], s[3]);
      const Blocking fitted(rows, s[1], s[2], s[3], bound), unfitted(rows, s[1], s[2], s[3]);
      CHECK(unfitted.size() <= bound);
      CHECK(bound % detail::padded<float>(1) == 0);  // per-thread buffers stay aligned
      CHECK(fitted.mc == unfitted.mc);
      CHECK(fitted.kc == unfitted.kc);
    }
}
