// xlinalg_recorded: the one MXNet operator (MXNet's C++ extension interface, mxnet/lib_api.h) that
// records every xlinalg operator called under mx.autograd.record() on the CPU.
//
// Inputs: the operator's arrays (and the residuals of the forward that its reverse reuses). Its
// outputs are computed at the call (where bad input raised), in memory the caller keeps until this
// operator's forward has run: the forward copies them from there into the outputs. Backward hands
// every array to the callback that Python sets (xl_mx_set_backward): it computes the input
// cotangents with xlinalg's rules, in the engine thread, without the per-call machinery of MXNet's
// Python custom operators.
//
// Attributes: "args" (how many inputs), "outs" (how many outputs), "shapes" (theirs: dimensions
// joined by "," and outputs by ";"), "sources" (the addresses of the computed outputs, in decimal,
// joined by ",") and "spec" (the operator and its parameters, read by the callback).
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

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

// The fields of a list attribute: "a,b;c" split at ``sep``.
std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> fields;
  std::stringstream stream(text);
  for (std::string field; std::getline(stream, field, sep);) fields.push_back(field);
  return fields;
}

const std::string* attribute(const Attrs& attrs, const char* name) {
  const auto it = attrs.find(name);
  return it == attrs.end() ? nullptr : &it->second;
}

MXReturnValue parse(const Attrs& attrs, int* num_in, int* num_out) {
  const std::string *args = attribute(attrs, "args"), *outs = attribute(attrs, "outs");
  if (!args || !outs || !attribute(attrs, "shapes") || !attribute(attrs, "sources")) {
    MX_ERROR_MSG << "xlinalg_recorded: attributes args, outs, shapes and sources are required";
    return MX_FAIL;
  }
  *num_in = std::stoi(*args);
  *num_out = std::stoi(*outs);
  if (*num_in <= 0 || *num_out <= 0) {
    MX_ERROR_MSG << "xlinalg_recorded: args and outs must be positive";
    return MX_FAIL;
  }
  return MX_SUCCESS;
}

MXReturnValue infer_type(const Attrs& attrs, std::vector<int>* in, std::vector<int>* out) {
  for (int& t : *out) t = (*in)[0];
  return MX_SUCCESS;
}

MXReturnValue infer_shape(const Attrs& attrs, std::vector<std::vector<unsigned>>* in,
                          std::vector<std::vector<unsigned>>* out) {
  const std::vector<std::string> shapes = split(*attribute(attrs, "shapes"), ';');
  if (shapes.size() != out->size()) {
    MX_ERROR_MSG << "xlinalg_recorded: " << shapes.size() << " shapes for " << out->size() << " outputs";
    return MX_FAIL;
  }
  for (size_t i = 0; i < out->size(); ++i) {
    (*out)[i].clear();
    for (const std::string& d : split(shapes[i], ',')) (*out)[i].push_back(unsigned(std::stoul(d)));
  }
  return MX_SUCCESS;
}

// Bytes per element of the dtypes xlinalg's operators take (float32, float64); 0 for any other.
size_t item_size(MXDType dtype) { return dtype == kFloat32 ? 4 : dtype == kFloat64 ? 8 : 0; }

MXReturnValue forward(const Attrs& attrs, std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                      const OpResource&) {
  const std::vector<std::string> sources = split(*attribute(attrs, "sources"), ',');
  if (sources.size() != outputs->size()) {
    MX_ERROR_MSG << "xlinalg_recorded: " << sources.size() << " sources for " << outputs->size() << " outputs";
    return MX_FAIL;
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    MXTensor& dst = (*outputs)[i];
    if (item_size(dst.dtype) == 0) {
      MX_ERROR_MSG << "xlinalg_recorded: outputs must be float32 or float64";
      return MX_FAIL;
    }
    const size_t bytes = size_t(dst.size()) * item_size(dst.dtype);
    const void* src = reinterpret_cast<const void*>(std::uintptr_t(std::stoull(sources[i])));
    if (bytes) std::memcpy(dst.data_ptr, src, bytes);
  }
  return MX_SUCCESS;
}

MXReturnValue backward(const Attrs& attrs, std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                       const OpResource&) {
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
  const auto spec = attrs.find("spec");
  char error[1024] = {0};
  if (callback(spec == attrs.end() ? "" : spec->second.c_str(), int(data.size()), data.data(), shapes.data(),
               ndims.data(), dtypes.data(), error, int(sizeof error)) != 0) {
    MX_ERROR_MSG << error;
    return MX_FAIL;
  }
  return MX_SUCCESS;
}

}  // namespace

extern "C" XL_API void xl_mx_set_backward(backward_t fn) { callback = fn; }

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
