#include <catch2/catch.hpp>
#include <gradflow/core/detail/transpose.hpp>

#include "core_test_util.hpp"

using namespace gradflow;

namespace {

// transpose_into() on a [rows x cols] block of a larger source into a block of a larger
// destination, against Eigen's scalar transpose: the same scalars, so exactly equal, and
// nothing outside the destination block touched.
template <typename T, detail::TransposeMode Mode>
void check_transpose(Index rows, Index cols) {
  const Matrix<T> src = test::uniform_matrix<T>(rows + 3, cols + 2, 1);
  const Matrix<T> before = test::uniform_matrix<T>(cols + 5, rows + 1, 2);
  Matrix<T> dst = before;
  // Offsets of 1 and 2 scalars: neither block starts on a packet boundary.
  detail::transpose_into<Mode>(src.data() + 1 + 2 * src.rows(), src.rows(), rows, cols,
                               dst.data() + 2 + dst.rows(), dst.rows());
  Matrix<T> expected = before;
  auto block = expected.block(2, 1, cols, rows);
  if constexpr (Mode == detail::TransposeMode::Add)
    block += src.block(1, 2, rows, cols).transpose();
  else
    block = src.block(1, 2, rows, cols).transpose();
  CHECK(dst == expected);
}

template <typename T>
void check_shapes() {
  // Below one tile, whole tiles of every packet size up to 16, and ragged edges.
  for (Index rows : {1, 3, 16, 17, 40, 64})
    for (Index cols : {1, 8, 15, 32, 33}) {
      INFO(rows << " x " << cols);
      check_transpose<T, detail::TransposeMode::Assign>(rows, cols);
      check_transpose<T, detail::TransposeMode::Add>(rows, cols);
    }
}

}  // namespace

TEST_CASE("transpose_into copies and accumulates a transposed block exactly", "[core][transpose]") {
  SECTION("float") { check_shapes<float>(); }
  SECTION("double") { check_shapes<double>(); }
}
