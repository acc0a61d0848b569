#pragma once
/// \file
/// Heap allocation counters for the benchmarks (defined in alloc_counter.cpp).
///
/// The benchmark binaries replace the global operator new and interpose the C allocator
/// (malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign), so the counters
/// see every allocation: gradflow's own, Eigen's GEMM blocking buffers (std::malloc),
/// the C++ runtime's and OpenMP's.

#include <cstdint>

namespace gradflow::bench {

/// Calls of any global operator new since the program started.
std::uint64_t operator_new_count();
/// Calls of the C allocator (which operator new also goes through).
std::uint64_t malloc_count();

}  // namespace gradflow::bench
