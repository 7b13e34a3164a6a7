// LQ factorization per matrix: gelqf forward (LAPACK ?geqrf + ?orgqr; up to 32 columns the same
// reflections in registers, small_lq) and its fused reverse.
//
// The row-major m×n A (m ≤ n) is the column-major n×m Aᵀ: its QR factorization Aᵀ = Q₁ R is
// A = L Q with L = Rᵀ and Q = Q₁ᵀ, and ?orgqr's column-major Q₁ is Q read row-major (no transpose).
#pragma once

#include <cmath>
#include <cstring>
#include <vector>

#include "blas.hpp"
#include "batch.hpp"
#include "inverse.hpp"
#include "isa.hpp"
#include "row_ops.hpp"
#include "triangles.hpp"

namespace xl {

// The workspace ?geqrf and ?orgqr want for the column-major n×m Aᵀ (one query per call).
template <class T>
Int gelqf_workspace(Int m, Int n) {
  if (m == 0) return 1;
  T wq = 0, wq2 = 0, dummy = 0;
  Int info = 0, query = -1;
  routines<T>().geqrf(&n, &m, &dummy, &n, &dummy, &wq, &query, &info);
  routines<T>().orgqr(&n, &m, &m, &dummy, &n, &dummy, &wq2, &query, &info);
  return workspace_size(std::max(wq, wq2), m);
}

// Up to this many columns the LQ factors are computed by small_lq, not ?geqrf and ?orgqr, which
// work column by column through level-2 BLAS calls at these orders (one 32×32 matrix: 24 µs in
// either precision here, small_lq 7.5 µs in float32 and 10.5 in float64; 8×8: 2.8–3.1 µs
// against 0.7–0.8).
constexpr Int kSmallLqMaxOrder = 32;

// ?geqrf and ?orgqr of the column-major n×m Aᵀ (m ≤ n ≤ kSmallLqMaxOrder), done on a copy of
// Aᵀ whose rows are padded with zeros to Np ≥ m entries. Reflector k (make_reflector) is made
// from column k, A's row k, from row k on (τ = 0 where that is zero below row k), and applied
// from the left as w = τ vᵀ Aᵀ, accumulated row by row in registers across all Np columns at
// once (each column's sum in the order of the rows, whatever the vector width), masked to the
// columns right of k, then Aᵀ ← Aᵀ − v w row by row. No sum is reduced within a register: the
// dot products along A's rows that this replaced were bound by their latency (one 32×32 matrix
// 22 µs in float64, 24 in float32; now 10.5 and 7.5). L is the lower triangle of A's first m
// columns; Q = [I 0] H_{m−1} ⋯ H₀ is formed backwards in the same buffer (?org2r's order),
// reflector k touching A's rows k and below. a: A; q: Q; l: L (its upper part zero). Returns
// whether every L_ii ≠ 0.
template <class T, int Np>
inline XL_INLINE bool small_lq_body(const T* a, T* q, T* l, Int m, Int n) {
  using V = typename Vec32<T>::type;
  constexpr int kLanes = Vec32<T>::lanes, kVectors = Np / kLanes;
  alignas(64) T at[kSmallLqMaxOrder * Np];  // at[j * Np + i] = A(i, j)
  T tau[kSmallLqMaxOrder], v[kSmallLqMaxOrder];
  for (Int j = 0; j < n; ++j)
    for (Int i = 0; i < Np; ++i) at[j * Np + i] = i < m ? a[std::ptrdiff_t(i) * n + j] : T(0);
  // Aᵀ ← (I − t v vᵀ) Aᵀ on rows k.. (v[0] = 1: row k's) and the columns from ``first``
  const auto reflect = [&](Int k, T t, Int first) XL_INLINE {
    const int live = first / kLanes;  // the first vector with a column from ``first``
    V w[kVectors];
#pragma GCC unroll 8
    for (int u = 0; u < kVectors; ++u) w[u] = V{};
    for (Int j = k; j < n; ++j) {
      const T vj = v[j - k];
#pragma GCC unroll 8
      for (int u = 0; u < kVectors; ++u)
        if (u >= live) w[u] += vj * Vec32<T>::at(at + j * Np + u * kLanes);
    }
#pragma GCC unroll 8
    for (int u = 0; u < kVectors; ++u) {
      V column;
      for (int c = 0; c < kLanes; ++c) column[c] = T(u * kLanes + c);
      w[u] = column >= T(first) ? t * w[u] : V{};
    }
    for (Int j = k; j < n; ++j) {
      const T vj = v[j - k];
#pragma GCC unroll 8
      for (int u = 0; u < kVectors; ++u)
        if (u >= live) Vec32<T>::at(at + j * Np + u * kLanes) -= w[u] * vj;
    }
  };
  for (Int k = 0; k < m; ++k) {
    bool nonzero = false;  // whether x ≠ 0 below row k
    for (Int j = k; j < n; ++j) {
      v[j - k] = at[j * Np + k];
      nonzero |= j > k && v[j - k] != T(0);
    }
    tau[k] = 0;
    if (!nonzero) continue;
    const Reflector<T> h = make_reflector(v, n - k);
    tau[k] = h.tau;
    v[0] = T(1);
    reflect(k, h.tau, k + 1);
    at[k * Np + k] = h.beta;
    for (Int j = k + 1; j < n; ++j) at[j * Np + k] = v[j - k];
  }
  bool full_rank = true;
  for (Int i = 0; i < m; ++i) {  // L: the lower triangle of the first m columns of A
    T* li = l + std::ptrdiff_t(i) * m;
    for (Int j = 0; j < m; ++j) li[j] = j <= i ? at[j * Np + i] : T(0);
    full_rank &= li[i] != T(0);
  }
  // Qᵀ ← H_k Qᵀ on A's rows k and below: Q's rows above k are e_i (their columns of the buffer
  // still hold reflectors until their turn), which H_k leaves alone
  for (Int k = m - 1; k >= 0; --k) {
    v[0] = T(1);
    for (Int j = k + 1; j < n; ++j) v[j - k] = at[j * Np + k];
    for (Int j = 0; j < n; ++j) at[j * Np + k] = T(j == k);  // row k of [I 0]
    if (tau[k] != T(0)) reflect(k, tau[k], k);
  }
  for (Int i = 0; i < m; ++i)
    for (Int j = 0; j < n; ++j) q[std::ptrdiff_t(i) * n + j] = at[j * Np + i];
  return full_rank;
}

template <class T>
bool small_lq(const T* a, T* q, T* l, Int m, Int n) {
  bool full_rank = true;
  run_best([&](auto) XL_INLINE {
    with_padded_width<kSmallLqMaxOrder>(m, [&](auto np) XL_INLINE {
      full_rank = small_lq_body<T, decltype(np)::value>(a, q, l, m, n);
    });
  });
  return full_rank;
}

// diag(L) ≥ 0 for small_lq's factors: row i of Q and column i of L flipped together; false when
// they are not finite.
template <class T>
bool nonnegative_diagonal(T* q, T* l, Int m, Int n) {
  for (Int i = 0; i < m; ++i)
    if (l[std::ptrdiff_t(i) * (m + 1)] < T(0)) {
      T* qi = q + std::ptrdiff_t(i) * n;
      for (Int j = 0; j < n; ++j) qi[j] = -qi[j];
      for (Int k = i; k < m; ++k) l[std::ptrdiff_t(k) * m + i] = -l[std::ptrdiff_t(k) * m + i];
    }
  return all_finite(q, std::int64_t(m) * n) && all_finite(l, std::int64_t(m) * m);
}

// The LQ factors of a finite A by ?geqrf and ?orgqr on Aᵀ (A's rows read column-major), with
// diag(L) ≥ 0; false when A has not full row rank or the factors are not finite. One pass between
// the two calls reads ?geqrf's result by rows: row i of L is the start of row i of the buffer
// (R(j, i), column-major, is q[i n + j]), taken times the signs s_j = sign(R_jj) (column j of L
// flipped), and the rest of the row is reflector i, whose finiteness, with its τ's, is the
// finiteness of Q (a product of reflections: no entry above 1); Q's rows then flip by s_i.
template <class T>
bool lapack_lq(const T* a, T* q, T* l, Int m, Int n, Int lwork, Buffer<T>& work) {
  team_copy(q, a, std::size_t(m) * n);
  work.resize(2 * std::size_t(m) + lwork);
  T *tau = work.data(), *sign = tau + m, *wk = sign + m;
  Int info = 0;
  routines<T>().geqrf(&n, &m, q, &n, tau, wk, &lwork, &info);
  bool ok = all_finite(tau, m);
  for (Int i = 0; i < m; ++i) {
    const T* qi = q + std::ptrdiff_t(i) * n;
    T* li = l + std::ptrdiff_t(i) * m;
    sign[i] = qi[i] < T(0) ? T(-1) : T(1);
    for (Int j = 0; j <= i; ++j) li[j] = qi[j] * sign[j];
    for (Int j = i + 1; j < m; ++j) li[j] = T(0);
    ok &= qi[i] != T(0) && all_finite(qi, n);
  }
  if (!ok) return false;
  routines<T>().orgqr(&n, &m, &m, q, &n, tau, wk, &lwork, &info);
  for (Int i = 0; i < m; ++i)
    if (sign[i] < T(0)) {
      T* qi = q + std::ptrdiff_t(i) * n;
      for (Int j = 0; j < n; ++j) qi[j] = -qi[j];
    }
  return info == 0;
}

// Q (m×n, orthonormal rows) and L (m×m lower, diag(L) ≥ 0) with A = L Q; false (both NaN) when
// A is not finite, not of full row rank (L_ii = 0) or the factors are not finite.
template <class T>
bool gelqf(const T* a, T* q, T* l, Int m, Int n, Int lwork, Buffer<T>& work) {
  if (m == 0) return true;
  bool ok = all_finite(a, std::int64_t(m) * n);
  if (ok && n <= kSmallLqMaxOrder)
    ok = small_lq(a, q, l, m, n) && nonnegative_diagonal(q, l, m, n);
  else if (ok)
    ok = lapack_lq(a, q, l, m, n, lwork, work);
  if (!ok) {
    fill_nan(q, std::int64_t(m) * n);
    fill_nan(l, std::int64_t(m) * m);
  }
  return ok;
}

// M = Lᵀ L̄ − Q̄ Qᵀ (its lower triangle, all that copyltu reads: Q̄ Qᵀ by gemm_triangle, half the
// flops of the product), Ā = L⁻ᵀ (Q̄ + copyltu(M) Q). The solve with Lᵀ is a product with L⁻¹
// (invert_upper: recursive, trmm), as trsm runs at a third of trmm's rate in OpenBLAS (m = 256:
// 0.8 ms against 0.16 ms for L⁻¹ and 0.3 ms for the product).
template <class T>
void gelqf_vjp(const T* q, const T* l, const T* gq, const T* gl, T* ga, Int m, Int n, Buffer<T>& work) {
  if (m == 0) return;
  const std::size_t msize = std::size_t(m) * m;
  work.resize(2 * msize);
  T* linv = work.data() + msize;
  team_copy(linv, l, msize);
  invert_upper(View<T>{linv, 1, m}, m);  // row-major L is column-major Lᵀ: Lᵀ⁻¹ = L⁻ᵀ, i.e. L⁻¹ row-major
  const View<T> qv = rowmajor(const_cast<T*>(q), m, n), lv = rowmajor(const_cast<T*>(l), m, m);
  const View<T> gqv = rowmajor(const_cast<T*>(gq), m, n), mv = rowmajor(work.data(), m, m), gav = rowmajor(ga, m, n);
  team_copy(work.data(), gl, msize);
  trmm<T>(true, true, true, m, m, T(1), lv, mv);                // Lᵀ L̄
  gemm_triangle<T>(true, false, gqv, true, qv, T(-1), T(1), mv, m, n);  // − Q̄ Qᵀ, the lower triangle
  symmetric_pairs(mv, m, [](Int, Int, T below, T) { return below; });   // copyltu
  team_copy(ga, gq, std::size_t(m) * n);
  gemm<T>(false, mv, false, qv, T(1), T(1), gav, m, n, m);      // Q̄ + copyltu(M) Q
  trmm<T>(true, true, true, m, n, T(1), rowmajor(linv, m, m), gav);  // L⁻ᵀ (...)
}

}  // namespace xl
