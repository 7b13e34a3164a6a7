// The GPU kernel layer's kernels: one __global__ function per entry of entries.def and dtype.
//
//   extern "C" __global__ void xl_kernel_<name>_<f32|f64>(params)
//
// with the entry's C parameter list (the batch size among them), so that a caller compiling this
// header at run time (NVRTC) finds each kernel by its plain name and passes the arguments in the
// order of the C entry. One thread runs one batch entry: a grid-stride loop over e in [0, batch)
// calls xl::hd::<name>_entry<T>(layout, e, args...), so any grid covers any batch. The per-matrix
// work of a thread is serial; the batch is the parallelism. Every kernel comes in the three layouts
// of per_matrix.h: xl_kernel_<name>_<f32|f64> takes packed (row-major (batch, ...)) arrays,
// xl_kernel_<name>_<f32|f64>_interleaved their transposes (..., batch), and
// xl_kernel_<name>_<f32|f64>_staged packed arrays that each warp copies into shared memory for the
// group of its 32 threads' entries (its last parameter ``stage``, the elements per batch entry of
// the arrays, sizes each warp's part of the dynamic shared memory). The entries with fixed-order
// kernels (fixed.h) have one more packed kernel per order n, xl_kernel_<name>_<f32|f64>_n<n>,
// which takes the same parameters and arrays of order n only.
//
// Compiles under nvcc (launch.cu) and NVRTC: it includes nothing but the per-matrix headers (which
// include nothing under NVRTC) and entries.def. The block entries' kernels (XL_HD_BLOCK_ENTRIES)
// run one block of xl::hd::kBlockThreads threads per batch entry instead.
#pragma once

#include "eigen_block.h"
#include "fixed.h"
#include "per_matrix.h"

#include "entries.def"

// (layout, e, args...): the per-matrix call's arguments, the layout and batch index first
#define XL_KERNEL_WITH_ENTRY(...) (layout, e, __VA_ARGS__)
#define XL_KERNEL(name, params, args, S, LAYOUT, TAIL)                                            \
  extern "C" __global__ void xl_kernel_##name##_##S##TAIL params {                                \
    const xl::hd::LAYOUT layout(batch);                                                            \
    const int64_t stride = int64_t(gridDim.x) * int64_t(blockDim.x);                               \
    for (int64_t e = int64_t(blockIdx.x) * int64_t(blockDim.x) + int64_t(threadIdx.x); e < batch; \
         e += stride)                                                                              \
      xl::hd::name##_entry<T> XL_KERNEL_WITH_ENTRY args;                                           \
  }
// Staged: warp w of the block stages groups of xl::hd::kStageGroup entries (a grid-stride loop over
// the groups) in its part of the dynamic shared memory, stage · (kStageGroup | 1) elements.
#define XL_WITH_STAGE(...) (__VA_ARGS__, int stage)
#define XL_STAGED_KERNEL(name, params, args, S)                                                            \
  extern "C" __global__ void xl_kernel_##name##_##S##_staged XL_WITH_STAGE params {                        \
    extern __shared__ __align__(16) unsigned char xl_stage_area[];                                          \
    const int64_t capacity = xl::hd::stage_capacity(stage, int(sizeof(T)));                                 \
    const int warps = int(blockDim.x) / 32, warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;    \
    const int64_t step = int64_t(gridDim.x) * warps * xl::hd::kStageGroup;                                 \
    for (int64_t first = (int64_t(blockIdx.x) * warps + warp) * xl::hd::kStageGroup; first < batch;        \
         first += step) {                                                                                  \
      const int count = xl::hd::stage_count(batch, first);                                                 \
      if (lane >= count) break; /* the last group: its entries are the warp's first lanes */               \
      xl::hd::StageState st(xl_stage_area + warp * capacity, capacity);                                    \
      xl::hd::Staged layout(&st, first, lane, count);                                                      \
      const int64_t e = first + lane;                                                                      \
      xl::hd::name##_entry<T> XL_KERNEL_WITH_ENTRY args;                                                   \
      xl::hd::stage_finish<T>(layout);                                                                     \
      __syncwarp(layout.mask()); /* copied out before the next group is copied in */                       \
    }                                                                                                      \
  }
// Fixed order N (fixed.h): packed arrays of order N only, the thread's matrices in registers.
#define XL_FIXED_KERNEL(name, params, args, S, N)                                                 \
  extern "C" __global__ void xl_kernel_##name##_##S##_n##N params {                              \
    const int64_t stride = int64_t(gridDim.x) * int64_t(blockDim.x);                              \
    for (int64_t e = int64_t(blockIdx.x) * int64_t(blockDim.x) + int64_t(threadIdx.x); e < batch; \
         e += stride)                                                                             \
      XL_HD_FIXED_CALL(name, args, N)                                                             \
  }
// every entry in the three layouts: xl_kernel_<name>_<S> (packed), ..._interleaved, ..._staged,
// and the fixed-order entries' xl_kernel_<name>_<S>_n<order>
#define XL_KERNELS(name, params, args, S)                                                                   \
  XL_KERNEL(name, params, args, S, Packed, ) XL_KERNEL(name, params, args, S, Interleaved, _interleaved)   \
  XL_STAGED_KERNEL(name, params, args, S)                                                                   \
  XL_HD_IF_FIXED(name)(XL_HD_FIXED_ORDERS_##S(XL_FIXED_KERNEL, name, params, args, S))
#define XL_KERNEL_F32(name, params, args) XL_KERNELS(name, params, args, f32)
#define XL_KERNEL_F64(name, params, args) XL_KERNELS(name, params, args, f64)

// The block entries: one block of kBlockThreads threads per batch entry (a grid-stride loop over
// the blocks), the entry's shared struct in shared memory (XL_BLOCK_SHARED: a build that runs the
// kernels elsewhere, as the tests' CPU emulation, may place it itself), packed arrays.
#ifndef XL_BLOCK_SHARED
#define XL_BLOCK_SHARED(type, name) __shared__ type name;
#endif
#define XL_BLOCK_KERNEL_WITH_ENTRY(...) (layout, e, __VA_ARGS__, shared)
#define XL_BLOCK_KERNEL(name, params, args, S)                                                    \
  extern "C" __global__ void __launch_bounds__(xl::hd::kBlockThreads) xl_kernel_##name##_##S params { \
    XL_BLOCK_SHARED(xl::hd::name##_shared<T>, shared)                                            \
    const xl::hd::Packed layout(batch);                                                           \
    for (int64_t e = int64_t(blockIdx.x); e < batch; e += int64_t(gridDim.x))                     \
      xl::hd::name##_entry<T> XL_BLOCK_KERNEL_WITH_ENTRY args;                                    \
  }
#define XL_BLOCK_KERNEL_F32(name, params, args) XL_BLOCK_KERNEL(name, params, args, f32)
#define XL_BLOCK_KERNEL_F64(name, params, args) XL_BLOCK_KERNEL(name, params, args, f64)

namespace xl_kernel_f32 {
using T = float;
XL_HD_ENTRIES(XL_KERNEL_F32)
XL_HD_BLOCK_ENTRIES(XL_BLOCK_KERNEL_F32)
}  // namespace xl_kernel_f32
namespace xl_kernel_f64 {
using T = double;
XL_HD_ENTRIES(XL_KERNEL_F64)
XL_HD_BLOCK_ENTRIES(XL_BLOCK_KERNEL_F64)
}  // namespace xl_kernel_f64
