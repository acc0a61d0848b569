#pragma once
/// \file
/// Asking the cache for a block of memory before a loop needs it.

#include <Eigen/Core>

#include "gradflow/config.hpp"

namespace gradflow::detail {

/// The most a step loop prefetches for its next step: half of a 48 KiB L1, so that the
/// prefetched block does not push out the current step's data. Larger blocks (LSTM M's
/// 128 KiB gate slab) were measured slower with the prefetch than without.
constexpr Index kMaxPrefetchBytes = 32 * 1024;

/// Prefetches the `count` scalars at `data` into the cache, one request per 64-byte line,
/// when they take at most kMaxPrefetchBytes; otherwise does nothing.
template <typename T>
void prefetch_block(const T* data, Index count) {
  constexpr Index kLine = 64;
  const Index bytes = count * Index(sizeof(T));
  if (bytes > kMaxPrefetchBytes) return;
  const char* bytes_begin = reinterpret_cast<const char*>(data);
  for (Index offset = 0; offset < bytes; offset += kLine)
    Eigen::internal::prefetch(bytes_begin + offset);
}

}  // namespace gradflow::detail
