// Products of small matrices without the BLAS: C = alpha op(A) op(B) + beta C for m, n, k up to
// kSmallGemm. A BLAS call costs a fixed few hundred nanoseconds of argument checks and packing
// before its kernel runs, as much as the arithmetic of an 8×8 product (OpenBLAS's single-precision
// path on order 8 took 0.34 µs a product). Here op(B) is read in place or copied into zero-padded
// rows of 8, 16 or 32 values (the loops have fixed lengths and vectorize whole) and C is
// accumulated in registers, a few rows at a time; the kernels run in AVX2 with FMA where the CPU
// has them (isa.hpp). Included by blas.hpp, after its View.
#pragma once

#include <algorithm>
#include <cstddef>

#include "isa.hpp"

namespace xl {

// Orders (m, n and k) up to which gemm_whole (blas.hpp) uses these kernels.
constexpr int kSmallGemm = 32;

// Rows of C per register block: as many as keep the accumulators (rows × NP values) within about
// twelve 32-byte registers, 1 to 4.
template <class T, int NP>
constexpr int small_gemm_rows() {
  return std::max(1, std::min(4, int(12 * 32 / (NP * sizeof(T)))));
}

// Transposes of one square tile, dst(j, i) = src(i, j) (rows ``lds`` and ``ldd`` apart): 8×8 floats
// or 4×4 doubles, in AVX registers.
#if XL_AVX2
XL_AVX2_TARGET inline void transpose_tile(const float* src, std::ptrdiff_t lds, float* dst, std::ptrdiff_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // r[0..3]: columns 0, 1, 2, 3 of rows 0-3 (low halves) and 4-7 of rows 0-3 (high); r[4..7] rows 4-7
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

XL_AVX2_TARGET inline void transpose_tile(const double* src, std::ptrdiff_t lds, double* dst, std::ptrdiff_t ldd) {
  const __m256d r0 = _mm256_loadu_pd(src), r1 = _mm256_loadu_pd(src + lds), r2 = _mm256_loadu_pd(src + 2 * lds),
                r3 = _mm256_loadu_pd(src + 3 * lds);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1), t2 = _mm256_unpacklo_pd(r2, r3),
                t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dst, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + ldd, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * ldd, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * ldd, _mm256_permute2f128_pd(t1, t3, 0x31));
}
#endif

// C (m×n) = alpha op(A) op(B) + beta C, where op(A)(i, l) = a[i·ars + l·acs] and op(B)(l, j) =
// b[l·brs + j·bcs], n ≤ NP. op(B) is read in place when its rows are contiguous and n == NP, else
// first copied into NP-wide rows (zero padding). Rows of C are taken R at a time; a last block short
// of R reads its last row again for the missing ones and writes only its own. beta scales ``cin``
// (laid out as C; C itself where they are one); beta == 0 reads neither (as the BLAS does).
template <class T, int NP, bool Avx2>
inline XL_INLINE void small_gemm_body(const T* a, std::ptrdiff_t ars, std::ptrdiff_t acs, const T* b,
                                     std::ptrdiff_t brs, std::ptrdiff_t bcs, T alpha, T beta, const T* cin, T* c,
                                     std::ptrdiff_t rs, std::ptrdiff_t cs, int m, int n, int k) {
  constexpr int R = small_gemm_rows<T, NP>();
  alignas(64) T packed[kSmallGemm * NP];
  std::ptrdiff_t ldb = brs;
  if (n != NP || bcs != 1) {
    if (n < NP)
      for (int l = 0; l < k; ++l)
        for (int j = n; j < NP; ++j) packed[l * NP + j] = T(0);
    if (brs == 1) {  // op(B)'s columns are contiguous: transposed, by tiles where the CPU has AVX2
      int j0 = 0, l0 = 0;
#if XL_AVX2
      if constexpr (Avx2) {
        constexpr int W = 32 / sizeof(T);
        j0 = n / W * W;
        l0 = k / W * W;
        for (int j = 0; j < j0; j += W)
          for (int l = 0; l < l0; l += W)
            transpose_tile(b + std::ptrdiff_t(j) * bcs + l, bcs, packed + l * NP + j, NP);
      }
#endif
      for (int j = 0; j < n; ++j) {  // what the tiles left: columns from j0, rows from l0 of the others
        const T* src = b + std::ptrdiff_t(j) * bcs;
        for (int l = j < j0 ? l0 : 0; l < k; ++l) packed[l * NP + j] = src[l];
      }
    } else {
      for (int l = 0; l < k; ++l) {
        const T* src = b + std::ptrdiff_t(l) * brs;
        for (int j = 0; j < n; ++j) packed[l * NP + j] = src[j * bcs];
      }
    }
    b = packed;
    ldb = NP;
  }
  for (int i0 = 0; i0 < m; i0 += R) {
    const T* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = a + std::ptrdiff_t(std::min(i0 + r, m - 1)) * ars;
    T acc[R][NP] = {};
    for (int l = 0; l < k; ++l) {
      const T* bl = b + std::ptrdiff_t(l) * ldb;
      for (int r = 0; r < R; ++r) {
        const T x = rows[r][std::ptrdiff_t(l) * acs];
#pragma omp simd
        for (int j = 0; j < NP; ++j) acc[r][j] += x * bl[j];
      }
    }
    for (int r = 0; r < R && i0 + r < m; ++r) {
      T* row = c + std::ptrdiff_t(i0 + r) * rs;
      const T* in = cin + std::ptrdiff_t(i0 + r) * rs;
      if (beta == T(0))
        for (int j = 0; j < n; ++j) row[j * cs] = alpha * acc[r][j];
      else
        for (int j = 0; j < n; ++j) row[j * cs] = alpha * acc[r][j] + beta * in[j * cs];
    }
  }
}

// op(A) op(B) for n ≤ NP columns, with the kernel the CPU runs.
template <class T, int NP>
void small_gemm_padded(bool ta, const View<T>& a, bool tb, const View<T>& b, T alpha, T beta, const T* cin,
                       const View<T>& c, int m, int n, int k) {
  // op(X)(i, j) = x.p[i·s0 + j·s1]
  const std::ptrdiff_t ars = ta ? a.cs : a.rs, acs = ta ? a.rs : a.cs;
  const std::ptrdiff_t brs = tb ? b.cs : b.rs, bcs = tb ? b.rs : b.cs;
  run_best([&](auto isa) XL_INLINE {
    small_gemm_body<T, NP, decltype(isa)::value>(a.p, ars, acs, b.p, brs, bcs, alpha, beta, cin, c.p, c.rs, c.cs, m, n, k);
  });
}

// C (m×n) = alpha op(A) op(B) + beta C where m, n and k are 1..kSmallGemm and alpha is not zero
// (gemm_whole then reads neither A nor B, as the BLAS's rule has it); false, doing nothing, otherwise. ``cin``, where given, is
// the C that beta scales, laid out as ``c`` (c = alpha op(A) op(B) + beta cin: no copy of cin
// into c first).
template <class T>
bool small_gemm(bool ta, const View<T>& a, bool tb, const View<T>& b, T alpha, T beta, const View<T>& c, int m, int n,
                int k, const T* cin = nullptr) {
  if (m < 1 || n < 1 || k < 1 || m > kSmallGemm || n > kSmallGemm || k > kSmallGemm || alpha == T(0)) return false;
  // columns of C in panels of at most 128 bytes a row: the accumulators of a few rows fit registers
  constexpr int widest = int(128 / sizeof(T));
  for (int j0 = 0; j0 < n; j0 += widest) {
    const int w = std::min(widest, n - j0);
    const View<T> bj = tb ? b.at(j0, 0) : b.at(0, j0), cj = c.at(0, j0);
    const T* cinj = cin ? cin + j0 * c.cs : cj.p;
    with_padded_width<widest>(w, [&](auto np) XL_INLINE {
      small_gemm_padded<T, decltype(np)::value>(ta, a, tb, bj, alpha, beta, cinj, cj, m, w, k);
    });
  }
  return true;
}

}  // namespace xl
