#pragma once
/// \file
/// Matrices packed once for Eigen's GEMM micro-kernel, then multiplied many times: the
/// recurrent weight W_hh times a new state at every time step, W_ih times chunks of the
/// inputs (PackedLhs), chunks of the gate gradients times W_ih (PackedRhs); and the GEMMs of
/// whole sequences with packing buffers from the caller (gemm_add, gemm_add_shared).

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "gradflow/config.hpp"
#include "gradflow/core/detail/blas_gemm.hpp"
#include "gradflow/core/detail/parallel.hpp"

/// The narrowest per-step product the BLAS back-end gets (see PackedLhs::prefers_blas),
/// unless the BLAS is an AVX-512 OpenBLAS. 32 was measured on an AVX2 and an AVX-512
/// (Zen 4, OpenBLAS's Haswell kernel) EPYC; 16 was 3-7 % slower at S/1 on the latter.
#ifndef GRADFLOW_BLAS_MIN_COLUMNS
#define GRADFLOW_BLAS_MIN_COLUMNS 32
#endif

namespace gradflow::detail {

/// `n` scalars rounded up to whole 64-byte lines: packed blocks are read with aligned loads.
template <typename T>
Index padded(Index n) {
  constexpr Index per_line = Index(64 / sizeof(T));
  return (n + per_line - 1) / per_line * per_line;
}

/// The depth block (kc) at which the packed mr x kc panel of A fills half of an L1 of
/// `l1_bytes`: the rest is left to the kc x nr panel of the right-hand side and the result.
/// A multiple of 8, the depth Eigen's kernel unrolls.
inline Index depth_block_for_l1(Index l1_bytes, Index mr, Index scalar_bytes) {
  return std::max<Index>(l1_bytes / (2 * mr * scalar_bytes) / 8 * 8, 8);
}

/// The deepest depth block ProvidedBlocking and PackedLhs use in AVX-512 builds:
/// depth_block_for_l1() of this CPU's L1, 128 for float on a 48 KiB L1. Eigen 3.4 sizes kc
/// for AVX-512 as if L1 were 4 times its size (an adjustment its comment says lacks a
/// rationale), so on the Zen 5 (48 KiB L1) kc grew to 808 at LSTM M's dW shape: an A panel
/// of 155 KiB. Measured there, 1 thread, the four whole-sequence products of LSTM M and L
/// (layer_gemm/<cfg>/G4, alternating runs): 164-185 GFLOP/s with Eigen's kc, 180-200 with
/// kc capped at 128; 64-160 did as well, 256-384 did not. A whole step: 3-9 % faster at M
/// and L. Other instruction sets keep Eigen's kc (not measured).
template <typename T>
Index max_depth_block() {
#ifdef EIGEN_VECTORIZE_AVX512
  std::ptrdiff_t l1 = 0, l2 = 0, l3 = 0;
  Eigen::internal::manage_caching_sizes(Eigen::GetAction, &l1, &l2, &l3);
  return depth_block_for_l1(Index(l1), Index(Eigen::internal::gebp_traits<T, T>::mr),
                            Index(sizeof(T)));
#else
  return std::numeric_limits<Index>::max();
#endif
}

/// Packs a matrix cut into a grid of blocks, [outer / bo] x [inner / bi], stored one after
/// another (outer blocks first), each on whole lines: pack(o, m, i, n, block) packs the
/// block of rows/columns [o, o + m) by [i, i + n) at `block`. `parts` threads share the
/// blocks, a run each, when the matrix has kParallelPassMinSize scalars; the layout is
/// the same however many parts pack it.
template <typename T, typename Pack>
void pack_block_grid(Index outer, Index inner, Index bo, Index bi, T* storage, Index parts,
                     Pack&& pack) {
  const Index blocks = ((outer + bo - 1) / bo) * ((inner + bi - 1) / bi);
  if (outer * inner < kParallelPassMinSize) parts = 1;
  parts = std::max<Index>(1, std::min(parts, blocks));
  parallel_parts(parts, [&](Index p) {
    const Range mine = split(blocks, parts, p);
    T* block = storage;
    Index index = 0;
    for (Index o = 0; o < outer; o += bo) {
      const Index m = std::min(bo, outer - o);
      for (Index i = 0; i < inner; i += bi, ++index) {
        const Index n = std::min(bi, inner - i);
        if (index >= mine.begin && index < mine.begin + mine.count) pack(o, m, i, n, block);
        block += padded<T>(m * n);
      }
    }
  });
}

/// `res += A * rhs` for a fixed A of [rows x depth], with Eigen's own packing routines and
/// GEBP kernel, but A packed only once.
///
/// Why not `res.noalias() += A * rhs`: Eigen's product packs A again on every call (8 % of
/// an LSTM step at B=32, H=256) and takes its packing buffers from the heap once they exceed
/// EIGEN_STACK_ALLOCATION_LIMIT (128 KiB), which made the fused LSTM allocate 210 times per
/// step at that size. Here the packed A and the packed right-hand side live in memory the
/// caller owns (the tape arena), so a step allocates nothing. The arithmetic is Eigen's:
/// the same kernels, the same cache blocking (computeProductBlockingSizes).
///
/// `StorageOrder` is A's: ColMajor for W, RowMajor to use W^T without copying it.
/// Single-threaded: the per-step products are small, and their callers are the hot loops
/// whose other work is single-threaded too.
/// With the BLAS back-end (GRADFLOW_USE_BLAS), the products prefers_blas() picks call the
/// BLAS on A where it lies; the others keep Eigen's kernel on the packed A.
template <typename T, int StorageOrder>
class PackedLhs {
 public:
  /// The narrowest right-hand side multiply_add() hands to the BLAS (GRADFLOW_USE_BLAS);
  /// define GRADFLOW_BLAS_MIN_COLUMNS to change it (the crossover depends on the machine).
  static constexpr Index kBlasMinColumns = GRADFLOW_BLAS_MIN_COLUMNS;

  /// The rows and depth of the tiles A is cut into for OpenBLAS's small-matrix kernel.
  struct TileShape {
    Index rows = 0, depth = 0;
  };

  /// Floats of storage pack() needs for a [rows x depth] A multiplied by `cols` columns.
  static Index packed_size(Index rows, Index depth, Index cols) {
    const Blocking b = blocking(rows, depth, cols);
    Index size = 0;
    for (Index i2 = 0; i2 < rows; i2 += b.mc)
      for (Index k2 = 0; k2 < depth; k2 += b.kc)
        size += padded<T>(std::min(b.mc, rows - i2) * std::min(b.kc, depth - k2));
    return std::max(size, rows * depth);  // the small-kernel tiles (see pack) are dense
  }

  /// Floats of scratch multiply_add() needs for a [depth x cols] right-hand side.
  static Index rhs_buffer_size(Index rows, Index depth, Index cols) {
    const Blocking b = blocking(rows, depth, cols);
    Index size = 0;
    for (Index k2 = 0; k2 < depth; k2 += b.kc)
      size += padded<T>(std::min(b.kc, depth - k2) * std::min(b.nc, cols));
    return size;
  }

  /// Packs A (element (i, k) at a[i + k*stride] for ColMajor, a[i*stride + k] for RowMajor)
  /// into `storage` (packed_size() floats, 64-byte aligned), for right-hand sides of up to
  /// `cols` columns. `storage` must outlive every multiply_add(). `parts` threads share the
  /// work (parallel_parts), a run of blocks each, when A has kParallelPassMinSize scalars.
  ///
  /// With an AVX-512 OpenBLAS (GRADFLOW_USE_BLAS, float) A is laid out as small-kernel
  /// tiles instead of Eigen's panels; see small_kernel_tiles().
  void pack(const T* a, Index stride, Index rows, Index depth, Index cols, T* storage,
            Index parts = 1) {
    rows_ = rows;
    depth_ = depth;
    a_ = a;
    stride_ = stride;
    blocking_ = blocking(rows, depth, cols);
    packed_ = storage;
    tiles_ = TileShape{};
    if (std::is_same_v<T, float> && blas_has_small_sgemm_kernel())
      tiles_ = small_kernel_tiles(rows, depth, cols);
    if (tiled()) {
      pack_tiles(storage);
      return;
    }
    const LhsMapper lhs(a, stride);
    pack_block_grid(rows, depth, blocking_.mc, blocking_.kc, storage, parts,
                    [&](Index i2, Index mc, Index k2, Index kc, T* block) {
                      PackLhs()(block, lhs.getSubMapper(i2, k2), kc, mc);
                    });
  }

  /// res [rows x cols] (column stride res_stride) += A * rhs [depth x cols], rhs stored in
  /// `RhsOrder` with stride rhs_stride (RowMajor: the transpose of a column-major matrix,
  /// no copy). `rhs_buffer`: rhs_buffer_size() floats, 64-byte aligned.
  template <int RhsOrder = Eigen::ColMajor>
  void multiply_add(const T* rhs, Index rhs_stride, Index cols, T* res, Index res_stride,
                    T* rhs_buffer) const {
    if constexpr (kUseBlas) {
      if (tiled()) {
        multiply_add_tiles<RhsOrder>(rhs, rhs_stride, cols, res, res_stride);
        return;
      }
      if (prefers_blas(cols)) {
        blas_gemm_add<StorageOrder, RhsOrder>(rows_, cols, depth_, a_, stride_, rhs, rhs_stride,
                                              res, res_stride);
        return;
      }
    }
    using RhsMapper = Eigen::internal::const_blas_data_mapper<T, Index, RhsOrder>;
    using PackRhs = Eigen::internal::gemm_pack_rhs<T, Index, RhsMapper, Traits::nr, RhsOrder>;
    RhsMapper rhs_map(rhs, rhs_stride);
    ResMapper res_map(res, res_stride);
    PackRhs pack_rhs;
    Gebp gebp;
    for (Index j2 = 0; j2 < cols; j2 += blocking_.nc) {
      const Index nc = std::min(blocking_.nc, cols - j2);
      // Pack every depth block of this column panel once; every row block reuses them.
      T* rhs_block = rhs_buffer;
      for (Index k2 = 0; k2 < depth_; k2 += blocking_.kc) {
        const Index kc = std::min(blocking_.kc, depth_ - k2);
        pack_rhs(rhs_block, rhs_map.getSubMapper(k2, j2), kc, nc);
        rhs_block += padded<T>(kc * nc);
      }
      const T* block = packed_;
      for (Index i2 = 0; i2 < rows_; i2 += blocking_.mc) {
        const Index mc = std::min(blocking_.mc, rows_ - i2);
        rhs_block = rhs_buffer;
        for (Index k2 = 0; k2 < depth_; k2 += blocking_.kc) {
          const Index kc = std::min(blocking_.kc, depth_ - k2);
          gebp(res_map.getSubMapper(i2, j2), block, rhs_block, mc, kc, nc, T(1));
          block += padded<T>(mc * kc);
          rhs_block += padded<T>(kc * nc);
        }
      }
    }
  }

  /// Whether pack() has run.
  bool packed() const { return packed_ != nullptr; }
  Index rows() const { return rows_; }
  Index depth() const { return depth_; }

  /// Whether multiply_add() hands a product with `cols` right-hand columns to the BLAS as a
  /// whole (GRADFLOW_USE_BLAS builds without small-kernel tiles). The BLAS repacks A on
  /// every call; it is worth it where its kernel is measured faster even so. Per-step
  /// products on an AVX2 EPYC, 1 thread, GFLOP/s, packed Eigen vs Debian's OpenBLAS 0.3.21:
  /// [512x128][128x8] 52 vs 42, [128x128][128x4] 48 vs 32, [1024x256][256x16] 61 vs 55;
  /// [1024x256][256x32] 56 vs 64, [2048x512][512x64] 42 vs 62. Hence: from kBlasMinColumns
  /// columns on. An AVX-512 OpenBLAS gets tiles instead (small_kernel_tiles()), and where
  /// those do not fit, Eigen: its packed path lost to Eigen at every per-step shape on Zen 5
  /// ([1024x256][256x32] 93 vs 149, [2048x512][512x64] 133 vs 152).
  static bool prefers_blas(Index cols) {
    if (std::is_same_v<T, float> && blas_has_small_sgemm_kernel()) return false;
    return cols >= kBlasMinColumns;
  }

  /// Rows and depth of one tile (both 0: none). OpenBLAS's AVX-512 kernel sets (0.3.21)
  /// multiply products of at most 10^6 multiply-adds with a small-matrix kernel that packs
  /// neither operand. A per-step product is larger than that above S and LONG, so A is cut
  /// into tiles of at most 64 rows by 128 columns (halved in depth, down to 32, until a
  /// tile times `cols` columns fits), each stored densely: one sgemm call per tile then
  /// runs that kernel on contiguous memory, and A is still packed only once. Measured on
  /// Zen 5, 1 thread, GFLOP/s, W_hh h and W_hh^T dG at B and B/2 columns of every config
  /// and cell: Eigen's packed kernel 123-151, OpenBLAS's small kernel on the untiled A
  /// (where it applies: S and LONG) 124-203, tiles 192-213. 64 x 128 was the best of
  /// 16-256 rows by 32-1024 columns at the M and L shapes (tiles of 48 rows: 134-166;
  /// tiles cut from A in place, without the dense copy: 66-150).
  static TileShape small_kernel_tiles(Index rows, Index depth, Index cols) {
    constexpr double kMaxMultiplyAdds = 1e6;  // OpenBLAS's own limit
    const Index tile_rows = std::min<Index>(rows, 64);
    Index tile_depth = std::min<Index>(depth, 128);
    auto fits = [&] {
      return double(tile_rows) * double(tile_depth) * double(cols) <= kMaxMultiplyAdds;
    };
    while (!fits() && tile_depth > 32) tile_depth /= 2;
    if (!fits()) return TileShape{};
    return TileShape{tile_rows, tile_depth};
  }

  /// Whether pack() laid A out as small-kernel tiles.
  bool tiled() const { return tiles_.rows > 0; }

 private:
  using Traits = Eigen::internal::gebp_traits<T, T>;
  using LhsMapper = Eigen::internal::const_blas_data_mapper<T, Index, StorageOrder>;
  using ResMapper =
      Eigen::internal::blas_data_mapper<T, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
  using PackLhs =
      Eigen::internal::gemm_pack_lhs<T, Index, LhsMapper, Traits::mr, Traits::LhsProgress,
                                     typename Traits::LhsPacket4Packing, StorageOrder>;
  using Gebp =
      Eigen::internal::gebp_kernel<T, T, Index, ResMapper, Traits::mr, Traits::nr, false, false>;

  struct Blocking {
    Index kc, mc, nc;
  };

  static Blocking blocking(Index rows, Index depth, Index cols) {
    Index kc = depth, mc = rows, nc = std::max<Index>(cols, 1);
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(kc, mc, nc, Index(1));
    // kc at most max_depth_block(), as in ProvidedBlocking. Forward (A = W_hh): with Eigen's
    // kc (all of H) a 48-row panel of A fills the L1, and the result is a slab the input
    // projection wrote long before, so it comes from memory. Zen 5, 1 thread, W_hh h over 100
    // fresh slabs, each followed by a tanh pass: 162 -> 180 GFLOP/s at LSTM M, 177 -> 183 at
    // L. Whole steps (benchmarks/ab --lockstep, median of 30 step pairs): forward capped,
    // lstm 0.976 (M/1), 0.970 (L/1), gru 0.981 (L/1), others 0.97-1.01; the backward
    // (A = W_hh^T, kc 520-688 before) capped as well, on top: lstm 0.988 (M/1), 0.973 (L/1),
    // gru 0.986 (L/1), 2 threads 1.004-1.006.
    kc = std::min(kc, max_depth_block<T>());
    return {std::max<Index>(kc, 1), std::max<Index>(mc, 1), std::max<Index>(nc, 1)};
  }

  // Calls fn(i0, k0, m, k, offset) for each tile: A's rows [i0, i0 + m) by depth
  // [k0, k0 + k), stored densely (column-major) at `offset` floats into the packed storage.
  // Row blocks first, then depth: packing and multiplying both walk this one order.
  template <typename Fn>
  void for_each_tile(Fn&& fn) const {
    Index offset = 0;
    for (Index i0 = 0; i0 < rows_; i0 += tiles_.rows)
      for (Index k0 = 0; k0 < depth_; k0 += tiles_.depth) {
        const Index m = std::min(tiles_.rows, rows_ - i0), k = std::min(tiles_.depth, depth_ - k0);
        fn(i0, k0, m, k, offset);
        offset += m * k;
      }
  }

  void pack_tiles(T* storage) {
    using Stored = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, StorageOrder>;
    const Eigen::Map<const Stored, 0, Eigen::OuterStride<>> a(a_, rows_, depth_,
                                                              Eigen::OuterStride<>(stride_));
    for_each_tile([&](Index i0, Index k0, Index m, Index k, Index offset) {
      Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>>(storage + offset, m, k) =
          a.block(i0, k0, m, k);
    });
  }

  // One BLAS call per tile: res rows [i0, i0 + m) += tile * rhs rows [k0, k0 + k).
  template <int RhsOrder>
  void multiply_add_tiles(const T* rhs, Index rhs_stride, Index cols, T* res,
                          Index res_stride) const {
    for_each_tile([&](Index i0, Index k0, Index m, Index k, Index offset) {
      const T* rhs_rows = RhsOrder == Eigen::ColMajor ? rhs + k0 : rhs + k0 * rhs_stride;
      blas_gemm_add<Eigen::ColMajor, RhsOrder>(m, cols, k, packed_ + offset, m, rhs_rows,
                                               rhs_stride, res + i0, res_stride);
    });
  }

  Index rows_ = 0, depth_ = 0, stride_ = 0;
  const T* a_ = nullptr;  // A itself: what the BLAS back-end multiplies (wide products)
  Blocking blocking_{1, 1, 1};
  TileShape tiles_{};  // rows 0: Eigen's panels
  const T* packed_ = nullptr;
};

/// max_depth_block() for a product with a [rows x cols] result. Results smaller than
/// 128 x 128 keep Eigen's kc: each depth block is little work there for its fixed costs,
/// and the cap made S's [64 x 64] dW products 6-15 % slower (same binary, alternating runs).
template <typename T>
Index max_depth_block(Index rows, Index cols) {
  constexpr Index kMinResult = 128 * 128;
  if (rows * cols < kMinResult) return std::numeric_limits<Index>::max();
  return max_depth_block<T>();
}

/// Cache blocking for one GEMM whose packing buffers the caller provides, so that Eigen's
/// general_matrix_matrix_product allocates nothing (its own blocking object takes buffers
/// above 128 KiB from the heap). Eigen's block sizes, with kc at most max_depth_block(rows,
/// cols).
template <typename T>
class ProvidedBlocking : public Eigen::internal::level3_blocking<T, T> {
 public:
  ProvidedBlocking(Index rows, Index cols, Index depth) {
    this->m_kc = depth;
    this->m_mc = rows;
    this->m_nc = cols;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(this->m_kc, this->m_mc, this->m_nc,
                                                          Index(1));
    this->m_kc = std::min(this->m_kc, max_depth_block<T>(rows, cols));
  }
  /// Floats of buffer the product needs (64-byte aligned; one with the BLAS back-end).
  Index buffer_size() const { return buffer_size_for(this->m_kc, this->m_mc, this->m_nc); }
  /// Halves the row or column block (the one with the larger packed block first) until
  /// buffer_size() is at most `capacity`, or both are one micro-panel. A buffer sized for a
  /// deep product may not fit a shallow one: Eigen grows mc as kc shrinks (to fill L2).
  void fit(Index capacity) {
    using Traits = Eigen::internal::gebp_traits<T, T>;
    const Index mr = Traits::mr, nr = Traits::nr;
    while (buffer_size() > capacity && (this->m_mc > mr || this->m_nc > nr)) {
      Index& block = this->m_mc >= this->m_nc && this->m_mc > mr ? this->m_mc : this->m_nc;
      const Index step = &block == &this->m_mc ? mr : nr;
      block = std::max(step, block / 2 / step * step);
    }
  }
  /// At least buffer_size() of this product and of every product cut from it (fewer rows or
  /// columns): the size with Eigen's own block sizes, before the depth cap, since a part
  /// with a smaller result may keep Eigen's deeper kc (see max_depth_block(rows, cols)).
  static Index buffer_bound(Index rows, Index cols, Index depth) {
    Index kc = depth, mc = rows, nc = cols;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(kc, mc, nc, Index(1));
    return buffer_size_for(kc, mc, nc);
  }
  /// Floats of buffer for blocks of kc x mc (A's) and kc x nc (B's).
  static Index buffer_size_for(Index kc, Index mc, Index nc) {
    if constexpr (kUseBlas) return 1;
    return padded<T>(kc * mc) + padded<T>(kc * nc);
  }
  void use(T* buffer) {
    this->m_blockA = buffer;
    this->m_blockB = buffer + padded<T>(this->m_kc * this->m_mc);
  }
};

/// `res += lhs * B` for a fixed B of [depth x cols], stored in `StorageOrder`, with Eigen's
/// packing routines and GEBP kernel, B packed only once: the 2-thread backward's input
/// gradients dX = dG^T W_ih, a chunk of steps at a time, packed W_ih again for every chunk
/// (0.9-1.2 % of both threads' time at L/2 and M/2 by perf). Eigen's blocking for the rows
/// given to pack(); every multiply_add() takes row blocks of that many rows at most.
template <typename T, int StorageOrder>
class PackedRhs {
 public:
  /// Floats of storage pack() needs.
  static Index packed_size(Index rows, Index depth, Index cols) {
    const ProvidedBlocking<T> b(rows, cols, depth);
    Index size = 0;
    for (Index k2 = 0; k2 < depth; k2 += b.kc())
      for (Index j2 = 0; j2 < cols; j2 += b.nc())
        size += padded<T>(std::min(b.kc(), depth - k2) * std::min(b.nc(), cols - j2));
    return size;
  }

  /// Packs B (element (k, j) at b[k + j*stride] for ColMajor, b[k*stride + j] for RowMajor)
  /// into `storage` (packed_size() floats, 64-byte aligned), blocked for left-hand sides of
  /// `rows` rows; `parts` threads share the work, as in PackedLhs::pack.
  void pack(const T* b, Index stride, Index depth, Index cols, Index rows, T* storage,
            Index parts = 1) {
    const ProvidedBlocking<T> blocking(rows, cols, depth);
    kc_ = blocking.kc();
    mc_ = std::max<Index>(1, blocking.mc());  // Eigen's blocking: at most `rows`
    nc_ = blocking.nc();
    depth_ = depth;
    cols_ = cols;
    packed_ = storage;
    using RhsMapper = Eigen::internal::const_blas_data_mapper<T, Index, StorageOrder>;
    using PackRhs = Eigen::internal::gemm_pack_rhs<T, Index, RhsMapper, Traits::nr, StorageOrder>;
    const RhsMapper rhs(b, stride);
    pack_block_grid(depth, cols, kc_, nc_, storage, parts,
                    [&](Index k2, Index kc, Index j2, Index nc, T* block) {
                      PackRhs()(block, rhs.getSubMapper(k2, j2), kc, nc);
                    });
  }

  /// Whether pack() has run.
  bool packed() const { return packed_ != nullptr; }

  /// Floats of scratch multiply_add() needs for a block of the left-hand side.
  Index lhs_buffer_size() const { return padded<T>(mc_ * kc_); }

  /// res [rows x cols] (column stride res_stride) += lhs [rows x depth] * B, lhs stored in
  /// `LhsOrder` with stride lhs_stride (RowMajor: the transpose of a column-major matrix, no
  /// copy). `lhs_buffer`: lhs_buffer_size() floats, 64-byte aligned. `overwrite`: res =
  /// lhs * B instead, whatever res held (each row block is zeroed just before its product,
  /// while it is in cache).
  template <int LhsOrder>
  void multiply_add(const T* lhs, Index lhs_stride, Index rows, T* res, Index res_stride,
                    T* lhs_buffer, bool overwrite = false) const {
    namespace ei = Eigen::internal;
    using LhsMapper = ei::const_blas_data_mapper<T, Index, LhsOrder>;
    using ResMapper = ei::blas_data_mapper<T, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
    ei::gemm_pack_lhs<T, Index, LhsMapper, Traits::mr, Traits::LhsProgress,
                      typename Traits::LhsPacket4Packing, LhsOrder>
        pack_lhs;
    ei::gebp_kernel<T, T, Index, ResMapper, Traits::mr, Traits::nr, false, false> gebp;
    const LhsMapper a(lhs, lhs_stride);
    const ResMapper r(res, res_stride);
    for (Index i2 = 0; i2 < rows; i2 += mc_) {
      const Index mc = std::min(mc_, rows - i2);
      if (overwrite)
        Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>>(res + i2, mc, cols_,
                                                       Eigen::OuterStride<>(res_stride))
            .setZero();
      const T* block = packed_;
      for (Index k2 = 0; k2 < depth_; k2 += kc_) {
        const Index kc = std::min(kc_, depth_ - k2);
        pack_lhs(lhs_buffer, a.getSubMapper(i2, k2), kc, mc);
        for (Index j2 = 0; j2 < cols_; j2 += nc_) {
          const Index nc = std::min(nc_, cols_ - j2);
          gebp(r.getSubMapper(i2, j2), lhs_buffer, block, mc, kc, nc, T(1));
          block += padded<T>(kc * nc);
        }
      }
    }
  }

 private:
  using Traits = Eigen::internal::gebp_traits<T, T>;
  Index kc_ = 1, mc_ = 1, nc_ = 1, depth_ = 0, cols_ = 0;
  const T* packed_ = nullptr;
};

/// res [rows x cols] += lhs [rows x depth] * rhs [depth x cols], single-threaded, with
/// Eigen's GEMM and packing buffers from `scratch(n)` (a function returning n aligned floats,
/// e.g. the tape's scratch), which asks for at most `capacity` floats (see
/// ProvidedBlocking::fit). `LhsOrder`/`RhsOrder` say how lhs/rhs are stored with their
/// strides, so transposes cost nothing. With GRADFLOW_USE_BLAS: the BLAS's GEMM, no scratch.
template <int LhsOrder, int RhsOrder, typename T, typename Scratch>
void gemm_add(Index rows, Index cols, Index depth, const T* lhs, Index lhs_stride, const T* rhs,
              Index rhs_stride, T* res, Index res_stride, Scratch&& scratch,
              Index capacity = std::numeric_limits<Index>::max()) {
  if (rows == 0 || cols == 0 || depth == 0) return;
  if constexpr (kUseBlas) {
    blas_gemm_add<LhsOrder, RhsOrder>(rows, cols, depth, lhs, lhs_stride, rhs, rhs_stride, res,
                                      res_stride);
    return;
  }
  ProvidedBlocking<T> blocking(rows, cols, depth);
  blocking.fit(capacity);
  blocking.use(scratch(blocking.buffer_size()));
  Eigen::internal::general_matrix_matrix_product<Index, T, LhsOrder, false, T, RhsOrder, false,
                                                 Eigen::ColMajor, 1>::run(rows, cols, depth, lhs,
                                                                          lhs_stride, rhs,
                                                                          rhs_stride, res, 1,
                                                                          res_stride, T(1),
                                                                          blocking);
}

/// One product of gemm_add_shared(): res [rows x cols] (column stride res_stride) +=
/// lhs * rhs [depth x cols], rhs stored in `Order` with stride rhs_stride. cols 0: none.
template <typename T, int Order>
struct RhsAndResult {
  Index cols;
  const T* rhs;
  Index rhs_stride;
  T* res;
  Index res_stride;
};

/// A left-hand side of gemm_add_shared(): lhs [rows x depth], column-major with stride
/// lhs_stride, which adds lhs * rhs to rows [res_row, res_row + rows) of the products it
/// takes part in (`first`, `second`).
template <typename T>
struct SharedLhs {
  const T* lhs;
  Index lhs_stride;
  Index rows;
  Index res_row;
  bool first, second;
};

namespace shared_gemm {
// Floats of `kc` rows of a right-hand side of `cols` columns packed in column panels of at
// most nc, each panel on whole lines (see padded()): what pack_rhs_rows() writes.
template <typename T>
Index rhs_rows_size(Index kc, Index nc, Index cols) {
  const Index whole = cols / nc, rest = cols - whole * nc;
  return whole * padded<T>(kc * nc) + padded<T>(kc * rest);
}

// Floats of gemm_add_shared()'s buffer: an lhs block of kc x mc, and both right-hand sides'
// kc rows whole (all `depth` rows, depth block after depth block, if `all_depth`), so that
// buffers cut from one allocation one after the other stay aligned.
template <typename T>
Index buffer_size(Index kc, Index mc, Index nc, Index cols1, Index cols2, Index depth,
                  bool all_depth) {
  Index size = padded<T>(kc * mc);
  for (Index k2 = 0; k2 < (all_depth ? depth : 1); k2 += kc) {
    const Index k = all_depth ? std::min(kc, depth - k2) : kc;
    size += rhs_rows_size<T>(k, nc, cols1) + rhs_rows_size<T>(k, nc, cols2);
  }
  return size;
}

// Packs kc rows (from k2) of p.rhs, in column panels of at most nc, at `block`; returns the
// end of what it wrote.
template <typename T, int Order>
T* pack_rhs_rows(const RhsAndResult<T, Order>& p, Index k2, Index kc, Index nc, T* block) {
  namespace ei = Eigen::internal;
  using RhsMapper = ei::const_blas_data_mapper<T, Index, Order>;
  ei::gemm_pack_rhs<T, Index, RhsMapper, ei::gebp_traits<T, T>::nr, Order> pack_rhs;
  const RhsMapper rhs(p.rhs, p.rhs_stride);
  for (Index j2 = 0; j2 < p.cols; j2 += nc) {
    const Index n = std::min(nc, p.cols - j2);
    pack_rhs(block, rhs.getSubMapper(k2, j2), kc, n);
    block += padded<T>(kc * n);
  }
  return block;
}

// p.res rows [row, row + m) += the packed lhs block [m x kc] times the packed rhs panels.
template <typename T, int Order>
void multiply_panels(const RhsAndResult<T, Order>& p, Index row, Index m, Index kc, Index nc,
                     const T* block_a, const T* block_b) {
  namespace ei = Eigen::internal;
  using Traits = ei::gebp_traits<T, T>;
  using ResMapper = ei::blas_data_mapper<T, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
  ei::gebp_kernel<T, T, Index, ResMapper, Traits::mr, Traits::nr, false, false> gebp;
  const ResMapper res(p.res, p.res_stride);
  for (Index j2 = 0; j2 < p.cols; j2 += nc) {
    const Index n = std::min(nc, p.cols - j2);
    gebp(res.getSubMapper(row, j2), block_a, block_b, m, kc, n, T(1));
    block_b += padded<T>(kc * n);
  }
}
}  // namespace shared_gemm

/// Eigen's blocking of gemm_add_shared() for products of up to `rows` rows, `cols1` and
/// `cols2` columns and `depth`, fitted to `capacity` floats of buffer: row blocks outer if
/// they pay and fit (see rows_outer), else mc halved (down to one micro-panel), then kc,
/// until it fits.
template <typename T>
struct SharedBlocking {
  Index kc, mc, nc, cols1, cols2, depth;
  /// Whether gemm_add_shared() runs row blocks of kRowsOuterBlock rows outermost, each
  /// through every depth block, with both right-hand sides packed whole first (depth x
  /// (cols1 + cols2) floats of buffer): when a piece's results reach kRowsOuterMinResultBytes.
  /// Depth blocks outermost, every depth block streams the whole result through the cache;
  /// the weight gradients of LSTM L ([2048 x 1024] of results, 8 MiB) ran at 163 GFLOP/s that
  /// way, 188 row blocks outer (Zen 5, 1 thread, 3200 deep, medians of 40; one piece of
  /// [1536 x 1024], 168 -> 186; [1024 x 1024], 4 MiB, 174 -> 184). Not below: at 1-2 MiB
  /// (RNN L, LSTM and GRU M) it measured 1-2 % slower, and GRU L's pieces (4 MiB, 1 MiB, 1
  /// MiB) 196 -> 191. Row blocks of 384-768 rows did best there, 96 worst; on stop 33's VM
  /// (lscpu: 32 MiB of L3, where Eigen reads 384 MiB), 768 beat 384 (ab --lockstep new /
  /// old, 30 pairs x 2: lstm L/1 0.982, L/2 1.001), and 192 (1.019) and 1024 (L/2 1.020
  /// against 768) did not. Later, with -funroll-loops, results of exactly 4 MiB (GRU L's
  /// r,z rows, each thread's half of LSTM L's dW after the 2-thread loop) did pay, whole
  /// steps against the threshold above 4 MiB (ab --lockstep, 30 pairs over 3 restarts): gru L/1
  /// 0.962-0.973, lstm L/2 0.969-0.995, gru L/2 0.991-0.995. At 2 MiB (LSTM M, RNN L) still
  /// not: lstm M/1 1.015, others 0.999-1.003.
  bool rows_outer = false;
  static constexpr Index kRowsOuterMinResultBytes = Index(4) << 20;
  static constexpr Index kRowsOuterBlock = 768;

  SharedBlocking(Index rows, Index cols1_, Index cols2_, Index depth_,
                 Index capacity = std::numeric_limits<Index>::max())
      : cols1(cols1_), cols2(cols2_), depth(depth_) {
    const ProvidedBlocking<T> b(rows, cols1 + cols2, depth);
    kc = b.kc();
    mc = std::min(rows, b.mc());
    nc = b.nc();
    if (prefers_rows_outer(rows, cols1, cols2, depth, kc)) {
      const Index depth_outer_mc = mc;
      mc = std::min(rows, kRowsOuterBlock);
      rows_outer = true;
      if (size() <= capacity) return;
      rows_outer = false;  // does not fit: depth blocks outermost, fitted below
      mc = depth_outer_mc;
    }
    const Index mr = Eigen::internal::gebp_traits<T, T>::mr;
    while (size() > capacity && (mc > mr || kc > 8)) {
      if (mc > mr)
        mc = std::max(mr, mc / 2 / mr * mr);
      else
        kc = std::max<Index>(8, kc / 2 / 8 * 8);
    }
  }
  /// Floats of buffer gemm_add_shared() takes with these blocks.
  Index size() const {
    if constexpr (kUseBlas) return 1;
    return shared_gemm::buffer_size<T>(kc, mc, nc, cols1, cols2, depth, rows_outer);
  }
  /// Whether row blocks outermost pay for a result of rows x (cols1 + cols2) (rows_outer).
  static bool prefers_rows_outer(Index rows, Index cols1, Index cols2, Index depth, Index kc) {
    return depth > kc && rows * (cols1 + cols2) * Index(sizeof(T)) >= kRowsOuterMinResultBytes;
  }
  /// At least size() of this shape's blocking and of every product cut from it (fewer rows
  /// or less depth), as ProvidedBlocking::buffer_bound: with Eigen's kc, before the depth
  /// cap. With `rows_outer` false, the bound of blockings that keep depth blocks outermost
  /// (a smaller capacity makes SharedBlocking fall back to those).
  static Index bound(Index rows, Index cols1, Index cols2, Index depth, bool rows_outer = true) {
    if constexpr (kUseBlas) return 1;
    Index kc = depth, mc = rows, nc = cols1 + cols2;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(kc, mc, nc, Index(1));
    Index size =
        shared_gemm::buffer_size<T>(kc, std::min(rows, mc), nc, cols1, cols2, depth, false);
    const SharedBlocking outer(rows, cols1, cols2, depth);
    if (rows_outer && outer.rows_outer) size = std::max(size, outer.size());
    return size;
  }
};

/// Several products of the same depth that share two right-hand sides: for each lhs piece,
/// first.res += lhs * first.rhs and/or second.res += lhs * second.rhs (see SharedLhs), on
/// this thread, with Eigen's packing routines and kernel. Every operand block is packed once
/// however many products read it: per depth block, both right-hand sides are packed whole,
/// then each piece a row block at a time (or, for large results, both right-hand sides
/// packed whole for every depth block first, then each row block through all of them: see
/// SharedBlocking::rows_outer). The fused recurrent layers' weight gradients take
/// dW_ih = dG X and dW_hh = dG H_prev^T this way, GRU's n rows of dW_hh from dGn instead of
/// dG (so X and H_prev are packed once for GRU too, and dG once for both products). GRU's
/// n rows took two more products before, which packed X and H_prev again (1.1 % of gru
/// M/1 by perf); ab --lockstep new / old, Zen 5, 60 pairs x 6: gru M/1 0.989, M/2 0.990,
/// LONG/1 0.981, L/1 1.003, L/2 0.997; LSTM and RNN, whose products are the same as
/// before, 0.996-1.003.
/// Buffers from `scratch(n)` as gemm_add(), fitted to `capacity` (see SharedBlocking).
template <typename T, int Order1, int Order2, typename Scratch>
void gemm_add_shared(Index depth, const SharedLhs<T>* pieces, Index piece_count,
                     const RhsAndResult<T, Order1>& first, const RhsAndResult<T, Order2>& second,
                     Scratch&& scratch, Index capacity = std::numeric_limits<Index>::max()) {
  if (depth == 0) return;
  auto takes_first = [&](const SharedLhs<T>& p) { return p.first && first.cols > 0; };
  auto takes_second = [&](const SharedLhs<T>& p) { return p.second && second.cols > 0; };
  if constexpr (kUseBlas) {
    for (Index i = 0; i < piece_count; ++i) {
      const SharedLhs<T>& p = pieces[i];
      if (p.rows == 0) continue;
      if (takes_first(p))
        blas_gemm_add<Eigen::ColMajor, Order1>(p.rows, first.cols, depth, p.lhs, p.lhs_stride,
                                               first.rhs, first.rhs_stride, first.res + p.res_row,
                                               first.res_stride);
      if (takes_second(p))
        blas_gemm_add<Eigen::ColMajor, Order2>(p.rows, second.cols, depth, p.lhs, p.lhs_stride,
                                               second.rhs, second.rhs_stride,
                                               second.res + p.res_row, second.res_stride);
    }
    return;
  }
  namespace ei = Eigen::internal;
  using Traits = ei::gebp_traits<T, T>;
  using LhsMapper = ei::const_blas_data_mapper<T, Index, Eigen::ColMajor>;
  ei::gemm_pack_lhs<T, Index, LhsMapper, Traits::mr, Traits::LhsProgress,
                    typename Traits::LhsPacket4Packing, Eigen::ColMajor>
      pack_lhs;
  Index rows = 0;
  bool any_first = false, any_second = false;  // a right-hand side no piece takes is not packed
  for (Index i = 0; i < piece_count; ++i) {
    rows = std::max(rows, pieces[i].rows);
    any_first = any_first || (pieces[i].rows > 0 && takes_first(pieces[i]));
    any_second = any_second || (pieces[i].rows > 0 && takes_second(pieces[i]));
  }
  if (rows == 0 || !(any_first || any_second)) return;
  const SharedBlocking<T> blocking(rows, first.cols, second.cols, depth, capacity);
  const Index kc = blocking.kc, mc = blocking.mc, nc = blocking.nc;
  T* block_a = scratch(blocking.size());
  T* block_b = block_a + padded<T>(kc * mc);
  // Packs both right-hand sides' rows [k2, k2 + k) at `block`; returns where the second
  // starts and where the next block goes.
  auto pack_rhs = [&](Index k2, Index k, T* block) {
    T* second_block = any_first ? shared_gemm::pack_rhs_rows(first, k2, k, nc, block) : block;
    T* end =
        any_second ? shared_gemm::pack_rhs_rows(second, k2, k, nc, second_block) : second_block;
    return std::pair<T*, T*>(second_block, end);
  };
  // Rows [i2, i2 + m) of piece p through depth block [k2, k2 + k).
  auto multiply = [&](const SharedLhs<T>& p, Index i2, Index m, Index k2, Index k,
                      const T* block_b1, const T* block_b2) {
    pack_lhs(block_a, LhsMapper(p.lhs, p.lhs_stride).getSubMapper(i2, k2), k, m);
    if (takes_first(p))
      shared_gemm::multiply_panels(first, p.res_row + i2, m, k, nc, block_a, block_b1);
    if (takes_second(p))
      shared_gemm::multiply_panels(second, p.res_row + i2, m, k, nc, block_a, block_b2);
  };
  if (blocking.rows_outer) {
    // Both right-hand sides packed whole, then each row block through every depth block.
    T* block = block_b;
    for (Index k2 = 0; k2 < depth; k2 += kc)
      block = pack_rhs(k2, std::min(kc, depth - k2), block).second;
    for (Index i = 0; i < piece_count; ++i) {
      const SharedLhs<T>& p = pieces[i];
      if (!takes_first(p) && !takes_second(p)) continue;
      for (Index i2 = 0; i2 < p.rows; i2 += mc) {
        const T* block_b1 = block_b;
        for (Index k2 = 0; k2 < depth; k2 += kc) {
          const Index k = std::min(kc, depth - k2);
          const T* block_b2 =
              block_b1 + (any_first ? shared_gemm::rhs_rows_size<T>(k, nc, first.cols) : 0);
          multiply(p, i2, std::min(mc, p.rows - i2), k2, k, block_b1, block_b2);
          block_b1 =
              block_b2 + (any_second ? shared_gemm::rhs_rows_size<T>(k, nc, second.cols) : 0);
        }
      }
    }
    return;
  }
  for (Index k2 = 0; k2 < depth; k2 += kc) {
    const Index k = std::min(kc, depth - k2);
    const T* block_b2 = pack_rhs(k2, k, block_b).first;
    for (Index i = 0; i < piece_count; ++i) {
      const SharedLhs<T>& p = pieces[i];
      if (!takes_first(p) && !takes_second(p)) continue;
      for (Index i2 = 0; i2 < p.rows; i2 += mc)
        multiply(p, i2, std::min(mc, p.rows - i2), k2, k, block_b, block_b2);
    }
  }
}

}  // namespace gradflow::detail
