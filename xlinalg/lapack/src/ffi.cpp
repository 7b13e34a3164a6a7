// XLA FFI handlers over the C ABI (xlinalg.h), for JAX on the CPU: one per forward and VJP entry
// and dtype, ``xl_ffi_<entry>_<f32|f64>`` (xlinalg/lapack/jax_ffi.py builds this file together
// with entries.cpp and registers every handler as the custom-call target of its name).
//
// Every handler is ``handle`` with its row of the table (abi.hpp): the operands are the entry's
// input arrays, the results its outputs (the int32 status last), row-major (XLA's default layout
// for custom calls) with leading batch axes, all of the handler's dtype; the attributes are the
// entry's integer parameters (int32) and float parameters (f64), by the names of its signature
// (``lower``, ``flags``: bit 0 transpose, bit 1 rightside, bit 2 lower, ``transpose``, ``alpha``,
// ``threads``). The table's check runs first: a mismatch is an error naming the entry, never an
// out-of-bounds access. Forward handlers that report failures write one status per batch entry
// (the failing entries' outputs entirely NaN).
#include <cstdint>
#include <string>

#include "abi.hpp"
#include "xla/ffi/api/ffi.h"
#include "xlinalg.h"

namespace ffi = xla::ffi;

namespace {

using xl::abi::Entry;

ffi::Error bad(const Entry& e, const std::string& what) {
  return ffi::Error::InvalidArgument(std::string("xlinalg ") + e.name + ": " + what);
}

template <int Row, ffi::DataType D>
ffi::Error handle(ffi::RemainingArgs args, ffi::RemainingRets rets, ffi::Dictionary attrs) {
  static_assert(Row >= 0, "no entry of that name in the table");
  const Entry& e = xl::abi::kEntries[Row];
  const int operands = int(args.size());
  if (operands + int(rets.size()) != e.arrays || operands != e.arrays - e.outputs)
    return bad(e, "expected " + std::to_string(e.arrays - e.outputs) + " operands and " + std::to_string(e.outputs) +
                      " results: " + e.signature);
  xl::abi::Call c;
  const auto take = [&](int i, const ffi::AnyBuffer& b) {
    const bool status = e.status && i == e.arrays - 1;
    if (b.element_type() != (status ? ffi::DataType::S32 : D)) return false;
    const auto dims = b.dimensions();
    c.arr[i] = {dims.begin(), int(dims.size()), std::int64_t(b.element_count()), b.untyped_data(), true};
    return true;
  };
  for (int i = 0; i < e.arrays; ++i) {
    bool ok;
    if (i < operands) {
      auto arg = args.get<ffi::AnyBuffer>(i);
      if (arg.has_error()) return arg.error();
      ok = take(i, arg.value());
    } else {
      auto ret = rets.get<ffi::AnyBuffer>(i - operands);
      if (ret.has_error()) return ret.error();
      ok = take(i, *ret.value());
    }
    if (!ok) return bad(e, xl::abi::arg_name(e.signature, i) + " has the wrong dtype");
  }
  for (int i = 0; i < e.ints; ++i) {
    auto v = attrs.get<std::int32_t>(xl::abi::arg_name(e.signature, e.arrays + i));
    if (v.has_error()) return v.error();
    c.ints[i] = v.value();
  }
  for (int i = 0; i < e.floats; ++i) {
    auto v = attrs.get<double>(xl::abi::arg_name(e.signature, e.arrays + e.ints + i));
    if (v.has_error()) return v.error();
    c.floats[i] = v.value();
  }
  const std::string why = xl::abi::check(e, c);
  if (!why.empty()) return bad(e, why);
  xl::abi::run(e, c, D == ffi::DataType::F32);
  return ffi::Error::Success();
}

}  // namespace

// Handlers are exported (default visibility) although the library builds with -fvisibility=hidden:
// the declaration carries the attribute to the definition the macro makes.
#define XL_HANDLER(entry, S, D)                                                                                   \
  extern "C" XL_API XLA_FFI_Error* xl_ffi_##entry##_##S(XLA_FFI_CallFrame* frame);                               \
  XLA_FFI_DEFINE_HANDLER_SYMBOL(xl_ffi_##entry##_##S, (handle<xl::abi::row(#entry), ffi::DataType::D>),          \
                                ffi::Ffi::Bind().RemainingArgs().RemainingRets().Attrs())
#define XL_HANDLERS(entry)           \
  XL_HANDLER(entry, f32, F32);       \
  XL_HANDLER(entry, f64, F64);       \
  XL_HANDLER(entry##_vjp, f32, F32); \
  XL_HANDLER(entry##_vjp, f64, F64)

// every operator with entries but gemm and gemm2 (their pure rules are one XLA dot already)
XL_HANDLERS(potrf);
XL_HANDLERS(potrs);
XL_HANDLERS(potri);
XL_HANDLERS(sumlogdiag);
XL_HANDLERS(trsm);
XL_HANDLERS(trmm);
XL_HANDLERS(syrk);
XL_HANDLERS(syevd);
XL_HANDLERS(inverse);
XL_HANDLERS(det);
XL_HANDLERS(slogdet);
XL_HANDLERS(gelqf);

// the variants whose forward keeps residuals for the reverse (potrs: Y = L⁻¹B; det, slogdet: the
// LU factors and pivots)
#define XL_SAVING_HANDLERS(entry, vjp) \
  XL_HANDLER(entry, f32, F32);         \
  XL_HANDLER(entry, f64, F64);         \
  XL_HANDLER(vjp, f32, F32);           \
  XL_HANDLER(vjp, f64, F64)

XL_SAVING_HANDLERS(potrs_y, potrs_vjp_y);
XL_SAVING_HANDLERS(det_lu, det_vjp_lu);
XL_SAVING_HANDLERS(slogdet_lu, slogdet_vjp_lu);
