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

/* The entries, declared for T = float (suffix f32) and T = double (f64). */
#define XL_DECLARE(T, S)                                                                                            \
  XL_API void xl_potrf_##S(int lower, int64_t batch, int n, const T* a, T* out, int32_t* status, int threads);             \
  XL_API void xl_potrf_vjp_##S(int lower, int64_t batch, int n, const T* f, const T* g, T* ga, int threads);               \
  XL_API void xl_potrs_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, T* out, int32_t* status,         \
                    int threads);                                                                                   \
  XL_API void xl_potrs_vjp_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, const T* x, const T* g,     \
                               T* gf, T* gb, int threads);                                                                               \
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
                       const T* g, T* ga, T* gb, int threads);

XL_DECLARE(float, f32)
XL_DECLARE(double, f64)

#ifdef __cplusplus
}
#endif
#endif
