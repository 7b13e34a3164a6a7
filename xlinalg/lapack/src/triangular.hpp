// Triangular operators per matrix: trsm (solve) and trmm (product), forward and reverse.
//
// A is n×n (row-major, only its ``lower``/upper triangle read); B, X and Ḡ are rows×cols with
// rows = n (op(A) from the left) or cols = n (``rightside``).
#pragma once

#include <cstring>

#include "blas.hpp"
#include "batch.hpp"
#include "triangles.hpp"

namespace xl {

struct TriangularParams {
  bool transpose, rightside, lower;
  double alpha;
};

// X = α op(A)⁻¹ B (α B op(A)⁻¹); false (X NaN) when X, or with an empty B the read triangle of A,
// is not finite: a singular or non-finite A reaches X.
template <class T>
bool trsm_forward(const T* a, const T* b, T* out, Int rows, Int cols, const TriangularParams& p) {
  const Int n = p.rightside ? cols : rows;
  const View<T> av = rowmajor(const_cast<T*>(a), n, n);
  team_copy(out, b, std::size_t(rows) * cols);
  trsm<T>(!p.rightside, p.lower, p.transpose, rows, cols, T(p.alpha), av, rowmajor(out, rows, cols));
  const std::int64_t size = std::int64_t(rows) * cols;
  const bool ok = size > 0 ? all_finite(out, size) : triangle_finite(av, n, p.lower);
  if (!ok) fill_nan(out, size);
  return ok;
}

// Y = op(A)⁻ᵀ Ḡ (Ḡ op(A)⁻ᵀ), B̄ = α Y, op(A)‾ = −Y Xᵀ (−Xᵀ Y), Ā masked to the triangle.
template <class T>
void trsm_vjp(const T* a, const T* x, const T* g, T* ga, T* gb, Int rows, Int cols, const TriangularParams& p) {
  const Int n = p.rightside ? cols : rows, k = p.rightside ? rows : cols;
  const View<T> av = rowmajor(const_cast<T*>(a), n, n);
  const View<T> xv = rowmajor(const_cast<T*>(x), rows, cols), yv = rowmajor(gb, rows, cols);
  team_copy(gb, g, std::size_t(rows) * cols);
  trsm<T>(!p.rightside, p.lower, !p.transpose, rows, cols, T(1), av, yv);
  View<T> gav = rowmajor(ga, n, n);
  const View<T> gopa = p.transpose ? gav.t() : gav;
  const bool lower = p.lower != p.transpose;  // the triangle of op(A) that is A's read one
  if (p.rightside)
    gemm_triangle<T>(lower, true, xv, false, yv, T(-1), T(0), gopa, n, k);
  else
    gemm_triangle<T>(lower, false, yv, true, xv, T(-1), T(0), gopa, n, k);
  mask_triangle(gav, n, p.lower);
  if (p.alpha != 1.0)
    for (std::size_t i = 0, size = std::size_t(rows) * cols; i < size; ++i) gb[i] *= T(p.alpha);
}

// out = α op(A) B (α B op(A))
template <class T>
void trmm_forward(const T* a, const T* b, T* out, Int rows, Int cols, const TriangularParams& p) {
  const Int n = p.rightside ? cols : rows;
  team_copy(out, b, std::size_t(rows) * cols);
  trmm<T>(!p.rightside, p.lower, p.transpose, rows, cols, T(p.alpha), rowmajor(const_cast<T*>(a), n, n),
          rowmajor(out, rows, cols));
}

// op(A)‾ = α Ḡ Bᵀ (α Bᵀ Ḡ), B̄ = α op(A)ᵀ Ḡ (α Ḡ op(A)ᵀ), Ā masked to the triangle.
template <class T>
void trmm_vjp(const T* a, const T* b, const T* g, T* ga, T* gb, Int rows, Int cols, const TriangularParams& p) {
  const Int n = p.rightside ? cols : rows, k = p.rightside ? rows : cols;
  const View<T> bv = rowmajor(const_cast<T*>(b), rows, cols), gv = rowmajor(const_cast<T*>(g), rows, cols);
  View<T> gav = rowmajor(ga, n, n);
  const View<T> gopa = p.transpose ? gav.t() : gav;
  const bool lower = p.lower != p.transpose;  // the triangle of op(A) that is A's read one
  if (p.rightside)
    gemm_triangle<T>(lower, true, bv, false, gv, T(p.alpha), T(0), gopa, n, k);
  else
    gemm_triangle<T>(lower, false, gv, true, bv, T(p.alpha), T(0), gopa, n, k);
  mask_triangle(gav, n, p.lower);
  team_copy(gb, g, std::size_t(rows) * cols);
  trmm<T>(!p.rightside, p.lower, !p.transpose, rows, cols, T(p.alpha), rowmajor(const_cast<T*>(a), n, n),
          rowmajor(gb, rows, cols));
}

}  // namespace xl
