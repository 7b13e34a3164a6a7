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

// out = alpha op(A) op(B) + beta C (C null: gemm2, beta ignored)
template <class T>
void gemm_forward(const T* a, const T* b, const T* c, T* out, Int m, Int p, Int k, const ProductParams& q) {
  const View<T> av = stored(a, m, k, q.ta), bv = stored(b, k, p, q.tb), ov = rowmajor(out, m, p);
  if (c && small_gemm_first(m, p, k) && small_gemm<T>(q.ta, av, q.tb, bv, T(q.alpha), T(q.beta), ov, m, p, k, c)) return;  // C read in place
  if (c) std::copy(c, c + std::size_t(m) * p, out);
  gemm<T>(q.ta, av, q.tb, bv, T(q.alpha), c ? T(q.beta) : T(0), ov, m, p, k);
}

// Ā = alpha Ḡ op(B)ᵀ (transposed back when ``ta``), B̄ = alpha op(A)ᵀ Ḡ (likewise), C̄ = beta Ḡ
template <class T>
void gemm_vjp(const T* a, const T* b, const T* g, T* ga, T* gb, T* gc, Int m, Int p, Int k, const ProductParams& q) {
  const View<T> av = stored(a, m, k, q.ta), bv = stored(b, k, p, q.tb), gv = rowmajor(const_cast<T*>(g), m, p);
  const T alpha = T(q.alpha);
  if (q.ta)  // Āᵀ = alpha op(B) Ḡᵀ  (k×m)
    gemm<T>(q.tb, bv, true, gv, alpha, T(0), rowmajor(ga, k, m), k, m, p);
  else  // (m×k)
    gemm<T>(false, gv, !q.tb, bv, alpha, T(0), rowmajor(ga, m, k), m, k, p);
  if (q.tb)  // B̄ᵀ = alpha Ḡᵀ op(A)  (p×k)
    gemm<T>(true, gv, q.ta, av, alpha, T(0), rowmajor(gb, p, k), p, k, m);
  else  // (k×p)
    gemm<T>(!q.ta, av, false, gv, alpha, T(0), rowmajor(gb, k, p), k, p, m);
  if (gc) {
    const std::size_t items = std::size_t(m) * p;
    const T beta = T(q.beta);
    for (std::size_t i = 0; i < items; ++i) gc[i] = beta * g[i];
  }
}

}  // namespace xl
