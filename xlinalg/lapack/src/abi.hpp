// The table of the C ABI (xlinalg.h) that every binding calls through: for each entry, its
// signature, how its dimensions are read from its first arrays, and the size every other array
// must have. ``check`` validates a call against its row (so that no call reads or writes out of
// bounds) and ``invoke`` calls the entry. The Python extension (module.cpp), the XLA FFI
// handlers (ffi.cpp) and the PyTorch autograd node (torch_node.cpp) are three front ends of this
// one table.
//
// The C ABI orders the arguments of every entry the same way — integer parameters but ``threads``,
// float parameters, the batch size, the dimensions, the arrays (inputs, outputs, the status),
// ``threads`` — so a call is assembled from the entry function's own parameter types.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#include "pages.hpp"
#include "xlinalg.h"

namespace xl::abi {

constexpr int kMaxArrays = 6, kMaxInts = 2, kMaxFloats = 2, kMaxValues = 16;

// How an entry's dimensions are read from its first arrays (a: array 0, b: array 1; ``flags`` or
// ``transpose`` is the first integer parameter), and which it passes.
enum class Dims {
  kSquare,      // a (batch, n, n)                                             -> n
  kRhs,         // a (batch, n, n), b (batch, n, k)                             -> n, k
  kTriangular,  // a (batch, n, n), b (batch, rows, cols), n = rows (cols when flags & 2) -> rows, cols
  kProduct,     // a holds op(a) m×k, b op(b) k×p (stored transposed: flags bit 0, bit 1) -> m, p, k
  kSyrk,        // a (batch, rows, cols), output order rows (cols with transpose)   -> rows, cols
  kWide,        // a (batch, m, n), m <= n                                      -> m, n
};

constexpr int dim_count(Dims d) { return d == Dims::kSquare ? 1 : d == Dims::kProduct ? 3 : 2; }

// The size of an array its entry's dimensions are not read from.
enum class Shape {
  kRead,     // read by Dims (checked there)
  kLikeA,    // that of array 0
  kLikeB,    // that of array 1
  kOne,      // (batch,): one entry per matrix
  kVector,   // (batch, n)
  kSquare,   // (batch, n, n), n the order (the output's, for kSyrk)
  kSquareM,  // (batch, m, m)
  kProduct,  // (batch, m, p)
};

union Value {  // one ABI argument
  std::int64_t i;
  double d;
  void* p;
};

template <class F>
struct Arity;
template <class... P>
struct Arity<void (*)(P...)> {
  static constexpr int value = sizeof...(P);
};

template <class P>
P as(const Value& v) {
  if constexpr (std::is_pointer_v<P>)
    return static_cast<P>(v.p);
  else if constexpr (std::is_floating_point_v<P>)
    return static_cast<P>(v.d);
  else
    return static_cast<P>(v.i);
}

template <class... P, std::size_t... I>
void apply(void (*f)(P...), const Value* v, std::index_sequence<I...>) {
  f(as<P>(v[I])...);
}

// The entry F on its ABI arguments; N, the count its table row implies, must be F's arity.
template <auto F, int N>
void invoke(const Value* v) {
  static_assert(Arity<decltype(F)>::value == N, "the table row does not match the entry's C signature");
  apply(F, v, std::make_index_sequence<N>{});
}

using Invoke = void (*)(const Value*);

struct Entry {
  const char* name;
  const char* signature;  // arrays, integer then float parameters: their names in messages and FFI attributes
  Dims dims;
  int arrays, outputs;  // outputs: the last ``outputs`` arrays (the status included) are written
  int ints, floats;
  bool status, threads;  // the last array is the int32 status; the last integer is ``threads``
  Shape shapes[kMaxArrays];
  unsigned optional;  // bit i: array i may be absent (a null pointer)
  Invoke f32, f64;
};

constexpr int abi_count(Dims dims, int arrays, int ints, int floats) { return ints + floats + 1 + dim_count(dims) + arrays; }

// One row: the entry xl_<name>_<f32|f64>, its signature, dimensions, arrays, written arrays,
// integer and float parameters, status, threads, the arrays' shapes, the optional arrays.
#define XL_ENTRY(name, signature, dims, arrays, outputs, ints, floats, status, threads, shapes, optional) \
  Entry {                                                                                                   \
    #name, signature, Dims::dims, arrays, outputs, ints, floats, status, threads, shapes, optional,        \
        invoke<xl_##name##_f32, abi_count(Dims::dims, arrays, ints, floats)>,                               \
        invoke<xl_##name##_f64, abi_count(Dims::dims, arrays, ints, floats)>                                \
  }
#define XL_SHAPES(...) {__VA_ARGS__}

inline constexpr Entry kEntries[] = {
    // Cholesky family
    XL_ENTRY(potrf, "potrf(a, out, status, lower, threads)", kSquare, 3, 2, 2, 0, true, true,
             XL_SHAPES(Shape::kRead, Shape::kLikeA, Shape::kOne), 0),
    XL_ENTRY(potrf_vjp, "potrf_vjp(f, g, ga, lower, threads)", kSquare, 3, 1, 2, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kLikeA, Shape::kLikeA), 0),
    XL_ENTRY(potri, "potri(f, out, status, lower, threads)", kSquare, 3, 2, 2, 0, true, true,
             XL_SHAPES(Shape::kRead, Shape::kLikeA, Shape::kOne), 0),
    XL_ENTRY(potri_vjp, "potri_vjp(f, x, g, gf, lower, threads)", kSquare, 4, 1, 2, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kLikeA, Shape::kLikeA, Shape::kLikeA), 0),
    XL_ENTRY(potrs, "potrs(f, b, out, status, lower, threads)", kRhs, 4, 2, 2, 0, true, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kLikeB, Shape::kOne), 0),
    XL_ENTRY(potrs_vjp, "potrs_vjp(f, b, x, g, gf, gb, lower, threads)", kRhs, 6, 2, 2, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kLikeB, Shape::kLikeB, Shape::kLikeA, Shape::kLikeB), 0),
    // potrs keeping Y = L⁻¹ B for its reverse (y: the residual)
    XL_ENTRY(potrs_y, "potrs_y(f, b, out, y, status, lower, threads)", kRhs, 5, 3, 2, 0, true, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kLikeB, Shape::kLikeB, Shape::kOne), 0),
    XL_ENTRY(potrs_vjp_y, "potrs_vjp_y(f, y, x, g, gf, gb, lower, threads)", kRhs, 6, 2, 2, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kLikeB, Shape::kLikeB, Shape::kLikeA, Shape::kLikeB), 0),
    XL_ENTRY(sumlogdiag, "sumlogdiag(a, out)", kSquare, 2, 1, 0, 0, false, false, XL_SHAPES(Shape::kRead, Shape::kOne), 0),
    XL_ENTRY(sumlogdiag_vjp, "sumlogdiag_vjp(a, g, ga)", kSquare, 3, 1, 0, 0, false, false,
             XL_SHAPES(Shape::kRead, Shape::kOne, Shape::kLikeA), 0),
    // triangular operators (flags: bit 0 transpose, bit 1 rightside, bit 2 lower)
    XL_ENTRY(trsm, "trsm(a, b, out, status, flags, threads, alpha)", kTriangular, 4, 2, 2, 1, true, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kLikeB, Shape::kOne), 0),
    XL_ENTRY(trsm_vjp, "trsm_vjp(a, x, g, ga, gb, flags, threads, alpha)", kTriangular, 5, 2, 2, 1, false, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kLikeB, Shape::kLikeA, Shape::kLikeB), 0),
    XL_ENTRY(trmm, "trmm(a, b, out, flags, threads, alpha)", kTriangular, 3, 1, 2, 1, false, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kLikeB), 0),
    XL_ENTRY(trmm_vjp, "trmm_vjp(a, b, g, ga, gb, flags, threads, alpha)", kTriangular, 5, 2, 2, 1, false, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kLikeB, Shape::kLikeA, Shape::kLikeB), 0),
    // products (without c and gc: gemm2)
    XL_ENTRY(gemm, "gemm(a, b, c, out, flags, threads, alpha, beta)", kProduct, 4, 1, 2, 2, false, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kProduct, Shape::kProduct), 1u << 2),
    XL_ENTRY(gemm_vjp, "gemm_vjp(a, b, g, ga, gb, gc, flags, threads, alpha, beta)", kProduct, 6, 3, 2, 2, false, true,
             XL_SHAPES(Shape::kRead, Shape::kRead, Shape::kProduct, Shape::kLikeA, Shape::kLikeB, Shape::kProduct), 1u << 5),
    XL_ENTRY(syrk, "syrk(a, out, transpose, threads, alpha)", kSyrk, 2, 1, 2, 1, false, true,
             XL_SHAPES(Shape::kRead, Shape::kSquare), 0),
    XL_ENTRY(syrk_vjp, "syrk_vjp(a, g, ga, transpose, threads, alpha)", kSyrk, 3, 1, 2, 1, false, true,
             XL_SHAPES(Shape::kRead, Shape::kSquare, Shape::kLikeA), 0),
    // eigendecomposition
    XL_ENTRY(syevd, "syevd(a, u, w, threads)", kSquare, 3, 2, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kLikeA, Shape::kVector), 0),
    XL_ENTRY(syevd_vjp, "syevd_vjp(u, w, gu, gw, ga, threads)", kSquare, 5, 1, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kVector, Shape::kLikeA, Shape::kVector, Shape::kLikeA), 0),
    // inverse, det, slogdet (slogdet_vjp: g the cotangent of logabsdet)
    XL_ENTRY(inverse, "inverse(a, out, status, threads)", kSquare, 3, 2, 1, 0, true, true,
             XL_SHAPES(Shape::kRead, Shape::kLikeA, Shape::kOne), 0),
    XL_ENTRY(inverse_vjp, "inverse_vjp(x, g, ga, threads)", kSquare, 3, 1, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kLikeA, Shape::kLikeA), 0),
    XL_ENTRY(det, "det(a, out, threads)", kSquare, 2, 1, 1, 0, false, true, XL_SHAPES(Shape::kRead, Shape::kOne), 0),
    XL_ENTRY(det_vjp, "det_vjp(a, g, ga, threads)", kSquare, 3, 1, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kOne, Shape::kLikeA), 0),
    XL_ENTRY(slogdet, "slogdet(a, sign, logabsdet, threads)", kSquare, 3, 2, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kOne, Shape::kOne), 0),
    XL_ENTRY(slogdet_vjp, "slogdet_vjp(a, g, ga, threads)", kSquare, 3, 1, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kOne, Shape::kLikeA), 0),
    // det and slogdet keeping A's LU factors for their reverses (lu, pivots: the residuals)
    XL_ENTRY(det_lu, "det_lu(a, out, lu, pivots, threads)", kSquare, 4, 3, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kOne, Shape::kLikeA, Shape::kVector), 0),
    XL_ENTRY(det_vjp_lu, "det_vjp_lu(lu, pivots, g, ga, threads)", kSquare, 4, 1, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kVector, Shape::kOne, Shape::kLikeA), 0),
    XL_ENTRY(slogdet_lu, "slogdet_lu(a, sign, logabsdet, lu, pivots, threads)", kSquare, 5, 4, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kOne, Shape::kOne, Shape::kLikeA, Shape::kVector), 0),
    XL_ENTRY(slogdet_vjp_lu, "slogdet_vjp_lu(lu, pivots, g, ga, threads)", kSquare, 4, 1, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kVector, Shape::kOne, Shape::kLikeA), 0),
    // LQ
    XL_ENTRY(gelqf, "gelqf(a, q, l, status, threads)", kWide, 4, 3, 1, 0, true, true,
             XL_SHAPES(Shape::kRead, Shape::kLikeA, Shape::kSquareM, Shape::kOne), 0),
    XL_ENTRY(gelqf_vjp, "gelqf_vjp(q, l, gq, gl, ga, threads)", kWide, 5, 1, 1, 0, false, true,
             XL_SHAPES(Shape::kRead, Shape::kSquareM, Shape::kLikeA, Shape::kSquareM, Shape::kLikeA), 0),
};
#undef XL_ENTRY
#undef XL_SHAPES

constexpr int kEntryCount = sizeof(kEntries) / sizeof(kEntries[0]);

constexpr bool same(const char* a, const char* b) { return *a == *b && (*a == '\0' || same(a + 1, b + 1)); }

// The row of the entry ``name`` (a compile-time constant where ``name`` is).
constexpr int row(const char* name) {
  for (int i = 0; i < kEntryCount; ++i)
    if (same(kEntries[i].name, name)) return i;
  return -1;
}

// The name of argument ``i`` of ``signature`` ("potrf(a, out, ...)" -> "a" for i = 0).
inline std::string arg_name(const char* signature, int i) {
  const char* p = std::strchr(signature, '(') + 1;
  for (; i > 0; --i) p = std::strchr(p, ',') + 2;
  return std::string(p, std::strcspn(p, ",)"));
}

// One array of a call as a front end sees it (absent: a null where the row allows it).
struct ArrayRef {
  const std::int64_t* shape = nullptr;
  int ndim = 0;
  std::int64_t items = 0;
  void* data = nullptr;
  bool present = false;

  std::int64_t dim(int from_end) const { return ndim >= from_end ? shape[ndim - from_end] : -1; }
  std::int64_t batch(int core) const {  // product of the leading axes
    std::int64_t b = 1;
    for (int i = 0; i < ndim - core; ++i) b *= shape[i];
    return b;
  }
};

// A call: its arrays and parameters, and what check reads from them.
struct Call {
  ArrayRef arr[kMaxArrays];
  std::int64_t ints[kMaxInts] = {};
  double floats[kMaxFloats] = {};
  std::int64_t batch = 0;
  std::int64_t dims[3] = {};         // passed to the entry (dim_count of them)
  std::int64_t n = 0, m = 0, p = 0;  // for the shapes: the order, and a product's m and p
};

// Reads the entry's dimensions from its first arrays: "" or what is wrong.
inline std::string read_dims(const Entry& e, Call& c) {
  const ArrayRef &a = c.arr[0], &b = c.arr[1];
  const auto name = [&](int i) { return arg_name(e.signature, i); };
  if (a.ndim < 2) return name(0) + " must be (batch, rows, cols)";
  c.batch = a.batch(2);
  const std::int64_t rows = a.dim(2), cols = a.dim(1);
  if (e.dims != Dims::kSquare && e.dims != Dims::kSyrk && e.dims != Dims::kWide) {
    if (b.ndim < 2) return name(1) + " must be (batch, rows, cols)";
    if (b.batch(2) != c.batch) return name(1) + " has a different batch size than " + name(0);
  }
  switch (e.dims) {
    case Dims::kSquare:
    case Dims::kRhs:
    case Dims::kTriangular:
      if (rows != cols) return "expected a batch of square matrices";
      c.n = c.dims[0] = rows;
      if (e.dims == Dims::kRhs) {
        c.dims[1] = b.dim(1);
        return b.dim(2) == c.n ? "" : name(1) + " must be (batch, n, k) for (batch, n, n)";
      }
      if (e.dims == Dims::kTriangular) {
        c.dims[0] = b.dim(2), c.dims[1] = b.dim(1);
        if (c.dims[c.ints[0] & 2 ? 1 : 0] != c.n) return name(1) + " does not match the order of " + name(0);
      }
      return "";
    case Dims::kProduct: {
      const bool ta = c.ints[0] & 1, tb = c.ints[0] & 2;
      c.m = c.dims[0] = ta ? cols : rows;
      c.dims[2] = ta ? rows : cols;
      c.p = c.dims[1] = tb ? b.dim(2) : b.dim(1);
      return (tb ? b.dim(1) : b.dim(2)) == c.dims[2] ? "" : "the inner dimensions of op(a) and op(b) differ";
    }
    case Dims::kSyrk:
      c.dims[0] = rows, c.dims[1] = cols;
      c.n = c.ints[0] ? cols : rows;
      return "";
    case Dims::kWide:
      if (rows > cols) return "expected a batch of m x n matrices with m <= n";
      c.m = c.dims[0] = rows, c.dims[1] = cols;
      return "";
  }
  return "unknown dimensions";
}

// Checks a call (its arrays present where required, every size): "" or what is wrong.
inline std::string check(const Entry& e, Call& c) {
  for (int i = 0; i < e.arrays; ++i)
    if (!c.arr[i].present && !(e.optional >> i & 1u)) return arg_name(e.signature, i) + " is missing";
  std::string why = read_dims(e, c);
  if (!why.empty()) return why;
  for (int i = 0; i < e.arrays; ++i) {
    if (!c.arr[i].present || e.shapes[i] == Shape::kRead) continue;
    std::int64_t want = 0;
    std::string what;
    switch (e.shapes[i]) {
      case Shape::kRead: break;
      case Shape::kLikeA: want = c.arr[0].items, what = "must match " + arg_name(e.signature, 0); break;
      case Shape::kLikeB: want = c.arr[1].items, what = "must match " + arg_name(e.signature, 1); break;
      case Shape::kOne: want = c.batch, what = "must have one entry per matrix"; break;
      case Shape::kVector: want = c.batch * c.n, what = "must be (batch, n)"; break;
      case Shape::kSquare: want = c.batch * c.n * c.n, what = "must be (batch, n, n)"; break;
      case Shape::kSquareM: want = c.batch * c.m * c.m, what = "must be (batch, m, m)"; break;
      case Shape::kProduct: want = c.batch * c.m * c.p, what = "must be (batch, m, p)"; break;
    }
    if (c.arr[i].items != want) return arg_name(e.signature, i) + " " + what;
  }
  for (int i = 0; i < dim_count(e.dims); ++i)
    if (c.dims[i] > INT32_MAX) return "a dimension is too large for LP64 BLAS";
  return "";
}

// Calls the entry (float32 or float64) on a checked call.
inline void run(const Entry& e, const Call& c, bool f32) {
  Value v[kMaxValues];
  int k = 0;
  const int params = e.threads ? e.ints - 1 : e.ints;
  for (int i = 0; i < params; ++i) v[k++].i = c.ints[i];
  for (int i = 0; i < e.floats; ++i) v[k++].d = c.floats[i];
  v[k++].i = c.batch;
  for (int i = 0; i < dim_count(e.dims); ++i) v[k++].i = c.dims[i];
  for (int i = 0; i < e.arrays; ++i) v[k++].p = c.arr[i].present ? c.arr[i].data : nullptr;
  if (e.threads) v[k++].i = c.ints[e.ints - 1];
  for (int i = e.arrays - e.outputs; i < e.arrays; ++i) {  // the written arrays (the status: int32)
    const std::size_t item = (e.status && i == e.arrays - 1) || f32 ? 4 : 8;
    if (c.arr[i].present) advise_huge_pages(c.arr[i].data, std::size_t(c.arr[i].items) * item);
  }
  (f32 ? e.f32 : e.f64)(v);
}

}  // namespace xl::abi
