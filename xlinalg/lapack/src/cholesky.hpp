// Cholesky family per matrix: potrf (forward and Murray's blocked reverse), potrs, potri, sumlogdiag.
//
// Every routine works on the *lower* factor L through a view: the caller's row-major lower factor
// is the view {n, 1}, its row-major upper factor U = Lᵀ the view {1, n} of the same buffer.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "blas.hpp"
#include "batch.hpp"
#include "triangles.hpp"

namespace xl {

// The lower factor L as stored in a row-major buffer holding L (``lower``) or U = Lᵀ.
template <class T>
View<T> factor(T* p, Int n, bool lower) {
  return lower ? View<T>{p, n, 1} : View<T>{p, 1, n};
}

template <class T>
bool diagonal_finite_positive(View<T> a, Int n) {
  for (Int i = 0; i < n; ++i)
    if (!(a(i, i) > T(0)) || !std::isfinite(a(i, i))) return false;
  return true;
}

// ---- potrf forward ------------------------------------------------------------------------------
// Orders up to which the forward is potrf_blocked rather than one LAPACK call: measured against
// OpenBLAS's potrf (Intel CPU, one thread) 25–31% less time at n = 64–256 in float32, 18–30% at
// n = 64–128 in float64; even at float64 256 and float32 512, slower at float32 1024.
template <class T>
constexpr Int blocked_potrf_max_order() {
  return sizeof(T) == sizeof(float) ? 256 : 128;
}

// LAPACK's potrf on the lower triangle of the view ``l`` (order n), in place: its info.
template <class T>
Int lapack_potrf(View<T> l, Int n) {
  const char u = uplo(l, true);
  const Int ld = l.ld();
  Int info = 0;
  routines<T>().potrf(&u, &n, l.p, &ld, &info);
  return info;
}

// The lower Cholesky factor of the lower triangle of ``l`` (order n), in place, right-looking by
// block columns of kSmallTriangular: D = chol(A_kk) (a small LAPACK call), P = A_{>k,k} D⁻ᵀ (a
// triangular solve of that order: no BLAS call), then A_{>k,>k} −= P Pᵀ on its lower triangle
// (gemm_triangle). LAPACK's potrf takes the same steps with its trsm and syrk, which an OpenBLAS
// may run at a fraction of its gemm's rate. The other triangle is partly overwritten. false at
// the first pivot that is not positive (or not finite).
template <class T>
bool potrf_blocked(View<T> l, Int n) {
  constexpr Int nb = kSmallTriangular;
  for (Int k = 0; k < n; k += nb) {
    const Int m = std::min<Int>(nb, n - k), r = n - k - m;
    const View<T> d = l.at(k, k);
    if (lapack_potrf(d, m) != 0) return false;
    if (r > 0) {
      const View<T> p = l.at(k + m, k);
      triangular<T>(true, false, true, true, r, m, T(1), d, p);  // P ← P D⁻ᵀ
      gemm_triangle<T>(true, false, p, true, p, T(-1), T(1), l.at(k + m, k + m), r, m);
    }
  }
  return true;
}

// out = the factor of a's named triangle; false (and out NaN) when a is not positive definite or
// not finite: a non-finite entry of the read triangle always reaches the factor's diagonal.
// (Orders up to kLanesMaxOrder are factored by potrf_lanes.)
template <class T>
bool potrf(const T* a, T* out, Int n, bool lower) {
  View<T> l = factor(out, n, lower);
  team_copy(out, a, std::size_t(n) * n);
  const bool blocked = n <= blocked_potrf_max_order<T>() && !blas_called_whole();
  const bool factored = blocked ? potrf_blocked(l, n) : lapack_potrf(l, n) == 0;
  if (!factored || !diagonal_finite_positive(l, n)) {
    fill_nan(out, std::int64_t(n) * n);
    return false;
  }
  mask_triangle(l, n, true);
  return true;
}

// ---- potrf forward and reverse on batches of small matrices ---------------------------------------
// Up to this order matrices are factored, and differentiated, kLanes at a time, element (i, k) of
// each side by side ("interleaved"): the lanes' square roots and divisions, whose latency
// dominates one small factorization, then run in vector registers and overlap. Measured against
// one matrix at a time (forward: an unblocked loop by rows to order 24, LAPACK above; reverse:
// cholesky_reverse_rows), one thread, batches of 4096 to 256. Forward: float64 1.9× faster at
// n = 4, 1.4× at 8, 1.1–1.2× at 12–16, 2× or more at 24–32, 1.15× at 40, even at 48; float32
// 1.4× at 16–24, 2× at 32–40.
// Reverse: float64 2–2.5× at n = 4–12, 1.5× at 16, 1.2× at 24–40; float32 2–2.5× up to 44.
constexpr Int kLanesMaxOrder = 40;

// Factors ``count`` ≤ kLanes matrices of order n (a and out hold them one after the other, n × n
// each; ``work`` the interleaved copy): as potrf does, the factor of each named triangle, or NaN
// and status 1 where it is not positive definite or not finite. Lanes past ``count`` factor the
// identity, so every matrix gets the same arithmetic wherever it sits in a batch.
template <class T>
void potrf_lanes(const T* a, T* out, Int n, bool lower, int count, std::int32_t* status, Buffer<T>& work) {
  constexpr int W = kLanes;
  const std::size_t s = std::size_t(n) * n;
  work.resize(s * W);
  T* x = work.data();  // x[(i n + k) W + w]: element (i, k) of lane w
  auto at = [&](Int i, Int k) { return x + (std::size_t(i) * n + k) * W; };
  for (int w = 0; w < W; ++w) {
    if (w >= count) {
      for (Int i = 0; i < n; ++i)
        for (Int k = 0; k <= i; ++k) at(i, k)[w] = T(i == k);
      continue;
    }
    const View<T> src = factor(const_cast<T*>(a + w * s), n, lower);
    for (Int i = 0; i < n; ++i)
      for (Int k = 0; k <= i; ++k) at(i, k)[w] = src(i, k);
  }
  bool ok[W];
  for (int w = 0; w < W; ++w) ok[w] = true;
  for (Int j = 0; j < n; ++j) {  // left-looking: column j from the columns before it
    T d[W];
    T* xjj = at(j, j);
    for (int w = 0; w < W; ++w) d[w] = xjj[w];
    for (Int k = 0; k < j; ++k) {
      const T* xjk = at(j, k);
#pragma omp simd
      for (int w = 0; w < W; ++w) d[w] -= xjk[w] * xjk[w];
    }
#pragma omp simd
    for (int w = 0; w < W; ++w) {
      ok[w] = ok[w] && d[w] > T(0) && d[w] <= std::numeric_limits<T>::max();  // (NaN fails both)
      d[w] = std::sqrt(d[w]);
      xjj[w] = d[w];
    }
    for (Int i = j + 1; i < n; ++i) {
      T* xij = at(i, j);
      for (Int k = 0; k < j; ++k) {
        const T *xik = at(i, k), *xjk = at(j, k);
#pragma omp simd
        for (int w = 0; w < W; ++w) xij[w] -= xik[w] * xjk[w];
      }
#pragma omp simd
      for (int w = 0; w < W; ++w) xij[w] /= d[w];
    }
  }
  for (int w = 0; w < count; ++w) {
    status[w] = !ok[w];
    if (!ok[w]) {
      fill_nan(out + w * s, std::int64_t(s));
      continue;
    }
    const View<T> l = factor(out + w * s, n, lower);
    for (Int i = 0; i < n; ++i)
      for (Int k = 0; k <= i; ++k) l(i, k) = at(i, k)[w];
    mask_triangle(l, n, true);
  }
}

// ---- potrf reverse (Murray 2016) ----------------------------------------------------------------
// Unblocked reverse of the left-looking Cholesky on an m×m block stored by rows (l(i, k) at
// l[i * ldl + k]): ``a`` holds L̄ (lower) on entry and the gradient with respect to the lower
// triangle of A on exit (off-diagonal entries count both triangles: the symmetric gradient is
// (Ā + Āᵀ)/2 off the diagonal). Rows are contiguous, so the inner loops vectorize.
template <class T>
void cholesky_reverse_rows(const T* __restrict__ l, std::ptrdiff_t ldl, T* __restrict__ a, std::ptrdiff_t lda, Int m) {
  for (Int j = m - 1; j >= 0; --j) {
    const T* lj = l + j * ldl;
    T* aj = a + j * lda;
    const T ljj = lj[j];
    T ajj = aj[j];
    for (Int i = j + 1; i < m; ++i) {  // L_ij = (A_ij − Σ_k L_ik L_jk) / L_jj
      const T* li = l + i * ldl;
      T* ai = a + i * lda;
      const T t = ai[j] / ljj;
      ai[j] = t;
      ajj -= t * li[j];
      for (Int k = 0; k < j; ++k) ai[k] -= t * lj[k];
      for (Int k = 0; k < j; ++k) aj[k] -= t * li[k];
    }
    const T s = ajj / (T(2) * ljj);  // L_jj = √(A_jj − Σ_k L_jk²)
    aj[j] = s;
    for (Int k = 0; k < j; ++k) aj[k] -= T(2) * s * lj[k];
  }
}

// cholesky_reverse_rows on ``count`` ≤ kLanes matrices of order n at a time, interleaved as in
// potrf_lanes: potrf_vjp of each factor f and cotangent g (one after the other, n × n each) into
// out. Lanes past ``count`` run the identity's factor with a zero cotangent, so every matrix gets
// the same arithmetic wherever it sits in a batch (and potrf_vjp's arithmetic, bit for bit).
template <class T>
void potrf_vjp_lanes(const T* f, const T* g, T* out, Int n, bool lower, int count, Buffer<T>& work) {
  constexpr int W = kLanes;
  const std::size_t s = std::size_t(n) * n;
  work.resize(2 * s * W);
  T *l = work.data(), *a = l + s * W;  // [(i n + k) W + w]
  auto at = [&](T* x, Int i, Int k) { return x + (std::size_t(i) * n + k) * W; };
  for (int w = 0; w < W; ++w) {
    if (w >= count) {
      for (Int i = 0; i < n; ++i)
        for (Int k = 0; k <= i; ++k) at(l, i, k)[w] = T(i == k), at(a, i, k)[w] = T(0);
      continue;
    }
    const View<T> lf = factor(const_cast<T*>(f + w * s), n, lower), lg = factor(const_cast<T*>(g + w * s), n, lower);
    for (Int i = 0; i < n; ++i)
      for (Int k = 0; k <= i; ++k) at(l, i, k)[w] = lf(i, k), at(a, i, k)[w] = lg(i, k);
  }
  for (Int j = n - 1; j >= 0; --j) {  // as cholesky_reverse_rows, lane by lane
    const T* ljj = at(l, j, j);
    T ajj[W];
    for (int w = 0; w < W; ++w) ajj[w] = at(a, j, j)[w];
    for (Int i = j + 1; i < n; ++i) {
      T t[W];
      T *aij = at(a, i, j);
      const T* lij = at(l, i, j);
#pragma omp simd
      for (int w = 0; w < W; ++w) {
        t[w] = aij[w] / ljj[w];
        aij[w] = t[w];
        ajj[w] -= t[w] * lij[w];
      }
      for (Int k = 0; k < j; ++k) {
        T *aik = at(a, i, k), *ajk = at(a, j, k);
        const T *ljk = at(l, j, k), *lik = at(l, i, k);
#pragma omp simd
        for (int w = 0; w < W; ++w) aik[w] -= t[w] * ljk[w];
#pragma omp simd
        for (int w = 0; w < W; ++w) ajk[w] -= t[w] * lik[w];
      }
    }
    T sj[W];
    T* aj = at(a, j, j);
#pragma omp simd
    for (int w = 0; w < W; ++w) {
      sj[w] = ajj[w] / (T(2) * ljj[w]);
      aj[w] = sj[w];
    }
    for (Int k = 0; k < j; ++k) {
      T* ajk = at(a, j, k);
      const T* ljk = at(l, j, k);
#pragma omp simd
      for (int w = 0; w < W; ++w) ajk[w] -= T(2) * sj[w] * ljk[w];
    }
  }
  for (int w = 0; w < count; ++w) {  // as potrf_vjp: both triangles, halved off the diagonal
    View<T> o = factor(out + w * s, n, lower);
    for (Int i = 0; i < n; ++i) {
      o(i, i) = at(a, i, i)[w];
      for (Int k = 0; k < i; ++k) o(k, i) = o(i, k) = at(a, i, k)[w] * T(0.5);
    }
  }
}

// The same on views of any layout: by rows in place, or through row-major copies of the
// lower triangles (a column-major view: an upper factor in the caller's row-major buffer).
template <class T>
void cholesky_reverse_unblocked(View<T> l, View<T> a, Int m, Buffer<T>& rows) {
  if (l.cs == 1 && a.cs == 1) {
    cholesky_reverse_rows(l.p, l.rs, a.p, a.rs, m);
    return;
  }
  rows.resize(2 * std::size_t(m) * m);
  T *lr = rows.data(), *ar = lr + std::size_t(m) * m;
  for (Int i = 0; i < m; ++i)
    for (Int k = 0; k <= i; ++k) {
      lr[std::size_t(i) * m + k] = l(i, k);
      ar[std::size_t(i) * m + k] = a(i, k);
    }
  cholesky_reverse_rows(lr, m, ar, m, m);
  for (Int i = 0; i < m; ++i)
    for (Int k = 0; k <= i; ++k) a(i, k) = ar[std::size_t(i) * m + k];
}

// Blocked, in place: the forward's blocks in reverse order, level-3 BLAS between them. For the
// block rows j:k, with R = L[j:k, :j], D = L[j:k, j:k], B = L[k:, :j], C = L[k:, j:k] and the
// forward D = chol(A_DD − R Rᵀ), C = (A_CD − B Rᵀ) D⁻ᵀ:
//   C̄ ← C̄ D⁻¹;  D̄ −= tril(C̄ᵀ C);  B̄ −= C̄ R;  R̄ −= C̄ᵀ B;  D̄ ← reverse_unblocked(D, D̄);
//   R̄ −= (D̄ + D̄ᵀ) R.
template <class T>
void cholesky_reverse(View<T> l, View<T> a, Int n, Int nb, Buffer<T>& work) {
  if (n <= nb) {
    cholesky_reverse_unblocked(l, a, n, work);
    return;
  }
  Buffer<T> sym(std::size_t(nb) * nb);
  for (Int k = n; k > 0; k -= nb) {
    const Int j = std::max<Int>(0, k - nb), m = k - j, r = n - k;
    const View<T> R = l.at(j, 0), D = l.at(j, j), B = l.at(k, 0), C = l.at(k, j);
    const View<T> Rb = a.at(j, 0), Db = a.at(j, j), Bb = a.at(k, 0), Cb = a.at(k, j);
    if (r > 0) {
      trsm<T>(false, true, false, r, m, T(1), D, Cb);
      gemm<T>(true, Cb, false, C, T(-1), T(1), Db, m, m, r);  // its strict upper part is never read
      if (j > 0) {
        gemm<T>(false, Cb, false, R, T(-1), T(1), Bb, r, j, m);
        gemm<T>(true, Cb, false, B, T(-1), T(1), Rb, m, j, r);
      }
    }
    cholesky_reverse_unblocked(D, Db, m, work);
    if (j > 0) {
      View<T> w{sym.data(), 1, m};  // D̄ + D̄ᵀ from the lower triangle
      for (Int c = 0; c < m; ++c)
        for (Int i = 0; i < m; ++i) w(i, c) = i > c ? Db(i, c) : i < c ? Db(c, i) : T(2) * Db(i, i);
      gemm<T>(false, w, false, R, T(-1), T(1), Rb, m, j, m);
    }
  }
}

// Block size of the reverse (measured, one thread: 32 is best to n ≈ 256, 64 at 1024; larger
// blocks pay off for large n: fewer, larger BLAS calls).
inline Int reverse_block(Int n) { return n <= 384 ? 32 : n < 1536 ? 64 : 128; }

// Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹) from the factor ``f`` and its cotangent ``g`` (both in the caller's
// layout: only their named triangle is read); the symmetric result in ``out``.
template <class T>
void potrf_vjp(const T* f, const T* g, T* out, Int n, bool lower, Buffer<T>& work) {
  const View<T> l = factor(const_cast<T*>(f), n, lower);
  View<T> a = factor(out, n, lower);
  for (Int i = 0; i < n; ++i) {  // the named triangle of Ḡ, by the rows of the buffers
    const std::size_t row = std::size_t(i) * n, begin = lower ? 0 : i, end = lower ? i + 1 : n;
    std::copy(g + row + begin, g + row + end, out + row + begin);
  }
  cholesky_reverse(l, a, n, reverse_block(n), work);
  symmetric_pairs(a, n, [](Int, Int, T below, T) { return below * T(0.5); });
}

// ---- potrs --------------------------------------------------------------------------------------
// out (n×k) = A⁻¹ B with A = L Lᵀ, and where ``y`` is non-null Y = L⁻¹ B there (kept for the
// reverse); false (out NaN) when the result is not finite.
template <class T>
bool potrs(const T* f, const T* b, T* out, T* y, Int n, Int k, bool lower) {
  const View<T> l = factor(const_cast<T*>(f), n, lower);
  const std::size_t count = std::size_t(n) * k;
  team_copy(out, b, count);
  View<T> x = rowmajor(out, n, k);
  trsm<T>(true, true, false, n, k, T(1), l, x);
  if (y) team_copy(y, out, count);
  trsm<T>(true, true, true, n, k, T(1), l, x);
  const bool ok = k > 0 ? all_finite(out, std::int64_t(n) * k) : triangle_finite(l, n, true);
  if (!ok) fill_nan(out, std::int64_t(n) * k);
  return ok;
}

// B̄ = A⁻¹ Ḡ, L̄ = −tril(B̄ Yᵀ + X Zᵀ) with Y = L⁻¹ B and Z = L⁻¹ Ḡ (Y solved from B, or kept by the
// forward: ``solved``, ``b`` is Y; not multiplied back from X: Lᵀ X would carry X's error, of
// order κ(A), into L̄)
template <class T>
void potrs_vjp(const T* f, const T* b, bool solved, const T* x, const T* g, T* gf, T* gb, Int n, Int k, bool lower,
               Buffer<T>& work) {
  const View<T> l = factor(const_cast<T*>(f), n, lower);
  work.resize((solved ? 1 : 2) * std::size_t(n) * k);
  T* z = work.data();
  const std::size_t count = std::size_t(n) * k;
  team_copy(z, g, count);
  const View<T> zv = rowmajor(z, n, k), xv = rowmajor(const_cast<T*>(x), n, k);
  trsm<T>(true, true, false, n, k, T(1), l, zv);
  View<T> yv = rowmajor(const_cast<T*>(b), n, k);
  if (!solved) {
    T* y = z + std::size_t(n) * k;
    team_copy(y, b, count);
    yv = rowmajor(y, n, k);
    trsm<T>(true, true, false, n, k, T(1), l, yv);
  }
  team_copy(gb, z, count);
  const View<T> gbv = rowmajor(gb, n, k);
  trsm<T>(true, true, true, n, k, T(1), l, gbv);
  View<T> gl = factor(gf, n, lower);
  gemm_triangle<T>(true, false, gbv, true, yv, T(-1), T(0), gl, n, k);
  gemm_triangle<T>(true, false, xv, true, zv, T(-1), T(1), gl, n, k);
  mask_triangle(gl, n, true);
}

// ---- potri --------------------------------------------------------------------------------------
// out = (L Lᵀ)⁻¹, both triangles; false (out NaN) when not finite. Up to order kSmallTriangular
// without LAPACK (whose ?potri makes several BLAS calls: their lock, blas.hpp): L⁻¹ by forward
// substitution on I, then L⁻ᵀ L⁻¹ (bitwise symmetric: entries (i, j) and (j, i) sum the same
// products in the same order).
template <class T>
bool potri(const T* f, T* out, Int n, bool lower) {
  Int info = 0;
  if (n <= kSmallTriangular) {
    T inv[kSmallTriangular * kSmallTriangular];
    const View<T> w = rowmajor(inv, n, n);
    for (Int i = 0; i < n; ++i)
      for (Int j = 0; j < n; ++j) w(i, j) = T(i == j);
    triangular<T>(true, true, true, false, n, n, T(1), factor(const_cast<T*>(f), n, lower), w);
    gemm<T>(true, w, false, w, T(1), T(0), rowmajor(out, n, n), n, n, n);
  } else {
    team_copy(out, f, std::size_t(n) * n);
    View<T> l = factor(out, n, lower);
    const char u = uplo(l, true);
    const Int ld = l.ld();
    routines<T>().potri(&u, &n, l.p, &ld, &info);
    symmetric_pairs(l, n, [](Int, Int, T below, T) { return below; });
  }
  if (info != 0 || !all_finite(out, std::int64_t(n) * n)) {
    fill_nan(out, std::int64_t(n) * n);
    return false;
  }
  return true;
}

// L̄ = −tril(X (Ḡ + Ḡᵀ) L⁻ᵀ)
template <class T>
void potri_vjp(const T* f, const T* x, const T* g, T* gf, Int n, bool lower, Buffer<T>& work) {
  const View<T> l = factor(const_cast<T*>(f), n, lower);
  work.resize(std::size_t(n) * n);
  View<T> s = rowmajor(work.data(), n, n);
  const View<T> xv = rowmajor(const_cast<T*>(x), n, n);
  symmetric_pairs<T>(View<const T>{g, n, 1}, s, n, [](Int, Int, T below, T above) { return below + above; });
  for (Int i = 0; i < n; ++i) s(i, i) = T(2) * g[std::size_t(i) * (n + 1)];
  // F̄ = −(X S) L⁻ᵀ, lower triangle only: rows r0..r1 of it need columns 0..r1 of X S and the
  // leading r1×r1 block of L (L⁻ᵀ is upper triangular).
  View<T> gl = factor(gf, n, lower);
  for (Int r0 = 0, block = triangle_block(n); r0 < n; r0 += block) {
    const Int r1 = std::min(n, r0 + block);
    const View<T> rows = gl.at(r0, 0);
    gemm<T>(false, xv.at(r0, 0), false, s, T(1), T(0), rows, r1 - r0, r1, n);
    trsm<T>(false, true, true, r1 - r0, r1, T(-1), l, rows);
  }
  mask_triangle(gl, n, true);
}

// ---- sumlogdiag ---------------------------------------------------------------------------------
// Σ log A_ii. Each A_ii = m_i 2^e_i (m_i ∈ [1, 2), its exponent bits set to zero's) where all of
// them are positive, normal and finite: log Π m_i + ln 2 Σ e_i, a product in float64 renormalized
// every 512 factors and one logarithm, in place of n (order 32, 256 matrices, float64: 83 → 19 µs);
// its rounding error, about n ε on log Π m_i, is the sum's own. Otherwise (a zero, a negative, a
// subnormal, NaN or an infinity) the sum of the logarithms, which gives −inf or NaN as log does.
template <class T>
T sumlogdiag(const T* a, Int n) {
  constexpr std::uint64_t kMantissa = (std::uint64_t(1) << 52) - 1, kOne = std::uint64_t(1023) << 52;
  double product = 1.0;
  std::int64_t exponents = 0;
  bool ordinary = true;
  for (Int i0 = 0; i0 < n; i0 += 512) {
    for (Int i = i0; i < std::min(n, i0 + 512); ++i) {
      const double d = double(a[std::size_t(i) * (n + 1)]);
      ordinary &= d >= double(std::numeric_limits<T>::min()) && d <= double(std::numeric_limits<T>::max());
      std::uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      exponents += std::int64_t(bits >> 52) - 1023;  // the sign bit is zero where ``ordinary``
      bits = (bits & kMantissa) | kOne;
      double m;
      std::memcpy(&m, &bits, sizeof m);
      product *= m;  // < 2^512: finite
    }
    int e = 0;
    product = std::frexp(product, &e);
    exponents += e;
  }
  if (ordinary) return T(std::log(product) + double(exponents) * 0.69314718055994530942);
  T s = 0;
  for (Int i = 0; i < n; ++i) s += std::log(a[std::size_t(i) * (n + 1)]);
  return s;
}

// Ā = ḡ diag(1 / A_ii): mostly zeros, whose stores (and, in fresh memory, page faults) are its
// time; in the team's parts of its rows from order 1024 (2n² counted as its flops), as torch's own
// zeros run on its threads.
template <class T>
void sumlogdiag_vjp(const T* a, T g, T* out, Int n) {
  team_split(n, 2.0 * n * n, [&](Int i0, Int i1) {
    std::memset(out + std::size_t(i0) * n, 0, sizeof(T) * std::size_t(i1 - i0) * n);
    for (Int i = i0; i < i1; ++i) out[std::size_t(i) * (n + 1)] = g / a[std::size_t(i) * (n + 1)];
  });
}

}  // namespace xl
