/* The C ABI of xlinalg's CPU kernel layer.
 *
 * Arrays are C-contiguous, row-major batches (batch, rows, cols); ``status`` has one int32 per
 * batch entry: 0, or 1 when the entry failed (not positive definite, singular, not finite), in
 * which case every element of that entry's outputs is NaN. VJP entries write gradients already
 * projected onto each argument's structure (symmetric, or masked to the named triangle).
 * ``threads`` caps the threads that split the batch (BLAS keeps its own setting).
 * Every entry exists for float (``_f32``) and double (``_f64``). */
#ifndef XLINALG_H
#define XLINALG_H
#include <stdint.h>
#if defined(__GNUC__)
#define XL_API __attribute__((visibility("default")))
#else
#define XL_API
#endif
#ifdef __cplusplus
extern "C" {
#endif

/* Set a BLAS/LAPACK routine ("dgemm", "spotrf", ...: Fortran convention, LP64 int); 0 when the
 * name is one the layer uses. xl_ready() is 1 once every routine is set. */
XL_API int xl_set_routine(const char* name, void* fn);
XL_API int xl_ready(void);
/* The instruction set the kernels with two builds run in: "avx2+fma" or "baseline" (a CPU
 * without AVX2 and FMA, another compiler or architecture, or XLINALG_ISA=baseline). */
XL_API const char* xl_isa(void);
/* The BLAS's thread count, get() and set(n) (OpenBLAS's openblas_get_num_threads and
 * openblas_set_num_threads): while a batch is split across the layer's threads the BLAS runs on
 * one, then gets its count back. Unset (or null), the BLAS keeps its count. */
XL_API void xl_set_blas_threads(int (*get)(void), void (*set)(int));
/* 1: the BLAS set is one to call whole (torch's MKL in a torch process): it threads its gemm and
 * trsm on the pool of the binding's team itself, and its trsm and potrf run at its gemm's rate, so
 * products and solves go to it in one call (no parts on the team, no solves by halves), a Cholesky
 * forward to LAPACK's potrf (not blocked in the layer) and an inverse from LU factors to ?getri's
 * algorithm in its solves. 0 (the default): the layer's choices for SciPy's OpenBLAS (blas.hpp,
 * cholesky.hpp, inverse.hpp). */
XL_API void xl_set_blas_called_whole(int on);

/* The BLAS's setter of the calling thread's thread count (MKL's MKL_Set_Num_Threads_Local, which
 * returns the count it replaces), or null: calls of fewer than 2^21 flops then run on one thread. */
XL_API void xl_set_blas_local_threads(int (*set)(int));

/* The entries, declared for T = float (suffix f32) and T = double (f64). */
#define XL_DECLARE(T, S)                                                                                            \
  XL_API void xl_potrf_##S(int lower, int64_t batch, int n, const T* a, T* out, int32_t* status, int threads);             \
  XL_API void xl_potrf_vjp_##S(int lower, int64_t batch, int n, const T* f, const T* g, T* ga, int threads);               \
  XL_API void xl_potrs_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, T* out, int32_t* status,         \
                    int threads);                                                                                   \
  XL_API void xl_potrs_vjp_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, const T* x, const T* g,     \
                               T* gf, T* gb, int threads);                                                                               \
  /* potrs keeping Y = L⁻¹ B (batch, n, k) for the reverse, and the reverse from it */                                      \
  XL_API void xl_potrs_y_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, T* out, T* y,                  \
                             int32_t* status, int threads);                                                                \
  XL_API void xl_potrs_vjp_y_##S(int lower, int64_t batch, int n, int k, const T* f, const T* y, const T* x,                \
                                 const T* g, T* gf, T* gb, int threads);                                                   \
  XL_API void xl_potri_##S(int lower, int64_t batch, int n, const T* f, T* out, int32_t* status, int threads);             \
  XL_API void xl_potri_vjp_##S(int lower, int64_t batch, int n, const T* f, const T* x, const T* g, T* gf, int threads);   \
  XL_API void xl_sumlogdiag_##S(int64_t batch, int n, const T* a, T* out);                                                 \
  XL_API void xl_sumlogdiag_vjp_##S(int64_t batch, int n, const T* a, const T* g, T* ga);                                  \
  /* flags: bit 0 transpose, bit 1 rightside, bit 2 lower */                                                        \
  XL_API void xl_trsm_##S(int flags, double alpha, int64_t batch, int rows, int cols, const T* a, const T* b, T* out,       \
                   int32_t* status, int threads);                                                                   \
  XL_API void xl_trsm_vjp_##S(int flags, double alpha, int64_t batch, int rows, int cols, const T* a, const T* x,           \
                       const T* g, T* ga, T* gb, int threads);                                                      \
  XL_API void xl_trmm_##S(int flags, double alpha, int64_t batch, int rows, int cols, const T* a, const T* b, T* out,       \
                   int threads);                                                                                    \
  XL_API void xl_trmm_vjp_##S(int flags, double alpha, int64_t batch, int rows, int cols, const T* a, const T* b,           \
                       const T* g, T* ga, T* gb, int threads);                                                      \
  /* gemm: out (batch, m, p) = alpha op(a) op(b) + beta c, op(a) m×k (a stored k×m when flags & 1), op(b) k×p    \
   * (stored p×k when flags & 2); c may be null (gemm2: beta ignored). The VJP writes ga, gb and, unless null,  \
   * gc = beta g. */                                                                                           \
  XL_API void xl_gemm_##S(int flags, double alpha, double beta, int64_t batch, int m, int p, int k, const T* a,     \
                          const T* b, const T* c, T* out, int threads);                                            \
  XL_API void xl_gemm_vjp_##S(int flags, double alpha, double beta, int64_t batch, int m, int p, int k,           \
                              const T* a, const T* b, const T* g, T* ga, T* gb, T* gc, int threads);               \
  /* syrk: a (batch, rows, cols), out (batch, n, n) = alpha a aᵀ (n = rows) or, with transpose, alpha aᵀ a     \
   * (n = cols), both triangles written; the VJP writes ga = alpha (g + gᵀ) a (or alpha a (g + gᵀ)). */      \
  XL_API void xl_syrk_##S(int transpose, double alpha, int64_t batch, int rows, int cols, const T* a, T* out,       \
                          int threads);                                                                            \
  XL_API void xl_syrk_vjp_##S(int transpose, double alpha, int64_t batch, int rows, int cols, const T* a,          \
                              const T* g, T* ga, int threads);                                                     \
  /* syevd: u (batch, n, n) rows the eigenvectors (sign: each row's largest-magnitude entry positive),      \
   * w (batch, n) ascending; the lower triangle of a read; float32 computed in float64 (as NumPy does).     \
   * No status: an entry that is not finite or does not converge comes out NaN. */                         \
  XL_API void xl_syevd_##S(int64_t batch, int n, const T* a, T* u, T* w, int threads);                             \
  XL_API void xl_syevd_vjp_##S(int64_t batch, int n, const T* u, const T* w, const T* gu, const T* gw, T* ga,       \
                               int threads);                                                                       \
  XL_API void xl_inverse_##S(int64_t batch, int n, const T* a, T* out, int32_t* status, int threads);              \
  XL_API void xl_inverse_vjp_##S(int64_t batch, int n, const T* x, const T* g, T* ga, int threads);                \
  /* det, slogdet: one value per matrix (out, sign, logabsdet, g: (batch,)); no status (IEEE semantics).     \
   * The _lu forms also keep A's LU factors for the reverse: lu (batch, n, n) column-major (?getrf's),        \
   * pivots (batch, n) ?getrf's 1-based pivots as T; the _vjp_lu reverses read them instead of A. */          \
  XL_API void xl_det_##S(int64_t batch, int n, const T* a, T* out, int threads);                                   \
  XL_API void xl_det_lu_##S(int64_t batch, int n, const T* a, T* out, T* lu, T* pivots, int threads);              \
  XL_API void xl_det_vjp_##S(int64_t batch, int n, const T* a, const T* g, T* ga, int threads);                    \
  XL_API void xl_det_vjp_lu_##S(int64_t batch, int n, const T* lu, const T* pivots, const T* g, T* ga,             \
                                int threads);                                                                      \
  XL_API void xl_slogdet_##S(int64_t batch, int n, const T* a, T* sign, T* logabsdet, int threads);                \
  XL_API void xl_slogdet_lu_##S(int64_t batch, int n, const T* a, T* sign, T* logabsdet, T* lu, T* pivots,         \
                                int threads);                                                                      \
  /* g: the cotangent of logabsdet (that of the sign is ignored) */                                               \
  XL_API void xl_slogdet_vjp_##S(int64_t batch, int n, const T* a, const T* g, T* ga, int threads);                \
  XL_API void xl_slogdet_vjp_lu_##S(int64_t batch, int n, const T* lu, const T* pivots, const T* g, T* ga,         \
                                    int threads);                                                                  \
  /* gelqf: a (batch, m, n), m <= n; q (batch, m, n), l (batch, m, m) */                                          \
  XL_API void xl_gelqf_##S(int64_t batch, int m, int n, const T* a, T* q, T* l, int32_t* status, int threads);     \
  XL_API void xl_gelqf_vjp_##S(int64_t batch, int m, int n, const T* q, const T* l, const T* gq, const T* gl,      \
                               T* ga, int threads);

XL_DECLARE(float, f32)
XL_DECLARE(double, f64)

#ifdef __cplusplus
}
#endif
#endif
