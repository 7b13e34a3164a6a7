// CUDA's execution model on CPU threads, for tests: enough of it to run the GPU layer's kernels
// (kernels.cuh) with their device code paths (__CUDA_ARCH__ defined) on a machine without a GPU.
//
// A launch runs the grid's blocks one after the other on one team of blockDim.x std::threads (each
// thread its threadIdx; all of them finish a block before the next starts, so the blocks' shared
// memory can be one static area). __syncthreads() is a barrier of the team; __syncwarp(mask) one
// of the lanes the mask names, which must all pass the same mask (on the device anything else is
// undefined). A fault ends the launch and is kept for xl_emu::failure(): __trap(), a barrier some
// thread never reaches (divergent control flow around __syncthreads or __syncwarp: a deadlock on
// the device), detected after a timeout, a misused barrier, or a block that wrote beyond the
// dynamic shared memory its launch gave it (on the device: another block's memory, or a fault).
// Data races between threads are real races here, so a build with -fsanitize=thread reports them.
//
// Include this first, then the kernels: it defines __CUDA_ARCH__ and the CUDA keywords they use.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#define __CUDA_ARCH__ 900
#define XL_BLOCK_SHARED(type, name) type& name = xl_emu::block_shared<type>();
#define __global__
#define __shared__
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(n)

namespace xl_emu {

struct Dim3 {
  unsigned x = 0, y = 1, z = 1;
};

inline thread_local Dim3 thread_index, block_index;
inline Dim3 block_dim, grid_dim;

// The fault that ended the last launch (nullptr: none). A thread that faults, or finds another
// has, unwinds its kernel by throwing Fault.
struct Fault {};
inline std::atomic<const char*> failure{nullptr};

[[noreturn]] inline void fail(const char* what) {
  const char* none = nullptr;
  failure.compare_exchange_strong(none, what);
  throw Fault{};
}

// How long a thread waits at a barrier before the emulation calls it a deadlock.
inline std::chrono::milliseconds deadlock_limit{20000};

// Wait on ``done`` until ``ready()``; a fault elsewhere ends the wait, as does the deadlock limit.
template <class Ready>
void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& done, Ready ready, const char* deadlock) {
  const auto limit = std::chrono::steady_clock::now() + deadlock_limit;
  while (!ready()) {
    if (failure.load()) throw Fault{};
    if (std::chrono::steady_clock::now() > limit) fail(deadlock);
    done.wait_for(lock, std::chrono::milliseconds(20));
  }
}

// A reusable barrier of ``count`` threads.
class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void wait(const char* what) {
    std::unique_lock<std::mutex> lock(mutex_);
    const long generation = generation_;
    if (++arrived_ == count_) {
      arrived_ = 0;
      ++generation_;
      done_.notify_all();
      return;
    }
    wait_until(lock, done_, [&] { return generation_ != generation; }, what);
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  int count_, arrived_ = 0;
  long generation_ = 0;
};

// __syncwarp(mask) of one warp: the lanes in ``mask`` meet; each must be in its mask, and all
// must pass the same one. A mismatch is seen where two masks meet at the barrier: lanes whose
// smaller mask is complete before a lane with a larger one arrives have passed, and that lane
// then waits out the deadlock limit.
class WarpBarrier {
 public:
  void wait(unsigned mask, int lane) {
    if (!((mask >> lane) & 1u)) fail("__syncwarp: a lane outside its own mask");
    std::unique_lock<std::mutex> lock(mutex_);
    if (arrived_ == 0) {
      mask_ = mask;
    } else if (mask != mask_) {
      fail("__syncwarp: the lanes of a warp pass different masks");
    }
    arrived_ |= 1u << lane;
    const long generation = generation_;
    if (arrived_ == mask_) {
      arrived_ = 0;
      ++generation_;
      done_.notify_all();
      return;
    }
    wait_until(lock, done_, [&] { return generation_ != generation; }, "__syncwarp: a lane of the mask never arrived (a deadlock on the device)");
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  unsigned mask_ = 0, arrived_ = 0;
  long generation_ = 0;
};

struct Team {
  Barrier block;
  std::vector<WarpBarrier> warps;
  explicit Team(int threads) : block(threads), warps((threads + 31) / 32) {}
};
inline Team* team = nullptr;

// The dynamic shared memory of the block being run (extern __shared__ arrays): an area of this
// many bytes, of which a launch gives its blocks the first ``shared``; the rest holds kGuard bytes,
// checked after each block.
constexpr std::size_t kSharedBytes = 131072;
constexpr unsigned char kGuard = 0xa5;

// The static shared memory of the block being run: the block entries' shared struct.
alignas(16) inline unsigned char block_area[65536];
template <class T>
T& block_shared() {
  static_assert(sizeof(T) <= sizeof(block_area), "the block's shared struct fits the emulation's area");
  return *reinterpret_cast<T*>(block_area);
}

// Run ``kernel()`` on a grid of ``grid`` blocks of ``threads`` threads, with ``shared`` bytes of
// dynamic shared memory per block at the start of ``area`` (``area_bytes`` long); shared memory,
// static and dynamic, all NaN bytes (0xff) before each block: it holds whatever was there, and a
// kernel reading it before writing it must not find 0. One launch at a time (the emulation's
// state is the process's).
template <class Kernel>
void launch(Kernel kernel, int grid, int threads, unsigned char* area, std::size_t area_bytes, std::size_t shared) {
  static std::mutex launching;
  const std::lock_guard<std::mutex> one_at_a_time(launching);
  failure.store(nullptr);
  if (grid <= 0) return;
  if (threads <= 0 || threads > 1024 || shared > area_bytes) {
    failure.store("a block of 1 to 1024 threads with at most the emulation's area of dynamic shared memory");
    return;
  }
  grid_dim.x = unsigned(grid), block_dim.x = unsigned(threads);
  Team members(threads);
  team = &members;
  Barrier between(threads);  // the area filled before a block starts, every thread done with it before the next
  std::vector<std::thread> pool;
  pool.reserve(std::size_t(threads));
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      thread_index.x = unsigned(t);
      try {
        for (int b = 0; b < grid; ++b) {
          block_index.x = unsigned(b);
          if (t == 0) {
            std::memset(area, 0xff, shared), std::memset(area + shared, kGuard, area_bytes - shared);
            std::memset(block_area, 0xff, sizeof(block_area));
          }
          between.wait("a thread never started its block");
          kernel();
          between.wait("a thread never finished its block (waiting at a barrier some thread never reached: a deadlock on the device)");
          if (t == 0)
            for (std::size_t i = shared; i < area_bytes; ++i)
              if (area[i] != kGuard) fail("a block wrote beyond the dynamic shared memory of its launch");
        }
      } catch (const Fault&) {  // kept in failure: the launch ends
      }
    });
  for (auto& thread : pool) thread.join();
  team = nullptr;
}

}  // namespace xl_emu

#define threadIdx xl_emu::thread_index
#define blockIdx xl_emu::block_index
#define blockDim xl_emu::block_dim
#define gridDim xl_emu::grid_dim

inline void __syncthreads() { xl_emu::team->block.wait("__syncthreads: a thread never arrived (a deadlock on the device)"); }
inline void __syncwarp(unsigned mask) {
  const int t = int(threadIdx.x);
  xl_emu::team->warps[std::size_t(t / 32)].wait(mask, t % 32);
}
[[noreturn]] inline void __trap() { xl_emu::fail("__trap(): the kernel stopped the device's context"); }
