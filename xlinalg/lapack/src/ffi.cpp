// XLA FFI handlers (typed API) over the C ABI (xlinalg.h): one per forward and VJP entry and dtype,
// for JAX on the CPU (xlinalg/lapack/jax_ffi.py builds this file together with entries.cpp and
// registers every handler as the custom-call target of the same name).
//
// Buffers are row-major (XLA's default layout for custom calls) with leading batch axes; the batch
// is the product of the leading axes of the first operand, and every other buffer must have the
// same batch and the core shape its role implies (checked here: a mismatch is an error, never an
// out-of-bounds access). Static parameters are attributes: ``lower`` (int32), ``flags`` (int32:
// bit 0 transpose, bit 1 rightside, bit 2 lower), ``alpha`` (f64), ``threads`` (int32). Forward
// handlers that report failures write one int32 status per batch entry (the failing entries'
// outputs entirely NaN).
#include <climits>
#include <cstdint>
#include <string>

#include "xla/ffi/api/ffi.h"
#include "xlinalg.h"

namespace ffi = xla::ffi;

namespace {

template <ffi::DataType D>
struct C;

#define XL_C_TABLE(D, T, S)                                    \
  template <>                                                  \
  struct C<ffi::DataType::D> {                                 \
    using Type = T;                                            \
    static constexpr auto potrf = xl_potrf_##S;                \
    static constexpr auto potrf_vjp = xl_potrf_vjp_##S;        \
    static constexpr auto potrs = xl_potrs_##S;                \
    static constexpr auto potrs_vjp = xl_potrs_vjp_##S;        \
    static constexpr auto potri = xl_potri_##S;                \
    static constexpr auto potri_vjp = xl_potri_vjp_##S;        \
    static constexpr auto sumlogdiag = xl_sumlogdiag_##S;      \
    static constexpr auto sumlogdiag_vjp = xl_sumlogdiag_vjp_##S; \
    static constexpr auto trsm = xl_trsm_##S;                  \
    static constexpr auto trsm_vjp = xl_trsm_vjp_##S;          \
    static constexpr auto trmm = xl_trmm_##S;                  \
    static constexpr auto trmm_vjp = xl_trmm_vjp_##S;          \
    static constexpr auto syrk = xl_syrk_##S;                  \
    static constexpr auto syrk_vjp = xl_syrk_vjp_##S;          \
    static constexpr auto syevd = xl_syevd_##S;                \
    static constexpr auto syevd_vjp = xl_syevd_vjp_##S;        \
    static constexpr auto inverse = xl_inverse_##S;            \
    static constexpr auto inverse_vjp = xl_inverse_vjp_##S;    \
    static constexpr auto det = xl_det_##S;                    \
    static constexpr auto det_vjp = xl_det_vjp_##S;            \
    static constexpr auto slogdet = xl_slogdet_##S;            \
    static constexpr auto slogdet_vjp = xl_slogdet_vjp_##S;    \
    static constexpr auto gelqf = xl_gelqf_##S;                \
    static constexpr auto gelqf_vjp = xl_gelqf_vjp_##S;        \
  };
XL_C_TABLE(F32, float, f32)
XL_C_TABLE(F64, double, f64)
#undef XL_C_TABLE

// The batch and core dimensions of one buffer.
struct Dims {
  std::int64_t batch = 1;
  std::int64_t rows = 1, cols = 1;
  std::size_t rank = 0;
};

template <class B>
Dims dims_of(const B& b, int core) {
  const auto d = b.dimensions();
  Dims out;
  out.rank = d.size();
  const std::size_t lead = d.size() >= std::size_t(core) ? d.size() - core : 0;
  for (std::size_t i = 0; i < lead; ++i) out.batch *= d[i];
  if (core == 2 && d.size() >= 2) out.rows = d[d.size() - 2], out.cols = d[d.size() - 1];
  return out;
}

ffi::Error bad(const char* entry, const std::string& what) {
  return ffi::Error::InvalidArgument(std::string("xlinalg ") + entry + ": " + what);
}

// Checks that ``b`` has ``core`` core axes (2: a rows×cols matrix, 0: a scalar per entry) and the
// given batch; ``rows``/``cols`` < 0: any.
template <class B>
ffi::Error expect(const char* entry, const char* name, const B& b, int core, std::int64_t batch, std::int64_t rows,
                  std::int64_t cols) {
  const auto d = b.dimensions();
  if (d.size() < std::size_t(core)) return bad(entry, std::string(name) + " has too few dimensions");
  const Dims x = dims_of(b, core);
  if (x.batch != batch) return bad(entry, std::string(name) + " has a different batch size");
  if (core == 2 && ((rows >= 0 && x.rows != rows) || (cols >= 0 && x.cols != cols)))
    return bad(entry, std::string(name) + " has the wrong core shape");
  if (x.rows > INT_MAX || x.cols > INT_MAX) return bad(entry, std::string(name) + " is too large (LP64 BLAS)");
  return ffi::Error::Success();
}

#define XL_CHECK(expr)                     \
  do {                                     \
    ffi::Error e_ = (expr);                \
    if (e_.failure()) return e_;           \
  } while (0)

// ---- Cholesky family ----------------------------------------------------------------------------
template <ffi::DataType D>
ffi::Error potrf(ffi::Buffer<D> a, ffi::ResultBuffer<D> out, ffi::ResultBuffer<ffi::DataType::S32> status,
                 std::int32_t lower, std::int32_t threads) {
  const char* e = "potrf";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "out", *out, 2, d.batch, d.rows, d.cols));
  XL_CHECK(expect(e, "status", *status, 0, d.batch, -1, -1));
  C<D>::potrf(lower, d.batch, int(d.rows), a.typed_data(), out->typed_data(), status->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error potrf_vjp(ffi::Buffer<D> f, ffi::Buffer<D> g, ffi::ResultBuffer<D> ga, std::int32_t lower,
                     std::int32_t threads) {
  const char* e = "potrf_vjp";
  const Dims d = dims_of(f, 2);
  XL_CHECK(expect(e, "F", f, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "G", g, 2, d.batch, d.rows, d.cols));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, d.rows, d.cols));
  C<D>::potrf_vjp(lower, d.batch, int(d.rows), f.typed_data(), g.typed_data(), ga->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error potrs(ffi::Buffer<D> f, ffi::Buffer<D> b, ffi::ResultBuffer<D> out,
                 ffi::ResultBuffer<ffi::DataType::S32> status, std::int32_t lower, std::int32_t threads) {
  const char* e = "potrs";
  const Dims d = dims_of(f, 2), k = dims_of(b, 2);
  XL_CHECK(expect(e, "F", f, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "B", b, 2, d.batch, d.rows, -1));
  XL_CHECK(expect(e, "out", *out, 2, d.batch, d.rows, k.cols));
  XL_CHECK(expect(e, "status", *status, 0, d.batch, -1, -1));
  C<D>::potrs(lower, d.batch, int(d.rows), int(k.cols), f.typed_data(), b.typed_data(), out->typed_data(),
              status->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error potrs_vjp(ffi::Buffer<D> f, ffi::Buffer<D> b, ffi::Buffer<D> x, ffi::Buffer<D> g, ffi::ResultBuffer<D> gf,
                     ffi::ResultBuffer<D> gb, std::int32_t lower, std::int32_t threads) {
  const char* e = "potrs_vjp";
  const Dims d = dims_of(f, 2), k = dims_of(b, 2);
  XL_CHECK(expect(e, "F", f, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "B", b, 2, d.batch, d.rows, -1));
  XL_CHECK(expect(e, "X", x, 2, d.batch, d.rows, k.cols));
  XL_CHECK(expect(e, "G", g, 2, d.batch, d.rows, k.cols));
  XL_CHECK(expect(e, "gF", *gf, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "gB", *gb, 2, d.batch, d.rows, k.cols));
  C<D>::potrs_vjp(lower, d.batch, int(d.rows), int(k.cols), f.typed_data(), b.typed_data(), x.typed_data(),
                  g.typed_data(), gf->typed_data(), gb->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error potri(ffi::Buffer<D> f, ffi::ResultBuffer<D> out, ffi::ResultBuffer<ffi::DataType::S32> status,
                 std::int32_t lower, std::int32_t threads) {
  const char* e = "potri";
  const Dims d = dims_of(f, 2);
  XL_CHECK(expect(e, "F", f, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "out", *out, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "status", *status, 0, d.batch, -1, -1));
  C<D>::potri(lower, d.batch, int(d.rows), f.typed_data(), out->typed_data(), status->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error potri_vjp(ffi::Buffer<D> f, ffi::Buffer<D> x, ffi::Buffer<D> g, ffi::ResultBuffer<D> gf,
                     std::int32_t lower, std::int32_t threads) {
  const char* e = "potri_vjp";
  const Dims d = dims_of(f, 2);
  XL_CHECK(expect(e, "F", f, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "X", x, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "G", g, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "gF", *gf, 2, d.batch, d.rows, d.rows));
  C<D>::potri_vjp(lower, d.batch, int(d.rows), f.typed_data(), x.typed_data(), g.typed_data(), gf->typed_data(),
                  threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error sumlogdiag(ffi::Buffer<D> a, ffi::ResultBuffer<D> out) {
  const char* e = "sumlogdiag";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "out", *out, 0, d.batch, -1, -1));
  C<D>::sumlogdiag(d.batch, int(d.rows), a.typed_data(), out->typed_data());
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error sumlogdiag_vjp(ffi::Buffer<D> a, ffi::Buffer<D> g, ffi::ResultBuffer<D> ga) {
  const char* e = "sumlogdiag_vjp";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "G", g, 0, d.batch, -1, -1));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, d.rows, d.rows));
  C<D>::sumlogdiag_vjp(d.batch, int(d.rows), a.typed_data(), g.typed_data(), ga->typed_data());
  return ffi::Error::Success();
}

// ---- triangular operators -----------------------------------------------------------------------
// A is n×n with n = cols (rightside, bit 1 of flags) or rows of B.
template <class A, class B>
ffi::Error triangular_dims(const char* e, const A& a, const B& b, int flags, Dims& d) {
  d = dims_of(b, 2);
  const std::int64_t n = (flags & 2) ? d.cols : d.rows;
  XL_CHECK(expect(e, "A", a, 2, d.batch, n, n));
  return expect(e, "B", b, 2, d.batch, -1, -1);
}

template <ffi::DataType D>
ffi::Error trsm(ffi::Buffer<D> a, ffi::Buffer<D> b, ffi::ResultBuffer<D> out,
                ffi::ResultBuffer<ffi::DataType::S32> status, std::int32_t flags, double alpha, std::int32_t threads) {
  const char* e = "trsm";
  Dims d;
  XL_CHECK(triangular_dims(e, a, b, flags, d));
  XL_CHECK(expect(e, "out", *out, 2, d.batch, d.rows, d.cols));
  XL_CHECK(expect(e, "status", *status, 0, d.batch, -1, -1));
  C<D>::trsm(flags, alpha, d.batch, int(d.rows), int(d.cols), a.typed_data(), b.typed_data(), out->typed_data(),
             status->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error trsm_vjp(ffi::Buffer<D> a, ffi::Buffer<D> x, ffi::Buffer<D> g, ffi::ResultBuffer<D> ga,
                    ffi::ResultBuffer<D> gb, std::int32_t flags, double alpha, std::int32_t threads) {
  const char* e = "trsm_vjp";
  Dims d;
  XL_CHECK(triangular_dims(e, a, x, flags, d));
  const Dims n = dims_of(a, 2);
  XL_CHECK(expect(e, "G", g, 2, d.batch, d.rows, d.cols));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, n.rows, n.cols));
  XL_CHECK(expect(e, "gB", *gb, 2, d.batch, d.rows, d.cols));
  C<D>::trsm_vjp(flags, alpha, d.batch, int(d.rows), int(d.cols), a.typed_data(), x.typed_data(), g.typed_data(),
                 ga->typed_data(), gb->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error trmm(ffi::Buffer<D> a, ffi::Buffer<D> b, ffi::ResultBuffer<D> out, std::int32_t flags, double alpha,
                std::int32_t threads) {
  const char* e = "trmm";
  Dims d;
  XL_CHECK(triangular_dims(e, a, b, flags, d));
  XL_CHECK(expect(e, "out", *out, 2, d.batch, d.rows, d.cols));
  C<D>::trmm(flags, alpha, d.batch, int(d.rows), int(d.cols), a.typed_data(), b.typed_data(), out->typed_data(),
             threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error trmm_vjp(ffi::Buffer<D> a, ffi::Buffer<D> b, ffi::Buffer<D> g, ffi::ResultBuffer<D> ga,
                    ffi::ResultBuffer<D> gb, std::int32_t flags, double alpha, std::int32_t threads) {
  const char* e = "trmm_vjp";
  Dims d;
  XL_CHECK(triangular_dims(e, a, b, flags, d));
  const Dims n = dims_of(a, 2);
  XL_CHECK(expect(e, "G", g, 2, d.batch, d.rows, d.cols));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, n.rows, n.cols));
  XL_CHECK(expect(e, "gB", *gb, 2, d.batch, d.rows, d.cols));
  C<D>::trmm_vjp(flags, alpha, d.batch, int(d.rows), int(d.cols), a.typed_data(), b.typed_data(), g.typed_data(),
                 ga->typed_data(), gb->typed_data(), threads);
  return ffi::Error::Success();
}

// ---- syrk ------------------------------------------------------------------------------------------
// A rows×cols; the output n×n with n = cols (transpose, bit 0 of flags) or rows.
template <ffi::DataType D>
ffi::Error syrk(ffi::Buffer<D> a, ffi::ResultBuffer<D> out, std::int32_t flags, double alpha, std::int32_t threads) {
  const char* e = "syrk";
  const Dims d = dims_of(a, 2);
  const std::int64_t n = (flags & 1) ? d.cols : d.rows;
  XL_CHECK(expect(e, "A", a, 2, d.batch, -1, -1));
  XL_CHECK(expect(e, "out", *out, 2, d.batch, n, n));
  C<D>::syrk(flags & 1, alpha, d.batch, int(d.rows), int(d.cols), a.typed_data(), out->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error syrk_vjp(ffi::Buffer<D> a, ffi::Buffer<D> g, ffi::ResultBuffer<D> ga, std::int32_t flags, double alpha,
                    std::int32_t threads) {
  const char* e = "syrk_vjp";
  const Dims d = dims_of(a, 2);
  const std::int64_t n = (flags & 1) ? d.cols : d.rows;
  XL_CHECK(expect(e, "A", a, 2, d.batch, -1, -1));
  XL_CHECK(expect(e, "G", g, 2, d.batch, n, n));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, d.rows, d.cols));
  C<D>::syrk_vjp(flags & 1, alpha, d.batch, int(d.rows), int(d.cols), a.typed_data(), g.typed_data(),
                 ga->typed_data(), threads);
  return ffi::Error::Success();
}

// ---- syevd, inverse, det, slogdet (square A) -------------------------------------------------------
template <ffi::DataType D>
ffi::Error syevd(ffi::Buffer<D> a, ffi::ResultBuffer<D> u, ffi::ResultBuffer<D> w, std::int32_t threads) {
  const char* e = "syevd";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "U", *u, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "lam", *w, 1, d.batch, -1, -1));
  C<D>::syevd(d.batch, int(d.rows), a.typed_data(), u->typed_data(), w->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error syevd_vjp(ffi::Buffer<D> u, ffi::Buffer<D> w, ffi::Buffer<D> gu, ffi::Buffer<D> gw, ffi::ResultBuffer<D> ga,
                     std::int32_t threads) {
  const char* e = "syevd_vjp";
  const Dims d = dims_of(u, 2);
  XL_CHECK(expect(e, "U", u, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "lam", w, 1, d.batch, -1, -1));
  XL_CHECK(expect(e, "gU", gu, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "glam", gw, 1, d.batch, -1, -1));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, d.rows, d.rows));
  C<D>::syevd_vjp(d.batch, int(d.rows), u.typed_data(), w.typed_data(), gu.typed_data(), gw.typed_data(),
                  ga->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error inverse(ffi::Buffer<D> a, ffi::ResultBuffer<D> out, ffi::ResultBuffer<ffi::DataType::S32> status,
                   std::int32_t threads) {
  const char* e = "inverse";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "out", *out, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "status", *status, 0, d.batch, -1, -1));
  C<D>::inverse(d.batch, int(d.rows), a.typed_data(), out->typed_data(), status->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error inverse_vjp(ffi::Buffer<D> x, ffi::Buffer<D> g, ffi::ResultBuffer<D> ga, std::int32_t threads) {
  const char* e = "inverse_vjp";
  const Dims d = dims_of(x, 2);
  XL_CHECK(expect(e, "X", x, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "G", g, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, d.rows, d.rows));
  C<D>::inverse_vjp(d.batch, int(d.rows), x.typed_data(), g.typed_data(), ga->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error det(ffi::Buffer<D> a, ffi::ResultBuffer<D> out, std::int32_t threads) {
  const char* e = "det";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "out", *out, 0, d.batch, -1, -1));
  C<D>::det(d.batch, int(d.rows), a.typed_data(), out->typed_data(), threads);
  return ffi::Error::Success();
}

// det_vjp and slogdet_vjp: G is the cotangent of det (of logabsdet), one value per matrix
template <ffi::DataType D, bool Log>
ffi::Error determinant_vjp(ffi::Buffer<D> a, ffi::Buffer<D> g, ffi::ResultBuffer<D> ga, std::int32_t threads) {
  const char* e = Log ? "slogdet_vjp" : "det_vjp";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "G", g, 0, d.batch, -1, -1));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, d.rows, d.rows));
  (Log ? C<D>::slogdet_vjp : C<D>::det_vjp)(d.batch, int(d.rows), a.typed_data(), g.typed_data(), ga->typed_data(),
                                            threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error slogdet(ffi::Buffer<D> a, ffi::ResultBuffer<D> sign, ffi::ResultBuffer<D> logabsdet, std::int32_t threads) {
  const char* e = "slogdet";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, d.cols, d.cols));
  XL_CHECK(expect(e, "sign", *sign, 0, d.batch, -1, -1));
  XL_CHECK(expect(e, "logabsdet", *logabsdet, 0, d.batch, -1, -1));
  C<D>::slogdet(d.batch, int(d.rows), a.typed_data(), sign->typed_data(), logabsdet->typed_data(), threads);
  return ffi::Error::Success();
}

// ---- gelqf: A m×n (m ≤ n), Q m×n, L m×m ------------------------------------------------------------
template <ffi::DataType D>
ffi::Error gelqf(ffi::Buffer<D> a, ffi::ResultBuffer<D> q, ffi::ResultBuffer<D> l,
                 ffi::ResultBuffer<ffi::DataType::S32> status, std::int32_t threads) {
  const char* e = "gelqf";
  const Dims d = dims_of(a, 2);
  XL_CHECK(expect(e, "A", a, 2, d.batch, -1, -1));
  if (d.rows > d.cols) return bad(e, "A must have no more rows than columns");
  XL_CHECK(expect(e, "Q", *q, 2, d.batch, d.rows, d.cols));
  XL_CHECK(expect(e, "L", *l, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "status", *status, 0, d.batch, -1, -1));
  C<D>::gelqf(d.batch, int(d.rows), int(d.cols), a.typed_data(), q->typed_data(), l->typed_data(),
              status->typed_data(), threads);
  return ffi::Error::Success();
}

template <ffi::DataType D>
ffi::Error gelqf_vjp(ffi::Buffer<D> q, ffi::Buffer<D> l, ffi::Buffer<D> gq, ffi::Buffer<D> gl, ffi::ResultBuffer<D> ga,
                     std::int32_t threads) {
  const char* e = "gelqf_vjp";
  const Dims d = dims_of(q, 2);
  XL_CHECK(expect(e, "Q", q, 2, d.batch, -1, -1));
  if (d.rows > d.cols) return bad(e, "Q must have no more rows than columns");
  XL_CHECK(expect(e, "L", l, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "gQ", gq, 2, d.batch, d.rows, d.cols));
  XL_CHECK(expect(e, "gL", gl, 2, d.batch, d.rows, d.rows));
  XL_CHECK(expect(e, "gA", *ga, 2, d.batch, d.rows, d.cols));
  C<D>::gelqf_vjp(d.batch, int(d.rows), int(d.cols), q.typed_data(), l.typed_data(), gq.typed_data(), gl.typed_data(),
                  ga->typed_data(), threads);
  return ffi::Error::Success();
}

}  // namespace

// Handlers are exported (default visibility) although the library builds with -fvisibility=hidden:
// the declaration carries the attribute to the definition the macro makes.
#define XL_HANDLER(name, impl, binding)                              \
  extern "C" XL_API XLA_FFI_Error* name(XLA_FFI_CallFrame* frame); \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(name, impl, binding)

#define XL_FLOAT(D) ffi::Buffer<ffi::DataType::D>

#define XL_HANDLERS(D, S)                                                                                           \
  XL_HANDLER(xl_ffi_potrf_##S, potrf<ffi::DataType::D>,                                                             \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Ret<ffi::Buffer<ffi::DataType::S32>>()          \
                 .Attr<std::int32_t>("lower").Attr<std::int32_t>("threads"));                                       \
  XL_HANDLER(xl_ffi_potrf_vjp_##S, potrf_vjp<ffi::DataType::D>,                                                     \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()                              \
                 .Attr<std::int32_t>("lower").Attr<std::int32_t>("threads"));                                       \
  XL_HANDLER(xl_ffi_potrs_##S, potrs<ffi::DataType::D>,                                                             \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()                              \
                 .Ret<ffi::Buffer<ffi::DataType::S32>>().Attr<std::int32_t>("lower").Attr<std::int32_t>("threads")); \
  XL_HANDLER(xl_ffi_potrs_vjp_##S, potrs_vjp<ffi::DataType::D>,                                                     \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>()           \
                 .Ret<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Attr<std::int32_t>("lower").Attr<std::int32_t>("threads")); \
  XL_HANDLER(xl_ffi_potri_##S, potri<ffi::DataType::D>,                                                             \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Ret<ffi::Buffer<ffi::DataType::S32>>()          \
                 .Attr<std::int32_t>("lower").Attr<std::int32_t>("threads"));                                       \
  XL_HANDLER(xl_ffi_potri_vjp_##S, potri_vjp<ffi::DataType::D>,                                                     \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()           \
                 .Attr<std::int32_t>("lower").Attr<std::int32_t>("threads"));                                       \
  XL_HANDLER(xl_ffi_sumlogdiag_##S, sumlogdiag<ffi::DataType::D>,                                                   \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>());                                               \
  XL_HANDLER(xl_ffi_sumlogdiag_vjp_##S, sumlogdiag_vjp<ffi::DataType::D>,                                           \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>());                            \
  XL_HANDLER(xl_ffi_trsm_##S, trsm<ffi::DataType::D>,                                                               \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()                              \
                 .Ret<ffi::Buffer<ffi::DataType::S32>>().Attr<std::int32_t>("flags").Attr<double>("alpha")          \
                 .Attr<std::int32_t>("threads"));                                                                   \
  XL_HANDLER(xl_ffi_trsm_vjp_##S, trsm_vjp<ffi::DataType::D>,                                                       \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()           \
                 .Ret<XL_FLOAT(D)>().Attr<std::int32_t>("flags").Attr<double>("alpha")                              \
                 .Attr<std::int32_t>("threads"));                                                                   \
  XL_HANDLER(xl_ffi_trmm_##S, trmm<ffi::DataType::D>,                                                               \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()                              \
                 .Attr<std::int32_t>("flags").Attr<double>("alpha").Attr<std::int32_t>("threads"));                 \
  XL_HANDLER(xl_ffi_trmm_vjp_##S, trmm_vjp<ffi::DataType::D>,                                                       \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()           \
                 .Ret<XL_FLOAT(D)>().Attr<std::int32_t>("flags").Attr<double>("alpha")                              \
                 .Attr<std::int32_t>("threads"));                                                                   \
  XL_HANDLER(xl_ffi_syrk_##S, syrk<ffi::DataType::D>,                                                               \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()                                                 \
                 .Attr<std::int32_t>("flags").Attr<double>("alpha").Attr<std::int32_t>("threads"));                 \
  XL_HANDLER(xl_ffi_syrk_vjp_##S, syrk_vjp<ffi::DataType::D>,                                                       \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()                              \
                 .Attr<std::int32_t>("flags").Attr<double>("alpha").Attr<std::int32_t>("threads"));                 \
  XL_HANDLER(xl_ffi_syevd_##S, syevd<ffi::DataType::D>,                                                             \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Attr<std::int32_t>("threads")); \
  XL_HANDLER(xl_ffi_syevd_vjp_##S, syevd_vjp<ffi::DataType::D>,                                                     \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>()           \
                 .Ret<XL_FLOAT(D)>().Attr<std::int32_t>("threads"));                                                \
  XL_HANDLER(xl_ffi_inverse_##S, inverse<ffi::DataType::D>,                                                         \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Ret<ffi::Buffer<ffi::DataType::S32>>()          \
                 .Attr<std::int32_t>("threads"));                                                                   \
  XL_HANDLER(xl_ffi_inverse_vjp_##S, inverse_vjp<ffi::DataType::D>,                                                 \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Attr<std::int32_t>("threads")); \
  XL_HANDLER(xl_ffi_det_##S, det<ffi::DataType::D>,                                                                 \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Attr<std::int32_t>("threads"));                 \
  XL_HANDLER(xl_ffi_det_vjp_##S, (determinant_vjp<ffi::DataType::D, false>),                                        \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Attr<std::int32_t>("threads")); \
  XL_HANDLER(xl_ffi_slogdet_##S, slogdet<ffi::DataType::D>,                                                         \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Attr<std::int32_t>("threads")); \
  XL_HANDLER(xl_ffi_slogdet_vjp_##S, (determinant_vjp<ffi::DataType::D, true>),                                     \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Attr<std::int32_t>("threads")); \
  XL_HANDLER(xl_ffi_gelqf_##S, gelqf<ffi::DataType::D>,                                                             \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>().Ret<XL_FLOAT(D)>()                              \
                 .Ret<ffi::Buffer<ffi::DataType::S32>>().Attr<std::int32_t>("threads"));                            \
  XL_HANDLER(xl_ffi_gelqf_vjp_##S, gelqf_vjp<ffi::DataType::D>,                                                     \
             ffi::Ffi::Bind().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>().Arg<XL_FLOAT(D)>()           \
                 .Ret<XL_FLOAT(D)>().Attr<std::int32_t>("threads"));

XL_HANDLERS(F32, f32)
XL_HANDLERS(F64, f64)
