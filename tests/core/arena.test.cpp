// The tape's arena: alignment, and its memory merged and reused after reset.

#include <catch2/catch.hpp>
#include <cstdint>
#include <gradflow/core/detail/arena.hpp>

using gradflow::detail::Arena;

namespace {

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

}  // namespace

TEST_CASE("Arena allocations honour their alignment", "[core][arena]") {
  Arena arena;
  const void* a = arena.allocate(3, 8);
  const void* b = arena.allocate(5, 8);
  const void* c = arena.allocate(1);
  CHECK(address(a) % Arena::kAlignment == 0);  // a block starts on a cache line
  CHECK(address(b) % 8 == 0);
  CHECK(address(b) - address(a) == 8);  // 3 bytes, then the next multiple of 8
  CHECK(address(c) % Arena::kAlignment == 0);
  double* d = arena.allocate_array<double>(4);
  CHECK(address(d) % Arena::kAlignment == 0);
}

TEST_CASE("Arena memory is merged and reused after reset", "[core][arena]") {
  Arena arena;
  // More than the first block, so that blocks are chained.
  arena.allocate(1000);
  for (int i = 0; i < 20; ++i) arena.allocate(10000);
  const std::size_t capacity = arena.capacity();
  REQUIRE(capacity >= 1000 + 20 * 10000);
  arena.reset();
  CHECK(arena.used() == 0);
  CHECK(arena.capacity() == capacity);  // merged, not grown
  // The same allocations now fit in the one merged block: nothing new is reserved.
  void* first = arena.allocate(1000);
  for (int i = 0; i < 20; ++i) arena.allocate(10000);
  CHECK(arena.capacity() == capacity);
  arena.reset();
  CHECK(arena.allocate(1000) == first);  // the block is reused from its start
}
