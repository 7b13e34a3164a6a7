// Reductions along rows for the small-matrix kernels (lq.hpp, small_eigen.hpp), in an order that
// depends on the instruction set alone: every library built from these sources (the extension,
// the PyTorch node, the XLA handlers) gives the same bits. Never leave the order of a
// floating-point reduction to the vectorizer.
#pragma once

#include <algorithm>
#include <cmath>

#include "blas.hpp"  // Int
#include "isa.hpp"

namespace xl {

// ‖x‖₂ of n finite values, scaled by the largest |x_j| (no overflow or underflow on the way).
template <class T>
inline XL_INLINE T scaled_norm(const T* x, Int n) {
  T s = 0;
  for (Int j = 0; j < n; ++j) s = std::max(s, std::abs(x[j]));
  if (s == T(0)) return s;
  const T r = T(1) / s;
  T sum = 0;
  for (Int j = 0; j < n; ++j) sum += (x[j] * r) * (x[j] * r);
  return s * std::sqrt(sum);
}

// Σ x_j y_j in an order fixed by the instruction set alone: in AVX2 one register of partial sums
// (j mod 8 for float, mod 4 for double) then added pairwise, in the baseline one sum in order.
#if XL_AVX2
template <class T>
XL_AVX2_TARGET inline T dot_avx2(const T* x, const T* y, Int n) {
  constexpr int P = 32 / sizeof(T);
  alignas(32) T part[P];
  Int j = 0;
  if constexpr (sizeof(T) == sizeof(float)) {
    __m256 acc = _mm256_setzero_ps();
    for (; j + P <= n; j += P)
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(reinterpret_cast<const float*>(x + j)),
                            _mm256_loadu_ps(reinterpret_cast<const float*>(y + j)), acc);
    _mm256_store_ps(reinterpret_cast<float*>(part), acc);
  } else {
    __m256d acc = _mm256_setzero_pd();
    for (; j + P <= n; j += P)
      acc = _mm256_fmadd_pd(_mm256_loadu_pd(reinterpret_cast<const double*>(x + j)),
                            _mm256_loadu_pd(reinterpret_cast<const double*>(y + j)), acc);
    _mm256_store_pd(reinterpret_cast<double*>(part), acc);
  }
  for (int c = 0; j < n; ++j, ++c) part[c] += x[j] * y[j];
  for (int width = P / 2; width > 0; width /= 2)
    for (int c = 0; c < width; ++c) part[c] += part[c + width];
  return part[0];
}
#endif

template <class T, bool Avx2>
inline XL_INLINE T dot_in_order(const T* x, const T* y, Int n) {
#if XL_AVX2
  if constexpr (Avx2) return dot_avx2(x, y, n);
#endif
  T sum = 0;
  for (Int j = 0; j < n; ++j) sum += x[j] * y[j];
  return sum;
}

}  // namespace xl
