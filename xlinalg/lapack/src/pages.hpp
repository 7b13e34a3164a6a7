// Transparent huge pages for large outputs. The frameworks hand the layer freshly allocated output
// buffers, and a fresh buffer is mapped one 4 KiB page at a time, on the first write to each: a
// 32 MiB gradient (sumlogdiag's at order 2048, float64) took 14 ms to fill that way on the Intel
// Xeon, 2.2 ms in 2 MiB pages. Linux's default policy ("madvise") gives huge pages only to memory
// that asks for them; this asks, for the whole 2 MiB pages inside an output whose first such page
// is not mapped yet; memory an allocator hands out again, already mapped, is left as it is (its
// pages are there: advice would only have the kernel merge them in the background). On other
// systems this does nothing.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace xl {

inline void advise_huge_pages(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t(2) << 20;
  const auto first = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t begin = (first + kHuge - 1) & ~(kHuge - 1), end = (first + bytes) & ~(kHuge - 1);
  if (end < begin + 2 * kHuge) return;
  unsigned char resident = 0;  // whether the first of those pages is mapped: memory in use
  if (mincore(reinterpret_cast<void*>(begin), 1, &resident) != 0 || (resident & 1)) return;
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace xl
