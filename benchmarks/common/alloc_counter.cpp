// Counts heap allocations; see alloc_counter.hpp. Linked into the benchmark executables
// only, never into anything a user of gradflow builds.

#include "alloc_counter.hpp"

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

// glibc's own entry points, so the interposed functions below can forward to them.
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
}

namespace {
std::atomic<std::uint64_t> g_new{0};
std::atomic<std::uint64_t> g_malloc{0};

void count_malloc() { g_malloc.fetch_add(1, std::memory_order_relaxed); }

void* counted_new(std::size_t size) {
  g_new.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  if (void* p = std::malloc(size)) return p;
  throw std::bad_alloc();
}

void* counted_aligned_new(std::size_t size, std::align_val_t alignment) {
  g_new.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  const auto a = static_cast<std::size_t>(alignment);
  void* p = nullptr;
  if (posix_memalign(&p, a < sizeof(void*) ? sizeof(void*) : a, size) == 0) return p;
  throw std::bad_alloc();
}
}  // namespace

namespace gradflow::bench {
std::uint64_t operator_new_count() { return g_new.load(std::memory_order_relaxed); }
std::uint64_t malloc_count() { return g_malloc.load(std::memory_order_relaxed); }
}  // namespace gradflow::bench

// ------------------------------------------------------------ C allocator

extern "C" {
void* malloc(std::size_t size) noexcept {
  count_malloc();
  return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
  count_malloc();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  count_malloc();
  return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  count_malloc();
  return __libc_memalign(alignment, size);
}
void* memalign(std::size_t alignment, std::size_t size) noexcept {
  count_malloc();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  count_malloc();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
}

// ------------------------------------------------------------ operator new

void* operator new(std::size_t size) { return counted_new(size); }
void* operator new[](std::size_t size) { return counted_new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t size, std::align_val_t a) { return counted_aligned_new(size, a); }
void* operator new[](std::size_t size, std::align_val_t a) { return counted_aligned_new(size, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
