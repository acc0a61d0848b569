#pragma once
/// \file
/// Splitting work into parts run on OpenMP threads: the pool Eigen's own parallel products
/// use, so gradflow never adds a second one.

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <exception>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "gradflow/config.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradflow::detail {

/// Tells the CPU that the calling thread is spin-waiting (x86's pause), which frees the
/// core's resources for a sibling thread; nothing elsewhere.
inline void spin_pause() {
#if defined(__SSE2__)
  _mm_pause();
#endif
}

/// Sets `flag` (release) when it goes out of scope, however the scope ends: a thread that
/// waits for a partner's flag is released even when the partner throws.
struct SetOnExit {
  std::atomic<bool>& flag;
  ~SetOnExit() { flag.store(true, std::memory_order_release); }
};

/// Spins until `counter` reaches `target` (returns true) or until `done` is set with the
/// counter still short of it (false). Both are published with release stores; `done` is
/// read first, so a count published before `done` was set is seen.
inline bool wait_for_count(const std::atomic<Index>& counter, Index target,
                           const std::atomic<bool>& done) {
  for (;;) {
    const bool finished = done.load(std::memory_order_acquire);
    if (counter.load(std::memory_order_acquire) >= target) return true;
    if (finished) return false;
    spin_pause();
  }
}

/// The threads gradflow's own parallel loops use: Eigen::nbThreads(), i.e. 1 unless the
/// program is compiled with OpenMP (then OMP_NUM_THREADS or Eigen::setNbThreads decides).
inline Index worker_threads() { return std::max<Index>(1, Eigen::nbThreads()); }

/// A contiguous range [begin, begin + count).
struct Range {
  Index begin, count;
};

/// Part `part` of [0, n) cut into `parts` ranges whose lengths differ by at most `align`;
/// inner boundaries fall on multiples of `align` (a SIMD width, so no part starts mid-packet).
inline Range split(Index n, Index parts, Index part, Index align = 1) {
  const Index blocks = (n + align - 1) / align;
  const Index first = std::min(n, blocks * part / parts * align);
  const Index last = std::min(n, blocks * (part + 1) / parts * align);
  return {first, last - first};
}

/// Runs body(p) for every p in [0, parts), one part per OpenMP thread (in order on the
/// calling thread without OpenMP, inside another parallel region, or when parts is 1).
/// The first exception a part throws is rethrown here once every part has finished.
template <typename Body>
void parallel_parts(Index parts, Body&& body) {
#ifdef _OPENMP
  if (parts > 1 && !omp_in_parallel()) {
    std::exception_ptr error;
    // A plain parallel region dealing parts out by thread number, not `omp for`: LLVM's
    // libomp (clang's OpenMP) mallocs in every worksharing loop's set-up, 16-24 heap
    // allocations per 2-thread training step; GCC's libgomp does not.
#pragma omp parallel num_threads(int(parts))
    {
      const Index team = omp_get_num_threads();
      for (Index p = omp_get_thread_num(); p < parts; p += team) {
        try {
          body(p);
        } catch (...) {
#pragma omp critical(gradflow_parallel_parts_error)
          if (!error) error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  for (Index p = 0; p < parts; ++p) body(p);
}

/// Below this many scalars a pass over memory stays on the calling thread: waking the
/// second thread costs a few microseconds, a pass over 1 MB about 50.
inline constexpr Index kParallelPassMinSize = Index(1) << 18;

/// Runs body(begin, count) over the columns [0, cols) of a rows x cols matrix, cut into
/// worker_threads() ranges when the matrix holds at least kParallelPassMinSize scalars
/// (one range otherwise). For the tape's passes over whole values and gradients (copying an
/// input, zeroing or seeding a gradient): on one thread they left the other idle for 9 % of
/// an RNN L step at 2 threads.
template <typename Body>
void parallel_column_ranges(Index rows, Index cols, Body&& body) {
  const Index parts = rows * cols >= kParallelPassMinSize ? std::min(worker_threads(), cols) : 1;
  parallel_parts(parts, [&](Index p) {
    const Range r = split(cols, parts, p);
    if (r.count > 0) body(r.begin, r.count);
  });
}

}  // namespace gradflow::detail
