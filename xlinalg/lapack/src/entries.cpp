// The C ABI (xlinalg.h): batch loops over the per-matrix routines, for float and double.
#include "xlinalg.h"

#include <cstring>
#include <vector>

#include "batch.hpp"
#include "cholesky.hpp"
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

template <class T>
std::vector<T>& scratch() {  // per thread, reused across calls
  thread_local std::vector<T> work;
  return work;
}

double cube(double n) { return n * n * n; }

TriangularParams triangular_params(int flags, double alpha) {
  return {bool(flags & 1), bool(flags & 2), bool(flags & 4), alpha};
}

template <class T>
void potrf_batch(int lower, std::int64_t batch, Int n, const T* a, T* out, std::int32_t* status, int threads) {
  const std::size_t s = std::size_t(n) * n;
  for_each_entry(batch, threads, cube(n) / 3, [&](std::int64_t i) { status[i] = !potrf(a + i * s, out + i * s, n, lower, scratch<T>()); });
}

template <class T>
void potrf_vjp_batch(int lower, std::int64_t batch, Int n, const T* f, const T* g, T* ga, int threads) {
  const std::size_t s = std::size_t(n) * n;
  for_each_entry(batch, threads, cube(n) * 2 / 3, [&](std::int64_t i) {
    potrf_vjp(f + i * s, g + i * s, ga + i * s, n, lower, scratch<T>());
  });
}

template <class T>
void potrs_batch(int lower, std::int64_t batch, Int n, Int k, const T* f, const T* b, T* out, std::int32_t* status,
                 int threads) {
  const std::size_t s = std::size_t(n) * n, sb = std::size_t(n) * k;
  for_each_entry(batch, threads, 2.0 * n * n * k, [&](std::int64_t i) {
    status[i] = !potrs(f + i * s, b + i * sb, out + i * sb, n, k, lower);
  });
}

template <class T>
void potrs_vjp_batch(int lower, std::int64_t batch, Int n, Int k, const T* f, const T* b, const T* x, const T* g,
                     T* gf, T* gb, int threads) {
  const std::size_t s = std::size_t(n) * n, sb = std::size_t(n) * k;
  for_each_entry(batch, threads, 7.0 * n * n * k, [&](std::int64_t i) {
    potrs_vjp(f + i * s, b + i * sb, x + i * sb, g + i * sb, gf + i * s, gb + i * sb, n, k, lower, scratch<T>());
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
    if (!std::strcmp(rest, "trsm")) return !set(r.trsm, fn);
    if (!std::strcmp(rest, "trmm")) return !set(r.trmm, fn);
    if (!std::strcmp(rest, "potrf")) return !set(r.potrf, fn);
    if (!std::strcmp(rest, "potri")) return !set(r.potri, fn);
    return 1;
  };
  if (kind == 's') return assign(routines<float>());
  if (kind == 'd') return assign(routines<double>());
  return 1;
}

int xl_ready(void) { return xl::routines<float>().complete() && xl::routines<double>().complete(); }

#define XL_ENTRIES(T, S)                                                                                              \
  void xl_potrf_##S(int lower, int64_t batch, int n, const T* a, T* out, int32_t* status, int threads) {              \
    xl::potrf_batch<T>(lower, batch, n, a, out, status, threads);                                                     \
  }                                                                                                                   \
  void xl_potrf_vjp_##S(int lower, int64_t batch, int n, const T* f, const T* g, T* ga, int threads) {                \
    xl::potrf_vjp_batch<T>(lower, batch, n, f, g, ga, threads);                                                       \
  }                                                                                                                   \
  void xl_potrs_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, T* out, int32_t* status,          \
                    int threads) {                                                                                    \
    xl::potrs_batch<T>(lower, batch, n, k, f, b, out, status, threads);                                               \
  }                                                                                                                   \
  void xl_potrs_vjp_##S(int lower, int64_t batch, int n, int k, const T* f, const T* b, const T* x, const T* g,     \
                        T* gf, T* gb, int threads) {                                                                  \
    xl::potrs_vjp_batch<T>(lower, batch, n, k, f, b, x, g, gf, gb, threads);                                          \
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
  }

XL_ENTRIES(float, f32)
XL_ENTRIES(double, f64)

}  // extern "C"
