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

// Wait on ``done`` until ``ready()``; a fault elsewhere ends the wait, as does the deadlock limit,
// reported as ``deadlock`` (nullptr: a wait that cannot deadlock, without a limit).
template <class Ready>
void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& done, Ready ready, const char* deadlock) {
  const auto limit = std::chrono::steady_clock::now() + deadlock_limit;
  while (!ready()) {
    if (failure.load()) throw Fault{};
    if (deadlock && std::chrono::steady_clock::now() > limit) fail(deadlock);
    done.wait_for(lock, std::chrono::milliseconds(20));
  }
}

// What the barriers share: the generation (how many times the barrier has opened) and, for each
// of its two parities, a meeting: a mutex, a condition variable and the arrivals. Arriving at
// generation g + 1 takes the other mutex than leaving generation g does, so the barrier never
// orders two threads' work between the two (with one mutex it would, wherever the threads happen
// to run that work one after the other, and ThreadSanitizer would miss their races).
class Meetings {
 protected:
  struct Meeting {
    std::mutex mutex;
    std::condition_variable done;
    unsigned arrived = 0, mask = 0;  // a count (Barrier), or the lanes of ``mask`` (WarpBarrier)
  };
  struct Arrival {
    Meeting& meeting;
    long generation;
    std::unique_lock<std::mutex> lock;
  };
  // The meeting of the generation now waited for, locked.
  Arrival arrive() {
    const long generation = generation_.load();
    Meeting& meeting = meetings_[generation & 1];
    return {meeting, generation, std::unique_lock<std::mutex>(meeting.mutex)};
  }
  // The last thread to arrive opens the barrier.
  void open(Arrival& a) {
    a.meeting.arrived = 0;
    generation_.store(a.generation + 1);
    a.meeting.done.notify_all();
  }
  void await(Arrival& a, const char* deadlock) {
    wait_until(a.lock, a.meeting.done, [&] { return generation_.load() != a.generation; }, deadlock);
  }

 private:
  std::atomic<long> generation_{0};
  Meeting meetings_[2];
};

// A reusable barrier of ``count`` threads; ``what`` is the fault of a thread that waits at it past
// the deadlock limit (nullptr: one no thread can miss, without a limit).
class Barrier : Meetings {
 public:
  explicit Barrier(int count) : count_(unsigned(count)) {}
  void wait(const char* what) {
    Arrival a = arrive();
    if (++a.meeting.arrived == count_) return open(a);
    await(a, what);
  }

 private:
  unsigned count_;
};

// __syncwarp(mask) of one warp: the lanes in ``mask`` meet; each must be in its mask, and all
// must pass the same one. A mismatch is seen where two masks meet at the barrier: lanes whose
// smaller mask is complete before a lane with a larger one arrives have passed, and that lane
// then waits out the deadlock limit.
class WarpBarrier : Meetings {
 public:
  void wait(unsigned mask, int lane) {
    if (!((mask >> lane) & 1u)) fail("__syncwarp: a lane outside its own mask");
    Arrival a = arrive();
    Meeting& m = a.meeting;
    if (m.arrived == 0) {
      m.mask = mask;
    } else if (mask != m.mask) {
      fail("__syncwarp: the lanes of a warp pass different masks");
    }
    m.arrived |= 1u << lane;
    if (m.arrived == m.mask) return open(a);
    await(a, "__syncwarp: a lane of the mask never arrived (a deadlock on the device)");
  }
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
          between.wait(nullptr);  // every thread that finished the last block reaches it
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
