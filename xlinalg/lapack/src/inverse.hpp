// General square matrices per matrix: inverse, det, slogdet (LAPACK ?getrf, ?getri) and their
// reverses; small matrices are factored several at a time (lu_factor_lanes).
//
// ?getrf factors A itself (A = P L U, row interchanges of A, as NumPy and PyTorch do), from a
// column-major copy: an LU factorization of Aᵀ (the row-major buffer read column-major) would
// give the same values to rounding but other pivots, and exact zero pivots for other matrices.
// The transposed copies cost O(n²). (Two equal rows give an exact zero pivot in the unblocked
// elimination of lu_factor_lanes; LAPACK's blocked ?getrf, NumPy's and PyTorch's included, may
// round them to a small nonzero one.)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "blas.hpp"
#include "batch.hpp"
#include "isa.hpp"
#include "triangles.hpp"

namespace xl {

// The workspace ?getri wants at order n (one query per call).
template <class T>
Int getri_workspace(Int n) {
  if (n == 0) return 1;
  T wq = 0, dummy = 0;
  Int ipiv = 0, info = 0, query = -1;
  routines<T>().getri(&n, &dummy, &n, &ipiv, &wq, &query, &info);
  return workspace_size(wq, n);
}

// dst (n×n) = srcᵀ, by strips of 8 columns of src (8 rows of dst): each strip walks every row of
// src, where AVX2 runs by 8×8 (float32) or 4×4 (float64) register transposes, else by scalar
// copies. A strip reads whole cache lines of src once and writes 8 rows of dst front to back, so
// no cache set fills up at orders that are powers of two, as square tiles' rows do (a 2 KiB stride
// maps every row to two of the L1's sets). Measured, one thread, square 32×32 tiles → strips:
// n = 256 float64 55 → 29 µs, float32 19 → 16; n = 512 float64 370 → 297, float32 141 → 92; scalar
// copies in 8×8 tiles → strips, n = 1024 float64 1.85 → 1.07 ms.
template <class T>
void transpose(const T* src, T* dst, Int n) {
  run_best([&](auto isa) XL_INLINE {
    constexpr Int strip = 8;
    for (Int j0 = 0; j0 < n; j0 += strip)
      transpose_block<decltype(isa)::value>(src + j0, n, dst + std::ptrdiff_t(j0) * n, n, n, std::min(strip, n - j0));
  });
}

// ---- LU factors ---------------------------------------------------------------------------------
// Every routine below works from the LU factors of A = P L U (column-major: ?getrf's layout, and
// its 1-based pivots ipiv); a non-finite A gives non-finite factors.

// The LU factors of A into ``lu`` and ``ipiv``; LAPACK's info (> 0: U_ii = 0 exactly).
template <class T>
Int lu_factor(const T* a, T* lu, Int* ipiv, Int n) {
  transpose(a, lu, n);
  Int info = 0;
  routines<T>().getrf(&n, &n, lu, &n, ipiv, &info);
  return info;
}

// Up to this order LU factors are computed kLanes matrices at a time, interleaved. Measured
// against ?getrf one matrix at a time (det, one thread, batches of 4096 to 256): float64 2.1×
// faster at n = 4–16, 1.3× at 32; float32 2.4× at 4–16, 1.5× at 32; at 48 float64 is slower.
constexpr Int kLuLanesMaxOrder = 32;

// lu_factor of ``count`` ≤ kLanes matrices of order n at a time (a: row-major, one after the
// other; lu, ipiv, info: one n × n, n and 1 per matrix; ``x``: n · n · kLanes elements), element
// (i, k) of each next to the others' in x: ?getf2's right-looking elimination with partial
// pivoting (the first largest |x| of a column, no interchange on a zero column: LAPACK's choice),
// whose divisions and updates then run across the lanes. Lanes past ``count`` factor the identity.
template <class T>
inline XL_INLINE void lu_factor_lanes_body(const T* a, T* lu, Int* ipiv, Int* info, Int n, int count, T* x) {
  constexpr int W = kLanes;
  const std::size_t s = std::size_t(n) * n;
  auto at = [&](Int i, Int k) { return x + (std::size_t(i) * n + k) * W; };
  for (int w = 0; w < W; ++w)
    for (Int i = 0; i < n; ++i)
      for (Int k = 0; k < n; ++k) at(i, k)[w] = w < count ? a[w * s + std::size_t(i) * n + k] : T(i == k);
  for (int w = 0; w < count; ++w) info[w] = 0;
  for (Int k = 0; k < n; ++k) {
    for (int w = 0; w < count; ++w) {  // the pivot row of each lane, and its interchange
      Int p = k;
      T best = std::abs(at(k, k)[w]);
      for (Int i = k + 1; i < n; ++i)
        if (std::abs(at(i, k)[w]) > best) best = std::abs(at(i, k)[w]), p = i;
      ipiv[w * n + k] = p + 1;
      if (p != k)
        for (Int j = 0; j < n; ++j) std::swap(at(k, j)[w], at(p, j)[w]);
      if (at(k, k)[w] == T(0) && info[w] == 0) info[w] = k + 1;
    }
    const T* d = at(k, k);
    for (Int i = k + 1; i < n; ++i) {
      T* xik = at(i, k);
#pragma omp simd
      for (int w = 0; w < W; ++w) xik[w] = d[w] != T(0) ? xik[w] / d[w] : xik[w];
      for (Int j = k + 1; j < n; ++j) {
        T* xij = at(i, j);
        const T* xkj = at(k, j);
#pragma omp simd
        for (int w = 0; w < W; ++w) xij[w] -= xik[w] * xkj[w];
      }
    }
  }
  for (int w = 0; w < count; ++w)  // column-major, as ?getrf leaves them
    for (Int i = 0; i < n; ++i)
      for (Int k = 0; k < n; ++k) lu[w * s + std::size_t(k) * n + i] = at(i, k)[w];
}

template <class T>
void lu_factor_lanes(const T* a, T* lu, Int* ipiv, Int* info, Int n, int count, T* x) {
  run_best([&](auto) XL_INLINE { lu_factor_lanes_body(a, lu, ipiv, info, n, count, x); });
}

// ---- A⁻¹ from the LU factors ---------------------------------------------------------------------
// ?getri solves X L = U⁻¹ with trsm, which is slow in OpenBLAS (a third of its gemm rate at n = 256);
// here X = U⁻¹ L⁻¹ P with both triangular inverses and their product recursive, every flop in trmm
// or gemm (twice ?getri's speed at n = 256). Views are column-major (LAPACK's factors).
constexpr Int kRecursiveInverseBase = 32;

// U⁻¹ in place of the upper triangle of u (order n, non-unit diagonal).
template <class T>
void invert_upper(View<T> u, Int n) {
  if (n <= kRecursiveInverseBase) {
    for (Int j = 0; j < n; ++j) {  // LAPACK's ?trti2: column j of U⁻¹ from the columns before it
      T* x = &u(0, j);
      const T d = T(1) / u(j, j);
      for (Int k = 0; k < j; ++k) {
        const T t = x[k];
        const T* ck = &u(0, k);
#pragma omp simd
        for (Int i = 0; i < k; ++i) x[i] += t * ck[i];
        x[k] = t * ck[k];
      }
      for (Int i = 0; i < j; ++i) x[i] *= -d;
      u(j, j) = d;
    }
    return;
  }
  const Int n1 = n / 2, n2 = n - n1;
  const View<T> u11 = u.at(0, 0), u12 = u.at(0, n1), u22 = u.at(n1, n1);
  invert_upper(u11, n1);
  invert_upper(u22, n2);
  triangular<T>(false, false, false, false, false, n1, n2, T(1), u22, u12);   // U₁₂ X₂₂
  triangular<T>(false, true, false, false, false, n1, n2, T(-1), u11, u12);   // −X₁₁ U₁₂ X₂₂
}

// L⁻¹ in place of the strict lower triangle of l (order n, unit diagonal, not referenced).
template <class T>
void invert_unit_lower(View<T> l, Int n) {
  if (n <= kRecursiveInverseBase) {
    for (Int j = n - 2; j >= 0; --j) {  // column j of L⁻¹ from the columns after it
      T* x = &l(0, j);
      for (Int k = n - 1; k > j; --k) {
        const T t = x[k];
        const T* ck = &l(0, k);
#pragma omp simd
        for (Int i = k + 1; i < n; ++i) x[i] += t * ck[i];
      }
      for (Int i = j + 1; i < n; ++i) x[i] = -x[i];
    }
    return;
  }
  const Int n1 = n / 2, n2 = n - n1;
  const View<T> l11 = l.at(0, 0), l21 = l.at(n1, 0), l22 = l.at(n1, n1);
  invert_unit_lower(l11, n1);
  invert_unit_lower(l22, n2);
  triangular<T>(false, false, true, false, true, n2, n1, T(1), l11, l21);   // L₂₁ X₁₁
  triangular<T>(false, true, true, false, true, n2, n1, T(-1), l22, l21);   // −X₂₂ L₂₁ X₁₁
}

// out = U L for x holding U (upper) and the strict lower part of the unit lower L.
template <class T>
void upper_times_unit_lower(View<T> x, View<T> out, Int n) {
  if (n <= kRecursiveInverseBase) {
    for (Int j = 0; j < n; ++j) {
      T* o = &out(0, j);
      for (Int i = 0; i < n; ++i) o[i] = T(0);
      for (Int k = j; k < n; ++k) {  // out(:, j) += U(:, k) L(k, j), U(i, k) = 0 for i > k
        const T t = k == j ? T(1) : x(k, j);
        const T* ck = &x(0, k);
#pragma omp simd
        for (Int i = 0; i <= k; ++i) o[i] += t * ck[i];
      }
    }
    return;
  }
  const Int n1 = n / 2, n2 = n - n1;
  const View<T> x11 = x.at(0, 0), x12 = x.at(0, n1), x21 = x.at(n1, 0), x22 = x.at(n1, n1);
  const View<T> o11 = out.at(0, 0), o12 = out.at(0, n1), o21 = out.at(n1, 0), o22 = out.at(n1, n1);
  for (Int j = 0; j < n2; ++j)
    for (Int i = 0; i < n1; ++i) o12(i, j) = x12(i, j);
  triangular<T>(false, false, true, false, true, n1, n2, T(1), x22, o12);   // U₁₂ L₂₂
  for (Int j = 0; j < n1; ++j)
    for (Int i = 0; i < n2; ++i) o21(i, j) = x21(i, j);
  triangular<T>(false, true, false, false, false, n2, n1, T(1), x22, o21);  // U₂₂ L₂₁
  upper_times_unit_lower(x11, o11, n1);
  gemm<T>(false, x12, false, x21, T(1), T(1), o11, n1, n1, n2);             // + U₁₂ L₂₁
  upper_times_unit_lower(x22, o22, n2);
}

// out (column-major, holding U⁻¹ L⁻¹) = U⁻¹ L⁻¹ Pᵀ = A⁻¹: ?getrf's row interchanges, last to
// first, on the columns.
template <class T>
void undo_row_interchanges(const Int* ipiv, T* out, Int n) {
  for (Int j = n - 2; j >= 0; --j) {
    const Int p = ipiv[j] - 1;
    if (p != j) std::swap_ranges(out + std::size_t(j) * n, out + std::size_t(j + 1) * n, out + std::size_t(p) * n);
  }
}

// out (column-major) = A⁻¹ from ?getrf's factors of A in lu (column-major, overwritten).
template <class T>
void lu_inverse(T* lu, const Int* ipiv, T* out, Int n) {
  const View<T> x{lu, 1, n}, o{out, 1, n};
  invert_upper(x, n);
  invert_unit_lower(x, n);
  upper_times_unit_lower(x, o, n);
  undo_row_interchanges(ipiv, out, n);
}

// Up to this order A⁻¹ comes from small_lu_inverse: ?getri calls the BLAS once or twice per column
// at these orders (8 µs for one float32 32×32 inverse here, a third of it per-call overhead).
constexpr Int kSmallInverseMaxOrder = 32;

// z (row-major n×n) = A⁻ᵀ, that is the column-major A⁻¹, from ?getrf's factors of A = P L U (lu:
// column-major, U with a nonzero diagonal): A⁻ᵀ = P L⁻ᵀ U⁻ᵀ, row by row in a local copy whose rows
// have NP ≥ n values (fixed lengths: unrolled and vectorized; the columns past n stay zero), each
// row summed in registers from the rows before it and stored once: W = U⁻ᵀ by forward
// substitution from the identity, V = L⁻ᵀ W by back substitution, then P V (the row interchanges
// last to first).
template <class T, int NP>
inline XL_INLINE void small_lu_inverse_body(const T* lu, const Int* ipiv, T* z, Int n) {
  const std::ptrdiff_t ld = n;
  alignas(64) T x[kSmallInverseMaxOrder * NP];
  for (Int k = 0; k < n; ++k) {  // Uᵀ W = I: W_k = (e_k − Σ_{j<k} U(j, k) W_j) / U(k, k)
    T acc[NP];
    for (int c = 0; c < NP; ++c) acc[c] = T(c == k);
    const T* u = lu + k * ld;  // column k of U
    for (Int j = 0; j < k; ++j) {
      const T* xj = x + j * NP;
#pragma omp simd
      for (int c = 0; c < NP; ++c) acc[c] -= u[j] * xj[c];
    }
    const T d = T(1) / u[k];
    T* xk = x + k * NP;
#pragma omp simd
    for (int c = 0; c < NP; ++c) xk[c] = acc[c] * d;
  }
  for (Int i = n - 2; i >= 0; --i) {  // Lᵀ V = W: V_i = W_i − Σ_{k>i} L(k, i) V_k
    T* xi = x + i * NP;
    T acc[NP];
    for (int c = 0; c < NP; ++c) acc[c] = xi[c];
    const T* l = lu + i * ld;  // column i of L
    for (Int k = i + 1; k < n; ++k) {
      const T* xk = x + k * NP;
#pragma omp simd
      for (int c = 0; c < NP; ++c) acc[c] -= l[k] * xk[c];
    }
    for (int c = 0; c < NP; ++c) xi[c] = acc[c];
  }
  for (Int j = n - 1; j >= 0; --j) {
    const Int p = ipiv[j] - 1;
    if (p != j) std::swap_ranges(x + j * NP, x + (j + 1) * NP, x + p * NP);
  }
  for (Int i = 0; i < n; ++i)
    for (Int j = 0; j < n; ++j) z[i * ld + j] = x[i * NP + j];
}

template <class T>
void small_lu_inverse(const T* lu, const Int* ipiv, T* z, Int n) {
  run_best([&](auto) XL_INLINE {
    with_padded_width<32>(n, [&](auto np) XL_INLINE { small_lu_inverse_body<T, decltype(np)::value>(lu, ipiv, z, n); });
  });
}

// U⁻¹ in place of the upper triangle of u (order n, non-unit diagonal), as invert_upper but every
// flop in trsm: X₁₂ = −U₁₁⁻¹ U₁₂ U₂₂⁻¹ by two solves with the blocks of U itself, then the two
// diagonal blocks. For a BLAS called whole (torch's MKL): its trsm runs at its gemm's rate, and
// its trmm is not at hand.
template <class T>
void invert_upper_by_solves(View<T> u, Int n) {
  if (n <= kRecursiveInverseBase) {
    invert_upper(u, n);
    return;
  }
  const Int n1 = n / 2, n2 = n - n1;
  const View<T> u11 = u.at(0, 0), u12 = u.at(0, n1), u22 = u.at(n1, n1);
  triangular<T>(true, false, false, false, false, n1, n2, T(1), u22, u12);  // U₁₂ U₂₂⁻¹
  triangular<T>(true, true, false, false, false, n1, n2, T(-1), u11, u12);  // −U₁₁⁻¹ U₁₂ U₂₂⁻¹
  invert_upper_by_solves(u11, n1);
  invert_upper_by_solves(u22, n2);
}

// out (column-major) = A⁻¹ = U⁻¹ L⁻¹ Pᵀ from ?getrf's factors of A = P L U (lu: read only), as
// ?getri computes it (2n³/3 multiply-adds, a third less than solving A X = I): U⁻¹ in out (zeros
// below it) by invert_upper_by_solves, then X L = U⁻¹ by one trsm, every flop in trsm (for a BLAS
// called whole; lu_inverse's are trmm's).
template <class T>
void lu_inverse_by_solves(const T* lu, const Int* ipiv, T* out, Int n) {
  for (Int j = 0; j < n; ++j) {
    const std::size_t c = std::size_t(j) * n;
    std::copy(lu + c, lu + c + j + 1, out + c);
    std::fill(out + c + j + 1, out + c + n, T(0));
  }
  const View<T> f{const_cast<T*>(lu), 1, n}, x{out, 1, n};
  invert_upper_by_solves(x, n);
  triangular<T>(true, false, true, false, true, n, n, T(1), f, x);  // U⁻¹ L⁻¹
  undo_row_interchanges(ipiv, out, n);
}

// out (column-major) = A⁻¹ from ?getrf's factors (lu: read only) as ?getrs solves A X = I:
// X = Pᵀ I, then L⁻¹ X and U⁻¹ X, two solves with n right-hand sides (n³ multiply-adds, half again
// lu_inverse_by_solves' 2n³/3, but two large calls that a threaded BLAS splits well, where the
// other makes many small ones).
template <class T>
void lu_inverse_by_identity_solves(const T* lu, const Int* ipiv, T* out, Int n) {
  std::fill(out, out + std::size_t(n) * n, T(0));
  std::vector<Int> row(n);  // row[i]: the row of I that the interchanges bring to row i
  for (Int i = 0; i < n; ++i) row[i] = i;
  for (Int i = 0; i < n; ++i) std::swap(row[i], row[ipiv[i] - 1]);
  for (Int i = 0; i < n; ++i) out[i + std::size_t(row[i]) * n] = T(1);
  const View<T> f{const_cast<T*>(lu), 1, n}, x{out, 1, n};
  triangular<T>(true, true, true, false, true, n, n, T(1), f, x);    // L⁻¹ Pᵀ
  triangular<T>(true, true, false, false, false, n, n, T(1), f, x);  // U⁻¹ L⁻¹ Pᵀ
}

// Up to this order, with a BLAS called whole on several threads, A⁻¹ comes from
// lu_inverse_by_identity_solves (measured, torch's MKL on two threads, the inverse alone:
// n = 256 float64 0.78 → 0.68 ms, float32 0.52 → 0.47; even at 512; at 768 8.6 → 9.3 ms).
constexpr Int kIdentitySolvesMaxOrder = 384;

// From this order on lu_inverse beats ?getri (measured, one thread: 0.95 at n = 48, 0.76 at 256;
// 1.1 at n = 16 and 32, where the BLAS calls' overhead dominates).
constexpr Int kLuInverseMinOrder = 48;

// Whether invert_lu at order n only reads ``lu`` (small_lu_inverse, lu_inverse_by_solves,
// lu_inverse_by_identity_solves).
inline bool invert_lu_reads_only(Int n) { return n <= kSmallInverseMaxOrder || blas_called_whole(); }

// out (column-major) = A⁻¹ from ?getrf's factors in lu (overwritten unless invert_lu_reads_only);
// ``work``: lwork elements. false when U has a zero on its diagonal.
template <class T>
bool invert_lu(T* lu, const Int* ipiv, T* out, T* work, Int n, Int lwork) {
  for (Int i = 0; i < n; ++i)
    if (lu[std::size_t(i) * (n + 1)] == T(0)) return false;
  if (n <= kSmallInverseMaxOrder) {
    small_lu_inverse(lu, ipiv, out, n);
    return true;
  }
  if (blas_called_whole() && team().size > 1 && n <= kIdentitySolvesMaxOrder) {
    lu_inverse_by_identity_solves(lu, ipiv, out, n);
    return true;
  }
  if (blas_called_whole()) {
    lu_inverse_by_solves(lu, ipiv, out, n);
    return true;
  }
  if (n >= kLuInverseMinOrder) {
    lu_inverse(lu, ipiv, out, n);
    return true;
  }
  Int info = 0;
  routines<T>().getri(&n, lu, &n, ipiv, work, &lwork, &info);
  team_copy(out, lu, std::size_t(n) * n);
  return info == 0;
}

// (m, e) with m · 2^e = ∏ s_i: a product that neither overflows nor underflows on the way.
template <class T>
struct Scaled {
  T m = 1;
  int e = 0;
  void times(T x) {
    int k = 0;
    m = std::frexp(m * x, &k);
    e += k;
  }
  T value() const { return std::ldexp(m, e); }
};

// sign(det P) of the pivots of ?getrf
inline bool odd_permutation(const Int* ipiv, Int n) {
  bool odd = false;
  for (Int i = 0; i < n; ++i) odd ^= (ipiv[i] != i + 1);
  return odd;
}

// ---- inverse ------------------------------------------------------------------------------------
// out = A⁻¹ from A's LU factors (overwritten) and ?getrf's info; ``finite``: whether A is. False
// (out NaN) when A is not finite, singular (a zero pivot) or A⁻¹ not finite. ``work``: n · n +
// lwork elements.
template <class T>
bool inverse_of_lu(T* lu, const Int* ipiv, Int info, bool finite, T* out, Int n, Int lwork, T* work) {
  if (n == 0) return true;
  const std::int64_t size = std::int64_t(n) * n;
  T* x = work + lwork;
  const bool ok = finite && info == 0 && invert_lu(lu, ipiv, x, work, n, lwork) && all_finite(x, size);
  if (ok)
    transpose(x, out, n);
  else
    fill_nan(out, size);
  return ok;
}

// Ā = −Xᵀ Ḡ Xᵀ
template <class T>
void inverse_vjp(const T* x, const T* g, T* ga, Int n, Buffer<T>& work) {
  if (n == 0) return;
  work.resize(std::size_t(n) * n);
  const View<T> xv = rowmajor(const_cast<T*>(x), n, n), gv = rowmajor(const_cast<T*>(g), n, n);
  const View<T> tv = rowmajor(work.data(), n, n), gav = rowmajor(ga, n, n);
  gemm<T>(false, gv, true, xv, T(1), T(0), tv, n, n, n);    // Ḡ Xᵀ
  gemm<T>(true, xv, false, tv, T(-1), T(0), gav, n, n, n);  // −Xᵀ Ḡ Xᵀ
}

// ---- det, slogdet -------------------------------------------------------------------------------
// det A from its LU factors (a zero pivot gives 0; NaN and inf propagate).
template <class T>
T det_of_lu(const T* lu, const Int* ipiv, Int n) {
  Scaled<T> p;
  for (Int i = 0; i < n; ++i) p.times(lu[std::size_t(i) * (n + 1)]);
  const T d = p.value();
  return odd_permutation(ipiv, n) ? -d : d;
}

// Whether A (row-major, order n) is finite, from its LU factors ``lu`` and ?getrf's ``info`` where
// they tell: a NaN or infinity in A reaches U's diagonal (the pivot search takes an infinity, a NaN
// spreads through every later update), so a complete factorization with a finite diagonal is one
// of a finite A; otherwise A itself is scanned (slogdet of order 1024: a scan of 8 MB saved).
template <class T>
bool factored_finite(const T* a, const T* lu, Int info, Int n) {
  T d = 0;
  for (Int i = 0; i < n; ++i) d += lu[std::size_t(i) * (n + 1)] * T(0);  // 0 unless some entry is not finite
  return (info == 0 && d == T(0)) || all_finite(a, std::int64_t(n) * n);
}

// (sign, log|det A|) from A's LU factors and ?getrf's info: (0, −inf) for a zero pivot, (NaN, NaN)
// when A is not finite (``finite``).
template <class T>
void slogdet_of_lu(const T* lu, const Int* ipiv, Int info, bool finite, T* sign, T* logabsdet, Int n) {
  if (!finite) {
    *sign = *logabsdet = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  if (info != 0) {
    *sign = T(0);
    *logabsdet = -std::numeric_limits<T>::infinity();
    return;
  }
  bool negative = odd_permutation(ipiv, n);
  T s = 0;
  for (Int i = 0; i < n; ++i) {
    const T d = lu[std::size_t(i) * (n + 1)];
    negative ^= d < T(0);
    s += std::log(std::abs(d));
  }
  *sign = negative ? T(-1) : T(1);
  *logabsdet = s;
}

// ga = c · 2^e · x for the n×n x (element by element when c · 2^e alone would overflow or
// underflow).
template <class T>
void scaled_copy(const T* x, T c, int e, T* ga, Int n) {
  const std::size_t size = std::size_t(n) * n;
  const T factor = std::ldexp(c, e);
  if (c == T(0) || (std::isfinite(factor) && std::abs(factor) >= std::numeric_limits<T>::min())) {
    for (std::size_t i = 0; i < size; ++i) ga[i] = factor * x[i];
  } else {
    for (std::size_t i = 0; i < size; ++i) ga[i] = std::ldexp(c * x[i], e);
  }
}

// The cofactor matrix C = adj(A)ᵀ (∂ det A/∂A) times ḡ from the LU factors of A = P L U (``lu``,
// overwritten; ``work``: lwork elements): C = det(P) (∏ U_ii) A⁻ᵀ, A⁻ᵀ being the column-major
// A⁻¹ read row-major, with |U_ii| below the smallest normal number replaced by ε max|U_jj| (the
// smallest normal number when U = 0), as core/inverse.py does with the diagonal of R in A = Q R:
// a perturbation of A within the backward error of the factorization, after which the 1/U_kk in
// A⁻ᵀ cancels against the U_kk in the product, so that C is finite and exact to rounding at
// singular A (rank n − 1), and 0 to rounding at rank < n − 1. NaN for non-finite factors.
template <class T>
void det_vjp_lu(T* lu, const Int* ipiv, T g, T* ga, Int n, Int lwork, T* work) {
  const std::size_t size = std::size_t(n) * n;
  if (!all_finite(lu, std::int64_t(size))) {
    fill_nan(ga, std::int64_t(size));
    return;
  }
  T scale = 0;
  for (Int i = 0; i < n; ++i) scale = std::max(scale, std::abs(lu[std::size_t(i) * (n + 1)]));
  const T tiny = std::numeric_limits<T>::min();
  const T bump = scale > T(0) ? std::numeric_limits<T>::epsilon() * scale : tiny;
  Scaled<T> p;
  for (Int i = 0; i < n; ++i) {
    T& d = lu[std::size_t(i) * (n + 1)];
    if (std::abs(d) < tiny) d = bump;
    p.times(d);
  }
  if (!invert_lu(lu, ipiv, ga, work, n, lwork)) {
    fill_nan(ga, std::int64_t(size));
    return;
  }
  scaled_copy(ga, odd_permutation(ipiv, n) ? -g * p.m : g * p.m, p.e, ga, n);
}

// Ā = ḡ A⁻ᵀ from the LU factors (overwritten as by invert_lu); NaN where A is singular (a zero pivot) or not
// finite, as the pure rule's inverse.
template <class T>
void slogdet_vjp_lu(T* lu, const Int* ipiv, T g, T* ga, Int n, Int lwork, T* work) {
  const std::size_t size = std::size_t(n) * n;
  if (!all_finite(lu, std::int64_t(size)) || !invert_lu(lu, ipiv, ga, work, n, lwork)) {
    fill_nan(ga, std::int64_t(size));
    return;
  }
  scaled_copy(ga, g, 0, ga, n);
}

// The reverse of det (``log``: slogdet) from A's LU factors (overwritten; ``work``: lwork elements).
template <class T>
void determinant_vjp_lu(bool log, T* lu, const Int* ipiv, T g, T* ga, Int n, Int lwork, T* work) {
  if (log)
    slogdet_vjp_lu(lu, ipiv, g, ga, n, lwork, work);
  else
    det_vjp_lu(lu, ipiv, g, ga, n, lwork, work);
}

}  // namespace xl
