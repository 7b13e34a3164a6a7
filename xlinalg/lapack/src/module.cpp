// xlinalg.lapack._kernels: the C ABI (xlinalg.h) for Python, on any object with the buffer protocol.
//
// Every function takes its arrays first (inputs, then outputs, then the int32 status where there is
// one), then its integer/float parameters. Arrays must be C-contiguous with a batch axis layout
// (..., rows, cols) and one float dtype; sizes are checked here, so no call can write out of bounds.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <cstring>

#include "xlinalg.h"

namespace {

struct Array {
  Py_buffer view{};
  bool held = false;
  ~Array() {
    if (held) PyBuffer_Release(&view);
  }
  char kind() const {  // 'f', 'd' or 'i' (int32)
    const char* f = view.format ? view.format : "B";
    if (*f == '<' || *f == '=' || *f == '@') ++f;
    if (!std::strcmp(f, "d") && view.itemsize == 8) return 'd';
    if (!std::strcmp(f, "f") && view.itemsize == 4) return 'f';
    if ((!std::strcmp(f, "i") || !std::strcmp(f, "l")) && view.itemsize == 4) return 'i';
    return '?';
  }
  Py_ssize_t dim(int from_end) const { return view.ndim >= from_end ? view.shape[view.ndim - from_end] : -1; }
  std::int64_t batch(int core) const {  // product of the leading axes
    std::int64_t b = 1;
    for (int i = 0; i < view.ndim - core; ++i) b *= view.shape[i];
    return b;
  }
  std::int64_t items() const { return view.itemsize ? view.len / view.itemsize : 0; }
  void* ptr() const { return view.buf; }
};

bool take(PyObject* obj, Array& a, bool writable, const char* op, int position) {
  const int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(obj, &a.view, flags) != 0) {
    PyErr_Format(PyExc_TypeError, "%s: argument %d must be a C-contiguous%s array", op, position,
                 writable ? " writable" : "");
    return false;
  }
  a.held = true;
  return true;
}

// Parses ``arrays`` buffers (the last ``outputs`` of them writable) and ``ints`` integers then
// ``floats`` doubles; checks that the float arrays share one dtype.
struct Args {
  Array arr[6];
  long long ints[4] = {};
  double floats[2] = {};
  char dtype = '?';
  bool ok = false;

  Args(const char* op, PyObject* const* args, Py_ssize_t nargs, int arrays, int outputs, int nint, int nfloat,
       bool status) {
    if (nargs != arrays + nint + nfloat) {
      PyErr_Format(PyExc_TypeError, "%s: expected %d arguments, got %zd", op, arrays + nint + nfloat, nargs);
      return;
    }
    for (int i = 0; i < arrays; ++i)
      if (!take(args[i], arr[i], i >= arrays - outputs, op, i)) return;
    for (int i = 0; i < nint; ++i) {
      ints[i] = PyLong_AsLongLong(args[arrays + i]);
      if (ints[i] == -1 && PyErr_Occurred()) return;
    }
    for (int i = 0; i < nfloat; ++i) {
      floats[i] = PyFloat_AsDouble(args[arrays + nint + i]);
      if (floats[i] == -1.0 && PyErr_Occurred()) return;
    }
    const int nfloat_arrays = status ? arrays - 1 : arrays;
    dtype = arr[0].kind();
    for (int i = 0; i < nfloat_arrays; ++i)
      if (arr[i].kind() != dtype || (dtype != 'f' && dtype != 'd')) {
        PyErr_Format(PyExc_TypeError, "%s: arrays must all be float32 or all float64", op);
        return;
      }
    if (status && arr[arrays - 1].kind() != 'i') {
      PyErr_Format(PyExc_TypeError, "%s: the status array must be int32", op);
      return;
    }
    ok = true;
  }
};

bool check(bool cond, const char* op, const char* what) {
  if (!cond) PyErr_Format(PyExc_ValueError, "%s: %s", op, what);
  return cond;
}

// square (batch, n, n) array; sets batch and n
bool square(const Array& a, const char* op, std::int64_t& batch, int& n) {
  if (!check(a.view.ndim >= 2 && a.dim(1) == a.dim(2), op, "expected a batch of square matrices")) return false;
  batch = a.batch(2);
  n = int(a.dim(1));
  return true;
}

bool same_items(const Array& a, std::int64_t items, const char* op, const char* what) {
  return check(a.items() == items, op, what);
}

#define DISPATCH(dtype, call_f32, call_f64) \
  do {                                      \
    Py_BEGIN_ALLOW_THREADS;                 \
    if ((dtype) == 'f')                     \
      call_f32;                             \
    else                                    \
      call_f64;                             \
    Py_END_ALLOW_THREADS;                   \
  } while (0)

// ---- Cholesky family -----------------------------------------------------------------------------
// potrf(a, out, status, lower, threads)
PyObject* potrf(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("potrf", args, nargs, 3, 2, 2, 0, true);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "potrf", batch, n)) return nullptr;
  if (!same_items(p.arr[1], p.arr[0].items(), "potrf", "out must match a") ||
      !same_items(p.arr[2], batch, "potrf", "status must have one entry per matrix"))
    return nullptr;
  const int lower = int(p.ints[0]), threads = int(p.ints[1]);
  void *a = p.arr[0].ptr(), *out = p.arr[1].ptr();
  auto* st = static_cast<int32_t*>(p.arr[2].ptr());
  DISPATCH(p.dtype, xl_potrf_f32(lower, batch, n, (float*)a, (float*)out, st, threads),
           xl_potrf_f64(lower, batch, n, (double*)a, (double*)out, st, threads));
  Py_RETURN_NONE;
}

// potrf_vjp(f, g, ga, lower, threads)
PyObject* potrf_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("potrf_vjp", args, nargs, 3, 1, 2, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "potrf_vjp", batch, n)) return nullptr;
  const auto items = p.arr[0].items();
  if (!same_items(p.arr[1], items, "potrf_vjp", "g must match f") || !same_items(p.arr[2], items, "potrf_vjp", "ga must match f"))
    return nullptr;
  const int lower = int(p.ints[0]), threads = int(p.ints[1]);
  void *f = p.arr[0].ptr(), *g = p.arr[1].ptr(), *ga = p.arr[2].ptr();
  DISPATCH(p.dtype, xl_potrf_vjp_f32(lower, batch, n, (float*)f, (float*)g, (float*)ga, threads),
           xl_potrf_vjp_f64(lower, batch, n, (double*)f, (double*)g, (double*)ga, threads));
  Py_RETURN_NONE;
}

// potri(f, out, status, lower, threads)
PyObject* potri(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("potri", args, nargs, 3, 2, 2, 0, true);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "potri", batch, n)) return nullptr;
  if (!same_items(p.arr[1], p.arr[0].items(), "potri", "out must match f") ||
      !same_items(p.arr[2], batch, "potri", "status must have one entry per matrix"))
    return nullptr;
  const int lower = int(p.ints[0]), threads = int(p.ints[1]);
  void *f = p.arr[0].ptr(), *out = p.arr[1].ptr();
  auto* st = static_cast<int32_t*>(p.arr[2].ptr());
  DISPATCH(p.dtype, xl_potri_f32(lower, batch, n, (float*)f, (float*)out, st, threads),
           xl_potri_f64(lower, batch, n, (double*)f, (double*)out, st, threads));
  Py_RETURN_NONE;
}

// potri_vjp(f, x, g, gf, lower, threads)
PyObject* potri_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("potri_vjp", args, nargs, 4, 1, 2, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "potri_vjp", batch, n)) return nullptr;
  const auto items = p.arr[0].items();
  for (int i = 1; i < 4; ++i)
    if (!same_items(p.arr[i], items, "potri_vjp", "x, g and gf must match f")) return nullptr;
  const int lower = int(p.ints[0]), threads = int(p.ints[1]);
  void *f = p.arr[0].ptr(), *x = p.arr[1].ptr(), *g = p.arr[2].ptr(), *gf = p.arr[3].ptr();
  DISPATCH(p.dtype, xl_potri_vjp_f32(lower, batch, n, (float*)f, (float*)x, (float*)g, (float*)gf, threads),
           xl_potri_vjp_f64(lower, batch, n, (double*)f, (double*)x, (double*)g, (double*)gf, threads));
  Py_RETURN_NONE;
}

// (batch, n, k) right-hand sides matching the square f
bool rhs(const Array& b, const char* op, std::int64_t batch, int n, int& k) {
  if (!check(b.view.ndim >= 2 && b.dim(2) == n && b.batch(2) == batch, op, "b must be (batch, n, k) for f (batch, n, n)"))
    return false;
  k = int(b.dim(1));
  return true;
}

// potrs(f, b, out, status, lower, threads)
PyObject* potrs(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("potrs", args, nargs, 4, 2, 2, 0, true);
  std::int64_t batch;
  int n, k;
  if (!p.ok || !square(p.arr[0], "potrs", batch, n) || !rhs(p.arr[1], "potrs", batch, n, k)) return nullptr;
  if (!same_items(p.arr[2], p.arr[1].items(), "potrs", "out must match b") ||
      !same_items(p.arr[3], batch, "potrs", "status must have one entry per matrix"))
    return nullptr;
  const int lower = int(p.ints[0]), threads = int(p.ints[1]);
  void *f = p.arr[0].ptr(), *b = p.arr[1].ptr(), *out = p.arr[2].ptr();
  auto* st = static_cast<int32_t*>(p.arr[3].ptr());
  DISPATCH(p.dtype, xl_potrs_f32(lower, batch, n, k, (float*)f, (float*)b, (float*)out, st, threads),
           xl_potrs_f64(lower, batch, n, k, (double*)f, (double*)b, (double*)out, st, threads));
  Py_RETURN_NONE;
}

// potrs_vjp(f, b, x, g, gf, gb, lower, threads)
PyObject* potrs_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("potrs_vjp", args, nargs, 6, 2, 2, 0, false);
  std::int64_t batch;
  int n, k;
  if (!p.ok || !square(p.arr[0], "potrs_vjp", batch, n) || !rhs(p.arr[1], "potrs_vjp", batch, n, k)) return nullptr;
  const auto items = p.arr[1].items();
  if (!same_items(p.arr[2], items, "potrs_vjp", "x must match b") || !same_items(p.arr[3], items, "potrs_vjp", "g must match b") ||
      !same_items(p.arr[4], p.arr[0].items(), "potrs_vjp", "gf must match f") ||
      !same_items(p.arr[5], items, "potrs_vjp", "gb must match b"))
    return nullptr;
  const int lower = int(p.ints[0]), threads = int(p.ints[1]);
  void *f = p.arr[0].ptr(), *b = p.arr[1].ptr(), *x = p.arr[2].ptr(), *g = p.arr[3].ptr(), *gf = p.arr[4].ptr(),
       *gb = p.arr[5].ptr();
  DISPATCH(p.dtype,
           xl_potrs_vjp_f32(lower, batch, n, k, (float*)f, (float*)b, (float*)x, (float*)g, (float*)gf, (float*)gb, threads),
           xl_potrs_vjp_f64(lower, batch, n, k, (double*)f, (double*)b, (double*)x, (double*)g, (double*)gf, (double*)gb,
                            threads));
  Py_RETURN_NONE;
}

// sumlogdiag(a, out)
PyObject* sumlogdiag(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("sumlogdiag", args, nargs, 2, 1, 0, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "sumlogdiag", batch, n)) return nullptr;
  if (!same_items(p.arr[1], batch, "sumlogdiag", "out must have one entry per matrix")) return nullptr;
  void *a = p.arr[0].ptr(), *out = p.arr[1].ptr();
  DISPATCH(p.dtype, xl_sumlogdiag_f32(batch, n, (float*)a, (float*)out),
           xl_sumlogdiag_f64(batch, n, (double*)a, (double*)out));
  Py_RETURN_NONE;
}

// sumlogdiag_vjp(a, g, ga)
PyObject* sumlogdiag_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("sumlogdiag_vjp", args, nargs, 3, 1, 0, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "sumlogdiag_vjp", batch, n)) return nullptr;
  if (!same_items(p.arr[1], batch, "sumlogdiag_vjp", "g must have one entry per matrix") ||
      !same_items(p.arr[2], p.arr[0].items(), "sumlogdiag_vjp", "ga must match a"))
    return nullptr;
  void *a = p.arr[0].ptr(), *g = p.arr[1].ptr(), *ga = p.arr[2].ptr();
  DISPATCH(p.dtype, xl_sumlogdiag_vjp_f32(batch, n, (float*)a, (float*)g, (float*)ga),
           xl_sumlogdiag_vjp_f64(batch, n, (double*)a, (double*)g, (double*)ga));
  Py_RETURN_NONE;
}

// ---- triangular operators ------------------------------------------------------------------------
// a (batch, n, n) and b (batch, rows, cols) with n = rows (left) or cols (rightside: flags & 2)
bool triangular_dims(const Array& a, const Array& b, int flags, const char* op, std::int64_t& batch, int& rows,
                     int& cols) {
  int n;
  if (!square(a, op, batch, n)) return false;
  if (!check(b.view.ndim >= 2 && b.batch(2) == batch, op, "b must be (batch, rows, cols)")) return false;
  rows = int(b.dim(2));
  cols = int(b.dim(1));
  return check((flags & 2 ? cols : rows) == n, op, "b does not match the order of a");
}

// trsm(a, b, out, status, flags, threads, alpha) / trmm(a, b, out, flags, threads, alpha)
template <bool Solve>
PyObject* triangular_forward(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  const char* op = Solve ? "trsm" : "trmm";
  const int arrays = Solve ? 4 : 3;
  Args p(op, args, nargs, arrays, Solve ? 2 : 1, 2, 1, Solve);
  std::int64_t batch;
  int rows, cols;
  if (!p.ok) return nullptr;
  const int flags = int(p.ints[0]), threads = int(p.ints[1]);
  const double alpha = p.floats[0];
  if (!triangular_dims(p.arr[0], p.arr[1], flags, op, batch, rows, cols)) return nullptr;
  if (!same_items(p.arr[2], p.arr[1].items(), op, "out must match b")) return nullptr;
  if (Solve && !same_items(p.arr[3], batch, op, "status must have one entry per matrix")) return nullptr;
  void *a = p.arr[0].ptr(), *b = p.arr[1].ptr(), *out = p.arr[2].ptr();
  if (Solve) {
    auto* st = static_cast<int32_t*>(p.arr[3].ptr());
    DISPATCH(p.dtype, xl_trsm_f32(flags, alpha, batch, rows, cols, (float*)a, (float*)b, (float*)out, st, threads),
             xl_trsm_f64(flags, alpha, batch, rows, cols, (double*)a, (double*)b, (double*)out, st, threads));
  } else {
    DISPATCH(p.dtype, xl_trmm_f32(flags, alpha, batch, rows, cols, (float*)a, (float*)b, (float*)out, threads),
             xl_trmm_f64(flags, alpha, batch, rows, cols, (double*)a, (double*)b, (double*)out, threads));
  }
  Py_RETURN_NONE;
}

// trsm_vjp(a, x, g, ga, gb, flags, threads, alpha) / trmm_vjp(a, b, g, ga, gb, flags, threads, alpha)
template <bool Solve>
PyObject* triangular_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  const char* op = Solve ? "trsm_vjp" : "trmm_vjp";
  Args p(op, args, nargs, 5, 2, 2, 1, false);
  std::int64_t batch;
  int rows, cols;
  if (!p.ok) return nullptr;
  const int flags = int(p.ints[0]), threads = int(p.ints[1]);
  const double alpha = p.floats[0];
  if (!triangular_dims(p.arr[0], p.arr[1], flags, op, batch, rows, cols)) return nullptr;
  if (!same_items(p.arr[2], p.arr[1].items(), op, "g must match the right-hand side") ||
      !same_items(p.arr[3], p.arr[0].items(), op, "ga must match a") ||
      !same_items(p.arr[4], p.arr[1].items(), op, "gb must match the right-hand side"))
    return nullptr;
  void *a = p.arr[0].ptr(), *b = p.arr[1].ptr(), *g = p.arr[2].ptr(), *ga = p.arr[3].ptr(), *gb = p.arr[4].ptr();
  if (Solve) {
    DISPATCH(p.dtype,
             xl_trsm_vjp_f32(flags, alpha, batch, rows, cols, (float*)a, (float*)b, (float*)g, (float*)ga, (float*)gb, threads),
             xl_trsm_vjp_f64(flags, alpha, batch, rows, cols, (double*)a, (double*)b, (double*)g, (double*)ga, (double*)gb,
                             threads));
  } else {
    DISPATCH(p.dtype,
             xl_trmm_vjp_f32(flags, alpha, batch, rows, cols, (float*)a, (float*)b, (float*)g, (float*)ga, (float*)gb, threads),
             xl_trmm_vjp_f64(flags, alpha, batch, rows, cols, (double*)a, (double*)b, (double*)g, (double*)ga, (double*)gb,
                             threads));
  }
  Py_RETURN_NONE;
}

// ---- gemm, gemm2 ------------------------------------------------------------------------------------
// a holds op(a) m×k (stored k×m when flags & 1), b op(b) k×p (stored p×k when flags & 2); same batch
bool product_dims(const Array& a, const Array& b, int flags, const char* op, std::int64_t& batch, int& m, int& p, int& k) {
  if (!check(a.view.ndim >= 2 && b.view.ndim >= 2 && a.batch(2) == b.batch(2), op, "a and b must be (batch, rows, cols)"))
    return false;
  batch = a.batch(2);
  const bool ta = flags & 1, tb = flags & 2;
  m = int(ta ? a.dim(1) : a.dim(2));
  k = int(ta ? a.dim(2) : a.dim(1));
  p = int(tb ? b.dim(2) : b.dim(1));
  return check(int(tb ? b.dim(1) : b.dim(2)) == k, op, "the inner dimensions of op(a) and op(b) differ");
}

// gemm(a, b, c, out, flags, threads, alpha, beta), or without c (gemm2)
PyObject* gemm(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  const bool with_c = nargs == 8;
  Args p("gemm", args, nargs, with_c ? 4 : 3, 1, 2, 2, false);
  std::int64_t batch;
  int m, n, k;
  if (!p.ok) return nullptr;
  const int flags = int(p.ints[0]), threads = int(p.ints[1]);
  const double alpha = p.floats[0], beta = p.floats[1];
  if (!product_dims(p.arr[0], p.arr[1], flags, "gemm", batch, m, n, k)) return nullptr;
  const Array& out = p.arr[with_c ? 3 : 2];
  if (!same_items(out, batch * m * n, "gemm", "out must be (batch, m, p)") ||
      (with_c && !same_items(p.arr[2], batch * m * n, "gemm", "c must be (batch, m, p)")))
    return nullptr;
  void *a = p.arr[0].ptr(), *b = p.arr[1].ptr(), *c = with_c ? p.arr[2].ptr() : nullptr, *o = out.ptr();
  DISPATCH(p.dtype, xl_gemm_f32(flags, alpha, beta, batch, m, n, k, (float*)a, (float*)b, (float*)c, (float*)o, threads),
           xl_gemm_f64(flags, alpha, beta, batch, m, n, k, (double*)a, (double*)b, (double*)c, (double*)o, threads));
  Py_RETURN_NONE;
}

// gemm_vjp(a, b, g, ga, gb, gc, flags, threads, alpha, beta), or without gc (gemm2)
PyObject* gemm_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  const bool with_c = nargs == 10;
  Args p("gemm_vjp", args, nargs, with_c ? 6 : 5, with_c ? 3 : 2, 2, 2, false);
  std::int64_t batch;
  int m, n, k;
  if (!p.ok) return nullptr;
  const int flags = int(p.ints[0]), threads = int(p.ints[1]);
  const double alpha = p.floats[0], beta = p.floats[1];
  if (!product_dims(p.arr[0], p.arr[1], flags, "gemm_vjp", batch, m, n, k)) return nullptr;
  if (!same_items(p.arr[2], batch * m * n, "gemm_vjp", "g must be (batch, m, p)") ||
      !same_items(p.arr[3], p.arr[0].items(), "gemm_vjp", "ga must match a") ||
      !same_items(p.arr[4], p.arr[1].items(), "gemm_vjp", "gb must match b") ||
      (with_c && !same_items(p.arr[5], batch * m * n, "gemm_vjp", "gc must be (batch, m, p)")))
    return nullptr;
  void *a = p.arr[0].ptr(), *b = p.arr[1].ptr(), *g = p.arr[2].ptr(), *ga = p.arr[3].ptr(), *gb = p.arr[4].ptr(),
       *gc = with_c ? p.arr[5].ptr() : nullptr;
  DISPATCH(p.dtype,
           xl_gemm_vjp_f32(flags, alpha, beta, batch, m, n, k, (float*)a, (float*)b, (float*)g, (float*)ga, (float*)gb,
                           (float*)gc, threads),
           xl_gemm_vjp_f64(flags, alpha, beta, batch, m, n, k, (double*)a, (double*)b, (double*)g, (double*)ga,
                           (double*)gb, (double*)gc, threads));
  Py_RETURN_NONE;
}

// ---- syrk ------------------------------------------------------------------------------------------
// a (batch, rows, cols) and the (batch, n, n) output, n = rows (or cols with transpose)
bool syrk_dims(const Array& a, int transpose, const char* op, std::int64_t& batch, int& rows, int& cols, int& n) {
  if (!check(a.view.ndim >= 2, op, "a must be (batch, rows, cols)")) return false;
  batch = a.batch(2);
  rows = int(a.dim(2));
  cols = int(a.dim(1));
  n = transpose ? cols : rows;
  return true;
}

// syrk(a, out, transpose, threads, alpha)
PyObject* syrk(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("syrk", args, nargs, 2, 1, 2, 1, false);
  std::int64_t batch;
  int rows, cols, n;
  if (!p.ok) return nullptr;
  const int transpose = int(p.ints[0]), threads = int(p.ints[1]);
  const double alpha = p.floats[0];
  if (!syrk_dims(p.arr[0], transpose, "syrk", batch, rows, cols, n) ||
      !same_items(p.arr[1], batch * n * n, "syrk", "out must be (batch, n, n)"))
    return nullptr;
  void *a = p.arr[0].ptr(), *out = p.arr[1].ptr();
  DISPATCH(p.dtype, xl_syrk_f32(transpose, alpha, batch, rows, cols, (float*)a, (float*)out, threads),
           xl_syrk_f64(transpose, alpha, batch, rows, cols, (double*)a, (double*)out, threads));
  Py_RETURN_NONE;
}

// syrk_vjp(a, g, ga, transpose, threads, alpha)
PyObject* syrk_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("syrk_vjp", args, nargs, 3, 1, 2, 1, false);
  std::int64_t batch;
  int rows, cols, n;
  if (!p.ok) return nullptr;
  const int transpose = int(p.ints[0]), threads = int(p.ints[1]);
  const double alpha = p.floats[0];
  if (!syrk_dims(p.arr[0], transpose, "syrk_vjp", batch, rows, cols, n) ||
      !same_items(p.arr[1], batch * n * n, "syrk_vjp", "g must be (batch, n, n)") ||
      !same_items(p.arr[2], p.arr[0].items(), "syrk_vjp", "ga must match a"))
    return nullptr;
  void *a = p.arr[0].ptr(), *g = p.arr[1].ptr(), *ga = p.arr[2].ptr();
  DISPATCH(p.dtype, xl_syrk_vjp_f32(transpose, alpha, batch, rows, cols, (float*)a, (float*)g, (float*)ga, threads),
           xl_syrk_vjp_f64(transpose, alpha, batch, rows, cols, (double*)a, (double*)g, (double*)ga, threads));
  Py_RETURN_NONE;
}

// ---- syevd --------------------------------------------------------------------------------------------
// syevd(a, u, w, threads)
PyObject* syevd(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("syevd", args, nargs, 3, 2, 1, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "syevd", batch, n)) return nullptr;
  if (!same_items(p.arr[1], p.arr[0].items(), "syevd", "u must match a") ||
      !same_items(p.arr[2], batch * n, "syevd", "w must be (batch, n)"))
    return nullptr;
  const int threads = int(p.ints[0]);
  void *a = p.arr[0].ptr(), *u = p.arr[1].ptr(), *w = p.arr[2].ptr();
  DISPATCH(p.dtype, xl_syevd_f32(batch, n, (float*)a, (float*)u, (float*)w, threads),
           xl_syevd_f64(batch, n, (double*)a, (double*)u, (double*)w, threads));
  Py_RETURN_NONE;
}

// syevd_vjp(u, w, gu, gw, ga, threads)
PyObject* syevd_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("syevd_vjp", args, nargs, 5, 1, 1, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "syevd_vjp", batch, n)) return nullptr;
  const auto items = p.arr[0].items();
  if (!same_items(p.arr[1], batch * n, "syevd_vjp", "w must be (batch, n)") ||
      !same_items(p.arr[2], items, "syevd_vjp", "gu must match u") ||
      !same_items(p.arr[3], batch * n, "syevd_vjp", "gw must match w") ||
      !same_items(p.arr[4], items, "syevd_vjp", "ga must match u"))
    return nullptr;
  const int threads = int(p.ints[0]);
  void *u = p.arr[0].ptr(), *w = p.arr[1].ptr(), *gu = p.arr[2].ptr(), *gw = p.arr[3].ptr(), *ga = p.arr[4].ptr();
  DISPATCH(p.dtype, xl_syevd_vjp_f32(batch, n, (float*)u, (float*)w, (float*)gu, (float*)gw, (float*)ga, threads),
           xl_syevd_vjp_f64(batch, n, (double*)u, (double*)w, (double*)gu, (double*)gw, (double*)ga, threads));
  Py_RETURN_NONE;
}

// ---- inverse, det, slogdet -----------------------------------------------------------------------------
// inverse(a, out, status, threads)
PyObject* inverse(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("inverse", args, nargs, 3, 2, 1, 0, true);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "inverse", batch, n)) return nullptr;
  if (!same_items(p.arr[1], p.arr[0].items(), "inverse", "out must match a") ||
      !same_items(p.arr[2], batch, "inverse", "status must have one entry per matrix"))
    return nullptr;
  const int threads = int(p.ints[0]);
  void *a = p.arr[0].ptr(), *out = p.arr[1].ptr();
  auto* st = static_cast<int32_t*>(p.arr[2].ptr());
  DISPATCH(p.dtype, xl_inverse_f32(batch, n, (float*)a, (float*)out, st, threads),
           xl_inverse_f64(batch, n, (double*)a, (double*)out, st, threads));
  Py_RETURN_NONE;
}

// inverse_vjp(x, g, ga, threads)
PyObject* inverse_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("inverse_vjp", args, nargs, 3, 1, 1, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "inverse_vjp", batch, n)) return nullptr;
  const auto items = p.arr[0].items();
  if (!same_items(p.arr[1], items, "inverse_vjp", "g must match x") ||
      !same_items(p.arr[2], items, "inverse_vjp", "ga must match x"))
    return nullptr;
  const int threads = int(p.ints[0]);
  void *x = p.arr[0].ptr(), *g = p.arr[1].ptr(), *ga = p.arr[2].ptr();
  DISPATCH(p.dtype, xl_inverse_vjp_f32(batch, n, (float*)x, (float*)g, (float*)ga, threads),
           xl_inverse_vjp_f64(batch, n, (double*)x, (double*)g, (double*)ga, threads));
  Py_RETURN_NONE;
}

// det(a, out, threads)
PyObject* det(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("det", args, nargs, 2, 1, 1, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "det", batch, n)) return nullptr;
  if (!same_items(p.arr[1], batch, "det", "out must have one entry per matrix")) return nullptr;
  const int threads = int(p.ints[0]);
  void *a = p.arr[0].ptr(), *out = p.arr[1].ptr();
  DISPATCH(p.dtype, xl_det_f32(batch, n, (float*)a, (float*)out, threads),
           xl_det_f64(batch, n, (double*)a, (double*)out, threads));
  Py_RETURN_NONE;
}

// slogdet(a, sign, logabsdet, threads)
PyObject* slogdet(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("slogdet", args, nargs, 3, 2, 1, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], "slogdet", batch, n)) return nullptr;
  if (!same_items(p.arr[1], batch, "slogdet", "sign must have one entry per matrix") ||
      !same_items(p.arr[2], batch, "slogdet", "logabsdet must have one entry per matrix"))
    return nullptr;
  const int threads = int(p.ints[0]);
  void *a = p.arr[0].ptr(), *sign = p.arr[1].ptr(), *logabsdet = p.arr[2].ptr();
  DISPATCH(p.dtype, xl_slogdet_f32(batch, n, (float*)a, (float*)sign, (float*)logabsdet, threads),
           xl_slogdet_f64(batch, n, (double*)a, (double*)sign, (double*)logabsdet, threads));
  Py_RETURN_NONE;
}

// det_vjp(a, g, ga, threads) / slogdet_vjp(a, g, ga, threads): g one cotangent per matrix
template <bool Log>
PyObject* determinant_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  const char* op = Log ? "slogdet_vjp" : "det_vjp";
  Args p(op, args, nargs, 3, 1, 1, 0, false);
  std::int64_t batch;
  int n;
  if (!p.ok || !square(p.arr[0], op, batch, n)) return nullptr;
  if (!same_items(p.arr[1], batch, op, "g must have one entry per matrix") ||
      !same_items(p.arr[2], p.arr[0].items(), op, "ga must match a"))
    return nullptr;
  const int threads = int(p.ints[0]);
  void *a = p.arr[0].ptr(), *g = p.arr[1].ptr(), *ga = p.arr[2].ptr();
  if (Log) {
    DISPATCH(p.dtype, xl_slogdet_vjp_f32(batch, n, (float*)a, (float*)g, (float*)ga, threads),
             xl_slogdet_vjp_f64(batch, n, (double*)a, (double*)g, (double*)ga, threads));
  } else {
    DISPATCH(p.dtype, xl_det_vjp_f32(batch, n, (float*)a, (float*)g, (float*)ga, threads),
             xl_det_vjp_f64(batch, n, (double*)a, (double*)g, (double*)ga, threads));
  }
  Py_RETURN_NONE;
}

// ---- gelqf ----------------------------------------------------------------------------------------------
// (batch, m, n) with m <= n; sets batch, m and n
bool wide(const Array& a, const char* op, std::int64_t& batch, int& m, int& n) {
  if (!check(a.view.ndim >= 2 && a.dim(2) <= a.dim(1), op, "expected a batch of m x n matrices with m <= n")) return false;
  batch = a.batch(2);
  m = int(a.dim(2));
  n = int(a.dim(1));
  return true;
}

// gelqf(a, q, l, status, threads)
PyObject* gelqf(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("gelqf", args, nargs, 4, 3, 1, 0, true);
  std::int64_t batch;
  int m, n;
  if (!p.ok || !wide(p.arr[0], "gelqf", batch, m, n)) return nullptr;
  if (!same_items(p.arr[1], p.arr[0].items(), "gelqf", "q must match a") ||
      !same_items(p.arr[2], batch * m * m, "gelqf", "l must be (batch, m, m)") ||
      !same_items(p.arr[3], batch, "gelqf", "status must have one entry per matrix"))
    return nullptr;
  const int threads = int(p.ints[0]);
  void *a = p.arr[0].ptr(), *q = p.arr[1].ptr(), *l = p.arr[2].ptr();
  auto* st = static_cast<int32_t*>(p.arr[3].ptr());
  DISPATCH(p.dtype, xl_gelqf_f32(batch, m, n, (float*)a, (float*)q, (float*)l, st, threads),
           xl_gelqf_f64(batch, m, n, (double*)a, (double*)q, (double*)l, st, threads));
  Py_RETURN_NONE;
}

// gelqf_vjp(q, l, gq, gl, ga, threads)
PyObject* gelqf_vjp(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Args p("gelqf_vjp", args, nargs, 5, 1, 1, 0, false);
  std::int64_t batch;
  int m, n;
  if (!p.ok || !wide(p.arr[0], "gelqf_vjp", batch, m, n)) return nullptr;
  const auto items = p.arr[0].items();
  if (!same_items(p.arr[1], batch * m * m, "gelqf_vjp", "l must be (batch, m, m)") ||
      !same_items(p.arr[2], items, "gelqf_vjp", "gq must match q") ||
      !same_items(p.arr[3], batch * m * m, "gelqf_vjp", "gl must match l") ||
      !same_items(p.arr[4], items, "gelqf_vjp", "ga must match q"))
    return nullptr;
  const int threads = int(p.ints[0]);
  void *q = p.arr[0].ptr(), *l = p.arr[1].ptr(), *gq = p.arr[2].ptr(), *gl = p.arr[3].ptr(), *ga = p.arr[4].ptr();
  DISPATCH(p.dtype, xl_gelqf_vjp_f32(batch, m, n, (float*)q, (float*)l, (float*)gq, (float*)gl, (float*)ga, threads),
           xl_gelqf_vjp_f64(batch, m, n, (double*)q, (double*)l, (double*)gq, (double*)gl, (double*)ga, threads));
  Py_RETURN_NONE;
}

// ---- set-up ------------------------------------------------------------------------------------------
// set_routine(name, capsule): a BLAS/LAPACK function pointer from a PyCapsule (any capsule name)
PyObject* set_routine(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyCapsule_CheckExact(args[1])) {
    PyErr_SetString(PyExc_TypeError, "set_routine(name: str, capsule)");
    return nullptr;
  }
  const char* name = PyUnicode_AsUTF8(args[0]);
  void* fn = PyCapsule_GetPointer(args[1], PyCapsule_GetName(args[1]));
  if (!name || !fn) return nullptr;
  if (xl_set_routine(name, fn) != 0) {
    PyErr_Format(PyExc_ValueError, "set_routine: %s is not a routine of the kernel layer", name);
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* ready(PyObject*, PyObject*) { return PyBool_FromLong(xl_ready()); }

PyMethodDef methods[] = {
    {"set_routine", (PyCFunction)(void (*)(void))set_routine, METH_FASTCALL, "set_routine(name, capsule)"},
    {"ready", ready, METH_NOARGS, "Whether every BLAS/LAPACK routine is set."},
    {"potrf", (PyCFunction)(void (*)(void))potrf, METH_FASTCALL, "potrf(a, out, status, lower, threads)"},
    {"potrf_vjp", (PyCFunction)(void (*)(void))potrf_vjp, METH_FASTCALL, "potrf_vjp(f, g, ga, lower, threads)"},
    {"potri", (PyCFunction)(void (*)(void))potri, METH_FASTCALL, "potri(f, out, status, lower, threads)"},
    {"potri_vjp", (PyCFunction)(void (*)(void))potri_vjp, METH_FASTCALL, "potri_vjp(f, x, g, gf, lower, threads)"},
    {"potrs", (PyCFunction)(void (*)(void))potrs, METH_FASTCALL, "potrs(f, b, out, status, lower, threads)"},
    {"potrs_vjp", (PyCFunction)(void (*)(void))potrs_vjp, METH_FASTCALL, "potrs_vjp(f, b, x, g, gf, gb, lower, threads)"},
    {"sumlogdiag", (PyCFunction)(void (*)(void))sumlogdiag, METH_FASTCALL, "sumlogdiag(a, out)"},
    {"sumlogdiag_vjp", (PyCFunction)(void (*)(void))sumlogdiag_vjp, METH_FASTCALL, "sumlogdiag_vjp(a, g, ga)"},
    {"trsm", (PyCFunction)(void (*)(void))triangular_forward<true>, METH_FASTCALL,
     "trsm(a, b, out, status, flags, threads, alpha)"},
    {"trsm_vjp", (PyCFunction)(void (*)(void))triangular_vjp<true>, METH_FASTCALL,
     "trsm_vjp(a, x, g, ga, gb, flags, threads, alpha)"},
    {"trmm", (PyCFunction)(void (*)(void))triangular_forward<false>, METH_FASTCALL, "trmm(a, b, out, flags, threads, alpha)"},
    {"trmm_vjp", (PyCFunction)(void (*)(void))triangular_vjp<false>, METH_FASTCALL,
     "trmm_vjp(a, b, g, ga, gb, flags, threads, alpha)"},
    {"gemm", (PyCFunction)(void (*)(void))gemm, METH_FASTCALL, "gemm(a, b, [c,] out, flags, threads, alpha, beta)"},
    {"gemm_vjp", (PyCFunction)(void (*)(void))gemm_vjp, METH_FASTCALL,
     "gemm_vjp(a, b, g, ga, gb, [gc,] flags, threads, alpha, beta)"},
    {"syrk", (PyCFunction)(void (*)(void))syrk, METH_FASTCALL, "syrk(a, out, transpose, threads, alpha)"},
    {"syrk_vjp", (PyCFunction)(void (*)(void))syrk_vjp, METH_FASTCALL, "syrk_vjp(a, g, ga, transpose, threads, alpha)"},
    {"syevd", (PyCFunction)(void (*)(void))syevd, METH_FASTCALL, "syevd(a, u, w, threads)"},
    {"syevd_vjp", (PyCFunction)(void (*)(void))syevd_vjp, METH_FASTCALL, "syevd_vjp(u, w, gu, gw, ga, threads)"},
    {"inverse", (PyCFunction)(void (*)(void))inverse, METH_FASTCALL, "inverse(a, out, status, threads)"},
    {"inverse_vjp", (PyCFunction)(void (*)(void))inverse_vjp, METH_FASTCALL, "inverse_vjp(x, g, ga, threads)"},
    {"det", (PyCFunction)(void (*)(void))det, METH_FASTCALL, "det(a, out, threads)"},
    {"det_vjp", (PyCFunction)(void (*)(void))determinant_vjp<false>, METH_FASTCALL, "det_vjp(a, g, ga, threads)"},
    {"slogdet", (PyCFunction)(void (*)(void))slogdet, METH_FASTCALL, "slogdet(a, sign, logabsdet, threads)"},
    {"slogdet_vjp", (PyCFunction)(void (*)(void))determinant_vjp<true>, METH_FASTCALL,
     "slogdet_vjp(a, g, ga, threads): g the cotangent of logabsdet"},
    {"gelqf", (PyCFunction)(void (*)(void))gelqf, METH_FASTCALL, "gelqf(a, q, l, status, threads)"},
    {"gelqf_vjp", (PyCFunction)(void (*)(void))gelqf_vjp, METH_FASTCALL, "gelqf_vjp(q, l, gq, gl, ga, threads)"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "xlinalg's CPU kernel layer (C ABI: xlinalg.h).", -1, methods,
                      nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
