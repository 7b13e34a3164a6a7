// Symmetric eigendecomposition per matrix: syevd forward (small_eigen.hpp to order
// kSmallEigenMaxOrder, LAPACK ?syevd above it) and its fused reverse.
//
// Row-major A's lower triangle is the column-major upper triangle of the same buffer, and the
// column-major eigenvector columns LAPACK writes are, read row-major, the rows of U: no transpose.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "blas.hpp"
#include "batch.hpp"
#include "small_eigen.hpp"
#include "triangles.hpp"
#include "triangular.hpp"

namespace xl {

// Pairs of eigenvalues closer than this many ε·max|λ| are degenerate (core/eigen.py: DEGENERACY_RTOL).
constexpr double kDegeneracyRtol = 32.0;

// The precision the eigensolver runs in: float32 matrices are decomposed in float64 and rounded,
// as NumPy does (its linalg computes float32 in float64), because float32 eigenvectors of close
// eigenvalues lose up to ε₃₂ · max|λ| / gap (0.02 relative at n = 128 for a spectrum
// logspace(0, −4, n): tests/test_accuracy.py), which the gradient inherits.
template <class T>
struct EigenPrecision {
  using type = T;
};
template <>
struct EigenPrecision<float> {
  using type = double;
};

struct SyevdWork {
  Int lwork = 1, liwork = 1;
};

// The workspace ?syevd wants at order n in precision W (one query per call).
template <class W>
SyevdWork syevd_workspace(Int n) {
  SyevdWork s;
  if (n == 0) return s;
  const char jobz = 'V', uplo = 'U';
  W wq = 0, dummy = 0;
  Int iq = 0, info = 0, query = -1;
  routines<W>().syevd(&jobz, &uplo, &n, &dummy, &n, &dummy, &wq, &query, &iq, &query, &info);
  s.lwork = workspace_size(wq);
  s.liwork = std::max<Int>(1, iq);
  return s;
}

// x ↦ x·2^e, exact where the result is normal (and rounded as ldexp rounds where it is not): a
// product with that power of two where it is a normal number itself, ldexp (a library call) beyond.
template <class W>
struct PowerOfTwo {
  int e;
  bool product = std::abs(e) < std::numeric_limits<W>::max_exponent - 2;
  W factor = product ? std::ldexp(W(1), e) : W(1);
  W operator()(W x) const { return product ? x * factor : std::ldexp(x, e); }
};

// Flip each row of u so that its largest-magnitude entry is positive (the first on ties).
template <class T>
void fix_row_signs(T* u, Int n) {
  for (Int i = 0; i < n; ++i) {
    T* row = u + std::ptrdiff_t(i) * n;
    Int k = 0;
    T best = std::abs(row[0]);
    for (Int j = 1; j < n; ++j) {
      const T v = std::abs(row[j]);
      if (v > best) {
        best = v;
        k = j;
      }
    }
    if (row[k] < T(0))
      for (Int j = 0; j < n; ++j) row[j] = -row[j];
  }
}

// U (rows: eigenvectors) and ascending λ of ``count`` ≤ kEigenChains symmetric matrices of order
// n ≤ kSmallEigenMaxOrder (a, u: one n×n after the other; w: n each) whose lower triangles are
// a's, in precision W (EigenPrecision): each triangle scaled by the power of two that brings its
// largest magnitude into [1/2, 1) (exact), small_eigen, the eigenvalues scaled back. U and λ of a
// matrix are NaN where its triangle is not finite or QL does not converge. ``work``: scratch.
template <class T, class W>
void small_syevd(const T* a, T* u, T* w, Int n, int count, Buffer<W>& work) {
  if (n == 0) return;
  const std::ptrdiff_t size = std::ptrdiff_t(n) * n;
  work.resize(std::size_t(2 * size + n) * count);
  W *s[kEigenChains], *y[kEigenChains], *d[kEigenChains];
  int scale[kEigenChains], index[kEigenChains], solved = 0;  // index: the finite matrices
  for (int k = 0; k < count; ++k) {
    s[solved] = work.data() + (2 * size + n) * k;
    y[solved] = s[solved] + size;
    d[solved] = y[solved] + size;
    const T* ak = a + size * k;
    W amax = 0;
    bool finite = true;
    for (Int i = 0; i < n; ++i)
      for (Int j = 0; j <= i; ++j) {
        const W x = W(ak[std::ptrdiff_t(i) * n + j]);
        finite &= x - x == W(0);
        amax = std::max(amax, std::abs(x));
      }
    if (!finite) {
      fill_nan(u + size * k, size);
      fill_nan(w + std::ptrdiff_t(n) * k, n);
      continue;
    }
    int e = 0;
    if (amax > W(0)) std::frexp(amax, &e);
    const PowerOfTwo<W> down{-e};
    for (Int i = 0; i < n; ++i)
      for (Int j = 0; j <= i; ++j)
        s[solved][std::ptrdiff_t(i) * n + j] = s[solved][std::ptrdiff_t(j) * n + i] = down(W(ak[std::ptrdiff_t(i) * n + j]));
    scale[solved] = e;
    index[solved++] = k;
  }
  bool ok[kEigenChains];
  small_eigen(s, y, d, n, solved, ok);
  for (int j = 0; j < solved; ++j) {
    T *uk = u + size * index[j], *wk = w + std::ptrdiff_t(n) * index[j];
    if (!ok[j]) {
      fill_nan(uk, size);
      fill_nan(wk, n);
      continue;
    }
    const PowerOfTwo<W> up{scale[j]};
    for (std::ptrdiff_t i = 0; i < size; ++i) uk[i] = T(y[j][i]);
    for (Int i = 0; i < n; ++i) wk[i] = T(up(d[j][i]));
    fix_row_signs(uk, n);
  }
}

// U (rows: eigenvectors) and ascending λ of the symmetric matrix whose lower triangle is a's, by
// LAPACK (orders above kSmallEigenMaxOrder), in precision W (EigenPrecision); ``ws`` from
// syevd_workspace<W>. false (U and λ NaN) when that triangle is not finite or LAPACK does not
// converge.
template <class T, class W>
bool syevd(const T* a, T* u, T* w, Int n, const SyevdWork& ws, Buffer<W>& work, Buffer<Int>& iwork) {
  if (n == 0) return true;
  const std::int64_t size = std::int64_t(n) * n;
  Int info = 0;
  if (triangle_finite(rowmajor(const_cast<T*>(a), n, n), n, true)) {
    const char jobz = 'V', uplo = 'U';
    iwork.resize(ws.liwork);
    if constexpr (std::is_same_v<T, W>) {
      team_copy(u, a, size);
      work.resize(ws.lwork);
      routines<W>().syevd(&jobz, &uplo, &n, u, &n, w, work.data(), &ws.lwork, iwork.data(), &ws.liwork, &info);
    } else {
      work.resize(std::size_t(size) + n + ws.lwork);
      W *uw = work.data(), *ww = uw + size, *wk = ww + n;
      for (Int i = 0; i < n; ++i)  // the lower triangle of the rows (the upper of the columns)
        for (Int j = 0; j <= i; ++j) uw[std::size_t(i) * n + j] = W(a[std::size_t(i) * n + j]);
      routines<W>().syevd(&jobz, &uplo, &n, uw, &n, ww, wk, &ws.lwork, iwork.data(), &ws.liwork, &info);
      for (std::int64_t i = 0; i < size; ++i) u[i] = T(uw[i]);
      for (Int i = 0; i < n; ++i) w[i] = T(ww[i]);
    }
  } else {
    info = -1;
  }
  if (info != 0) {
    fill_nan(u, size);
    fill_nan(w, n);
    return false;
  }
  fix_row_signs(u, n);
  return true;
}

// Ā = sym(Uᵀ (diag(λ̄) + F ∘ (U Ūᵀ)) U) = Uᵀ S U with S = diag(λ̄) + sym(F ∘ (U Ūᵀ)),
// F_ij = 1/(λ_j − λ_i), 0 on the diagonal and where |λ_j − λ_i| ≤ 32 ε max|λ|. With S = K + Kᵀ,
// K the upper triangle of S with half its diagonal, Uᵀ S U = Y + Yᵀ for Y = Uᵀ (K U): a triangular
// product and one gemm instead of two gemms (5n³ flops in all, not 6n³).
template <class T>
void syevd_vjp(const T* u, const T* w, const T* gu, const T* gw, T* ga, Int n, Buffer<T>& work) {
  if (n == 0) return;
  const std::size_t size = std::size_t(n) * n;
  work.resize(2 * size);
  T *s = work.data(), *t = s + size;
  const View<T> uv = rowmajor(const_cast<T*>(u), n, n), guv = rowmajor(const_cast<T*>(gu), n, n);
  const View<T> sv = rowmajor(s, n, n), tv = rowmajor(t, n, n), gav = rowmajor(ga, n, n);
  gemm<T>(false, uv, true, guv, T(1), T(0), sv, n, n, n);  // U Ūᵀ
  T scale = 0;
  for (Int i = 0; i < n; ++i) scale = std::max(scale, std::abs(w[i]));
  const T tol = T(kDegeneracyRtol) * std::numeric_limits<T>::epsilon() * scale;
  symmetric_pairs(sv, n, [&](Int i, Int j, T below, T above) {
    const T d = w[j] - w[i];  // F_ij = 1/d, F_ji = −1/d
    const T f = std::abs(d) <= tol ? T(0) : T(1) / d;
    return f * (below - above) * T(0.5);  // (nothing to fuse into an FMA: one result on every CPU)
  });
  for (Int i = 0; i < n; ++i) sv(i, i) = gw[i] * T(0.5);
  team_copy(t, u, size);
  trmm<T>(true, false, false, n, n, T(1), sv, tv);         // K U (K: the upper triangle of s)
  gemm<T>(true, uv, false, tv, T(1), T(0), gav, n, n, n);  // Y = Uᵀ K U
  symmetric_pairs(gav, n, [](Int, Int, T below, T above) { return below + above; });
  for (Int i = 0; i < n; ++i) gav(i, i) *= T(2);
}

}  // namespace xl
