// The C ABI (xlinalg.h): batch loops over the per-matrix routines, for float and double.
#include "xlinalg.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "batch.hpp"
#include "cholesky.hpp"
#include "eigen.hpp"
#include "inverse.hpp"
#include "lq.hpp"
#include "products.hpp"
#include "rankk.hpp"
#include "triangular.hpp"

namespace xl {

template <>
Routines<float>& routines<float>() {
  static Routines<float> r;
  return r;
}
template <>
Routines<double>& routines<double>() {
  static Routines<double> r;
  return r;
}

namespace {

template <class T, int Slot = 0>
Buffer<T>& scratch() {  // per thread, reused across calls (a second slot for nested use)
  thread_local Buffer<T> work;
  return work;
}

double cube(double n) { return n * n * n; }

TriangularParams triangular_params(int flags, double alpha) {
  return {bool(flags & 1), bool(flags & 2), bool(flags & 4), alpha};
}

template <class T>
void potrf_batch(int lower, std::int64_t batch, Int n, const T* a, T* out, std::int32_t* status, int threads) {
  const std::size_t s = std::size_t(n) * n;
  if (n <= kLanesMaxOrder) {  // kLanes matrices at a time
    for_each_group(batch, threads, cube(n) / 3, [&](std::int64_t first, int count) {
      potrf_lanes(a + first * s, out + first * s, n, lower, count, status + first, scratch<T>());
    });
    return;
  }
  for_each_entry(batch, threads, cube(n) / 3, [&](std::int64_t i) { status[i] = !potrf(a + i * s, out + i * s, n, lower); });
}

template <class T>
void potrf_vjp_batch(int lower, std::int64_t batch, Int n, const T* f, const T* g, T* ga, int threads) {
  const std::size_t s = std::size_t(n) * n;
  if (n <= kLanesMaxOrder) {  // kLanes matrices at a time
    for_each_group(batch, threads, cube(n) * 2 / 3, [&](std::int64_t first, int count) {
      potrf_vjp_lanes(f + first * s, g + first * s, ga + first * s, n, lower, count, scratch<T>());
    });
    return;
  }
  for_each_entry(batch, threads, cube(n) * 2 / 3, [&](std::int64_t i) {
    potrf_vjp(f + i * s, g + i * s, ga + i * s, n, lower, scratch<T>());
  });
}

// potrs, and Y = L⁻¹ B where ``y`` is non-null
template <class T>
void potrs_batch(int lower, std::int64_t batch, Int n, Int k, const T* f, const T* b, T* out, T* y,
                 std::int32_t* status, int threads) {
  const std::size_t s = std::size_t(n) * n, sb = std::size_t(n) * k;
  for_each_entry(batch, threads, 2.0 * n * n * k, [&](std::int64_t i) {
    status[i] = !potrs(f + i * s, b + i * sb, out + i * sb, y ? y + i * sb : nullptr, n, k, lower);
  });
}

// the reverse of potrs from B, or from Y = L⁻¹ B (``solved``)
template <class T>
void potrs_vjp_batch(int lower, std::int64_t batch, Int n, Int k, const T* f, const T* b, bool solved, const T* x,
                     const T* g, T* gf, T* gb, int threads) {
  const std::size_t s = std::size_t(n) * n, sb = std::size_t(n) * k;
  for_each_entry(batch, threads, (solved ? 6.0 : 7.0) * n * n * k, [&](std::int64_t i) {
    potrs_vjp(f + i * s, b + i * sb, solved, x + i * sb, g + i * sb, gf + i * s, gb + i * sb, n, k, lower,
              scratch<T>());
  });
}

template <class T>
void potri_batch(int lower, std::int64_t batch, Int n, const T* f, T* out, std::int32_t* status, int threads) {
  const std::size_t s = std::size_t(n) * n;
  for_each_entry(batch, threads, cube(n), [&](std::int64_t i) { status[i] = !potri(f + i * s, out + i * s, n, lower); });
}

template <class T>
void potri_vjp_batch(int lower, std::int64_t batch, Int n, const T* f, const T* x, const T* g, T* gf, int threads) {
  const std::size_t s = std::size_t(n) * n;
  for_each_entry(batch, threads, 3 * cube(n), [&](std::int64_t i) {
    potri_vjp(f + i * s, x + i * s, g + i * s, gf + i * s, n, lower, scratch<T>());
  });
}

template <class T>
void sumlogdiag_batch(std::int64_t batch, Int n, const T* a, T* out) {
  const std::size_t s = std::size_t(n) * n;
  for (std::int64_t i = 0; i < batch; ++i) out[i] = sumlogdiag(a + i * s, n);
}

template <class T>
void sumlogdiag_vjp_batch(std::int64_t batch, Int n, const T* a, const T* g, T* ga) {
  const std::size_t s = std::size_t(n) * n;
  for (std::int64_t i = 0; i < batch; ++i) sumlogdiag_vjp(a + i * s, g[i], ga + i * s, n);
}

template <class T>
void trsm_batch(int flags, double alpha, std::int64_t batch, Int rows, Int cols, const T* a, const T* b, T* out,
                std::int32_t* status, int threads) {
  const auto p = triangular_params(flags, alpha);
  const Int n = p.rightside ? cols : rows;
  const std::size_t s = std::size_t(n) * n, sb = std::size_t(rows) * cols;
  for_each_entry(batch, threads, double(n) * sb, [&](std::int64_t i) {
    status[i] = !trsm_forward(a + i * s, b + i * sb, out + i * sb, rows, cols, p);
  });
}

template <class T>
void trsm_vjp_batch(int flags, double alpha, std::int64_t batch, Int rows, Int cols, const T* a, const T* x,
                    const T* g, T* ga, T* gb, int threads) {
  const auto p = triangular_params(flags, alpha);
  const Int n = p.rightside ? cols : rows;
  const std::size_t s = std::size_t(n) * n, sb = std::size_t(rows) * cols;
  for_each_entry(batch, threads, 3.0 * n * sb, [&](std::int64_t i) {
    trsm_vjp(a + i * s, x + i * sb, g + i * sb, ga + i * s, gb + i * sb, rows, cols, p);
  });
}

template <class T>
void trmm_batch(int flags, double alpha, std::int64_t batch, Int rows, Int cols, const T* a, const T* b, T* out,
                int threads) {
  const auto p = triangular_params(flags, alpha);
  const Int n = p.rightside ? cols : rows;
  const std::size_t s = std::size_t(n) * n, sb = std::size_t(rows) * cols;
  for_each_entry(batch, threads, double(n) * sb, [&](std::int64_t i) {
    trmm_forward(a + i * s, b + i * sb, out + i * sb, rows, cols, p);
  });
}

template <class T>
void trmm_vjp_batch(int flags, double alpha, std::int64_t batch, Int rows, Int cols, const T* a, const T* b,
                    const T* g, T* ga, T* gb, int threads) {
  const auto p = triangular_params(flags, alpha);
  const Int n = p.rightside ? cols : rows;
  const std::size_t s = std::size_t(n) * n, sb = std::size_t(rows) * cols;
  for_each_entry(batch, threads, 3.0 * n * sb, [&](std::int64_t i) {
    trmm_vjp(a + i * s, b + i * sb, g + i * sb, ga + i * s, gb + i * sb, rows, cols, p);
  });
}

// ---- syevd ----------------------------------------------------------------------------------------
template <class T>
void syevd_batch(std::int64_t batch, Int n, const T* a, T* u, T* w, int threads) {
  const std::size_t s = std::size_t(n) * n;
  using W = typename EigenPrecision<T>::type;
  if (n <= kSmallEigenMaxOrder) {
    for_each_group<kEigenChains>(batch, threads, 9 * cube(n), [&](std::int64_t first, int count) {
      small_syevd(a + first * s, u + first * s, w + first * n, n, count, scratch<W>());
    });
    return;
  }
  const SyevdWork ws = syevd_workspace<W>(n);
  for_each_entry(batch, threads, 9 * cube(n), [&](std::int64_t i) {
    syevd(a + i * s, u + i * s, w + i * n, n, ws, scratch<W>(), scratch<Int>());
  });
}

template <class T>
void syevd_vjp_batch(std::int64_t batch, Int n, const T* u, const T* w, const T* gu, const T* gw, T* ga, int threads) {
  const std::size_t s = std::size_t(n) * n;
  for_each_entry(batch, threads, 6 * cube(n), [&](std::int64_t i) {
    syevd_vjp(u + i * s, w + i * n, gu + i * s, gw + i * n, ga + i * s, n, scratch<T>());
  });
}

// ---- inverse, det, slogdet --------------------------------------------------------------------------
// fn(i, lu, ipiv, info) for each entry i with the LU factors of A_i (lu_factor's: ?getrf's layout
// and info; in this thread's scratch slot 1, fn may overwrite them), kLanes matrices at a time up
// to kLuLanesMaxOrder; above it, where ``keep`` is non-null, factored in place at keep + i·n²
// (the forward's residual: no copy). ``flops``: per entry, the factorization's and fn's.
template <class T, class Fn>
void for_each_lu(std::int64_t batch, Int n, const T* a, int threads, double flops, T* keep, Fn&& fn) {
  const std::size_t s = std::size_t(n) * n;
  if (n <= kLuLanesMaxOrder) {
    for_each_group(batch, threads, flops, [&](std::int64_t first, int count) {
      Buffer<T>& w = scratch<T, 1>();
      Buffer<Int>& p = scratch<Int, 1>();
      w.resize(2 * kLanes * s);
      p.resize(kLanes * (std::size_t(n) + 1));
      Int* info = p.data() + kLanes * n;
      lu_factor_lanes(a + first * s, w.data(), p.data(), info, n, count, w.data() + kLanes * s);
      for (int c = 0; c < count; ++c) fn(first + c, w.data() + c * s, p.data() + c * n, info[c]);
    });
    return;
  }
  for_each_entry(batch, threads, flops, [&](std::int64_t i) {
    Buffer<Int>& p = scratch<Int, 1>();
    p.resize(n);
    T* f = keep;
    if (f) {
      f += i * s;
    } else {
      Buffer<T>& w = scratch<T, 1>();
      w.resize(s);
      f = w.data();
    }
    const Int info = lu_factor(a + i * s, f, p.data(), n);
    fn(i, f, p.data(), info);
  });
}

template <class T>
void inverse_batch(std::int64_t batch, Int n, const T* a, T* out, std::int32_t* status, int threads) {
  const std::size_t s = std::size_t(n) * n;
  const Int lwork = getri_workspace<T>(n);
  for_each_lu(batch, n, a, threads, 2 * cube(n), static_cast<T*>(nullptr), [&](std::int64_t i, T* lu, const Int* ipiv, Int info) {
    Buffer<T>& work = scratch<T>();
    work.resize(s + std::size_t(lwork));
    status[i] = !inverse_of_lu(lu, ipiv, info, factored_finite(a + i * s, lu, info, n), out + i * s, n, lwork, work.data());
  });
}

template <class T>
void inverse_vjp_batch(std::int64_t batch, Int n, const T* x, const T* g, T* ga, int threads) {
  const std::size_t s = std::size_t(n) * n;
  for_each_entry(batch, threads, 4 * cube(n), [&](std::int64_t i) {
    inverse_vjp(x + i * s, g + i * s, ga + i * s, n, scratch<T>());
  });
}

static_assert(sizeof(Int) == sizeof(std::int32_t), "pivots are int32 in the C ABI");

// Keeps entry i's LU factors ``f`` in the forward's outputs ``lu`` and ``pivots`` (the pivots as T:
// exact, n < 2^24) where it has them (for_each_lu may have factored in place there).
template <class T>
void keep_factors(std::int64_t i, const T* f, const Int* ipiv, Int n, T* lu, T* pivots) {
  T* to = lu ? lu + i * std::size_t(n) * n : nullptr;
  if (to && to != f) team_copy(to, f, std::size_t(n) * n);
  if (pivots)
    for (Int j = 0; j < n; ++j) pivots[i * n + j] = T(ipiv[j]);
}

// det, and A's LU factors where ``lu`` and ``pivots`` are non-null
template <class T>
void det_batch(std::int64_t batch, Int n, const T* a, T* out, T* lu, T* pivots, int threads) {
  for_each_lu(batch, n, a, threads, cube(n) * 2 / 3, lu, [&](std::int64_t i, T* f, const Int* ipiv, Int) {
    out[i] = det_of_lu(f, ipiv, n);
    keep_factors(i, f, ipiv, n, lu, pivots);
  });
}

template <class T>
void slogdet_batch(std::int64_t batch, Int n, const T* a, T* sign, T* logabsdet, T* lu, T* pivots, int threads) {
  const std::size_t s = std::size_t(n) * n;
  for_each_lu(batch, n, a, threads, cube(n) * 2 / 3, lu, [&](std::int64_t i, T* f, const Int* ipiv, Int info) {
    slogdet_of_lu(f, ipiv, info, factored_finite(a + i * s, f, info, n), sign + i, logabsdet + i, n);
    keep_factors(i, f, ipiv, n, lu, pivots);
  });
}

// the reverse of det (``log``: slogdet), factoring A again (``a``) or from the forward's factors
// (``lu``, ``pivots``; ``a`` null)
template <class T>
void determinant_vjp_batch(bool log, std::int64_t batch, Int n, const T* a, const T* lu, const T* pivots, const T* g,
                           T* ga, int threads) {
  if (n == 0) return;
  const std::size_t s = std::size_t(n) * n;
  const Int lwork = getri_workspace<T>(n);
  auto reverse = [&](std::int64_t i, T* f, const Int* ipiv) {
    Buffer<T>& work = scratch<T>();
    work.resize(std::size_t(lwork));
    determinant_vjp_lu(log, f, ipiv, g[i], ga + i * s, n, lwork, work.data());
  };
  if (a) {
    for_each_lu(batch, n, a, threads, 2 * cube(n), static_cast<T*>(nullptr), [&](std::int64_t i, T* f, const Int* ipiv, Int) { reverse(i, f, ipiv); });
    return;
  }
  for_each_entry(batch, threads, 4 * cube(n) / 3, [&](std::int64_t i) {
    Buffer<Int>& ipiv = scratch<Int, 1>();
    ipiv.resize(n);
    for (Int j = 0; j < n; ++j) ipiv[j] = Int(pivots[i * n + j]);
    if (log && invert_lu_reads_only(n)) {  // slogdet's reverse then leaves the factors as they are
      reverse(i, const_cast<T*>(lu + i * s), ipiv.data());
      return;
    }
    Buffer<T>& f = scratch<T, 1>();
    f.assign(lu + i * s, lu + (i + 1) * s);
    reverse(i, f.data(), ipiv.data());
  });
}

// ---- gelqf ----------------------------------------------------------------------------------------
template <class T>
void gelqf_batch(std::int64_t batch, Int m, Int n, const T* a, T* q, T* l, std::int32_t* status, int threads) {
  const std::size_t s = std::size_t(m) * n, sl = std::size_t(m) * m;
  const Int lwork = gelqf_workspace<T>(m, n);
  for_each_entry(batch, threads, 4.0 * m * m * n, [&](std::int64_t i) {
    status[i] = !gelqf(a + i * s, q + i * s, l + i * sl, m, n, lwork, scratch<T>());
  });
}

template <class T>
void gelqf_vjp_batch(std::int64_t batch, Int m, Int n, const T* q, const T* l, const T* gq, const T* gl, T* ga,
                     int threads) {
  const std::size_t s = std::size_t(m) * n, sl = std::size_t(m) * m;
  for_each_entry(batch, threads, 5.0 * m * m * n + cube(m), [&](std::int64_t i) {
    gelqf_vjp(q + i * s, l + i * sl, gq + i * s, gl + i * sl, ga + i * s, m, n, scratch<T>());
  });
}

ProductParams product_params(int flags, double alpha, double beta) { return {bool(flags & 1), bool(flags & 2), alpha, beta}; }

// The products: the whole batch at once where one ?gemm_batch call takes it (gemm_batch_applies),
// else entry by entry on the batch's threads.
template <class T>
void gemm_batch(int flags, double alpha, double beta, std::int64_t batch, Int m, Int p, Int k, const T* a, const T* b,
                const T* c, T* out, int threads) {
  const auto q = product_params(flags, alpha, beta);
  if (gemm_batch_applies<T>(batch, m, p, k)) return gemm_forward(batch, a, b, c, out, m, p, k, q);
  const std::size_t sa = std::size_t(m) * k, sb = std::size_t(k) * p, so = std::size_t(m) * p;
  for_each_entry(batch, threads, 2.0 * m * p * k, [&](std::int64_t i) {
    gemm_forward(1, a + i * sa, b + i * sb, c ? c + i * so : nullptr, out + i * so, m, p, k, q);
  });
}

template <class T>
void gemm_vjp_batch(int flags, double alpha, double beta, std::int64_t batch, Int m, Int p, Int k, const T* a,
                    const T* b, const T* g, T* ga, T* gb, T* gc, int threads) {
  const auto q = product_params(flags, alpha, beta);
  if (gemm_batch_applies<T>(batch, m, p, k)) return gemm_vjp(batch, a, b, g, ga, gb, gc, m, p, k, q);
  const std::size_t sa = std::size_t(m) * k, sb = std::size_t(k) * p, so = std::size_t(m) * p;
  for_each_entry(batch, threads, 4.0 * m * p * k, [&](std::int64_t i) {
    gemm_vjp(1, a + i * sa, b + i * sb, g + i * so, ga + i * sa, gb + i * sb, gc ? gc + i * so : nullptr, m, p, k, q);
  });
}

template <class T>
void syrk_batch(int transpose, double alpha, std::int64_t batch, Int rows, Int cols, const T* a, T* out, int threads) {
  const Int n = transpose ? cols : rows, k = transpose ? rows : cols;
  const std::size_t s = std::size_t(rows) * cols, so = std::size_t(n) * n;
  for_each_entry(batch, threads, double(n) * n * k, [&](std::int64_t i) {
    syrk_forward(a + i * s, out + i * so, rows, cols, bool(transpose), T(alpha));
  });
}

template <class T>
void syrk_vjp_batch(int transpose, double alpha, std::int64_t batch, Int rows, Int cols, const T* a, const T* g,
                    T* ga, int threads) {
  const Int n = transpose ? cols : rows, k = transpose ? rows : cols;
  const std::size_t s = std::size_t(rows) * cols, so = std::size_t(n) * n;
  for_each_entry(batch, threads, 2.0 * n * n * k, [&](std::int64_t i) {
    syrk_vjp(a + i * s, g + i * so, ga + i * s, rows, cols, bool(transpose), T(alpha), scratch<T>());
  });
}

template <class Fn>
bool set(Fn& slot, void* fn) {
  slot = reinterpret_cast<Fn>(fn);
  return true;
}

}  // namespace
}  // namespace xl

extern "C" {

int xl_set_routine(const char* name, void* fn) {
  using namespace xl;
  if (!name || std::strlen(name) < 2) return 1;
  const char kind = name[0];
  const char* rest = name + 1;
  auto assign = [&](auto& r) -> int {
    if (!std::strcmp(rest, "gemm")) return !set(r.gemm, fn);
    if (!std::strcmp(rest, "gemm_batch")) return !set(r.gemm_batch, fn);
    if (!std::strcmp(rest, "trsm")) return !set(r.trsm, fn);
    if (!std::strcmp(rest, "trmm")) return !set(r.trmm, fn);
    if (!std::strcmp(rest, "syrk")) return !set(r.syrk, fn);
    if (!std::strcmp(rest, "potrf")) return !set(r.potrf, fn);
    if (!std::strcmp(rest, "potri")) return !set(r.potri, fn);
    if (!std::strcmp(rest, "syevd")) return !set(r.syevd, fn);
    if (!std::strcmp(rest, "getrf")) return !set(r.getrf, fn);
    if (!std::strcmp(rest, "getri")) return !set(r.getri, fn);
    if (!std::strcmp(rest, "geqrf")) return !set(r.geqrf, fn);
    if (!std::strcmp(rest, "orgqr")) return !set(r.orgqr, fn);
    return 1;
  };
  if (kind == 's') return assign(routines<float>());
  if (kind == 'd') return assign(routines<double>());
  return 1;
}

void xl_set_blas_threads(int (*get)(void), void (*set)(int)) { xl::blas_threads() = {get, set}; }

void xl_set_blas_called_whole(int on) { xl::blas_called_whole() = on != 0; }

void xl_set_blas_local_threads(int (*set)(int)) { xl::blas_local_threads() = set; }

int xl_ready(void) { return xl::routines<float>().complete() && xl::routines<double>().complete(); }

const char* xl_isa(void) { return xl::avx2_fma() ? "avx2+fma" : "baseline"; }

#define XL_ENTRIES(T, S)                                                                                              \
  void xl_potrf_##S(int lower, int64_t batch, int n, const T* a, T* out, int32_t* status, int threads) {              \
    xl::potrf_batch<T>(lower, batch, n, a, out, status, threads);                                                     \
  }                                                                                                                   \
  void xl_potrf_vjp_##S(int lower, int64_t batch, int n, const T* f, const T* g, T* ga, int threads) {                \
    xl::potrf_vjp_batch<T>(lower, batch, n, f, g, ga, threads);                                                       \
  }                                                                                                                   \
  void xl_potrs_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, T* out, int32_t* status,          \
                    int threads) {                                                                                    \
    xl::potrs_batch<T>(lower, batch, n, k, f, b, out, nullptr, status, threads);                                      \
  }                                                                                                                   \
  void xl_potrs_y_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, T* out, T* y, int32_t* status,  \
                      int threads) {                                                                                  \
    xl::potrs_batch<T>(lower, batch, n, k, f, b, out, y, status, threads);                                            \
  }                                                                                                                   \
  void xl_potrs_vjp_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, const T* x, const T* g,     \
                        T* gf, T* gb, int threads) {                                                                  \
    xl::potrs_vjp_batch<T>(lower, batch, n, k, f, b, false, x, g, gf, gb, threads);                                   \
  }                                                                                                                   \
  void xl_potrs_vjp_y_##S(int lower, int64_t batch, int n, int k, const T* f, const T* y, const T* x, const T* g,   \
                          T* gf, T* gb, int threads) {                                                                \
    xl::potrs_vjp_batch<T>(lower, batch, n, k, f, y, true, x, g, gf, gb, threads);                                    \
  }                                                                                                                   \
  void xl_potri_##S(int lower, int64_t batch, int n, const T* f, T* out, int32_t* status, int threads) {              \
    xl::potri_batch<T>(lower, batch, n, f, out, status, threads);                                                     \
  }                                                                                                                   \
  void xl_potri_vjp_##S(int lower, int64_t batch, int n, const T* f, const T* x, const T* g, T* gf, int threads) {    \
    xl::potri_vjp_batch<T>(lower, batch, n, f, x, g, gf, threads);                                                    \
  }                                                                                                                   \
  void xl_sumlogdiag_##S(int64_t batch, int n, const T* a, T* out) { xl::sumlogdiag_batch<T>(batch, n, a, out); }    \
  void xl_sumlogdiag_vjp_##S(int64_t batch, int n, const T* a, const T* g, T* ga) {                                  \
    xl::sumlogdiag_vjp_batch<T>(batch, n, a, g, ga);                                                                  \
  }                                                                                                                   \
  void xl_trsm_##S(int flags, double alpha, int64_t batch, int rows, int cols, const T* a, const T* b, T* out,        \
                   int32_t* status, int threads) {                                                                    \
    xl::trsm_batch<T>(flags, alpha, batch, rows, cols, a, b, out, status, threads);                                   \
  }                                                                                                                   \
  void xl_trsm_vjp_##S(int flags, double alpha, int64_t batch, int rows, int cols, const T* a, const T* x,            \
                       const T* g, T* ga, T* gb, int threads) {                                                       \
    xl::trsm_vjp_batch<T>(flags, alpha, batch, rows, cols, a, x, g, ga, gb, threads);                                 \
  }                                                                                                                   \
  void xl_trmm_##S(int flags, double alpha, int64_t batch, int rows, int cols, const T* a, const T* b, T* out,        \
                   int threads) {                                                                                     \
    xl::trmm_batch<T>(flags, alpha, batch, rows, cols, a, b, out, threads);                                           \
  }                                                                                                                   \
  void xl_trmm_vjp_##S(int flags, double alpha, int64_t batch, int rows, int cols, const T* a, const T* b,            \
                       const T* g, T* ga, T* gb, int threads) {                                                       \
    xl::trmm_vjp_batch<T>(flags, alpha, batch, rows, cols, a, b, g, ga, gb, threads);                                 \
  }                                                                                                                   \
  void xl_gemm_##S(int flags, double alpha, double beta, int64_t batch, int m, int p, int k, const T* a, const T* b, \
                   const T* c, T* out, int threads) {                                                                 \
    xl::gemm_batch<T>(flags, alpha, beta, batch, m, p, k, a, b, c, out, threads);                                     \
  }                                                                                                                   \
  void xl_gemm_vjp_##S(int flags, double alpha, double beta, int64_t batch, int m, int p, int k, const T* a,          \
                       const T* b, const T* g, T* ga, T* gb, T* gc, int threads) {                                    \
    xl::gemm_vjp_batch<T>(flags, alpha, beta, batch, m, p, k, a, b, g, ga, gb, gc, threads);                          \
  }                                                                                                                   \
  void xl_syrk_##S(int transpose, double alpha, int64_t batch, int rows, int cols, const T* a, T* out,              \
                   int threads) {                                                                                     \
    xl::syrk_batch<T>(transpose, alpha, batch, rows, cols, a, out, threads);                                          \
  }                                                                                                                   \
  void xl_syrk_vjp_##S(int transpose, double alpha, int64_t batch, int rows, int cols, const T* a, const T* g,        \
                       T* ga, int threads) {                                                                          \
    xl::syrk_vjp_batch<T>(transpose, alpha, batch, rows, cols, a, g, ga, threads);                                    \
  }                                                                                                                   \
  void xl_syevd_##S(int64_t batch, int n, const T* a, T* u, T* w, int threads) {                                      \
    xl::syevd_batch<T>(batch, n, a, u, w, threads);                                                                   \
  }                                                                                                                   \
  void xl_syevd_vjp_##S(int64_t batch, int n, const T* u, const T* w, const T* gu, const T* gw, T* ga, int threads) { \
    xl::syevd_vjp_batch<T>(batch, n, u, w, gu, gw, ga, threads);                                                      \
  }                                                                                                                   \
  void xl_inverse_##S(int64_t batch, int n, const T* a, T* out, int32_t* status, int threads) {                      \
    xl::inverse_batch<T>(batch, n, a, out, status, threads);                                                          \
  }                                                                                                                   \
  void xl_inverse_vjp_##S(int64_t batch, int n, const T* x, const T* g, T* ga, int threads) {                        \
    xl::inverse_vjp_batch<T>(batch, n, x, g, ga, threads);                                                            \
  }                                                                                                                   \
  void xl_det_##S(int64_t batch, int n, const T* a, T* out, int threads) {                                         \
    xl::det_batch<T>(batch, n, a, out, nullptr, nullptr, threads);                                                    \
  }                                                                                                                   \
  void xl_det_lu_##S(int64_t batch, int n, const T* a, T* out, T* lu, T* pivots, int threads) {                      \
    xl::det_batch<T>(batch, n, a, out, lu, pivots, threads);                                                          \
  }                                                                                                                   \
  void xl_det_vjp_##S(int64_t batch, int n, const T* a, const T* g, T* ga, int threads) {                            \
    xl::determinant_vjp_batch<T>(false, batch, n, a, nullptr, nullptr, g, ga, threads);                               \
  }                                                                                                                   \
  void xl_det_vjp_lu_##S(int64_t batch, int n, const T* lu, const T* pivots, const T* g, T* ga, int threads) {       \
    xl::determinant_vjp_batch<T>(false, batch, n, nullptr, lu, pivots, g, ga, threads);                               \
  }                                                                                                                   \
  void xl_slogdet_##S(int64_t batch, int n, const T* a, T* sign, T* logabsdet, int threads) {                        \
    xl::slogdet_batch<T>(batch, n, a, sign, logabsdet, nullptr, nullptr, threads);                                    \
  }                                                                                                                   \
  void xl_slogdet_lu_##S(int64_t batch, int n, const T* a, T* sign, T* logabsdet, T* lu, T* pivots, int threads) {   \
    xl::slogdet_batch<T>(batch, n, a, sign, logabsdet, lu, pivots, threads);                                          \
  }                                                                                                                   \
  void xl_slogdet_vjp_##S(int64_t batch, int n, const T* a, const T* g, T* ga, int threads) {                        \
    xl::determinant_vjp_batch<T>(true, batch, n, a, nullptr, nullptr, g, ga, threads);                               \
  }                                                                                                                   \
  void xl_slogdet_vjp_lu_##S(int64_t batch, int n, const T* lu, const T* pivots, const T* g, T* ga, int threads) {   \
    xl::determinant_vjp_batch<T>(true, batch, n, nullptr, lu, pivots, g, ga, threads);                                \
  }                                                                                                                   \
  void xl_gelqf_##S(int64_t batch, int m, int n, const T* a, T* q, T* l, int32_t* status, int threads) {             \
    xl::gelqf_batch<T>(batch, m, n, a, q, l, status, threads);                                                        \
  }                                                                                                                   \
  void xl_gelqf_vjp_##S(int64_t batch, int m, int n, const T* q, const T* l, const T* gq, const T* gl, T* ga,        \
                        int threads) {                                                                                \
    xl::gelqf_vjp_batch<T>(batch, m, n, q, l, gq, gl, ga, threads);                                                   \
  }

XL_ENTRIES(float, f32)
XL_ENTRIES(double, f64)

}  // extern "C"
