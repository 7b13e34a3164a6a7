// Symmetric eigendecomposition per matrix (one GPU thread per matrix): syevd forward by cyclic
// Jacobi, and its reverse. Same semantics as the CPU library's xl_syevd / xl_syevd_vjp entries:
//
//   * forward: A = Uᵀ diag(w) U for the symmetric A whose lower triangle is a's (the upper
//     triangle is never read); the rows of U are orthonormal eigenvectors, w ascends, and each
//     row of U has its largest-magnitude entry positive (the first on ties). A read triangle
//     that is not finite, or Jacobi not converging, gives U and w NaN for that batch entry;
//   * reverse: Ā = Uᵀ S U, S = diag(w̄) + sym(F ∘ (U Ūᵀ)), F_ij = 1/(w_j − w_i) off the
//     diagonal and 0 for degenerate pairs, |w_j − w_i| ≤ 32 ε max|w| (ε: T's machine epsilon);
//     Ā is the full symmetric matrix (the symmetric structure's projection), as on the CPU.
//
// Precision: everything is computed in T. The CPU library computes float32 eigendecompositions
// in float64 and rounds; Jacobi in float32 is backward stable (the computed w and U are exact for
// A + E with ‖E‖₂ of order ε₃₂ ‖A‖₂), so w agrees with the CPU to a few ε₃₂ max|w| and each row
// of U to a few ε₃₂ max|w| / gap, gap the distance of its eigenvalue to the rest of the spectrum.
//
// Device constraints: no heap, no recursion, no standard library, fixed local scratch: a packed
// symmetric triangle of kMaxOrder (kMaxOrder + 1)/2 entries (the forward's working matrix, its
// rotations accumulated in the output U; the reverse's S, and a vector); only hd.h is included
// (NVRTC has no other header).
#pragma once

#include "hd.h"

namespace xl {
namespace hd {
namespace eigen_detail {

// Pairs of eigenvalues closer than this many ε·max|w| are degenerate (the CPU rule's constant).
constexpr double kDegeneracyRtol = 32.0;

// Jacobi sweeps before giving up. At n ≤ 32 random symmetric matrices take up to 8 sweeps in
// float64, large clusters of equal eigenvalues and graded spectra (1 to 1e−15) up to 15.
constexpr int kMaxSweeps = 30;

template <class T>
XL_HD T machine_epsilon();
template <>
XL_HD float machine_epsilon<float>() {
  return 1.1920928955078125e-7f;  // 2⁻²³
}
template <>
XL_HD double machine_epsilon<double>() {
  return 2.220446049250313080847263336181640625e-16;  // 2⁻⁵²
}

// x = m·2^e with |m| in [1/2, 1) (frexp), and x·2^e (ldexp): exact power-of-two scaling.
XL_HD float xl_frexp(float x, int* e) { return frexpf(x, e); }
XL_HD double xl_frexp(double x, int* e) { return frexp(x, e); }
XL_HD float xl_ldexp(float x, int e) { return ldexpf(x, e); }
XL_HD double xl_ldexp(double x, int e) { return ldexp(x, e); }

// The index of s_ij = s_ji in a symmetric matrix's lower triangle packed by rows.
XL_HD int at(int i, int j) { return i >= j ? i * (i + 1) / 2 + j : j * (j + 1) / 2 + i; }

}  // namespace eigen_detail

// U (batch entry e's rows: eigenvectors) and ascending w of the symmetric matrix whose lower
// triangle is a's. a, u: (batch, n, n) row-major; w: (batch, n) (or their interleaved layout).
//
// Algorithm: the read triangle is scaled by the power of two 2^−s that brings its largest
// magnitude into [1/2, 1) (exact; no overflow or underflow in the sums of squares below), then
// row-cyclic Jacobi: each sweep zeroes every a_pq, p < q, in turn by the rotation J (J_pp = J_qq
// = c, J_pq = s, J_qp = −s) with A ← Jᵀ A J, V ← V J, where t = s/c is the smaller root of
// t² + 2τt − 1 = 0, τ = (a_qq − a_pp)/(2 a_pq) (Golub & Van Loan, Matrix Computations, §8.5):
// t = sign(τ)/(|τ| + √(1 + τ²)), c = 1/√(1 + t²), s = t c. The entries change in Rutishauser's
// form, each an old value plus a small correction: a_pp −= t a_pq, a_qq += t a_pq, a_pq = 0 and
// for r ≠ p, q, with ρ = s/(1 + c): a_rp −= s (a_rq + ρ a_rp), a_rq += s (a_rp − ρ a_rq) (old
// values on the right). Sweeps stop once off(A) = ‖A − diag(A)‖_F ≤ ε ‖A‖_F (‖A‖_F does not
// change under rotations; pairs with a_pq² ≤ ε² ‖A‖_F² / (n (n − 1)) are not rotated, see below),
// at most kMaxSweeps (then U and w are NaN); then w = 2^s diag(A) and the columns of V are the
// eigenvectors, sorted by w (selection sort). V is accumulated in u itself, then transposed in
// place into the rows of U, each signed by the sign rule.
// Accuracy: the residual off(A) ≤ ε ‖A‖_F bounds each eigenvalue's error by it (Weyl) beside the
// rounding of the rotations, a few ε ‖A‖₂ in all, as for LAPACK.
template <class T, class Layout>
XL_HD void syevd_entry(Layout lay, int64_t e, int n, const T* a_, T* u_, T* w_) {
  using eigen_detail::xl_frexp;
  using eigen_detail::xl_ldexp;
  if (n <= 0) return;
  const int64_t size = int64_t(n) * n;
  const auto a = lay.at(a_, e, size);
  const auto u = lay.at(u_, e, size);
  const auto w = lay.at(w_, e, n);
  if (n > kMaxOrder) {  // beyond the scratch: not this path's to compute
    detail::fill(u, size, quiet_nan<T>());
    detail::fill(w, n, quiet_nan<T>());
    return;
  }

  // the read triangle: finite, and its largest magnitude
  bool finite = true;
  T amax = T(0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) {
      const T x = a[i * n + j];
      finite = finite && (x - x == T(0));
      const T m = xl_abs(x);
      if (m > amax) amax = m;
    }
  if (!finite) {
    detail::fill(u, size, quiet_nan<T>());
    detail::fill(w, n, quiet_nan<T>());
    return;
  }
  int scale = 0;  // A = 2^scale · s, max |s_ij| in [1/2, 1) (0 for the zero matrix)
  if (amax > T(0)) xl_frexp(amax, &scale);

  // the scaled symmetric matrix, its lower triangle packed by rows: s[at(i, j)] = s_ij = s_ji
  T s[kMaxOrder * (kMaxOrder + 1) / 2];
  using eigen_detail::at;
  const auto v = u;  // the accumulated rotations, in the output: A = V diag(λ) Vᵀ
  T fro2 = T(0);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < i; ++j) {
      const T x = xl_ldexp(a[i * n + j], -scale);
      s[at(i, j)] = x;
      fro2 += T(2) * x * x;
      v[i * n + j] = T(0);
      v[j * n + i] = T(0);
    }
    const T x = xl_ldexp(a[i * n + i], -scale);
    s[at(i, i)] = x;
    fro2 += x * x;
    v[i * n + i] = T(1);
  }

  const T eps = eigen_detail::machine_epsilon<T>();
  const T tol2 = eps * eps * fro2;  // off(A)² ≤ ε² ‖A‖_F²
  // Rotations skip the pairs with a_pq² ≤ tol2 / (n (n − 1)): entries that small cannot keep off(A)
  // above the tolerance (while it is above, some entry is larger and gets rotated away), and
  // rotating them is harmful: inside a cluster of (nearly) equal eigenvalues they are rounding
  // noise whose ratio to a_qq − a_pp (also noise) gives O(1) angles, which keep mixing the rows'
  // couplings to the other clusters back and forth and slow convergence from quadratic to linear.
  const T skip2 = n > 1 ? tol2 / T(n * (n - 1)) : T(0);
  const T big = T(1) / eps;  // |τ| beyond it: √(1 + τ²) = |τ| in T, and τ² stays finite
  bool converged = false;
  for (int sweep = 0; sweep <= eigen_detail::kMaxSweeps; ++sweep) {
    T off2 = T(0);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < i; ++j) off2 += T(2) * s[at(i, j)] * s[at(i, j)];
    if (off2 <= tol2) {
      converged = true;
      break;
    }
    if (sweep == eigen_detail::kMaxSweeps) break;
    for (int p = 0; p < n - 1; ++p)
      for (int q = p + 1; q < n; ++q) {
        const T apq = s[at(q, p)];
        if (apq * apq <= skip2) continue;
        const T tau = (s[at(q, q)] - s[at(p, p)]) / (T(2) * apq);
        const T atau = xl_abs(tau);
        // the root of smaller magnitude; 1/(2τ) once 1 + τ² rounds to τ² (and before τ² overflows)
        T t = atau > big ? T(0.5) / atau : T(1) / (atau + xl_sqrt(T(1) + tau * tau));
        if (tau < T(0)) t = -t;
        const T c = T(1) / xl_sqrt(T(1) + t * t);
        const T sn = t * c;
        const T rho = sn / (T(1) + c);
        s[at(p, p)] -= t * apq;
        s[at(q, q)] += t * apq;
        s[at(q, p)] = T(0);
        for (int r = 0; r < n; ++r) {
          if (r != p && r != q) {
            const T g = s[at(r, p)], h = s[at(r, q)];
            s[at(r, p)] = g - sn * (h + rho * g);
            s[at(r, q)] = h + sn * (g - rho * h);
          }
          const T g = v[r * n + p], h = v[r * n + q];
          v[r * n + p] = g - sn * (h + rho * g);
          v[r * n + q] = h + sn * (g - rho * h);
        }
      }
  }
  if (!converged) {
    detail::fill(u, size, quiet_nan<T>());
    detail::fill(w, n, quiet_nan<T>());
    return;
  }

  // ascending order: selection sort of the diagonal, swapping the columns of V along
  for (int k = 0; k < n - 1; ++k) {
    int m = k;
    for (int j = k + 1; j < n; ++j)
      if (s[at(j, j)] < s[at(m, m)]) m = j;
    if (m != k) {
      const T d = s[at(k, k)];
      s[at(k, k)] = s[at(m, m)];
      s[at(m, m)] = d;
      for (int r = 0; r < n; ++r) {
        const T x = v[r * n + k];
        v[r * n + k] = v[r * n + m];
        v[r * n + m] = x;
      }
    }
  }
  for (int i = 0; i < n; ++i)  // U = Vᵀ, in place
    for (int j = 0; j < i; ++j) {
      const T x = u[i * n + j];
      u[i * n + j] = u[j * n + i];
      u[j * n + i] = x;
    }
  for (int k = 0; k < n; ++k) {
    w[k] = xl_ldexp(s[at(k, k)], scale);
    // row k of U (column k of V), signed so its largest-magnitude entry is positive (first on ties)
    int best = 0;
    T bmag = xl_abs(u[k * n]);
    for (int r = 1; r < n; ++r) {
      const T m = xl_abs(u[k * n + r]);
      if (m > bmag) {
        bmag = m;
        best = r;
      }
    }
    if (u[k * n + best] < T(0))
      for (int r = 0; r < n; ++r) u[k * n + r] = -u[k * n + r];
  }
}

// Ā (batch entry e) from U, w and the cotangents Ū, w̄: Ā = Uᵀ S U with S symmetric,
// S_ii = w̄_i and, for j < i, with f = F_ij = 1/(w_j − w_i) (0 when |w_j − w_i| ≤ 32 ε max|w|),
// S_ij = S_ji = f (M_ij − M_ji)/2, M = U Ūᵀ: sym(F ∘ M) since F_ji = −F_ij. S is kept as a packed
// triangle (as the forward's working matrix; M_ij and M_ji are computed together). Written as
// one product per row, Ā_k· = (Σ_i U_ik S_i·) U, for the upper triangle l ≥ k, mirrored below, so
// Ā is exactly symmetric. u, gu, ga: (batch, n, n) row-major; w, gw: (batch, n). NaN or infinite
// inputs propagate as in the CPU entry (a degenerate pair's f = 0 times an infinite M gives NaN).
template <class T, class Layout>
XL_HD void syevd_vjp_entry(Layout lay, int64_t e, int n, const T* u_, const T* w_, const T* gu_, const T* gw_, T* ga_) {
  using eigen_detail::at;
  if (n <= 0) return;
  const int64_t size = int64_t(n) * n;
  const auto u = lay.at(u_, e, size);
  const auto gu = lay.at(gu_, e, size);
  const auto ga = lay.at(ga_, e, size);
  const auto w = lay.at(w_, e, n);
  const auto gw = lay.at(gw_, e, n);
  if (n > kMaxOrder) {
    detail::fill(ga, size, quiet_nan<T>());
    return;
  }
  T wmax = T(0);  // max|w|, NaN entries skipped (as the CPU's running std::max does)
  for (int i = 0; i < n; ++i) {
    const T m = xl_abs(w[i]);
    if (wmax < m) wmax = m;
  }
  const T tol = T(eigen_detail::kDegeneracyRtol) * eigen_detail::machine_epsilon<T>() * wmax;
  T s[kMaxOrder * (kMaxOrder + 1) / 2];  // S, s[at(i, j)] = S_ij = S_ji
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < i; ++j) {
      T mij = T(0), mji = T(0);  // M_ij = U_i· · Ū_j·, M_ji = U_j· · Ū_i·
      for (int k = 0; k < n; ++k) {
        mij += u[i * n + k] * gu[j * n + k];
        mji += u[j * n + k] * gu[i * n + k];
      }
      const T d = w[j] - w[i];
      const T f = xl_abs(d) <= tol ? T(0) : T(1) / d;
      s[at(i, j)] = f * (mij - mji) * T(0.5);  // 0 for a symmetric M, fused multiply-adds or not
    }
    s[at(i, i)] = gw[i];
  }
  T r[kMaxOrder];
  for (int k = 0; k < n; ++k) {
    for (int j = 0; j < n; ++j) r[j] = T(0);  // r = (Uᵀ S)_k· = Σ_i U_ik S_i·
    for (int i = 0; i < n; ++i) {
      const T uik = u[i * n + k];
      for (int j = 0; j < n; ++j) r[j] += uik * s[at(i, j)];
    }
    for (int l = k; l < n; ++l) {
      T acc = T(0);
      for (int j = 0; j < n; ++j) acc += r[j] * u[j * n + l];
      ga[k * n + l] = acc;
      ga[l * n + k] = acc;
    }
  }
}

}  // namespace hd
}  // namespace xl
