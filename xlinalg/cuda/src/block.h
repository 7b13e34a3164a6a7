// Per-matrix code for a block of threads: the algorithm is a sequence of phases, each a loop over
// work items t in [0, count) that touch disjoint data, separated by barriers. On the device the
// block's threads share the items of a phase (t = threadIdx.x, then every blockDim.x-th) and meet
// at __syncthreads() after it; compiled for the CPU the same code runs the items one after the
// other. Data that lives from one phase to the next is in a shared struct (__shared__ on the
// device), never in a thread's variables, so both run the same arithmetic.
//
// A phase whose items race (one reads what another writes) would give other results in another
// order: the CPU build runs the items in reverse when phase_reversed() is set, and the tests
// compare both orders bit for bit.
//
// Control flow around phases must be the same for every thread (conditions read from the shared
// struct after the phase that wrote it), as every thread must reach every barrier.
#pragma once

#include "hd.h"

namespace xl {
namespace hd {

// The largest order of the block entries, and the threads of their blocks.
constexpr int kBlockMaxOrder = 64;
constexpr int kBlockThreads = 128;

#if !defined(__CUDA_ARCH__)
// CPU build: run the items of every phase in reverse order (tests).
inline bool& phase_reversed() {
  static bool reversed = false;
  return reversed;
}
#endif

template <class F>
XL_HD void phase(int count, F&& body) {
#if defined(__CUDA_ARCH__)
  for (int t = int(threadIdx.x); t < count; t += int(blockDim.x)) body(t);
  __syncthreads();
#else
  if (phase_reversed())
    for (int t = count - 1; t >= 0; --t) body(t);
  else
    for (int t = 0; t < count; ++t) body(t);
#endif
}

}  // namespace hd
}  // namespace xl
