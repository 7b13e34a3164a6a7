// Symmetric eigendecomposition of small matrices without LAPACK (syevd's forward up to order
// kSmallEigenMaxOrder): Householder tridiagonalization, then implicit QL with Wilkinson shifts,
// every row operation along contiguous memory and every dot product in a fixed order (row_ops.hpp).
// ?syevd works through a level-2 BLAS call per column and ?stedc's bookkeeping at these orders.
// The QL iterations of a few matrices interleave: each plane rotation waits for the previous one's
// square root and division, so one matrix alone leaves the processor mostly idle.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "isa.hpp"
#include "row_ops.hpp"

namespace xl {

// Up to this order syevd runs small_eigen. Per float64 matrix here (one thread), against ?syevd:
// 2.3 against 6.8 µs at order 8, 42 against 92 at 32, 236 against 385 at 64, 737 against 813 at 96.
constexpr Int kSmallEigenMaxOrder = 96;

// QL iterations per eigenvalue before giving up (LAPACK's ?steqr allows 30 per eigenvalue on
// average, 30n for all of them).
constexpr int kSmallEigenMaxIterations = 30;

// The matrices small_eigen diagonalizes together, their QL iterations interleaved. Per float64
// matrix, one thread, against one at a time: 2.3 against 3.3 µs at order 8, 8.9 against 12.3 at 16,
// 42 against 49 at 32, 236 against 259 at 64 (two together gain as much).
constexpr int kEigenChains = 4;

// Step 1 and 2 of small_eigen on one matrix: a = Q T Qᵀ with T's diagonal d and off-diagonal e
// (e_{n−1} = 0), y = Qᵀ.
template <class W, bool Avx2>
inline XL_INLINE void tridiagonalize(W* a, W* y, W* d, W* e, Int n) {
  W tau[kSmallEigenMaxOrder], p[kSmallEigenMaxOrder];
  const auto row = [&](W* m, Int i) { return m + std::ptrdiff_t(i) * n; };

  for (Int k = 0; k + 2 < n; ++k) {
    W* x = row(a, k) + k + 1;  // column k below the diagonal (row k right of it: symmetry)
    const Int m = n - k - 1;
    const W alpha = x[0];
    bool reflect = false;
    for (Int j = 1; j < m; ++j) reflect |= x[j] != W(0);
    d[k] = row(a, k)[k];
    tau[k] = 0;
    e[k] = alpha;
    if (!reflect) continue;
    const Reflector<W> h = make_reflector(x, m);
    const W t = h.tau;
    tau[k] = t;
    e[k] = h.beta;
    x[0] = W(1);  // x is v from here on
    for (Int i = 0; i < m; ++i) p[i] = t * dot_in_order<W, Avx2>(row(a, k + 1 + i) + k + 1, x, m);
    const W c = W(-0.5) * t * dot_in_order<W, Avx2>(p, x, m);
    for (Int i = 0; i < m; ++i) p[i] += c * x[i];  // w
    for (Int i = 0; i < m; ++i) {
      W* ri = row(a, k + 1 + i) + k + 1;
      const W vi = x[i], wi = p[i];
#pragma omp simd
      for (Int j = 0; j < m; ++j) ri[j] -= vi * p[j] + wi * x[j];  // (j, i): the same products (ISO C++: no FMA)
    }
  }
  if (n >= 2) {
    d[n - 2] = row(a, n - 2)[n - 2];
    e[n - 2] = row(a, n - 2)[n - 1];
  }
  d[n - 1] = row(a, n - 1)[n - 1];
  e[n - 1] = 0;

  // 2. y = Qᵀ
  for (Int i = 0; i < n; ++i)
    for (Int j = 0; j < n; ++j) row(y, i)[j] = W(i == j);
  for (Int k = n - 3; k >= 0; --k) {
    if (tau[k] == W(0)) continue;
    const W* v = row(a, k) + k + 1;
    const Int m = n - k - 1;
    for (Int i = k + 1; i < n; ++i) {
      W* yi = row(y, i) + k + 1;
      const W s = tau[k] * dot_in_order<W, Avx2>(yi, v, m);
#pragma omp simd
      for (Int j = 0; j < m; ++j) yi[j] -= s * v[j];
    }
  }
}

// Step 3 of small_eigen on one matrix, one plane rotation at a time (step()), so that the
// iterations of several matrices can interleave.
template <class W>
struct QlIteration {
  static constexpr W eps = std::numeric_limits<W>::epsilon();
  static constexpr W tiny2 = std::numeric_limits<W>::min() / eps;  // below it sqrt(f² + g²) via std::hypot

  W *d, *e, *y;
  Int n;
  Int l = 0, m = 0, i = -1;  // the unreduced block l…m; the sweep's next rotation is in plane (i, i+1)
  W s = 1, c = 1, g = 0, shifted = 0;
  int iterations = 0;  // of the block at l
  bool failed = false;

  // Moves l past the converged eigenvalues and starts the next sweep: false when all have converged,
  // or (failed) when the one at l takes more than kSmallEigenMaxIterations.
  inline XL_INLINE bool start() {
    for (; l < n; ++l, iterations = 0) {
      for (m = l; m + 1 < n; ++m) {
        const W em = std::abs(e[m]);
        if (em <= eps * (std::abs(d[m]) + std::abs(d[m + 1])) || em < tiny2) break;
      }
      if (m == l) continue;
      if (iterations++ == kSmallEigenMaxIterations) {
        failed = true;
        return false;
      }
      // the shift: the eigenvalue of T's 2×2 block at l nearer d_l
      const W t = (d[l + 1] - d[l]) / (W(2) * e[l]);
      const W root = std::abs(t) > W(1) / eps ? std::abs(t) : std::sqrt(t * t + W(1));
      g = d[m] - d[l] + e[l] / (t + std::copysign(root, t));
      s = c = W(1);
      shifted = 0;
      i = m - 1;
      return true;
    }
    return false;
  }

  // The sweep's next rotation; false once the sweep has ended.
  inline XL_INLINE bool step() {
    const W f = s * e[i], b = c * e[i];
    const W r2 = f * f + g * g;
    const W r = r2 >= tiny2 ? std::sqrt(r2) : std::hypot(f, g);
    e[i + 1] = r;
    if (r == W(0)) {  // the rotations underflowed: deflate here and start again
      d[i + 1] -= shifted;
      e[m] = 0;
      return false;
    }
    s = f / r;
    c = g / r;
    g = d[i + 1] - shifted;
    const W t = (d[i] - g) * s + W(2) * c * b;
    shifted = s * t;
    d[i + 1] = g + shifted;
    g = c * t - b;
    W *yi = y + std::ptrdiff_t(i) * n, *yj = yi + n;
    const W sr = s, cr = c;
#pragma omp simd
    for (Int j = 0; j < n; ++j) {
      const W lo = yi[j], hi = yj[j];
      yj[j] = sr * lo + cr * hi;
      yi[j] = cr * lo - sr * hi;
    }
    if (--i >= l) return true;
    d[l] -= shifted;
    e[l] = g;
    e[m] = 0;
    return false;
  }
};

// Step 4 of small_eigen on one matrix.
template <class W>
inline XL_INLINE void sort_ascending(W* y, W* d, Int n) {
  for (Int k = 0; k + 1 < n; ++k) {
    Int lowest = k;
    for (Int j = k + 1; j < n; ++j)
      if (d[j] < d[lowest]) lowest = j;
    if (lowest == k) continue;
    std::swap(d[k], d[lowest]);
    W *yk = y + std::ptrdiff_t(k) * n, *yl = y + std::ptrdiff_t(lowest) * n;
    for (Int j = 0; j < n; ++j) std::swap(yk[j], yl[j]);
  }
}

// The eigendecompositions A = yᵀ diag(d) y of ``count`` ≤ kEigenChains symmetric n×n matrices
// a[k] (both triangles, row-major, max |a_ij| in [1/2, 1) or 0, so that no square below
// overflows; overwritten), in four steps:
//
// 1. Tridiagonalization A = Q T Qᵀ, Q = H₀ ⋯ H_{n−3}: reflector k (make_reflector on row k right
//    of the diagonal, (α, x); τ = 0 where x = 0) acts on indices k+1…n−1, A₂₂ ← H A₂₂ H =
//    A₂₂ − (v wᵀ + w vᵀ) with p = τ A₂₂ v, w = p − (τ/2)(pᵀv) v; v is kept in row k, d = diag(T),
//    e_k = T_{k,k+1}.
// 2. y = Qᵀ = H_{n−3} ⋯ H₀, formed as I H_{n−3} ⋯ H₀ (reflector k touches rows k+1 and below).
// 3. Implicit QL on (d, e) (Golub & Van Loan §8.3; Wilkinson's shift from the leading 2×2 of each
//    unreduced block l…m): each plane rotation of T in the plane (i, i+1) rotates rows i and i+1
//    of y, so that A = yᵀ diag(d) y at convergence. e_m is negligible when |e_m| ≤ ε (|d_m| +
//    |d_{m+1}|) (or below the underflow threshold): a perturbation of T of at most ε ‖T‖. The
//    matrices take their rotations in turn; each computes exactly what it computes alone.
// 4. d ascending, the rows of y along.
//
// ok[k]: false when some eigenvalue of a[k] takes more than kSmallEigenMaxIterations QL iterations.
template <class W>
void small_eigen(W* const* a, W* const* y, W* const* d, Int n, int count, bool* ok) {
  run_best([&](auto isa) XL_INLINE {
    W e[kEigenChains][kSmallEigenMaxOrder];
    QlIteration<W> ql[kEigenChains];
    bool running[kEigenChains];
    int left = 0;
    for (int k = 0; k < count; ++k) {
      tridiagonalize<W, decltype(isa)::value>(a[k], y[k], d[k], e[k], n);
      ql[k].d = d[k];
      ql[k].e = e[k];
      ql[k].y = y[k];
      ql[k].n = n;
      left += (running[k] = ql[k].start());
    }
    while (left > 0)
      for (int k = 0; k < count; ++k)
        if (running[k] && !ql[k].step() && !(running[k] = ql[k].start())) --left;
    for (int k = 0; k < count; ++k) {
      ok[k] = !ql[k].failed;
      if (ok[k]) sort_ascending(y[k], d[k], n);
    }
  });
}

}  // namespace xl
