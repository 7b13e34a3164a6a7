// xlinalg.lapack._kernels: the C ABI (xlinalg.h) for Python, on any object with the buffer protocol.
//
// One function per entry of the table (abi.hpp), all of them ``call_entry`` with the entry's row
// as ``self``: arrays first (inputs, outputs, the int32 status; C-contiguous, batch axes first,
// one float dtype; None where the row allows it), then the integer and float parameters. The
// table's check runs before the entry, so no call reads or writes out of bounds.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "abi.hpp"
#include "xlinalg.h"

namespace {

using xl::abi::Entry;
using xl::abi::kEntries;
using xl::abi::kEntryCount;

struct Buffer {
  Py_buffer view{};
  bool held = false;
  ~Buffer() {
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
};

PyObject* fail(PyObject* type, const Entry& e, const std::string& what) {
  PyErr_Format(type, "%s: %s", e.name, what.c_str());
  return nullptr;
}

PyObject* call_entry(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  static_assert(sizeof(Py_ssize_t) == sizeof(std::int64_t), "buffer shapes are read as int64");
  const Entry& e = *static_cast<const Entry*>(PyCapsule_GetPointer(self, nullptr));
  const int count = e.arrays + e.ints + e.floats;
  if (nargs != count)
    return fail(PyExc_TypeError, e, "expected " + std::to_string(count) + " arguments, got " + std::to_string(nargs) +
                                        ": " + e.signature);
  Buffer buffers[xl::abi::kMaxArrays];
  xl::abi::Call c;
  char dtype = '?';
  for (int i = 0; i < e.arrays; ++i) {
    if (args[i] == Py_None && (e.optional >> i & 1u)) continue;  // absent, as the row allows
    const bool writable = i >= e.arrays - e.outputs;
    Buffer& b = buffers[i];
    if (PyObject_GetBuffer(args[i], &b.view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0)) != 0) {
      PyErr_Clear();
      return fail(PyExc_TypeError, e, xl::abi::arg_name(e.signature, i) + " must be a C-contiguous" +
                                          (writable ? " writable" : "") + " array");
    }
    b.held = true;
    if (e.status && i == e.arrays - 1) {
      if (b.kind() != 'i') return fail(PyExc_TypeError, e, "the status array must be int32");
    } else {
      if (dtype == '?') dtype = b.kind();
      if (b.kind() != dtype || (dtype != 'f' && dtype != 'd'))
        return fail(PyExc_TypeError, e, "arrays must all be float32 or all float64");
    }
    c.arr[i] = {reinterpret_cast<const std::int64_t*>(b.view.shape), b.view.ndim, b.view.len / b.view.itemsize, b.view.buf, true};
  }
  for (int i = 0; i < e.ints; ++i) {
    c.ints[i] = PyLong_AsLongLong(args[e.arrays + i]);
    if (c.ints[i] == -1 && PyErr_Occurred()) return nullptr;
  }
  for (int i = 0; i < e.floats; ++i) {
    c.floats[i] = PyFloat_AsDouble(args[e.arrays + e.ints + i]);
    if (c.floats[i] == -1.0 && PyErr_Occurred()) return nullptr;
  }
  const std::string why = xl::abi::check(e, c);
  if (!why.empty()) return fail(PyExc_ValueError, e, why);
  Py_BEGIN_ALLOW_THREADS;
  xl::abi::run(e, c, dtype == 'f');
  Py_END_ALLOW_THREADS;
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

PyObject* isa(PyObject*, PyObject*) { return PyUnicode_FromString(xl_isa()); }

PyMethodDef methods[] = {
    {"set_routine", (PyCFunction)(void (*)(void))set_routine, METH_FASTCALL, "set_routine(name, capsule)"},
    {"ready", ready, METH_NOARGS, "Whether every BLAS/LAPACK routine is set."},
    {"isa", isa, METH_NOARGS, "The instruction set of the kernels with two builds: 'avx2+fma' or 'baseline'."},
    {nullptr, nullptr, 0, nullptr}};

PyMethodDef entry_methods[kEntryCount];  // one function per entry, its row (a capsule) as ``self``

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "xlinalg's CPU kernel layer (C ABI: xlinalg.h).", -1, methods,
                      nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__kernels(void) {
  PyObject* m = PyModule_Create(&module);
  if (!m) return nullptr;
  PyObject* name = PyModule_GetNameObject(m);
  for (int i = 0; i < kEntryCount && name; ++i) {
    const Entry& e = kEntries[i];
    entry_methods[i] = {e.name, (PyCFunction)(void (*)(void))call_entry, METH_FASTCALL, e.signature};
    PyObject* row = PyCapsule_New(const_cast<Entry*>(&e), nullptr, nullptr);
    PyObject* fn = row ? PyCFunction_NewEx(&entry_methods[i], row, name) : nullptr;
    Py_XDECREF(row);
    if (!fn || PyModule_AddObject(m, e.name, fn) != 0) {
      Py_XDECREF(fn);
      Py_DECREF(name);
      Py_DECREF(m);
      return nullptr;
    }
  }
  Py_XDECREF(name);
  if (PyErr_Occurred()) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
