// Loops over the triangles of a square view that walk the rows of memory whatever the view's
// layout (a column-major view, such as an upper factor read as a lower one, as its transpose): the
// masks and finiteness checks of one triangle, and, by tiles, the symmetric completions and
// symmetrizations (the potrf, potri, syevd, gelqf and syrk reverses, potri's and syrk's forwards).
//
// Walking one triangle by rows walks the other by columns, a cache line per entry; at orders that
// are powers of two those lines also share few cache sets, and the walk misses on nearly every entry
// (order 1024, float64, one thread: 2.0 ms by rows and columns against 0.7 ms by 32×32 tiles, order
// 256: 95 µs against 52 µs). By tiles, the mirrored tile is read into a local buffer and written
// back whole, by rows (by the rows of memory: a column-major view is walked as its transpose).
#pragma once

#include <algorithm>

#include "blas.hpp"  // Int, View

namespace xl {

// Whether the named triangle of ``a`` (lower or upper, with the diagonal) is finite.
template <class T>
bool triangle_finite(View<T> a, Int n, bool lower) {
  if (a.colmajor()) a = a.t(), lower = !lower;
  bool ok = true;
  for (Int i = 0; i < n; ++i)
    for (Int j = lower ? 0 : i; j < (lower ? i + 1 : n); ++j) ok &= (a(i, j) - a(i, j) == T(0));
  return ok;
}

// Zeros the strict triangle of ``a`` opposite the named one.
template <class T>
void mask_triangle(View<T> a, Int n, bool lower) {
  if (a.colmajor()) a = a.t(), lower = !lower;
  for (Int i = 0; i < n; ++i)
    for (Int j = lower ? i + 1 : 0; j < (lower ? n : i); ++j) a(i, j) = T(0);
}

// symmetric_pairs on views whose rows are the rows of memory.
template <class T, class F>
void symmetric_pairs_by_rows(View<const T> src, View<T> dst, Int n, const F& f) {
  constexpr Int B = 32;
  T upper[B][B];  // upper[j][i]: the mirrored tile, (j0 + j, i0 + i)
  for (Int i0 = 0; i0 < n; i0 += B) {
    const Int rows = std::min(B, n - i0);
    for (Int j0 = 0; j0 < i0; j0 += B) {  // a whole tile below the diagonal (j0 + B ≤ i0)
      for (Int j = 0; j < B; ++j)
        for (Int i = 0; i < rows; ++i) upper[j][i] = src(j0 + j, i0 + i);
      for (Int i = 0; i < rows; ++i)
        for (Int j = 0; j < B; ++j) {
          const T v = f(i0 + i, j0 + j, src(i0 + i, j0 + j), upper[j][i]);
          dst(i0 + i, j0 + j) = v;
          upper[j][i] = v;
        }
      for (Int j = 0; j < B; ++j)
        for (Int i = 0; i < rows; ++i) dst(j0 + j, i0 + i) = upper[j][i];
    }
    for (Int i = i0; i < i0 + rows; ++i)  // the tile on the diagonal
      for (Int j = i0; j < i; ++j) {
        const T v = f(i, j, src(i, j), src(j, i));
        dst(i, j) = v;
        dst(j, i) = v;
      }
  }
}

// Writes dst(i, j) = dst(j, i) = f(i, j, src(i, j), src(j, i)) for every i > j of the n×n views
// (``dst`` may be ``src``: each pair is read before it is written); the diagonal is the caller's.
// f sees each pair once, so the results do not depend on the tiling or the layout.
template <class T, class F>
void symmetric_pairs(View<const T> src, View<T> dst, Int n, const F& f) {
  if (dst.colmajor())  // the transposes' pairs, by rows, the arguments swapped back
    symmetric_pairs_by_rows<T>(src.t(), dst.t(), n, [&f](Int i, Int j, T above, T below) { return f(i, j, below, above); });
  else
    symmetric_pairs_by_rows<T>(src, dst, n, f);
}

// In place: a(i, j) = a(j, i) = f(i, j, a(i, j), a(j, i)) for i > j.
template <class T, class F>
void symmetric_pairs(View<T> a, Int n, const F& f) {
  symmetric_pairs<T>(View<const T>{a.p, a.rs, a.cs}, a, n, f);
}

}  // namespace xl
