// Kernels with the faults the emulation (emulator.h) must catch, for its own tests:
//
//   const char* xl_emu_broken(int which, int deadlock_ms)
//
// launches kernel ``which`` (0: __syncthreads reached by one warp of the block only, 1: lanes of a
// warp passing __syncwarp different masks, 2: __trap(), 3: a data race, every thread adding to one
// counter unguarded) on a grid of 2 blocks of 64 threads, with that deadlock limit, and returns
// the fault (nullptr: none; the race is for ThreadSanitizer to report).
#include "emulator.h"

#define XL_EMU_API extern "C" __attribute__((visibility("default")))

namespace {

int counter = 0;

__global__ void syncthreads_in_one_warp() {
  if (threadIdx.x < 32) __syncthreads();
}

__global__ void syncwarp_with_two_masks() { __syncwarp(threadIdx.x % 32 < 16 ? 0x0000ffffu : 0xffffffffu); }

__global__ void trap() { __trap(); }

__global__ void race() { counter += 1; }

}  // namespace

XL_EMU_API const char* xl_emu_broken(int which, int deadlock_ms) {
  static unsigned char area[1];
  void (*const kernels[])() = {syncthreads_in_one_warp, syncwarp_with_two_masks, trap, race};
  if (which < 0 || which > 3) return "no such kernel";
  xl_emu::deadlock_limit = std::chrono::milliseconds(deadlock_ms);
  xl_emu::launch(kernels[which], 2, 64, area, 0);
  return xl_emu::failure.load();
}
