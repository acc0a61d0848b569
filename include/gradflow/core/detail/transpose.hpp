#pragma once
/// \file
/// A transposed copy (or accumulation) between two column-major blocks, in tiles of Eigen's
/// packet size.

#include <Eigen/Core>

#include "gradflow/config.hpp"

// Eigen's packet types are vector types (e.g. __m512), whose attributes GCC warns it drops
// when they are template arguments; Eigen silences the same warning in its own headers.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#endif

namespace gradflow::detail {

/// How transpose_into() combines the transposed source with the destination.
enum class TransposeMode { Assign, Add };

/// dst = src^T (Assign) or dst += src^T (Add), where src is [rows x cols] with column stride
/// src_stride and dst is [cols x rows] with column stride dst_stride, both column-major.
///
/// Why not `dst = src.transpose()`: Eigen 3.4 copies a transposed dynamic block one scalar
/// at a time. The fused recurrent layers transpose every step's output into the layer's
/// [(T*B) x H] value and its gradient back; at bptt/rnn_tanh/L/1 those scalar loops were
/// 5.7 % of the step (perf, Zen 5, AVX-512). Here whole P x P tiles (P = the packet size:
/// 16 floats under AVX-512) go through Eigen's own register transpose (ptranspose); only the
/// edges left over take Eigen's scalar path. The tiles take 2.6 % of that step, and the
/// step is 1-10 % faster at rnn_tanh M and L (benchmarks/ab, 5 rounds).
template <TransposeMode Mode, typename T>
void transpose_into(const T* src, Index src_stride, Index rows, Index cols, T* dst,
                    Index dst_stride) {
  using Packet = typename Eigen::internal::packet_traits<T>::type;
  constexpr Index P = Eigen::internal::unpacket_traits<Packet>::size;
  const Index tiled_rows = rows / P * P, tiled_cols = cols / P * P;
  if constexpr (P > 1) {
    namespace ei = Eigen::internal;
    for (Index j = 0; j < tiled_cols; j += P) {
      for (Index i = 0; i < tiled_rows; i += P) {
        ei::PacketBlock<Packet, int(P)> tile;
        for (Index k = 0; k < P; ++k)
          tile.packet[k] = ei::ploadu<Packet>(src + i + (j + k) * src_stride);
        ei::ptranspose(tile);  // packet k: src row i + k, columns j .. j + P
        for (Index k = 0; k < P; ++k) {
          T* out = dst + j + (i + k) * dst_stride;
          if constexpr (Mode == TransposeMode::Add)
            ei::pstoreu(out, ei::padd(ei::ploadu<Packet>(out), tile.packet[k]));
          else
            ei::pstoreu(out, tile.packet[k]);
        }
      }
    }
  }
  using Source = Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>>;
  using Destination = Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>>;
  const Source s(src, rows, cols, Eigen::OuterStride<>(src_stride));
  Destination d(dst, cols, rows, Eigen::OuterStride<>(dst_stride));
  // The edges: src's last rows (all columns), then its last columns of the tiled rows.
  auto rest_rows = d.rightCols(rows - tiled_rows);
  auto rest_cols = d.bottomLeftCorner(cols - tiled_cols, tiled_rows);
  if constexpr (Mode == TransposeMode::Add) {
    rest_rows += s.bottomRows(rows - tiled_rows).transpose();
    rest_cols += s.topRightCorner(tiled_rows, cols - tiled_cols).transpose();
  } else {
    rest_rows = s.bottomRows(rows - tiled_rows).transpose();
    rest_cols = s.topRightCorner(tiled_rows, cols - tiled_cols).transpose();
  }
}

}  // namespace gradflow::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
