#pragma once
/// \file
/// Monotonic byte arena behind the tape: values, gradients and op state live here.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace gradflow::detail {

/// Bump allocator whose memory is reused after reset().
///
/// Allocations never move, so views into the arena stay valid until reset().
/// When a step needs more than the current block, a new block is chained; the next
/// reset() merges all blocks into one block of the total size, so from the second
/// step on a training loop of fixed shape allocates nothing.
///
/// Blocks of kHugePage bytes or more start on a kHugePage boundary, are whole huge pages
/// long, and on Linux come from a fresh mapping advised MADV_HUGEPAGE, so that transparent
/// huge pages back them where the system allows it (the Zen 5 VM's kernel is in `madvise`
/// mode, which leaves all other memory on 4 KiB pages). The recurrent layers' buffers are
/// [G*H x T*B] and more, walked a few columns at a time with a column stride of 8 KiB at
/// LSTM L: a 4 KiB page per column, more pages than the first-level TLB holds. ab
/// --lockstep new / old, Zen 5, 40 pairs over 8 restarts: lstm M/1 0.978, lstm LONG/1 0.972,
/// gru L/1 0.991, L/1 and L/2 0.998-1.006 (in a noisier hour, 16-pair runs gave L/2
/// 0.957-1.056). Peak memory of a LONG/1 step (benchmarks/compare) grew by the rounding to
/// whole huge pages: RNN 35.0 MiB against 32.9, LSTM 53.9 against 50.5, GRU 53.6 against
/// 49.9 (oneDNN: 49.6, 84.3, 73.9). Parameters' own gradients (Eigen matrices, outside the
/// arena) on huge pages as well added nothing beyond noise (0.993-1.000).
class Arena {
 public:
  static constexpr std::size_t kAlignment = 64;  // one cache line, enough for AVX-512 loads
  static constexpr std::size_t kHugePage = std::size_t(2) << 20;  // x86-64's 2 MiB pages

  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  Arena(Arena&&) noexcept = default;
  Arena& operator=(Arena&&) noexcept = default;

  /// Returns `bytes` bytes aligned to `alignment` (a power of two up to kAlignment).
  void* allocate(std::size_t bytes, std::size_t alignment = kAlignment) {
    if (bytes == 0) bytes = 1;
    if (!blocks_.empty()) {
      Block& b = blocks_.back();
      std::size_t start = align_up(used_, alignment);
      if (start + bytes <= b.size()) {
        used_ = start + bytes;
        return b.data.get() + start;
      }
    }
    std::size_t want = bytes + kAlignment;
    std::size_t grow = blocks_.empty() ? kInitialBlock : blocks_.back().size() * 2;
    add_block(want > grow ? want : grow);
    used_ = bytes;
    return blocks_.back().data.get();
  }

  /// Typed, uninitialised array of n elements.
  template <typename T>
  T* allocate_array(std::size_t n) {
    return static_cast<T*>(
        allocate(n * sizeof(T), alignof(T) > kAlignment ? alignof(T) : kAlignment));
  }

  /// Forgets every allocation; keeps (and merges) the memory for the next step.
  void reset() {
    if (blocks_.size() > 1) {
      std::size_t total = 0;
      for (const Block& b : blocks_) total += b.size();
      blocks_.clear();
      add_block(total);
    }
    used_ = 0;
  }

  /// Bytes reserved from the system (for memory reports).
  std::size_t capacity() const {
    std::size_t total = 0;
    for (const Block& b : blocks_) total += b.size();
    return total;
  }

  /// Bytes handed out since the last reset (approximate when several blocks are chained).
  std::size_t used() const {
    std::size_t total = used_;
    for (std::size_t i = 0; i + 1 < blocks_.size(); ++i) total += blocks_[i].size();
    return total;
  }

 private:
  static constexpr std::size_t kInitialBlock = 1 << 16;

  // Frees a block the way add_block() got it.
  struct BlockFree {
    std::size_t bytes = 0;
    std::size_t alignment = kAlignment;
    bool mapped = false;  // from map_huge_pages()
    void operator()(std::byte* p) const {
#if defined(__linux__)
      if (mapped) {
        munmap(p, bytes);
        return;
      }
#endif
      ::operator delete[](p, std::align_val_t(alignment));
    }
  };
  struct Block {
    std::unique_ptr<std::byte[], BlockFree> data;
    std::size_t size() const { return data.get_deleter().bytes; }  // the deleter needs it too
  };

  static std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) & ~(a - 1); }

#if defined(__linux__)
  // `bytes` (whole huge pages) of a fresh anonymous mapping, from a huge-page boundary,
  // advised MADV_HUGEPAGE before anything touches it; nullptr if the system refuses. Not
  // from operator new: malloc hands out memory it recycles, whose pages may already be
  // there as 4 KiB pages, and the advice only changes how later page faults are served.
  static std::byte* map_huge_pages(std::size_t bytes) {
    const std::size_t span = bytes + kHugePage;  // room to start on a boundary
    void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const auto begin = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t start = align_up(begin, kHugePage), end = start + bytes;
    if (start > begin) munmap(raw, start - begin);
    if (begin + span > end) munmap(reinterpret_cast<void*>(end), begin + span - end);
    auto* p = reinterpret_cast<std::byte*>(start);
#if defined(MADV_HUGEPAGE)
    madvise(p, bytes, MADV_HUGEPAGE);  // advice: without huge pages, 4 KiB pages serve
#endif
    return p;
  }
#endif

  void add_block(std::size_t size) {
    const std::size_t alignment = size >= kHugePage ? kHugePage : kAlignment;
    size = align_up(size, alignment);
    BlockFree free_block{size, alignment, false};
    std::byte* p = nullptr;
#if defined(__linux__)
    if (alignment == kHugePage) {
      p = map_huge_pages(size);
      free_block.mapped = p != nullptr;
    }
#endif
    if (p == nullptr)
      p = static_cast<std::byte*>(::operator new[](size, std::align_val_t(alignment)));
    blocks_.push_back(Block{std::unique_ptr<std::byte[], BlockFree>(p, free_block)});
  }

  std::vector<Block> blocks_;
  std::size_t used_ = 0;
};

}  // namespace gradflow::detail
