// Symmetric rank-k update per matrix: syrk, forward and reverse.
//
// A is rows×cols (row-major); the output is n×n with n = rows (alpha A Aᵀ) or, with ``transpose``,
// n = cols (alpha Aᵀ A). The row-major buffer of A reads as the column-major matrix M = Aᵀ
// (leading dimension cols), so alpha A Aᵀ = alpha Mᵀ M is BLAS syrk with trans 'T' and
// alpha Aᵀ A = alpha M Mᵀ with trans 'N': one triangle (n²k flops, half a gemm), then mirrored.
// Up to order kSmallGemm the whole product by the small kernels (small_gemm.hpp) takes less time.
#pragma once

#include <algorithm>
#include <vector>

#include "blas.hpp"
#include "triangles.hpp"

namespace xl {

template <class T>
void syrk_forward(const T* a, T* out, Int rows, Int cols, bool transpose, T alpha) {
  const Int n = transpose ? cols : rows, k = transpose ? rows : cols;
  if (n == 0) return;
  if (k == 0) {
    std::fill(out, out + std::size_t(n) * n, T(0));
    return;
  }
  const View<T> av = rowmajor(const_cast<T*>(a), rows, cols);
  if (n <= kSmallGemm && k <= kSmallGemm) {  // small: the whole product without the BLAS is faster
    gemm_whole<T>(transpose, av, !transpose, av, alpha, T(0), rowmajor(out, n, n), n, n, k);
  } else if (blas_called_whole()) {  // torch's MKL has no syrk at hand: its gemm, by blocks of rows
    gemm_triangle<T>(false, transpose, av, !transpose, av, alpha, T(0), rowmajor(out, n, n), n, k);
  } else {
    const char uplo = 'L', trans = transpose ? 'N' : 'T';
    const Int lda = std::max<Int>(1, cols);
    const T beta = T(0);
    routines<T>().syrk(&uplo, &trans, &n, &k, &alpha, a, &lda, &beta, out, &n);
  }
  // the row-major upper triangle (all the BLAS wrote: its column-major 'L') copied to the lower one
  symmetric_pairs(rowmajor(out, n, n), n, [](Int, Int, T, T above) { return above; });
}

// Ā = alpha (Ḡ + Ḡᵀ) A, or alpha A (Ḡ + Ḡᵀ) with ``transpose``: the adjoint of
// Ȧ ↦ alpha (Ȧ Aᵀ + A Ȧᵀ) (alpha (Ȧᵀ A + Aᵀ Ȧ)).
template <class T>
void syrk_vjp(const T* a, const T* g, T* ga, Int rows, Int cols, bool transpose, T alpha, Buffer<T>& work) {
  const Int n = transpose ? cols : rows;
  if (rows == 0 || cols == 0) return;
  work.resize(std::size_t(n) * n);
  const View<T> av = rowmajor(const_cast<T*>(a), rows, cols), sv = rowmajor(work.data(), n, n), gv = rowmajor(ga, rows, cols);
  symmetric_pairs<T>(View<const T>{g, n, 1}, sv, n, [alpha](Int, Int, T below, T above) { return alpha * (below + above); });
  for (Int i = 0; i < n; ++i) sv(i, i) = alpha * (g[std::size_t(i) * (n + 1)] + g[std::size_t(i) * (n + 1)]);
  if (transpose)
    gemm<T>(false, av, false, sv, T(1), T(0), gv, rows, cols, n);  // (rows×n)(n×n), n = cols
  else
    gemm<T>(false, sv, false, av, T(1), T(0), gv, rows, cols, n);  // (n×n)(n×cols), n = rows
}

}  // namespace xl
