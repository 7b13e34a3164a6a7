// Instruction sets chosen at run time. Kernels whose loops gain most from wide vectors and fused
// multiply-adds are compiled a second time for AVX2 with FMA (``XL_AVX2_TARGET``) on x86-64 with
// GCC or Clang, and run where the CPU has both (avx2_fma()); the baseline build runs elsewhere.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#if defined(__GNUC__) && defined(__x86_64__)
#define XL_AVX2 1
#define XL_AVX2_TARGET __attribute__((target("avx2,fma")))
#define XL_INLINE __attribute__((always_inline))
#include <immintrin.h>
#else
#define XL_AVX2 0
#define XL_AVX2_TARGET
#define XL_INLINE
#endif

namespace xl {

// Whether the AVX2 builds run: the CPU has AVX2 and FMA, and the environment variable
// XLINALG_ISA (read once) is not "baseline", which runs the baseline builds on any CPU (so that
// the tests check them where AVX2 would otherwise always win).
inline bool avx2_fma() {
#if XL_AVX2
  static const bool has = [] {
    const char* isa = std::getenv("XLINALG_ISA");
    const bool baseline = isa != nullptr && std::strcmp(isa, "baseline") == 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !baseline;
  }();
  return has;
#else
  return false;
#endif
}

#if XL_AVX2
template <class F>
XL_AVX2_TARGET void run_avx2(const F& body) {
  body(std::true_type{});
}
#endif

// 32 bytes of T as one vector (GCC and Clang vector extensions): arithmetic lane by lane, one
// AVX register in the AVX2 builds, two SSE registers in the baseline. at(p): the vector at p, any
// alignment of T, aliasing T.
template <class T>
struct Vec32 {
  typedef T type __attribute__((vector_size(32)));
  typedef T in_memory __attribute__((vector_size(32), aligned(sizeof(T)), may_alias));
  static constexpr int lanes = 32 / sizeof(T);
  static inline XL_INLINE in_memory& at(T* p) { return *reinterpret_cast<in_memory*>(p); }
  static inline XL_INLINE const in_memory& at(const T* p) { return *reinterpret_cast<const in_memory*>(p); }
};

// Runs ``body(isa)`` (a lambda marked XL_INLINE, so that it is compiled into each caller) in AVX2
// with FMA where the CPU has them, ``isa`` std::true_type, else in the baseline instruction set,
// ``isa`` std::false_type: ``decltype(isa)::value`` picks a kernel's intrinsics at compile time.
template <class F>
void run_best(const F& body) {
#if XL_AVX2
  if (avx2_fma()) {
    run_avx2(body);
    return;
  }
#endif
  body(std::false_type{});
}

// Runs ``body(width)`` (a lambda marked XL_INLINE, like run_best's) with ``width`` the
// std::integral_constant of the narrowest of 8, 16 and Widest that holds ``n`` columns: the
// padded row widths the small-matrix kernels are compiled for.
template <int Widest, class F>
inline XL_INLINE void with_padded_width(std::int64_t n, const F& body) {
  static_assert(Widest >= 16, "the widths are 8, 16 and Widest");
  if (n <= 8)
    body(std::integral_constant<int, 8>{});
  else if (n <= 16)
    body(std::integral_constant<int, 16>{});
  else
    body(std::integral_constant<int, Widest>{});
}

}  // namespace xl
