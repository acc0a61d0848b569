#pragma once
/// \file
/// Monotonic byte arena behind the tape: values, gradients and op state live here.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

namespace gradflow::detail {

/// Bump allocator whose memory is reused after reset().
///
/// Allocations never move, so views into the arena stay valid until reset().
/// When a step needs more than the current block, a new block is chained; the next
/// reset() merges all blocks into one block of the total size, so from the second
/// step on a training loop of fixed shape allocates nothing.
class Arena {
 public:
  static constexpr std::size_t kAlignment = 64;  // one cache line, enough for AVX-512 loads

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
      if (start + bytes <= b.size) {
        used_ = start + bytes;
        return b.data.get() + start;
      }
    }
    std::size_t want = bytes + kAlignment;
    std::size_t grow = blocks_.empty() ? kInitialBlock : blocks_.back().size * 2;
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
      for (const Block& b : blocks_) total += b.size;
      blocks_.clear();
      add_block(total);
    }
    used_ = 0;
  }

  /// Bytes reserved from the system (for memory reports).
  std::size_t capacity() const {
    std::size_t total = 0;
    for (const Block& b : blocks_) total += b.size;
    return total;
  }

  /// Bytes handed out since the last reset (approximate when several blocks are chained).
  std::size_t used() const {
    std::size_t total = used_;
    for (std::size_t i = 0; i + 1 < blocks_.size(); ++i) total += blocks_[i].size;
    return total;
  }

 private:
  static constexpr std::size_t kInitialBlock = 1 << 16;

  struct AlignedFree {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(kAlignment)); }
  };
  struct Block {
    std::unique_ptr<std::byte[], AlignedFree> data;
    std::size_t size;
  };

  static std::size_t align_up(std::size_t n, std::size_t a) { return (n + a - 1) & ~(a - 1); }

  void add_block(std::size_t size) {
    size = align_up(size, kAlignment);
    auto* p = static_cast<std::byte*>(::operator new[](size, std::align_val_t(kAlignment)));
    blocks_.push_back(Block{std::unique_ptr<std::byte[], AlignedFree>(p), size});
  }

  std::vector<Block> blocks_;
  std::size_t used_ = 0;
};

}  // namespace gradflow::detail
