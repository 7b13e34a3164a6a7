// Householder reflectors and reductions along rows for the small-matrix kernels (lq.hpp,
// small_eigen.hpp), in an order that depends on the instruction set alone: every library built
// from these sources (the extension, the PyTorch node, the XLA handlers) gives the same bits.
// Never leave the order of a floating-point reduction to the vectorizer.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>

#include "blas.hpp"  // Int
#include "isa.hpp"

namespace xl {

// The Householder reflector of LAPACK's ?larfg for x = (α, x₁, …, x_{m−1}), some x_j ≠ 0 (j ≥ 1), all
// finite: H = I − τ v vᵀ with H x = (β, 0, …, 0), β = −sign(α) ‖x‖₂, τ = (β − α)/β and
// v = (1, x₁/(α − β), …). Writes v₁, …, v_{m−1} over x₁, …, x_{m−1} and returns β and τ; x₀ is
// left to the caller. ‖x‖₂ is scaled by max|x_j| on the way, and values below 1/ε of the
// smallest normal number (subnormal ones among them) are first multiplied by a power of two
// (exact: v and τ do not change, β is scaled back), so that neither 1/max|x_j| nor 1/(α − β)
// overflows and β keeps its precision.
template <class T>
struct Reflector {
  T beta, tau;
};

template <class T>
inline XL_INLINE Reflector<T> make_reflector(T* x, Int m) {
  T s = 0;
  for (Int j = 0; j < m; ++j) s = std::max(s, std::abs(x[j]));
  int up = 0;
  if (s < std::numeric_limits<T>::min() / std::numeric_limits<T>::epsilon()) {
    up = -std::ilogb(s);
    for (Int j = 0; j < m; ++j) x[j] = std::ldexp(x[j], up);
    s = std::ldexp(s, up);
  }
  const T r = T(1) / s, alpha = x[0];
  T sum = 0;
  for (Int j = 0; j < m; ++j) sum += (x[j] * r) * (x[j] * r);
  const T beta = -std::copysign(s * std::sqrt(sum), alpha), scale = T(1) / (alpha - beta);
  for (Int j = 1; j < m; ++j) x[j] *= scale;
  return {up ? std::ldexp(beta, -up) : beta, (beta - alpha) / beta};
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
