// Triangular products and solves of small matrices without the BLAS: B ← α op(A) B, α B op(A) and
// the solves with op(A), for orders up to kSmallTriangular. Beside the fixed cost of a BLAS call,
// OpenBLAS's triangular routines take a lock for their buffers: batches of such calls split
// across threads ran 2–4 times slower on two threads than on one (order 8, float32 ?trsm and
// both ?trmm). Here B is copied into zero-padded rows of 8, 16 or 32 values, each row of the
// result is summed in registers along those rows, and written back. Included by blas.hpp, after
// its View.
#pragma once

#include <algorithm>
#include <cstddef>

#include "isa.hpp"

namespace xl {

// Orders (of A, and B's other dimension) up to which triangular_call (blas.hpp) uses these kernels.
constexpr int kSmallTriangular = 32;

// B (m×n, n ≤ NP) ← α M B or α M⁻¹ B in place for the triangular M (m×m, lower when ``lower``;
// ones on the diagonal when ``unit``) with M(i, k) = a[i·ars + k·acs] and B(i, j) = b[i·brs +
// j·bcs]. Row i of a product is α (M_ii B_i + Σ_{k in the triangle, k ≠ i} M_ik B_k), rows taken
// in the order that reads each B_k before it is overwritten; row i of a solve is
// (α B_i − Σ_k M_ik X_k) / M_ii, rows in substitution order.
template <class T, int NP, bool Avx2>
inline XL_INLINE void small_triangular_body(bool solve, bool lower, bool unit, const T* a, std::ptrdiff_t ars,
                                           std::ptrdiff_t acs, T* b, std::ptrdiff_t brs, std::ptrdiff_t bcs, T alpha,
                                           int m, int n) {
  alignas(64) T x[kSmallTriangular * NP];
  // B is read and written along its contiguous dimension: with B's columns contiguous (brs == 1,
  // a right-side call on a row-major B), reading along x's rows would touch one cache line of
  // every column per value, and at strides of powers of two those lines share a few L1 sets.
  // Measured, 32×32 solve from the right on rows 2 KiB apart: float64 6.5 → 4.0 µs (8 KiB
  // apart: float64 13 → 9.3, float32 9.3 → 5.7); the Cholesky reverse at order 256 ~10% less.
  const bool by_columns = brs == 1 && bcs != 1;
  for (int i = 0; i < m; ++i)
    for (int j = n; j < NP; ++j) x[i * NP + j] = T(0);
  if (by_columns) {
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) x[i * NP + j] = b[i + j * bcs];
  } else {
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) x[i * NP + j] = b[i * brs + j * bcs];
  }
  // a product from the bottom up for a lower M (row i reads rows k < i), a solve from the top down
  const bool downwards = solve == lower;
  for (int s = 0; s < m; ++s) {
    const int i = downwards ? s : m - 1 - s;
    const int k0 = lower ? 0 : i + 1, k1 = lower ? i : m;  // the off-diagonal part of row i of M
    const T* mi = a + i * ars;
    T* xi = x + i * NP;
    const T d = unit ? T(1) : mi[i * acs];
    const T sign = solve ? T(-1) : T(1);  // (−M_ik) X_k: exactly −(M_ik X_k)
    const T first = solve ? alpha : d;
    T acc[NP];
#pragma omp simd
    for (int j = 0; j < NP; ++j) acc[j] = first * xi[j];
    for (int k = k0; k < k1; ++k) {
      const T mik = sign * mi[k * acs];
      const T* xk = x + k * NP;
#pragma omp simd
      for (int j = 0; j < NP; ++j) acc[j] += mik * xk[j];
    }
    if (!solve) {
#pragma omp simd
      for (int j = 0; j < NP; ++j) xi[j] = alpha * acc[j];
    } else if (unit) {
#pragma omp simd
      for (int j = 0; j < NP; ++j) xi[j] = acc[j];
    } else {
#pragma omp simd
      for (int j = 0; j < NP; ++j) xi[j] = acc[j] / d;
    }
  }
  if (by_columns) {
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) b[i + j * bcs] = x[i * NP + j];
  } else {
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) b[i * brs + j * bcs] = x[i * NP + j];
  }
}

// B (m×n) ← α op(A) B or α B op(A) (``left``), or the solves op(A)⁻¹ α B and α B op(A)⁻¹ (``solve``),
// for the lower (``lower``) or upper triangle of A, when m and n are 1..kSmallTriangular; false,
// doing nothing, otherwise. α = 0 gives zeros without reading A or B, as the BLAS does. From the
// right it works on Bᵀ: B op(A) = (op(A)ᵀ Bᵀ)ᵀ.
template <class T>
bool small_triangular(bool solve, bool left, bool lower, bool trans, bool unit, Int m, Int n, T alpha, View<T> a,
                      View<T> b) {
  if (m < 1 || n < 1 || m > kSmallTriangular || n > kSmallTriangular) return false;
  if (alpha == T(0)) {  // zeros, reading neither A nor B (the BLAS's rule)
    for (Int i = 0; i < m; ++i)
      for (Int j = 0; j < n; ++j) b(i, j) = T(0);
    return true;
  }
  if (!left) {
    b = b.t();
    std::swap(m, n);
    trans = !trans;
  }
  const View<T> mv = trans ? a.t() : a;  // M = op(A) (for the right side, op(A)ᵀ)
  const bool mlower = lower != trans;
  run_best([&](auto isa) XL_INLINE {
    constexpr bool avx2 = decltype(isa)::value;
    with_padded_width<32>(n, [&](auto np) XL_INLINE {
      small_triangular_body<T, decltype(np)::value, avx2>(solve, mlower, unit, mv.p, mv.rs, mv.cs, b.p, b.rs, b.cs,
                                                          alpha, m, n);
    });
  });
  return true;
}

}  // namespace xl
