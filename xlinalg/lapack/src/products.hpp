// General matrix products per matrix: gemm (alpha op(A) op(B) + beta C) and gemm2 (no C), forward
// and reverse, on row-major A (stored m×k, or k×m with ``ta``), B (k×p, or p×k with ``tb``), C m×p.
#pragma once

#include <algorithm>

#include "blas.hpp"

namespace xl {

struct ProductParams {
  bool ta, tb;
  double alpha, beta;
};

template <class T>
View<T> stored(const T* x, Int rows, Int cols, bool transposed) {
  return transposed ? rowmajor(const_cast<T*>(x), cols, rows) : rowmajor(const_cast<T*>(x), rows, cols);
}

// out_i = alpha op(A_i) op(B_i) + beta C_i for ``batch`` products stored one after the other (C
// null: gemm2, beta ignored): one product with C read in place by small_gemm where it takes it,
// else C copied to out and the products computed by gemm_each.
template <class T>
void gemm_forward(std::int64_t batch, const T* a, const T* b, const T* c, T* out, Int m, Int p, Int k,
                  const ProductParams& q) {
  const std::ptrdiff_t sa = std::ptrdiff_t(m) * k, sb = std::ptrdiff_t(k) * p, so = std::ptrdiff_t(m) * p;
  const View<T> av = stored(a, m, k, q.ta), bv = stored(b, k, p, q.tb), ov = rowmajor(out, m, p);
  if (c && batch == 1 && small_gemm_first(m, p, k) && small_gemm<T>(q.ta, av, q.tb, bv, T(q.alpha), T(q.beta), ov, m, p, k, c))
    return;
  if (c) team_copy(out, c, std::size_t(batch) * so);
  gemm_each<T>(batch, q.ta, av, sa, q.tb, bv, sb, T(q.alpha), c ? T(q.beta) : T(0), ov, so, m, p, k);
}

// Ā = alpha Ḡ op(B)ᵀ (transposed back when ``ta``), B̄ = alpha op(A)ᵀ Ḡ (likewise), C̄ = beta Ḡ
// (unless gc is null) for ``batch`` products stored one after the other, by gemm_each.
template <class T>
void gemm_vjp(std::int64_t batch, const T* a, const T* b, const T* g, T* ga, T* gb, T* gc, Int m, Int p, Int k,
              const ProductParams& q) {
  const View<T> av = stored(a, m, k, q.ta), bv = stored(b, k, p, q.tb), gv = rowmajor(const_cast<T*>(g), m, p);
  const std::ptrdiff_t sa = std::ptrdiff_t(m) * k, sb = std::ptrdiff_t(k) * p, so = std::ptrdiff_t(m) * p;
  const T alpha = T(q.alpha);
  if (q.ta)  // Āᵀ = alpha op(B) Ḡᵀ  (k×m)
    gemm_each<T>(batch, q.tb, bv, sb, true, gv, so, alpha, T(0), rowmajor(ga, k, m), sa, k, m, p);
  else  // (m×k)
    gemm_each<T>(batch, false, gv, so, !q.tb, bv, sb, alpha, T(0), rowmajor(ga, m, k), sa, m, k, p);
  if (q.tb)  // B̄ᵀ = alpha Ḡᵀ op(A)  (p×k)
    gemm_each<T>(batch, true, gv, so, q.ta, av, sa, alpha, T(0), rowmajor(gb, p, k), sb, p, k, m);
  else  // (k×p)
    gemm_each<T>(batch, !q.ta, av, sa, false, gv, so, alpha, T(0), rowmajor(gb, k, p), sb, k, p, m);
  if (gc) {
    const std::size_t items = std::size_t(batch) * so;
    const T beta = T(q.beta);
    for (std::size_t i = 0; i < items; ++i) gc[i] = beta * g[i];
  }
}

}  // namespace xl
