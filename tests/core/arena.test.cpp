// The tape's arena: alignment, its memory merged and reused after reset, huge-page blocks.

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <gradflow/core/detail/arena.hpp>
#include <sstream>
#include <string>

using gradflow::detail::Arena;

namespace {

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

// The transparent-huge-page mode in force ("always", "madvise" or "never"), or "" where the
// system does not say (not Linux, or no THP support).
std::string huge_page_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto open = line.find('['), close = line.find(']');
  if (open == std::string::npos || close == std::string::npos) return "";
  return line.substr(open + 1, close - open - 1);
}

// The AnonHugePages figure, in kB, of the mapping in /proc/self/smaps that holds `p`
// (-1 if none does).
long huge_page_kb_at(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    unsigned long long begin = 0, end = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> begin >> dash >> end && dash == '-') {
      inside = begin <= address(p) && address(p) < end;
      continue;
    }
    if (inside && line.rfind("AnonHugePages:", 0) == 0) return std::stol(line.substr(14));
  }
  return -1;
}

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

TEST_CASE("Arena blocks of 2 MiB or more are whole huge pages", "[core][arena]") {
  Arena arena;
  auto* big = static_cast<unsigned char*>(arena.allocate(3 * Arena::kHugePage + 100));
  CHECK(address(big) % Arena::kHugePage == 0);
  CHECK(arena.capacity() % Arena::kHugePage == 0);

  // A merged block is one as well.
  Arena chained;
  chained.allocate(1000);
  chained.allocate(Arena::kHugePage);
  chained.reset();
  CHECK(chained.capacity() % Arena::kHugePage == 0);
  CHECK(address(chained.allocate(1)) % Arena::kHugePage == 0);

  // Where the system hands out transparent huge pages to memory that asks for them, the
  // block gets them once written.
  const std::string mode = huge_page_mode();
  if (mode == "always" || mode == "madvise") {
    std::memset(big, 1, 3 * Arena::kHugePage);
    CHECK(huge_page_kb_at(big) >= 2048);
  } else {
    WARN("transparent huge pages are \"" << mode << "\" here: only alignment is checked");
  }
}
