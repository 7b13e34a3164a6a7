// Kernels with the faults the emulation (emulator.h) must catch, for its own tests:
//
//   const char* xl_emu_broken(int which, int deadlock_ms)
//
// launches kernel ``which`` (0: __syncthreads reached by one warp of the block only, 1: lanes of a
// warp passing __syncwarp different masks, each mask naming lanes of the other, so that the lanes
// meet in whichever order they arrive (the emulation sees the mismatch only where they meet), 2:
// __trap(), 3: a data race, every thread adding to one counter unguarded, 4: the last thread
// writing one byte beyond the block's 64 bytes of dynamic shared memory, 5: every thread writing
// its own byte of them) on a grid of 2 blocks of 64 threads, with that deadlock limit, and returns
// the fault (nullptr: none; the race is for ThreadSanitizer to report).
#include "emulator.h"

#define XL_EMU_API extern "C" __attribute__((visibility("default")))

namespace {

int counter = 0;
unsigned char area[128];  // the dynamic shared memory: the launches give the blocks 64 bytes of it

__global__ void syncthreads_in_one_warp() {
  if (threadIdx.x < 32) __syncthreads();
}

__global__ void syncwarp_with_two_masks() { __syncwarp(threadIdx.x % 32 < 16 ? 0xffffffffu : 0xffff0001u); }

__global__ void trap() { __trap(); }

__global__ void race() { counter += 1; }

__global__ void beyond_shared() { area[threadIdx.x + (threadIdx.x == 63)] = 1; }

__global__ void within_shared() { area[threadIdx.x] = 1; }

}  // namespace

XL_EMU_API const char* xl_emu_broken(int which, int deadlock_ms) {
  void (*const kernels[])() = {syncthreads_in_one_warp, syncwarp_with_two_masks, trap, race, beyond_shared, within_shared};
  if (which < 0 || which > 5) return "no such kernel";
  xl_emu::deadlock_limit = std::chrono::milliseconds(deadlock_ms);
  xl_emu::launch(kernels[which], 2, 64, area, sizeof(area), 64);
  return xl_emu::failure.load();
}
