#pragma once
// Counts heap allocations, for the tests that prove a steady-state step allocates nothing.
// Include it FIRST in its translation unit (before Eigen), in an executable of its own
// without the precompiled header: it defines EIGEN_RUNTIME_NO_MALLOC and eigen_assert.
//
// Two counters: global operator new/delete are replaced by counting versions, and Eigen's
// own allocator (which calls std::malloc directly, bypassing operator new) is watched with
// EIGEN_RUNTIME_NO_MALLOC, whose check reports through the eigen_assert defined here.
// Under AddressSanitizer the sanitizer owns operator new, so the replacement is left out
// (GRADFLOW_TEST_ASAN) and only Eigen's count is meaningful.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace alloc_count {
inline std::atomic<long> eigen_mallocs{0};
inline std::atomic<long> news{0};
inline std::atomic<bool> counting{false};
inline void eigen_assert_failed(const char* what) {
  if (std::strstr(what, "heap allocation is forbidden") != nullptr) {
    ++eigen_mallocs;
  } else {
    std::fprintf(stderr, "eigen_assert failed: %s\n", what);
    std::abort();
  }
}
}  // namespace alloc_count

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(x) ((x) ? static_cast<void>(0) : alloc_count::eigen_assert_failed(#x))

#include <Eigen/Core>

#if defined(__SANITIZE_ADDRESS__)
#define GRADFLOW_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRADFLOW_TEST_ASAN 1
#endif
#endif

#ifndef GRADFLOW_TEST_ASAN
namespace {
void* counted_alloc(std::size_t size, std::size_t alignment) {
  if (alloc_count::counting.load(std::memory_order_relaxed)) ++alloc_count::news;
  if (size == 0) size = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(size);
  } else if (posix_memalign(&p, alignment, size) != 0) {
    p = nullptr;
  }
  return p;
}
void* counted_alloc_or_throw(std::size_t size, std::size_t alignment) {
  void* p = counted_alloc(size, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc_or_throw(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc_or_throw(n, 0); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
#endif

namespace alloc_count {

struct Counts {
  long news = 0;
  long eigen_mallocs = 0;
  long total() const { return news + eigen_mallocs; }
};

// Runs fn() with both counters on and returns what they saw.
template <typename Fn>
Counts count_allocations(Fn&& fn) {
  const long news_before = news, eigen_before = eigen_mallocs;
  counting = true;
  Eigen::internal::set_is_malloc_allowed(false);
  fn();
  Eigen::internal::set_is_malloc_allowed(true);
  counting = false;
  return {news - news_before, eigen_mallocs - eigen_before};
}

}  // namespace alloc_count
