// xlinalg_recorded: the one MXNet operator (MXNet's C++ extension interface, mxnet/lib_api.h) that
// records every xlinalg operator called under mx.autograd.record() on the CPU.
//
// Inputs: the operator's arrays (and the residuals of the forward that its reverse reuses). Each
// call stages arrays under a token of its own (xl_mx_stage), which the forward consumes, so a graph
// holding the operator cannot run it again (an unknown token is an error, never a read of stale
// memory). With a forward entry (in the attribute, below) the forward runs that entry of the C ABI
// table (abi.hpp) on MXNet's buffers, writing the status of each matrix into the int32 array staged
// for it (the caller raises after the run where an entry failed); without, the outputs were
// computed at the call (where bad input raised) and staged there, in memory the caller keeps until
// the forward has copied them. Backward runs the operator's VJP entry on MXNet's buffers when the
// call came with a reverse entry, and otherwise hands every array to the callback that Python sets
// (xl_mx_set_backward), which computes the input cotangents with xlinalg's rules; either way in the
// engine thread, without the per-call machinery of MXNet's Python custom operators.
//
// One attribute, "call": "<args>|<outs>|<shapes>|<token>|<forward>|<reverse>|<spec>", how many
// inputs and outputs, the outputs' shapes (dimensions joined by "," and outputs by ";"), the token
// of the staged arrays, the forward and reverse entries (an entry, its arrays and its parameters:
// EntryCall; either may be empty) and last the operator with its parameters, which the callback
// reads. One attribute, not seven: MXNet copies the attributes into a map of strings at every
// call into the extension, several times per call (seven cost ≈ 50 µs per forward and backward).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "abi.hpp"
#include "blas.hpp"
#include "mxnet/lib_api.h"
#include "xlinalg.h"

using namespace mxnet::ext;

namespace {

using Attrs = std::unordered_map<std::string, std::string>;

// callback(spec, count, data, shapes, ndims, dtypes, error, error_size) -> 0, or 1 with a message
// in error. The arrays, in MXNet's order for a backward pass: output cotangents, inputs (operator
// arrays, then residuals), outputs, then the input cotangents to write.
typedef int (*backward_t)(const char*, int, void* const*, const int64_t* const*, const int*, const int*, char*,
                          int);
backward_t callback = nullptr;

// The outputs computed at a call, by token, until the forward of its operator copies them.
struct Staged {
  std::vector<const void*> data;
  std::vector<std::int64_t> bytes;
};
std::mutex staged_mutex;
std::unordered_map<std::int64_t, Staged> staged;

// Backward passes that ran their VJP entry here (xl_mx_reverses_run).
std::atomic<std::int64_t> reverses_run{0};

// The fields of a list attribute: "a,b;c" split at ``sep``.
std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> fields;
  for (size_t start = 0; start < text.size();) {
    const size_t end = std::min(text.find(sep, start), text.size());
    fields.emplace_back(text, start, end - start);
    start = end + 1;
  }
  return fields;
}

// The integer that all of ``text`` spells, in [lo, hi]; false for anything else (attributes come
// from the caller: a malformed one is an error for MXNet to report, never an exception).
bool integer(const std::string& text, std::int64_t lo, std::int64_t hi, std::int64_t* value) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size() || v < lo || v > hi) return false;
  *value = v;
  return true;
}

// The fields of the attribute "call" (see the top of this file).
struct CallFields {
  std::string args, outs, shapes, token, forward, reverse, spec;
};

// Splits the attribute "call" into ``*f``; false, with an error, where it is missing or has fewer
// than seven fields (the spec, last, keeps any '|' of its own).
bool call_fields(const Attrs& attrs, CallFields* f) {
  const auto it = attrs.find("call");
  if (it == attrs.end()) {
    MX_ERROR_MSG << "xlinalg_recorded: the attribute call is required";
    return false;
  }
  const std::string& text = it->second;
  std::string* fields[] = {&f->args, &f->outs, &f->shapes, &f->token, &f->forward, &f->reverse};
  size_t start = 0;
  for (std::string* field : fields) {
    const size_t end = text.find('|', start);
    if (end == std::string::npos) {
      MX_ERROR_MSG << "xlinalg_recorded: call '" << text
                   << "' is not <args>|<outs>|<shapes>|<token>|<forward>|<reverse>|<spec>";
      return false;
    }
    field->assign(text, start, end - start);
    start = end + 1;
  }
  f->spec.assign(text, start, std::string::npos);
  return true;
}

MXReturnValue parse(const Attrs& attrs, int* num_in, int* num_out) {
  CallFields f;
  if (!call_fields(attrs, &f)) return MX_FAIL;
  std::int64_t in = 0, out = 0;
  const std::int64_t most = std::numeric_limits<int>::max();
  if (!integer(f.args, 1, most, &in) || !integer(f.outs, 1, most, &out)) {
    MX_ERROR_MSG << "xlinalg_recorded: args and outs must be positive integers, not '" << f.args << "' and '"
                 << f.outs << "'";
    return MX_FAIL;
  }
  *num_in = int(in);
  *num_out = int(out);
  return MX_SUCCESS;
}

MXReturnValue infer_type(const Attrs& attrs, std::vector<int>* in, std::vector<int>* out) {
  for (int& t : *out) t = (*in)[0];
  return MX_SUCCESS;
}

MXReturnValue infer_shape(const Attrs& attrs, std::vector<std::vector<unsigned>>* in,
                          std::vector<std::vector<unsigned>>* out) {
  CallFields f;
  if (!call_fields(attrs, &f)) return MX_FAIL;
  const std::vector<std::string> shapes = split(f.shapes, ';');
  if (shapes.size() != out->size()) {
    MX_ERROR_MSG << "xlinalg_recorded: " << shapes.size() << " shapes for " << out->size() << " outputs";
    return MX_FAIL;
  }
  for (size_t i = 0; i < out->size(); ++i) {
    (*out)[i].clear();
    for (const std::string& d : split(shapes[i], ',')) {
      std::int64_t size = 0;
      if (!integer(d, 0, std::numeric_limits<unsigned>::max(), &size)) {
        MX_ERROR_MSG << "xlinalg_recorded: output shape '" << shapes[i] << "' is not a list of sizes joined by ','";
        return MX_FAIL;
      }
      (*out)[i].push_back(unsigned(size));
    }
  }
  return MX_SUCCESS;
}

// Bytes per element of the dtypes xlinalg's operators take (float32, float64); 0 for any other.
size_t item_size(MXDType dtype) { return dtype == kFloat32 ? 4 : dtype == kFloat64 ? 8 : 0; }

// An entry of the C ABI table that a pass runs itself (the fields forward and reverse of "call"):
// "<entry>;<arrays>;<parameters>;<BLAS threads>", the arrays as indices into the pass's arrays (-1
// absent; the entry's last arrays may be left out: absent), the parameters "name=value" joined by
// ",", the BLAS thread count the call chose.
struct EntryCall {
  const xl::abi::Entry* entry = nullptr;
  std::vector<int> arrays;
  xl::abi::Call call;
  int blas_threads = 1;
};

// The parameter ``name`` of ``entry``: its index among the integers (``*is_int``) or the floats.
int parameter(const xl::abi::Entry& e, const std::string& name, bool* is_int) {
  for (int i = 0; i < e.ints + e.floats; ++i)
    if (xl::abi::arg_name(e.signature, e.arrays + i) == name) {
      *is_int = i < e.ints;
      return *is_int ? i : i - e.ints;
    }
  return -1;
}

// Parses the field ``what`` (``text``) of a pass with ``count`` arrays; false with an error.
bool parse_entry_call(const char* what, const std::string& text, int count, EntryCall* r) {
  const std::vector<std::string> fields = split(text, ';');
  const auto fail = [&](const std::string& why) {
    MX_ERROR_MSG << "xlinalg_recorded: " << what << " '" << text << "': " << why;
    return false;
  };
  if (fields.size() != 4) return fail("expected <entry>;<arrays>;<parameters>;<BLAS threads>");
  const int row = xl::abi::row(fields[0].c_str());
  if (row < 0) return fail("no entry " + fields[0]);
  const xl::abi::Entry& e = xl::abi::kEntries[row];
  r->entry = &e;
  for (const std::string& index : split(fields[1], ',')) {
    std::int64_t k = 0;
    if (!integer(index, -1, count - 1, &k)) return fail("array '" + index + "' is not -1 or one of the " + std::to_string(count));
    r->arrays.push_back(int(k));
  }
  if (int(r->arrays.size()) > e.arrays) return fail(std::string("more arrays than ") + e.signature + " takes");
  r->arrays.resize(e.arrays, -1);
  int set = 0;
  for (const std::string& pair : split(fields[2], ',')) {
    const size_t eq = pair.find('=');
    bool is_int = false;
    const int i = eq == std::string::npos ? -1 : parameter(e, pair.substr(0, eq), &is_int);
    if (i < 0) return fail("'" + pair + "' is not a parameter of " + e.signature);
    const std::string value = pair.substr(eq + 1);
    if (is_int) {
      std::int64_t v = 0;
      if (!integer(value, std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), &v))
        return fail("'" + pair + "' is not an integer");
      r->call.ints[i] = v;
    } else {
      char* end = nullptr;
      r->call.floats[i] = std::strtod(value.c_str(), &end);
      if (value.empty() || end != value.c_str() + value.size()) return fail("'" + pair + "' is not a number");
    }
    ++set;
  }
  if (set != e.ints + e.floats) return fail(std::string("expected every parameter of ") + e.signature);
  std::int64_t blas = 0;
  if (!integer(fields[3], 1, std::numeric_limits<int>::max(), &blas)) return fail("BLAS threads '" + fields[3] + "'");
  r->blas_threads = int(blas);
  return true;
}

// Runs a parsed entry call on a pass's arrays: false (reported) where it does not check.
bool run_entry_call(EntryCall& r, const std::vector<xl::abi::ArrayRef>& arrays, bool f32) {
  const xl::abi::Entry& e = *r.entry;
  for (int i = 0; i < e.arrays; ++i)
    if (r.arrays[i] >= 0) r.call.arr[i] = arrays[r.arrays[i]];
  const std::string why = xl::abi::check(e, r.call);
  if (!why.empty()) {
    MX_ERROR_MSG << "xlinalg_recorded: " << e.signature << ": " << why;
    return false;
  }
  xl::abi::run(e, r.call, f32);
  return true;
}

xl::abi::ArrayRef array_of(MXTensor& t) { return {t.shape.data(), int(t.shape.size()), t.size(), t.data_ptr, true}; }

// Whether every tensor of ``lists`` is float32 (``*f32``) or every one float64; else an error.
bool one_float_dtype(std::initializer_list<std::vector<MXTensor>*> lists, bool* f32) {
  const MXDType first = (*lists.begin())->at(0).dtype;
  for (auto* list : lists)
    for (MXTensor& t : *list)
      if (t.dtype != first || item_size(t.dtype) == 0) {
        MX_ERROR_MSG << "xlinalg_recorded: the arrays must all be float32 or all float64";
        return false;
      }
  *f32 = first == kFloat32;
  return true;
}

// The forward entry of a "forward" attribute on the operator's arrays, and after them the int32
// status array (one entry per matrix) staged for it where the entry writes one.
MXReturnValue run_forward(const std::string& text, std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                          const Staged& staged_status) {
  std::vector<xl::abi::ArrayRef> arrays;
  for (auto* list : {inputs, outputs})
    for (MXTensor& t : *list) arrays.push_back(array_of(t));
  std::int64_t status_items = 0;
  if (staged_status.data.size() > 1) {
    MX_ERROR_MSG << "xlinalg_recorded: " << staged_status.data.size() << " arrays staged for a forward entry";
    return MX_FAIL;
  }
  if (staged_status.data.size() == 1) {
    status_items = staged_status.bytes[0] / std::int64_t(sizeof(std::int32_t));
    arrays.push_back({&status_items, 1, status_items, const_cast<void*>(staged_status.data[0]), true});
  }
  EntryCall r;
  bool f32 = false;
  if (!parse_entry_call("forward", text, int(arrays.size()), &r) || !one_float_dtype({inputs, outputs}, &f32) ||
      !run_entry_call(r, arrays, f32))
    return MX_FAIL;
  return MX_SUCCESS;
}

MXReturnValue forward(const Attrs& attrs, std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                      const OpResource&) {
  CallFields f;
  if (!call_fields(attrs, &f)) return MX_FAIL;
  std::int64_t token = 0;
  if (!integer(f.token, std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(), &token)) {
    MX_ERROR_MSG << "xlinalg_recorded: token '" << f.token << "' is not an integer";
    return MX_FAIL;
  }
  Staged sources;
  {
    std::lock_guard<std::mutex> lock(staged_mutex);
    const auto it = staged.find(token);
    if (it == staged.end()) {
      MX_ERROR_MSG << "xlinalg_recorded: no outputs staged under this token: the operator runs only where an "
                      "xlinalg call under mx.autograd.record() records it, once";
      return MX_FAIL;
    }
    sources = std::move(it->second);
    staged.erase(it);
  }
  if (!f.forward.empty()) return run_forward(f.forward, inputs, outputs, sources);
  if (sources.data.size() != outputs->size()) {
    MX_ERROR_MSG << "xlinalg_recorded: " << sources.data.size() << " staged arrays for " << outputs->size()
                 << " outputs";
    return MX_FAIL;
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    MXTensor& dst = (*outputs)[i];
    const std::int64_t bytes = dst.size() * std::int64_t(item_size(dst.dtype));
    if (item_size(dst.dtype) == 0 || bytes != sources.bytes[i]) {
      MX_ERROR_MSG << "xlinalg_recorded: output " << i << " is not the float32 or float64 array of "
                   << sources.bytes[i] << " bytes staged for it";
      return MX_FAIL;
    }
    if (bytes) std::memcpy(dst.data_ptr, sources.data[i], size_t(bytes));
  }
  return MX_SUCCESS;
}

MXReturnValue backward(const Attrs& attrs, std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                       const OpResource&) {
  CallFields f;
  if (!call_fields(attrs, &f)) return MX_FAIL;
  if (!f.reverse.empty()) {
    std::vector<xl::abi::ArrayRef> arrays;
    for (auto* list : {inputs, outputs})
      for (MXTensor& t : *list) arrays.push_back(array_of(t));
    EntryCall r;
    bool f32 = false;
    if (!parse_entry_call("reverse", f.reverse, int(arrays.size()), &r) || !one_float_dtype({inputs, outputs}, &f32))
      return MX_FAIL;
    // A BLAS on another thread count than the call chose (a call in between changed it): Python's
    // rules run instead, and set it.
    const xl::BlasThreads& b = xl::blas_threads();
    if (b.get == nullptr || b.get() == r.blas_threads) {
      if (!run_entry_call(r, arrays, f32)) return MX_FAIL;
      reverses_run.fetch_add(1, std::memory_order_relaxed);
      return MX_SUCCESS;
    }
  }
  if (callback == nullptr) {
    MX_ERROR_MSG << "xlinalg_recorded: no backward callback is set (import xlinalg.mxnet)";
    return MX_FAIL;
  }
  std::vector<void*> data;
  std::vector<const int64_t*> shapes;
  std::vector<int> ndims, dtypes;
  for (auto* list : {inputs, outputs})
    for (MXTensor& t : *list) {
      data.push_back(t.data_ptr);
      shapes.push_back(t.shape.data());
      ndims.push_back(int(t.shape.size()));
      dtypes.push_back(int(t.dtype));
    }
  char error[1024] = {0};
  if (callback(f.spec.c_str(), int(data.size()), data.data(), shapes.data(), ndims.data(), dtypes.data(), error,
               int(sizeof error)) != 0) {
    MX_ERROR_MSG << error;
    return MX_FAIL;
  }
  return MX_SUCCESS;
}

}  // namespace

extern "C" XL_API void xl_mx_set_backward(backward_t fn) { callback = fn; }

// How many backward passes ran their VJP entry here rather than through the callback.
extern "C" XL_API std::int64_t xl_mx_reverses_run(void) { return reverses_run.load(); }

// Stages ``count`` computed outputs (addresses and sizes in bytes) under ``token`` for one forward.
extern "C" XL_API void xl_mx_stage(std::int64_t token, int count, const void* const* data,
                                   const std::int64_t* bytes) {
  Staged entry{std::vector<const void*>(data, data + count), std::vector<std::int64_t>(bytes, bytes + count)};
  std::lock_guard<std::mutex> lock(staged_mutex);
  staged[token] = std::move(entry);
}

// Drops what ``token`` staged, where no forward has copied it (a call that failed before).
extern "C" XL_API void xl_mx_discard(std::int64_t token) {
  std::lock_guard<std::mutex> lock(staged_mutex);
  staged.erase(token);
}

REGISTER_OP(xlinalg_recorded)
    .setParseAttrs(parse)
    .setInferType(infer_type)
    .setInferShape(infer_shape)
    .setForward(forward, "cpu")
    .setBackward(backward, "cpu");

extern "C" MXReturnValue initialize(int version) {
  if (version < 10700) {
    MX_ERROR_MSG << "xlinalg_recorded needs MXNet 1.7 or later, got " << version;
    return MX_FAIL;
  }
  return MX_SUCCESS;
}
