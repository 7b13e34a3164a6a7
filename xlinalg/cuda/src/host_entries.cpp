// The GPU layer's per-matrix code compiled for the CPU: xl_hd_<name>_<f32|f64>, one loop over the
// batch per entry of entries.def, with the CUDA entries' parameters (less the stream). Part of
// the CPU library, so that every test run checks the code the GPU kernels run.
#include "per_matrix.h"

#include "../../lapack/src/xlinalg.h"  // XL_API
#include "entries.def"

// (e, args...): the per-matrix call's arguments, the batch index first
#define XL_HD_WITH_ENTRY(...) (e, __VA_ARGS__)
#define XL_HD_HOST_ENTRY(name, params, args, S)                                    \
  extern "C" XL_API void xl_hd_##name##_##S params {                                \
    for (int64_t e = 0; e < batch; ++e) xl::hd::name##_entry<T> XL_HD_WITH_ENTRY args; \
  }
#define XL_HD_HOST_F32(name, params, args) XL_HD_HOST_ENTRY(name, params, args, f32)
#define XL_HD_HOST_F64(name, params, args) XL_HD_HOST_ENTRY(name, params, args, f64)

namespace xl_hd_f32 {
using T = float;
XL_HD_ENTRIES(XL_HD_HOST_F32)
}  // namespace xl_hd_f32
namespace xl_hd_f64 {
using T = double;
XL_HD_ENTRIES(XL_HD_HOST_F64)
}  // namespace xl_hd_f64
