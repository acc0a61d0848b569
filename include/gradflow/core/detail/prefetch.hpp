#pragma once
/// \file
/// Asking the cache for a block of memory before a loop needs it.

#include <Eigen/Core>

#include "gradflow/config.hpp"

namespace gradflow::detail {

/// Where prefetch_block() brings a block: L1 (and L2), or L2 alone.
enum class PrefetchTo { L1, L2 };

/// The most a step loop prefetches for its next step into L1: half of a 48 KiB L1, so that
/// the prefetched block does not push out the current step's data. Larger blocks (LSTM M's
/// 128 KiB gate slab) were measured slower with the prefetch than without.
constexpr Index kMaxPrefetchBytes = 32 * 1024;

/// The most prefetched into L2 alone: half of a 1 MiB L2. There LSTM M's 128 KiB slab pays
/// (see FusedRecurrence::prefetch_backward_step).
constexpr Index kMaxL2PrefetchBytes = 512 * 1024;

/// Prefetches the `count` scalars at `data` into the cache `To`, one request per 64-byte
/// line, when they take at most kMaxPrefetchBytes (L1) or kMaxL2PrefetchBytes (L2);
/// otherwise does nothing. Always inlined: GCC 12 takes a function that only prefetches for
/// one without effects and deletes calls to it that it has not inlined yet (the backward
/// step loop's first L2 prefetch vanished from the binary that way).
template <PrefetchTo To = PrefetchTo::L1, typename T>
EIGEN_ALWAYS_INLINE void prefetch_block(const T* data, Index count) {
  constexpr Index kLine = 64;
  constexpr Index kMaxBytes = To == PrefetchTo::L1 ? kMaxPrefetchBytes : kMaxL2PrefetchBytes;
  const Index bytes = count * Index(sizeof(T));
  if (bytes > kMaxBytes) return;
  const char* bytes_begin = reinterpret_cast<const char*>(data);
  for (Index offset = 0; offset < bytes; offset += kLine) {
    if constexpr (To == PrefetchTo::L1) {
      Eigen::internal::prefetch(bytes_begin + offset);
    } else {
#if defined(__GNUC__) || defined(__clang__)
      __builtin_prefetch(bytes_begin + offset, 0, 2);  // read, locality 2: prefetcht1 on x86
#endif
    }
  }
}

}  // namespace gradflow::detail
