// Symmetric eigendecomposition of one matrix of order up to 64 by a block of threads (block.h):
// parallel Jacobi. Same semantics as syevd_entry (eigen.h): A = Uᵀ diag(w) U for the symmetric A
// whose lower triangle is a's, w ascending, each row of U with its largest-magnitude entry
// positive (the first on ties), U and w NaN for a non-finite read triangle or no convergence.
//
// Algorithm: the power-of-two scaling of syevd_entry, then Jacobi sweeps in the round-robin order
// of Brent & Luk: the m = n (n even) or n + 1 indices are paired m/2 at a time, each round a new
// pairing, m − 1 rounds a sweep (every pair once). The pairs of a round are disjoint, so their
// rotations commute and run at once: one phase computes them (the rotation of syevd_entry), the
// next applies A ← Jᵀ A J by 2×2 blocks (rows of one pair, columns of another; each item owns its
// block) in Rutishauser's form, and U ← Jᵀ U by rows (U holds the eigenvectors as rows from the
// start). The diagonal block of a rotated pair gets a_pp − t a_pq, a_qq + t a_pq and zeros, as in
// syevd_entry. Sweeps stop once off(A)² ≤ ε² ‖A‖_F², at most eigen_detail::kMaxSweeps.
//
// The working matrix is in the shared struct (rows of kBlockMaxOrder + 1 entries: the items of a
// phase walking a column hit distinct banks), U in the output u.
#pragma once

#include "block.h"
#include "per_matrix.h"  // and eigen.h

namespace xl {
namespace hd {

template <class T>
struct syevd_block_shared {
  static constexpr int kLd = kBlockMaxOrder + 1;
  T a[kBlockMaxOrder * kLd];  // the scaled working matrix; at the end the unsorted U
  T red[kBlockMaxOrder];      // a reduction's partial sums (by rows); at the end the sorted diagonal
  T c[kBlockMaxOrder / 2], s[kBlockMaxOrder / 2], rho[kBlockMaxOrder / 2];  // the round's rotations
  T app[kBlockMaxOrder / 2], aqq[kBlockMaxOrder / 2];                      // their new diagonal
  int rotated[kBlockMaxOrder / 2];
  int p[kBlockMaxOrder / 2], q[kBlockMaxOrder / 2];  // the round's pairs (p < q)
  int perm[kBlockMaxOrder];  // the sorted order: row k of U is row perm[k] of the unsorted one
  int flip[kBlockMaxOrder];
  T total;      // a reduction's result
  int scale;    // A = 2^scale · (the working matrix)
  int finite;   // the read triangle is finite
};

namespace eigen_detail {

// The pair k of round r of m indices (m even): positions k and m − 1 − k of the circle whose
// position 0 holds index 0 and position i ≥ 1 index (i − 1 + r) mod (m − 1) + 1; p < q.
XL_HD void round_robin_pair(int m, int r, int k, int& p, int& q) {
  const auto at = [m, r](int position) { return position == 0 ? 0 : (position - 1 + r) % (m - 1) + 1; };
  const int x = at(k), y = at(m - 1 - k);
  p = x < y ? x : y;
  q = x < y ? y : x;
}

}  // namespace eigen_detail

template <class T, class Layout>
XL_HD void syevd_block_entry(Layout lay, int64_t e, int n, const T* a_, T* u_, T* w_, syevd_block_shared<T>& sh) {
  using eigen_detail::round_robin_pair;
  using eigen_detail::xl_frexp;
  using eigen_detail::xl_ldexp;
  constexpr int ld = syevd_block_shared<T>::kLd;
  if (n <= 0) return;
  const int size = n * n;
  const auto a = lay.at(a_, e, size);
  const auto u = lay.at(u_, e, size);
  const auto w = lay.at(w_, e, n);
  T* const s = sh.a;
  const auto fail = [&]() {
    phase(size, [&](int i) { u[i] = quiet_nan<T>(); });
    phase(n, [&](int i) { w[i] = quiet_nan<T>(); });
  };
  if (n > kBlockMaxOrder) {
    fail();
    return;
  }

  // the read triangle: finite, and its largest magnitude (by rows, then in one item)
  phase(n, [&](int i) {
    bool finite = true;
    T amax = T(0);
    for (int j = 0; j <= i; ++j) {
      const T x = a[i * n + j];
      finite = finite && (x - x == T(0));
      const T m = xl_abs(x);
      if (m > amax) amax = m;
    }
    sh.red[i] = finite ? amax : quiet_nan<T>();
  });
  phase(1, [&](int) {
    bool finite = true;
    T amax = T(0);
    for (int i = 0; i < n; ++i) {
      finite = finite && sh.red[i] == sh.red[i];
      if (sh.red[i] > amax) amax = sh.red[i];
    }
    int scale = 0;
    if (finite && amax > T(0)) xl_frexp(amax, &scale);
    sh.scale = scale;
    sh.finite = finite;
  });
  if (!sh.finite) {
    fail();
    return;
  }
  const int scale = sh.scale;

  // the scaled symmetric matrix, both triangles; U = I; ‖A‖_F²
  phase(size, [&](int q) {
    const int i = q / n, j = q % n;
    s[i * ld + j] = xl_ldexp(i >= j ? a[i * n + j] : a[j * n + i], -scale);
    u[q] = i == j ? T(1) : T(0);
  });
  phase(n, [&](int i) {
    T sum = T(0);
    for (int j = 0; j < n; ++j) sum += s[i * ld + j] * s[i * ld + j];
    sh.red[i] = sum;
  });
  phase(1, [&](int) {
    T sum = T(0);
    for (int i = 0; i < n; ++i) sum += sh.red[i];
    sh.total = sum;
  });
  const T eps = eigen_detail::machine_epsilon<T>();
  const T tol2 = eps * eps * sh.total;
  const T skip2 = n > 1 ? tol2 / T(n * (n - 1)) : T(0);  // as syevd_entry: pairs too small to rotate
  const T big = T(1) / eps;
  const int m = n + (n & 1), half = m / 2;

  bool converged = false;
  for (int sweep = 0; sweep <= eigen_detail::kMaxSweeps; ++sweep) {
    phase(n, [&](int i) {  // off(A)²
      T sum = T(0);
      for (int j = 0; j < n; ++j)
        if (j != i) sum += s[i * ld + j] * s[i * ld + j];
      sh.red[i] = sum;
    });
    phase(1, [&](int) {
      T sum = T(0);
      for (int i = 0; i < n; ++i) sum += sh.red[i];
      sh.total = sum;
    });
    if (sh.total <= tol2) {
      converged = true;
      break;
    }
    if (sweep == eigen_detail::kMaxSweeps) break;
    for (int r = 0; r < m - 1; ++r) {
      phase(half, [&](int k) {  // the rotations (the index n of an odd order pairs with nobody)
        int p, q;
        round_robin_pair(m, r, k, p, q);
        sh.p[k] = p;
        sh.q[k] = q;
        T c = T(1), sn = T(0), rho = T(0);
        bool rotate = false;
        if (q < n) {
          const T apq = s[p * ld + q];
          rotate = apq * apq > skip2;
          if (rotate) {
            const T tau = (s[q * ld + q] - s[p * ld + p]) / (T(2) * apq);
            const T atau = xl_abs(tau);
            T t = atau > big ? T(0.5) / atau : T(1) / (atau + xl_sqrt(T(1) + tau * tau));
            if (tau < T(0)) t = -t;
            c = T(1) / xl_sqrt(T(1) + t * t);
            sn = t * c;
            rho = sn / (T(1) + c);
            sh.app[k] = s[p * ld + p] - t * apq;
            sh.aqq[k] = s[q * ld + q] + t * apq;
          }
        }
        sh.c[k] = c;
        sh.s[k] = sn;
        sh.rho[k] = rho;
        sh.rotated[k] = rotate;
      });
      phase(half * half + half * n, [&](int item) {
        if (item < half * half) {  // A ← Jᵀ A J on the block rows of pair k, columns of pair l
          const int k = item / half, l = item % half;
          if (!sh.rotated[k] && !sh.rotated[l]) return;
          const int p = sh.p[k], q = sh.q[k], pl = sh.p[l], ql = sh.q[l];
          if (k == l) {
            s[p * ld + p] = sh.app[k];
            s[q * ld + q] = sh.aqq[k];
            s[p * ld + q] = T(0);
            s[q * ld + p] = T(0);
            return;
          }
          // the index n of an odd order is in no rotated pair: its row and column do not exist
          const bool rows = sh.rotated[k], cols = sh.rotated[l], has_q = q < n, has_ql = ql < n;
          T x = s[p * ld + pl], y = has_ql ? s[p * ld + ql] : T(0);
          T z = has_q ? s[q * ld + pl] : T(0), v = has_q && has_ql ? s[q * ld + ql] : T(0);
          if (cols) {  // columns pl, ql: g − s(h + ρg), h + s(g − ρh), as in syevd_entry
            const T sl = sh.s[l], rl = sh.rho[l];
            const T x1 = x - sl * (y + rl * x), y1 = y + sl * (x - rl * y);
            const T z1 = z - sl * (v + rl * z), v1 = v + sl * (z - rl * v);
            x = x1, y = y1, z = z1, v = v1;
          }
          if (rows) {  // rows p, q
            const T sk = sh.s[k], rk = sh.rho[k];
            const T x1 = x - sk * (z + rk * x), z1 = z + sk * (x - rk * z);
            const T y1 = y - sk * (v + rk * y), v1 = v + sk * (y - rk * v);
            x = x1, y = y1, z = z1, v = v1;
          }
          s[p * ld + pl] = x;
          if (has_ql) s[p * ld + ql] = y;
          if (has_q) s[q * ld + pl] = z;
          if (has_q && has_ql) s[q * ld + ql] = v;
        } else {  // U ← Jᵀ U: rows p, q at column j
          const int k = (item - half * half) / n, j = (item - half * half) % n;
          if (!sh.rotated[k]) return;
          const int p = sh.p[k], q = sh.q[k];
          const T sk = sh.s[k], rk = sh.rho[k];
          const T g = u[p * n + j], h = u[q * n + j];
          u[p * n + j] = g - sk * (h + rk * g);
          u[q * n + j] = h + sk * (g - rk * h);
        }
      });
    }
  }
  if (!converged) {
    fail();
    return;
  }

  // ascending order (syevd_entry's selection sort, on the indices), U's rows permuted and signed
  phase(1, [&](int) {
    for (int k = 0; k < n; ++k) {
      sh.red[k] = s[k * ld + k];
      sh.perm[k] = k;
    }
    for (int k = 0; k < n - 1; ++k) {
      int best = k;
      for (int j = k + 1; j < n; ++j)
        if (sh.red[j] < sh.red[best]) best = j;
      if (best != k) {
        const T d = sh.red[k];
        sh.red[k] = sh.red[best];
        sh.red[best] = d;
        const int i = sh.perm[k];
        sh.perm[k] = sh.perm[best];
        sh.perm[best] = i;
      }
    }
  });
  phase(size, [&](int q) { s[(q / n) * ld + q % n] = u[q]; });
  phase(n, [&](int k) {
    const T* row = s + sh.perm[k] * ld;
    int best = 0;
    T bmag = xl_abs(row[0]);
    for (int j = 1; j < n; ++j) {
      const T mag = xl_abs(row[j]);
      if (mag > bmag) {
        bmag = mag;
        best = j;
      }
    }
    sh.flip[k] = row[best] < T(0);
    w[k] = xl_ldexp(sh.red[k], scale);
  });
  phase(size, [&](int q) {
    const int k = q / n;
    const T x = s[sh.perm[k] * ld + q % n];
    u[q] = sh.flip[k] ? -x : x;
  });
}

}  // namespace hd
}  // namespace xl
