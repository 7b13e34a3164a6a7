// Eager PyTorch calls on the CPU layer as one C++ autograd node (xlinalg/lapack/torch_node.py
// builds this file with entries.cpp against the installed torch and loads it as a Python
// module).
//
// Batches of enough matrices run in parts on torch's intra-op threads (at::parallel_for, with
// the OpenMP runtime torch loaded): threads of our own beside torch's spinning workers would
// compete with them for the cores.
//
// ``apply`` runs a forward entry of the table (abi.hpp) on CPU tensors and, when autograd records
// the call (grad mode on, an input requiring grad), gives its outputs one ``Node`` whose backward
// runs the VJP entry: no Python runs in the backward pass. Every array an entry writes is
// allocated here from the row's shapes; inputs and cotangents are read in place when contiguous.
// The node saves the inputs and outputs as ``SavedVariable``s (saved-tensor hooks and the version
// check apply, as for torch's own nodes) and the forward's residuals as plain tensors. A backward
// that is itself recorded (``create_graph=True``: double backward) calls the Python fallback
// instead, which runs the composed, differentiable rules on the saved tensors. A call's plan
// (CallPlan) is remembered under its signature, and a repeated call runs from here with no
// Python (``call``; see "repeated calls" below).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>
#include <c10/core/impl/TorchDispatchModeTLS.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "abi.hpp"
#include "blas.hpp"

namespace py = pybind11;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

namespace {

using xl::abi::Call;
using xl::abi::Entry;
using xl::abi::Shape;

// From this size on the node allocates an array itself, 2 MiB-aligned, so that all of it can lie
// on the transparent huge pages every entry asks for (pages.hpp), as NumPy's large arrays do.
// glibc maps allocations this large afresh on every call, and memory the process has not touched
// costs a page fault per 4 KiB page: the 2048 × 2048 float64 gradient of sumlogdiag took 21 ms
// instead of 3. Smaller arrays come from glibc's heap, already touched, and torch's allocator
// serves them.
constexpr std::int64_t kHugePagesFrom = std::int64_t(1) << 25;

// A tensor of ``shape`` for an entry to write (uninitialized).
at::Tensor allocate(at::IntArrayRef shape, const at::TensorOptions& options) {
#if defined(__linux__)
  const std::int64_t bytes = c10::multiply_integers(shape) * std::int64_t(options.dtype().itemsize());
  if (bytes < kHugePagesFrom) return at::empty(shape, options);
  void* data = nullptr;
  if (posix_memalign(&data, xl::kHugePage, std::size_t(bytes)) != 0) return at::empty(shape, options);  // its error
  // a storage like at::empty's (resizable through torch's CPU allocator) that frees with ours
  c10::Storage storage(c10::Storage::use_byte_size_t(), std::size_t(bytes),
                       c10::DataPtr(data, data, [](void* p) { std::free(p); }, at::Device(at::kCPU)),
                       c10::GetAllocator(at::kCPU), /*resizable=*/true);
  return at::empty({0}, options).set_(std::move(storage), 0, shape);
#else
  return at::empty(shape, options);
#endif
}

// The Python fallback for recorded backward passes: fallback(context, inputs, outputs, cotangents)
// -> one gradient (or None) per input; and ``single_blas()``, which puts the BLAS on one thread
// (a no-op when it is), run before a reverse whose forward chose one thread while the process
// has more. Set once; never freed (they may be needed until exit).
PyObject* g_fallback = nullptr;
PyObject* g_single_blas = nullptr;

// A reference to a Python object that a node may drop on an autograd thread without the GIL.
struct PyRef {
  PyObject* p = nullptr;
  explicit PyRef(PyObject* o) : p(o) { Py_XINCREF(p); }
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  ~PyRef() {
    if (p != nullptr && Py_IsInitialized()) {
      py::gil_scoped_acquire gil;
      Py_DECREF(p);
    }
  }
};

[[noreturn]] void fail(const Entry& e, const std::string& what) {
  throw std::invalid_argument(std::string("xlinalg ") + e.name + ": " + what);
}

const Entry& entry(int row) {
  if (row < 0 || row >= xl::abi::kEntryCount) throw std::out_of_range("xlinalg: no entry row " + std::to_string(row));
  return xl::abi::kEntries[row];
}

// The tensor an entry reads: ``x`` itself when C-contiguous, else a contiguous copy.
at::Tensor readable(const at::Tensor& x) { return x.is_contiguous() ? x : x.contiguous(); }

void set_array(Call& c, int i, const at::Tensor& x) {
  c.arr[i] = {x.sizes().data(), int(x.dim()), x.numel(), x.data_ptr(), true};
}

// The shape of array ``i`` of a call whose inputs and dimensions are read (abi::Shape).
std::vector<std::int64_t> shape_of(const Entry& e, const Call& c, int i) {
  const auto& a = c.arr[0];
  std::vector<std::int64_t> s(a.shape, a.shape + (a.ndim - 2));  // the batch axes
  switch (e.shapes[i]) {
    case Shape::kLikeA: return {a.shape, a.shape + a.ndim};
    case Shape::kLikeB: return {c.arr[1].shape, c.arr[1].shape + c.arr[1].ndim};
    case Shape::kOne: break;
    case Shape::kVector: s.push_back(c.n); break;
    case Shape::kSquare: s.insert(s.end(), {c.n, c.n}); break;
    case Shape::kSquareM: s.insert(s.end(), {c.m, c.m}); break;
    case Shape::kProduct: s.insert(s.end(), {c.m, c.p}); break;
    case Shape::kRead: fail(e, xl::abi::arg_name(e.signature, i) + " is written but its size is read");
  }
  return s;
}

// Below this many elements in all a call runs on the calling thread (torch's own grain size).
constexpr std::int64_t kSplitMinElements = 32768;

// The team of one matrix (xl::Team): ``parts`` bodies on torch's intra-op threads.
void run_on_torch_threads(int parts, void (*body)(void*, int), void* arg) {
  at::parallel_for(0, parts, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) body(arg, int(i));
  });
}

// Runs a checked call on torch's intra-op threads (at::parallel_for: the pool torch's own
// operators use, so no second pool competes with it for the cores): its batch split across them
// when it has several matrices and enough elements, each part running the entry on one thread;
// else whole, its large level-3 BLAS calls split across them (the entry's team, blas.hpp).
void run_split(const Entry& e, const Call& c, bool f32) {
  const std::int64_t batch = c.batch;
  const int threads = at::get_num_threads();
  std::int64_t per_entry = 0;  // elements of one batch entry, over every array
  for (int i = 0; i < e.arrays; ++i)
    if (c.arr[i].present) per_entry += c.arr[i].items / std::max<std::int64_t>(batch, 1);
  if (batch < 2 || threads < 2 || per_entry * batch < kSplitMinElements) {
    const xl::TeamScope team({threads, threads > 1 ? run_on_torch_threads : nullptr});
    xl::abi::run(e, c, f32);
    return;
  }
  const std::int64_t grain = std::max<std::int64_t>(1, kSplitMinElements / std::max<std::int64_t>(per_entry, 1) / 2);
  at::parallel_for(0, batch, grain, [&](std::int64_t begin, std::int64_t end) {
    // one BLAS thread for the part too: MKL asked for more inside a worker of torch's pool fails
    // (its ?getrf of order 150 on two threads: "Parameter 6 was incorrect on entry to DLASWP",
    // without end, on an AMD EPYC)
    const xl::SmallCallOnOneThread one_blas_thread(0);
    xl::abi::Call part = c;
    part.batch = end - begin;
    for (int i = 0; i < e.arrays; ++i) {
      if (!c.arr[i].present) continue;
      const std::int64_t stride = c.arr[i].items / batch;
      const std::int64_t bytes = (e.status && i == e.arrays - 1) ? 4 : (f32 ? 4 : 8);
      part.arr[i].items = stride * part.batch;
      part.arr[i].data = static_cast<char*>(c.arr[i].data) + begin * stride * bytes;
    }
    if (e.threads) part.ints[e.ints - 1] = 1;
    xl::abi::run(e, part, f32);
  });
}

// Runs row ``e`` on ``operands`` (its inputs; undefined: absent), allocating the arrays it
// writes, and returns them (the status last where the entry has one). An optional output is
// written only where its bit in ``wanted`` is set (bit k: output k).
std::vector<at::Tensor> run(const Entry& e, const std::vector<at::Tensor>& operands, const std::vector<std::int64_t>& ints,
                            const std::vector<double>& floats, std::uint32_t wanted = ~0u) {
  const int inputs = e.arrays - e.outputs;
  if (int(operands.size()) != inputs || int(ints.size()) != e.ints || int(floats.size()) != e.floats)
    fail(e, std::string("expected the operands and parameters of ") + e.signature);
  Call c;
  std::vector<at::Tensor> held(e.arrays);
  at::ScalarType dtype = at::kDouble;
  bool typed = false;
  for (int i = 0; i < inputs; ++i) {
    if (!operands[i].defined()) continue;
    const at::Tensor& x = operands[i];
    if (!x.device().is_cpu() || (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble))
      fail(e, xl::abi::arg_name(e.signature, i) + " must be a float32 or float64 CPU tensor");
    if (typed && x.scalar_type() != dtype) fail(e, "the operands must share one dtype");
    dtype = x.scalar_type(), typed = true;
    held[i] = readable(x);
    set_array(c, i, held[i]);
  }
  for (int i = 0; i < e.ints; ++i) c.ints[i] = ints[i];
  for (int i = 0; i < e.floats; ++i) c.floats[i] = floats[i];
  std::string why = xl::abi::read_dims(e, c);
  if (!why.empty()) fail(e, why);
  const auto options = held[0].options();
  for (int i = inputs; i < e.arrays; ++i) {
    const bool status = e.status && i == e.arrays - 1;
    if (!status && (e.optional >> i & 1u) && !(wanted >> (i - inputs) & 1u)) continue;
    held[i] = allocate(shape_of(e, c, i), status ? options.dtype(at::kInt) : options);
    set_array(c, i, held[i]);
  }
  why = xl::abi::check(e, c);
  if (!why.empty()) fail(e, why);
  if (PyGILState_Check()) {  // a forward from Python; a backward pass runs without the GIL
    py::gil_scoped_release nogil;
    run_split(e, c, dtype == at::kFloat);
  } else {
    run_split(e, c, dtype == at::kFloat);
  }
  return {held.begin() + inputs, held.end()};
}

// An input whose cotangent is ``factor`` times the cotangent of output ``output``: the node hands
// that cotangent back (times the factor unless it is 1) instead of having the VJP entry write it.
struct ScaledCotangent {
  int input, output;
  double factor;
};

// What a recorded call keeps for its backward pass.
struct Reverse {
  int row;                         // the VJP entry
  std::vector<int> operands;       // its operands: index into inputs, forward outputs, cotangents; -1 absent
  std::vector<std::int64_t> ints;  // its parameters
  std::vector<double> floats;
  std::vector<ScaledCotangent> scaled;
  bool single_blas;  // call g_single_blas first
};

struct XlinalgBackward : torch::autograd::Node {
  std::string op_name;
  std::shared_ptr<const Reverse> reverse;
  std::vector<SavedVariable> inputs, outputs;
  std::vector<at::Tensor> residuals;  // forward outputs past the user's: not saved variables
  std::vector<std::vector<std::int64_t>> output_shapes;
  at::TensorOptions options;
  PyRef context;

  XlinalgBackward(std::string name, std::shared_ptr<const Reverse> r, PyObject* ctx)
      : op_name(std::move(name)), reverse(std::move(r)), context(ctx) {}

  std::string name() const override { return op_name; }

  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& v : inputs) v.reset_data();
    for (auto& v : outputs) v.reset_data();
    residuals.clear();
  }

  variable_list apply(variable_list&& grads) override {
    const Reverse& rev = *reverse;
    variable_list xs, ys;
    for (auto& v : inputs) xs.push_back(v.unpack());
    for (auto& v : outputs) ys.push_back(v.unpack(getptr()));
    if (at::GradMode::is_enabled()) return recorded(xs, ys, grads);
    if (rev.single_blas && g_single_blas != nullptr) {
      py::gil_scoped_acquire gil;
      py::reinterpret_borrow<py::object>(g_single_blas)();
    }
    const int n_in = int(xs.size()), n_out = int(ys.size()) + int(residuals.size());
    std::vector<at::Tensor> operands;
    for (int k : rev.operands) {
      if (k < 0) {
        operands.emplace_back();
      } else if (k < n_in) {
        operands.push_back(xs[k]);
      } else if (k < n_in + int(ys.size())) {
        operands.push_back(ys[k - n_in]);
      } else if (k < n_in + n_out) {
        operands.push_back(residuals[k - n_in - ys.size()]);
      } else {
        const int j = k - n_in - n_out;
        const at::Tensor& g = grads[j];
        operands.push_back(g.defined() ? g : at::zeros(output_shapes[j], options));
      }
    }
    std::uint32_t wanted = (1u << n_in) - 1;  // the inputs' cotangents, less those formed here
    for (const auto& s : rev.scaled) wanted &= ~(1u << s.input);
    auto written = run(entry(rev.row), operands, rev.ints, rev.floats, wanted);
    variable_list out(n_in);
    for (int i = 0; i < n_in && i < int(written.size()); ++i)
      if (task_should_compute_output(i)) out[i] = std::move(written[i]);
    for (const auto& s : rev.scaled) {
      const at::Tensor& g = grads[s.output];
      if (g.defined() && task_should_compute_output(s.input)) out[s.input] = s.factor == 1.0 ? g : g * s.factor;
    }
    return out;
  }

  // create_graph: the Python fallback's differentiable gradients.
  variable_list recorded(const variable_list& xs, const variable_list& ys, const variable_list& grads) {
    py::gil_scoped_acquire gil;
    if (g_fallback == nullptr) throw std::runtime_error("xlinalg: no fallback for a recorded backward pass");
    py::list gs;
    for (const auto& g : grads) gs.append(g.defined() ? py::cast(g) : py::none());
    py::object result = py::reinterpret_borrow<py::object>(g_fallback)(
        py::reinterpret_borrow<py::object>(context.p), py::cast(xs), py::cast(ys), gs);
    variable_list out;
    for (auto item : result) {
      const bool wanted = task_should_compute_output(out.size()) && !item.is_none();
      out.push_back(wanted ? item.cast<at::Tensor>() : at::Tensor());
    }
    return out;
  }
};

// One call's entries (Python's ``torch_node.Plan`` with the call's parameters): the forward
// entry ``fwd_row`` on ``fwd_operands`` (indices of the inputs, -1: absent), ``n_user`` outputs
// for the user, the reverse a recorded call keeps, and ``context`` for its Python fallback.
struct CallPlan {
  std::string name;
  int fwd_row;
  std::vector<int> fwd_operands;
  int n_user;
  std::vector<std::int64_t> ints;
  std::vector<double> floats;
  std::shared_ptr<const Reverse> reverse;
  py::object context;
  bool several_outputs;  // the user gets a tuple
};

// The plan's forward entry on ``inputs``, returning the user's outputs, and after them the
// status where some batch entry failed (a non-zero status). Recorded (grad mode on and an input
// requiring grad), the outputs get an ``XlinalgBackward`` node.
std::vector<at::Tensor> run_plan(const CallPlan& p, const std::vector<at::Tensor>& inputs) {
  const Entry& e = entry(p.fwd_row);
  std::vector<at::Tensor> operands;
  for (int k : p.fwd_operands) operands.push_back(k < 0 ? at::Tensor() : inputs.at(k));
  std::vector<at::Tensor> written;
  {
    at::NoGradGuard no_grad;  // the copies and allocations of the call are not part of the graph
    written = run(e, operands, p.ints, p.floats);
  }
  const int n_status = e.status ? 1 : 0;
  const int n_written = int(written.size()) - n_status;
  const int n_user = p.n_user;
  if (n_user < 1 || n_user > n_written) fail(e, "more outputs requested than the entry writes");
  std::vector<at::Tensor> result(written.begin(), written.begin() + n_user);
  if (n_status) {
    const at::Tensor& status = written.back();
    const auto* info = status.data_ptr<std::int32_t>();
    for (std::int64_t i = 0, count = status.numel(); i < count; ++i) {
      if (info[i] != 0) {
        result.push_back(status);
        break;
      }
    }
  }
  if (!torch::autograd::compute_requires_grad(inputs)) return result;

  auto node = c10::make_intrusive<XlinalgBackward>(p.name, p.reverse, p.context.ptr());
  node->set_next_edges(torch::autograd::collect_next_edges(inputs));
  node->options = result[0].options();
  for (int i = 0; i < n_user; ++i) {
    torch::autograd::set_history(result[i], node);
    node->output_shapes.push_back(result[i].sizes().vec());
  }
  for (const auto& x : inputs) node->inputs.emplace_back(x, false);
  for (int i = 0; i < n_user; ++i) node->outputs.emplace_back(result[i], true);
  node->residuals.assign(written.begin() + n_user, written.begin() + n_written);
  return result;
}

// ---- repeated calls -------------------------------------------------------------------------
// An eager program repeats few signatures. Python's path of a call (validation, the plan, the
// parameters) ends in one CallPlan; ``remember`` keeps it under the call's signature, and
// ``call`` runs a call with a remembered signature from here, with no Python. The signature:
// the operator, torch's thread count, whether autograd records the call, each input's dtype and
// shape, and the keyword parameters (names, types and values). Only plain calls have one: every
// input a tensor of torch's own class, on the CPU, strided, in no functorch wrapper and not
// dispatched to Python (fake or subclass tensors), no dispatch mode active, and every keyword
// parameter a bool, int or float.
constexpr std::size_t kMaxRemembered = 1024;

bool signature(std::int64_t op, PyObject* arrays, PyObject* kwargs, std::string& key, std::vector<at::Tensor>& inputs) {
  if (c10::impl::TorchDispatchModeTLS::any_modes_set()) return false;
  const auto put = [&key](const void* p, std::size_t n) { key.append(static_cast<const char*>(p), n); };
  const Py_ssize_t n = PyTuple_GET_SIZE(arrays);
  inputs.clear();
  inputs.reserve(std::size_t(n));
  bool wants_grad = false;
  std::int64_t head[3] = {op, at::get_num_threads(), n};
  put(head, sizeof head);
  constexpr auto kWrapped = c10::DispatchKeySet({c10::DispatchKey::FuncTorchGradWrapper, c10::DispatchKey::FuncTorchBatched,
                                                 c10::DispatchKey::Functionalize, c10::DispatchKey::Python});
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* x = PyTuple_GET_ITEM(arrays, i);
    if (!THPVariable_CheckExact(x)) return false;
    const at::Tensor& t = THPVariable_Unpack(x);
    if (!t.defined() || !t.device().is_cpu() || t.layout() != at::kStrided || t.key_set().has_any(kWrapped)) return false;
    wants_grad = wants_grad || t.requires_grad();
    const std::int64_t dims[2] = {std::int64_t(t.scalar_type()), t.dim()};
    put(dims, sizeof dims);
    put(t.sizes().data(), sizeof(std::int64_t) * t.sizes().size());
    inputs.push_back(t);
  }
  const char recorded = wants_grad && at::GradMode::is_enabled();
  put(&recorded, 1);
  if (kwargs == nullptr) return true;
  PyObject *name, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(kwargs, &pos, &name, &value)) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &size) : nullptr;
    if (text == nullptr) {
      PyErr_Clear();
      return false;
    }
    put(text, std::size_t(size) + 1);  // with its terminating zero
    char kind;
    std::int64_t bits;
    if (PyBool_Check(value)) {
      kind = 'b', bits = value == Py_True;
    } else if (PyLong_CheckExact(value)) {
      int overflow = 0;
      kind = 'i', bits = PyLong_AsLongLongAndOverflow(value, &overflow);
      if (overflow) return false;
    } else if (PyFloat_CheckExact(value)) {
      const double v = PyFloat_AS_DOUBLE(value);
      kind = 'f', std::memcpy(&bits, &v, sizeof bits);
    } else {
      return false;
    }
    put(&kind, 1);
    put(&bits, sizeof bits);
  }
  return true;
}

// Read and changed with the GIL held; a call holds its plan while it runs without it. Never
// destroyed: its Python objects would outlive the interpreter's finalization.
std::unordered_map<std::string, std::shared_ptr<const CallPlan>>& remembered() {
  static auto* plans = new std::unordered_map<std::string, std::shared_ptr<const CallPlan>>();
  return *plans;
}

// The outputs of a call with a remembered signature (a tensor, or a tuple for several), or None:
// no signature or none remembered. Where a batch entry failed, what ``failed(arrays, kwargs,
// outputs, status)`` returns: it raises the adapter's error (None would send the call down
// Python's path, which runs it again).
py::object call(std::int64_t op, py::tuple arrays, py::dict kwargs, py::object failed) {
  std::string key;
  std::vector<at::Tensor> inputs;
  if (!signature(op, arrays.ptr(), kwargs.ptr(), key, inputs)) return py::none();
  const auto hit = remembered().find(key);
  if (hit == remembered().end()) return py::none();
  const std::shared_ptr<const CallPlan> p = hit->second;
  std::vector<at::Tensor> result = run_plan(*p, inputs);
  if (int(result.size()) > p->n_user) {
    const at::Tensor status = result.back();
    result.pop_back();
    return failed(arrays, kwargs, py::tuple(py::cast(result)), status);
  }
  if (!p->several_outputs) return py::cast(std::move(result[0]));
  return py::tuple(py::cast(result));
}

}  // namespace

PYBIND11_MODULE(xlinalg_torch_node, m) {
  m.doc() = "xlinalg's CPU kernel layer as a C++ autograd node for eager PyTorch calls";
  py::class_<CallPlan, std::shared_ptr<CallPlan>>(m, "CallPlan");
  m.def("plan", [](const std::string& name, int fwd_row, const std::vector<int>& fwd_operands, int n_user,
                   const std::vector<std::int64_t>& ints, const std::vector<double>& floats, int vjp_row,
                   const std::vector<int>& vjp_operands, const std::vector<std::int64_t>& vjp_ints,
                   const std::vector<double>& vjp_floats, const std::vector<std::tuple<int, int, double>>& scaled,
                   bool single_blas, py::object context, bool several_outputs) {
    std::vector<ScaledCotangent> scaled_cotangents;
    for (const auto& [input, output, factor] : scaled) scaled_cotangents.push_back({input, output, factor});
    auto reverse = std::make_shared<const Reverse>(
        Reverse{vjp_row, vjp_operands, vjp_ints, vjp_floats, std::move(scaled_cotangents), single_blas});
    return std::make_shared<CallPlan>(CallPlan{name, fwd_row, fwd_operands, n_user, ints, floats, std::move(reverse),
                                               std::move(context), several_outputs});
  });
  m.def("forward", [](const std::vector<at::Tensor>& inputs, const CallPlan& p) { return run_plan(p, inputs); });
  m.def("remember", [](std::int64_t op, py::tuple arrays, py::dict kwargs, std::shared_ptr<CallPlan> p) {
    std::string key;
    std::vector<at::Tensor> inputs;
    if (!signature(op, arrays.ptr(), kwargs.ptr(), key, inputs)) return false;
    if (remembered().size() >= kMaxRemembered) remembered().clear();
    remembered().insert_or_assign(key, std::move(p));
    return true;
  });
  m.def("forget", [] { remembered().clear(); });
  m.def("call", &call);
  m.def("team_splits", [] { return xl::team_splits().load(); });
  m.def("row", [](const std::string& name) { return xl::abi::row(name.c_str()); });
  m.def("parameters", [](const std::string& name) {
    const int r = xl::abi::row(name.c_str());
    if (r < 0) throw std::out_of_range("xlinalg: no entry " + name);
    const Entry& e = xl::abi::kEntries[r];
    std::vector<std::string> ints, floats;
    for (int i = 0; i < e.ints; ++i) ints.push_back(xl::abi::arg_name(e.signature, e.arrays + i));
    for (int i = 0; i < e.floats; ++i) floats.push_back(xl::abi::arg_name(e.signature, e.arrays + e.ints + i));
    return py::make_tuple(ints, floats);
  });
  m.def("set_hooks", [](py::object fallback, py::object single_blas) {
    Py_XDECREF(g_fallback);
    Py_XDECREF(g_single_blas);
    g_fallback = fallback.release().ptr();
    g_single_blas = single_blas.release().ptr();
  });
}
