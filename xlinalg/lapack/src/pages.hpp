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

// The size of a transparent huge page (x86-64, and arm64 with 4 KiB base pages).
constexpr std::size_t kHugePage = std::size_t(1) << 21;

inline void advise_huge_pages(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const auto first = reinterpret_cast<std::uintptr_t>(p);
  constexpr std::uintptr_t huge = kHugePage;
  const std::uintptr_t begin = (first + huge - 1) & ~(huge - 1), end = (first + bytes) & ~(huge - 1);
  if (end < begin + 2 * huge) return;
  unsigned char resident = 0;  // whether the first of those pages is mapped: memory in use
  if (mincore(reinterpret_cast<void*>(begin), 1, &resident) != 0 || (resident & 1)) return;
  madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace xl
