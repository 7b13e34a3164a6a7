// Loops over the triangles of a square view that walk the rows of memory whatever the view's
// layout (a column-major view, such as an upper factor read as a lower one, as its transpose): the
// masks and finiteness checks of one triangle, and, by tiles, the symmetric completions and
// symmetrizations (the potrf, potri, syevd, gelqf and syrk reverses, potri's and syrk's forwards).
//
// Walking one triangle by rows walks the other by columns, a cache line per entry; at orders that
// are powers of two those lines also share few cache sets, and the walk misses on nearly every entry
// (order 1024, float64, one thread: 2.0 ms by rows and columns against 0.7 ms by 32×32 tiles, order
// 256: 95 µs against 52 µs). By tiles, the mirrored tile is read into a local buffer and written
// back whole, by rows (by the rows of memory: a column-major view is walked as its transpose);
// with AVX2 both transposes of the tile run in vector registers (order 256 float32: 36 → 16 µs).
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "batch.hpp"  // nonfinite_sum
#include "blas.hpp"   // Int, View
#include "isa.hpp"

namespace xl {

// Whether the named triangle of ``a`` (lower or upper, with the diagonal) is finite.
template <class T>
bool triangle_finite(View<T> a, Int n, bool lower) {
  if (a.colmajor()) a = a.t(), lower = !lower;
  T sum = 0;
  for (Int i = 0; i < n; ++i) {
    const Int begin = lower ? 0 : i, end = lower ? i + 1 : n;
    sum += nonfinite_sum(&a(i, begin), end - begin);
  }
  return sum == T(0);
}

// Zeros the strict triangle of ``a`` opposite the named one.
template <class T>
void mask_triangle(View<T> a, Int n, bool lower) {
  if (a.colmajor()) a = a.t(), lower = !lower;
  for (Int i = 0; i < n; ++i)
    for (Int j = lower ? i + 1 : 0; j < (lower ? n : i); ++j) a(i, j) = T(0);
}

#if XL_AVX2
// d(c, r) = s(r, c) for r < rows, c < cols, both multiples of W = 8 (float) or 4 (double): whole
// W×W blocks through vector registers (rows of memory ``ls`` and ``ld`` apart).
template <class T>
XL_AVX2_TARGET inline void transpose_blocks_avx2(const T* s, std::ptrdiff_t ls, T* d, std::ptrdiff_t ld, Int rows, Int cols) {
  constexpr Int W = 32 / sizeof(T);
  for (Int r = 0; r < rows; r += W)
    for (Int c = 0; c < cols; c += W) {
      const T* sp = s + r * ls + c;
      T* dp = d + c * ld + r;
      if constexpr (std::is_same_v<T, float>) {
        __m256 x[8], y[8];
        for (int k = 0; k < 8; ++k) x[k] = _mm256_loadu_ps(sp + k * ls);
        for (int k = 0; k < 8; k += 2) {  // rows interleaved by pairs,
          y[k] = _mm256_unpacklo_ps(x[k], x[k + 1]);
          y[k + 1] = _mm256_unpackhi_ps(x[k], x[k + 1]);
        }
        for (int k = 0; k < 8; k += 4) {  // by fours,
          x[k] = _mm256_shuffle_ps(y[k], y[k + 2], 0x44);
          x[k + 1] = _mm256_shuffle_ps(y[k], y[k + 2], 0xEE);
          x[k + 2] = _mm256_shuffle_ps(y[k + 1], y[k + 3], 0x44);
          x[k + 3] = _mm256_shuffle_ps(y[k + 1], y[k + 3], 0xEE);
        }
        for (int k = 0; k < 4; ++k) {  // then by 128-bit halves
          _mm256_storeu_ps(dp + k * ld, _mm256_permute2f128_ps(x[k], x[k + 4], 0x20));
          _mm256_storeu_ps(dp + (k + 4) * ld, _mm256_permute2f128_ps(x[k], x[k + 4], 0x31));
        }
      } else {
        const __m256d x0 = _mm256_loadu_pd(sp), x1 = _mm256_loadu_pd(sp + ls);
        const __m256d x2 = _mm256_loadu_pd(sp + 2 * ls), x3 = _mm256_loadu_pd(sp + 3 * ls);
        const __m256d y0 = _mm256_unpacklo_pd(x0, x1), y1 = _mm256_unpackhi_pd(x0, x1);
        const __m256d y2 = _mm256_unpacklo_pd(x2, x3), y3 = _mm256_unpackhi_pd(x2, x3);
        _mm256_storeu_pd(dp, _mm256_permute2f128_pd(y0, y2, 0x20));
        _mm256_storeu_pd(dp + ld, _mm256_permute2f128_pd(y1, y3, 0x20));
        _mm256_storeu_pd(dp + 2 * ld, _mm256_permute2f128_pd(y0, y2, 0x31));
        _mm256_storeu_pd(dp + 3 * ld, _mm256_permute2f128_pd(y1, y3, 0x31));
      }
    }
}
#endif

// d(c, r) = s(r, c) for r < rows, c < cols (rows of memory ``ls`` and ``ld`` apart); with
// ``Avx2``, the whole vector-width blocks by transpose_blocks_avx2.
template <bool Avx2, class T>
inline XL_INLINE void transpose_block(const T* s, std::ptrdiff_t ls, T* d, std::ptrdiff_t ld, Int rows, Int cols) {
  Int rw = 0, cw = 0;
#if XL_AVX2
  if constexpr (Avx2 && (std::is_same_v<T, float> || std::is_same_v<T, double>)) {
    constexpr Int W = 32 / sizeof(T);
    rw = rows / W * W, cw = cols / W * W;
    transpose_blocks_avx2(s, ls, d, ld, rw, cw);
  }
#endif
  for (Int r = 0; r < rw; ++r)
    for (Int c = cw; c < cols; ++c) d[c * ld + r] = s[r * ls + c];
  for (Int r = rw; r < rows; ++r)
    for (Int c = 0; c < cols; ++c) d[c * ld + r] = s[r * ls + c];
}

// symmetric_pairs on views whose rows are the rows of memory (unit column strides).
template <class T, class F>
void symmetric_pairs_by_rows(View<const T> src, View<T> dst, Int n, const F& f) {
  run_best([&](auto isa) XL_INLINE {
    constexpr bool avx2 = decltype(isa)::value;
    constexpr Int B = 32;
    T above[B][B];  // above[i][j] = src(j0 + j, i0 + i): the mirrored tile, transposed
    const T* s = src.p;
    T* d = dst.p;
    const std::ptrdiff_t ls = src.rs, ld = dst.rs;
    for (Int i0 = 0; i0 < n; i0 += B) {
      const Int rows = std::min(B, n - i0);
      for (Int j0 = 0; j0 < i0; j0 += B) {  // a whole tile below the diagonal (j0 + B ≤ i0)
        transpose_block<avx2>(s + j0 * ls + i0, ls, &above[0][0], B, B, rows);
        for (Int i = 0; i < rows; ++i) {
          const T* below = s + (i0 + i) * ls + j0;
          T* out = d + (i0 + i) * ld + j0;
          T* mirror = above[i];
          for (Int j = 0; j < B; ++j) {
            const T v = f(i0 + i, j0 + j, below[j], mirror[j]);
            out[j] = v;
            mirror[j] = v;
          }
        }
        transpose_block<avx2>(&above[0][0], B, d + j0 * ld + i0, ld, rows, B);
      }
      for (Int i = i0; i < i0 + rows; ++i)  // the tile on the diagonal
        for (Int j = i0; j < i; ++j) {
          const T v = f(i, j, s[i * ls + j], s[j * ls + i]);
          d[i * ld + j] = v;
          d[j * ld + i] = v;
        }
    }
  });
}

// Writes dst(i, j) = dst(j, i) = f(i, j, src(i, j), src(j, i)) for every i > j of the n×n views
// (``dst`` may be ``src``: each pair is read before it is written); the diagonal is the caller's.
// f sees each pair once, so the results do not depend on the tiling or the layout.
template <class T, class F>
void symmetric_pairs(View<const T> src, View<T> dst, Int n, const F& f) {
  if (src.colmajor() != dst.colmajor()) {  // mixed layouts (no caller has them): pair by pair
    for (Int i = 0; i < n; ++i)
      for (Int j = 0; j < i; ++j) dst(i, j) = dst(j, i) = f(i, j, src(i, j), src(j, i));
  } else if (dst.colmajor()) {  // the transposes' pairs, by rows, the arguments swapped back
    symmetric_pairs_by_rows<T>(src.t(), dst.t(), n, [&f](Int i, Int j, T above, T below) { return f(i, j, below, above); });
  } else {
    symmetric_pairs_by_rows<T>(src, dst, n, f);
  }
}

// In place: a(i, j) = a(j, i) = f(i, j, a(i, j), a(j, i)) for i > j.
template <class T, class F>
void symmetric_pairs(View<T> a, Int n, const F& f) {
  symmetric_pairs<T>(View<const T>{a.p, a.rs, a.cs}, a, n, f);
}

}  // namespace xl
