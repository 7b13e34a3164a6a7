// Fixed-order kernels: the per-matrix code of an entry compiled once per square order n, with n and
// the triangle ``lower`` compile-time constants and the thread's matrices in arrays of its own.
//
// The per-matrix code of per_matrix.h takes the order at run time, so its loops stay loops and
// every element it touches is a load from or a store to memory (global, or shared when staged).
// With the order a constant, nvcc unrolls those loops completely (XL_UNROLL), every index becomes
// a constant and the thread's copies of its matrices live in registers: the arrays are read once
// and written once, and all the arithmetic in between runs on registers. `nvcc -Xptxas -v` for
// sm_90: potrf and potrf_vjp use 152 and 255 registers at order 16 in float32, 186 and 255 at 12
// in float64, with no local memory but 24 bytes of spills for potrf_vjp in float64; at higher
// orders the registers spill (kilobytes for potrf_vjp at 16 in float64), so the orders stop
// there (kFixedMaxOrderF32/F64).
//
// An entry of entries.def has fixed-order kernels when entries.def defines XL_HD_FIXED_<name> as
// ``~, 1``. Such an entry takes ``int lower`` and ``int n`` and reaches only n×n arrays through its
// layout. Its packed launches (the CUDA entry, the NVRTC path and the CPU build alike) run the
// kernel of order n, xl_kernel_<name>_<f32|f64>_n<n>, where 1 ≤ n ≤ the dtype's maximum, and the
// run-time-order kernel elsewhere; the results are the same bit for bit (the same operations in
// the same order, on copies).
#pragma once

#include "per_matrix.h"

namespace xl {
namespace hd {

// The largest order of the fixed-order kernels, per dtype; the orders are those of the lists
// XL_HD_FIXED_ORDERS_f32 / _f64 below.
constexpr int kFixedMaxOrderF32 = 16;
constexpr int kFixedMaxOrderF64 = 12;
template <class T>
XL_HD constexpr int fixed_max_order() {
  return sizeof(T) == 4 ? kFixedMaxOrderF32 : kFixedMaxOrderF64;
}

// The arrays of a fixed-order kernel's thread: batch entry e's n×n matrices (N = n·n elements
// each) copied into arrays of its own, inputs at the call of at(), outputs back by finish().
// Slots: the arrays an entry may reach through at().
template <class T, int N, int Slots = 4>
struct FixedState {
  T slot[Slots][N];
  T* output[Slots];
  int used = 0;

  // every output array back to global memory (every element of an output is written by the entry)
  XL_HD void finish() const {
    XL_UNROLL for (int k = 0; k < Slots; ++k) {
      if (k < used && output[k] != nullptr) {
        XL_UNROLL for (int q = 0; q < N; ++q) output[k][q] = slot[k][q];
      }
    }
  }
};

// The layout of a fixed-order kernel (passed by value, as every layout: the arrays stay in the
// state it points to).
template <class T, int N, int Slots = 4>
struct Fixed {
  FixedState<T, N, Slots>* st;

  XL_HD detail::Ptr<const T> at(const T* p, int64_t e, int64_t size) const {
    T* s = claim(size, nullptr);
    XL_UNROLL for (int q = 0; q < N; ++q) s[q] = p[e * N + q];
    return detail::Ptr<const T>{s, 1};
  }
  XL_HD detail::Ptr<T> at(T* p, int64_t e, int64_t size) const { return detail::Ptr<T>{claim(size, p + e * N), 1}; }

 private:
  XL_HD T* claim(int64_t size, T* global) const {
    if (size != N || st->used == Slots) detail::layout_failure("a fixed-order kernel reached an array it was not built for");
    st->output[st->used] = global;
    return st->slot[st->used++];
  }
};

}  // namespace hd
}  // namespace xl

// The orders of the fixed-order kernels, per dtype suffix: X(args..., order) for each.
#define XL_HD_FIXED_ORDERS_f32(X, ...)                                                                          \
  X(__VA_ARGS__, 1) X(__VA_ARGS__, 2) X(__VA_ARGS__, 3) X(__VA_ARGS__, 4) X(__VA_ARGS__, 5) X(__VA_ARGS__, 6)     \
  X(__VA_ARGS__, 7) X(__VA_ARGS__, 8) X(__VA_ARGS__, 9) X(__VA_ARGS__, 10) X(__VA_ARGS__, 11) X(__VA_ARGS__, 12) \
  X(__VA_ARGS__, 13) X(__VA_ARGS__, 14) X(__VA_ARGS__, 15) X(__VA_ARGS__, 16)
#define XL_HD_FIXED_ORDERS_f64(X, ...)                                                                          \
  X(__VA_ARGS__, 1) X(__VA_ARGS__, 2) X(__VA_ARGS__, 3) X(__VA_ARGS__, 4) X(__VA_ARGS__, 5) X(__VA_ARGS__, 6)     \
  X(__VA_ARGS__, 7) X(__VA_ARGS__, 8) X(__VA_ARGS__, 9) X(__VA_ARGS__, 10) X(__VA_ARGS__, 11) X(__VA_ARGS__, 12)

// XL_HD_IF_FIXED(name)(code...): the code where entries.def gives ``name`` fixed-order kernels
// (XL_HD_FIXED_<name> is ``~, 1``), else nothing.
#define XL_HD_SECOND_(a, b, ...) b
#define XL_HD_SECOND(...) XL_HD_SECOND_(__VA_ARGS__)
#define XL_HD_CAT_(a, b) a##b
#define XL_HD_CAT(a, b) XL_HD_CAT_(a, b)
#define XL_HD_IF_FIXED(name) XL_HD_CAT(XL_HD_IF_FIXED_, XL_HD_SECOND(XL_HD_FIXED_##name, 0, ~))
#define XL_HD_IF_FIXED_0(...)
#define XL_HD_IF_FIXED_1(...) __VA_ARGS__

// The per-matrix call of batch entry e in the kernel of order N, where the entry's parameters are
// in scope (``lower`` among them): ``lower`` and ``n`` shadowed by constants, one copy of the call
// per triangle.
#define XL_HD_FIXED_WITH_ENTRY(...) (layout, e, __VA_ARGS__)
#define XL_HD_FIXED_CALL_IN(name, args, N, L)                      \
  {                                                                \
    constexpr int lower = L, n = N;                                \
    xl::hd::FixedState<T, N * N> state;                            \
    const xl::hd::Fixed<T, N * N> layout{&state};                  \
    xl::hd::name##_entry<T> XL_HD_FIXED_WITH_ENTRY args;           \
    state.finish();                                                \
  }
#define XL_HD_FIXED_CALL(name, args, N)    \
  if (lower)                               \
    XL_HD_FIXED_CALL_IN(name, args, N, 1)  \
  else                                     \
    XL_HD_FIXED_CALL_IN(name, args, N, 0)
