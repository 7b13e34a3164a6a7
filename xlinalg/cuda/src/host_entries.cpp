// The GPU layer's per-matrix code compiled for the CPU: xl_hd_<name>_<f32|f64>[_interleaved|_staged],
// one loop over the batch per entry of entries.def and layout, with the CUDA entries' parameters
// (less the stream). Part of the CPU library, so that every test run checks the code the GPU
// kernels run.
#include <cstring>
#include <vector>

#include "eigen_block.h"
#include "fixed.h"
#include "per_matrix.h"

#include "../../lapack/src/xlinalg.h"  // XL_API
#include "entries.def"

// (layout, e, args...): the per-matrix call's arguments, the layout and batch index first
#define XL_HD_WITH_ENTRY(...) (layout, e, __VA_ARGS__)
#define XL_HD_HOST_ENTRY(name, params, args, S, LAYOUT, TAIL, PRELUDE)                        \
  extern "C" XL_API void xl_hd_##name##_##S##TAIL params {                                     \
    PRELUDE                                                                                    \
    const xl::hd::LAYOUT layout(batch);                                                        \
    for (int64_t e = 0; e < batch; ++e) xl::hd::name##_entry<T> XL_HD_WITH_ENTRY args;         \
  }
// Staged: the threads of a group one after the other on one staging area (the first copies the
// group's inputs in; the outputs are copied out after the last), each repeating the first's calls
// of at() (else the process stops, naming the fault: on the device the group would deadlock or
// read the wrong arrays). The area is all NaN bytes before each group, as shared memory holds
// whatever was there: an entry reading an output before writing it gives NaN, not a stale 0.
#define XL_HD_WITH_STAGE(...) (__VA_ARGS__, int stage)
#define XL_HD_HOST_STAGED(name, params, args, S)                                                          \
  extern "C" XL_API void xl_hd_##name##_##S##_staged XL_HD_WITH_STAGE params {                            \
    const int64_t capacity = xl::hd::stage_capacity(stage, int(sizeof(T)));                               \
    std::vector<double> area(std::size_t(capacity) / sizeof(double) + 1);                                 \
    for (int64_t first = 0; first < batch; first += xl::hd::kStageGroup) {                                \
      const int count = xl::hd::stage_count(batch, first);                                                 \
      std::memset(area.data(), 0xff, std::size_t(capacity)); /* 0xff...: a NaN in float32 and float64 */    \
      xl::hd::StageState st(reinterpret_cast<unsigned char*>(area.data()), capacity);                      \
      for (int lane = 0; lane < count; ++lane) {                                                           \
        st.start();                                                                                        \
        xl::hd::Staged layout(&st, first, lane, count);                                                    \
        const int64_t e = first + lane;                                                                    \
        xl::hd::name##_entry<T> XL_HD_WITH_ENTRY args;                                                     \
        if (lane > 0 && st.checked != st.calls)                                                            \
          xl::hd::detail::layout_failure("the group's entries stage different arrays");                    \
      }                                                                                                    \
      xl::hd::stage_finish<T>(xl::hd::Staged(&st, first, 0, count));                                      \
    }                                                                                                      \
  }
// The packed entry's prelude, as the CUDA entry's: the code of the kernel of order n where the
// entry has fixed-order kernels for n (fixed.h); else the loop of XL_HD_HOST_ENTRY follows.
#define XL_HD_FIXED_CASE(name, args, N) \
  case N:                               \
    XL_HD_FIXED_CALL(name, args, N)     \
    break;
#define XL_HD_FIXED_LOOP(name, args, S)                                   \
  if (n >= 1 && n <= xl::hd::fixed_max_order<T>()) {                      \
    for (int64_t e = 0; e < batch; ++e) {                                 \
      switch (n) { XL_HD_FIXED_ORDERS_##S(XL_HD_FIXED_CASE, name, args) } \
    }                                                                     \
    return;                                                               \
  }
#define XL_HD_HOST(name, params, args, S)                                                                     \
  XL_HD_HOST_ENTRY(name, params, args, S, Packed, , XL_HD_IF_FIXED(name)(XL_HD_FIXED_LOOP(name, args, S)))   \
  XL_HD_HOST_ENTRY(name, params, args, S, Interleaved, _interleaved, )                                        \
  XL_HD_HOST_STAGED(name, params, args, S)
#define XL_HD_HOST_F32(name, params, args) XL_HD_HOST(name, params, args, f32)
#define XL_HD_HOST_F64(name, params, args) XL_HD_HOST(name, params, args, f64)

// The block entries: the phases of each batch entry one after the other (block.h), with the
// entry's shared struct on the stack (about 36 KB in float64).
#define XL_HD_BLOCK_WITH_ENTRY(...) (layout, e, __VA_ARGS__, shared)
#define XL_HD_HOST_BLOCK_ENTRY(name, params, args, S)                                      \
  extern "C" XL_API void xl_hd_##name##_##S params {                                        \
    const xl::hd::Packed layout(batch);                                                     \
    xl::hd::name##_shared<T> shared;                                                        \
    for (int64_t e = 0; e < batch; ++e) xl::hd::name##_entry<T> XL_HD_BLOCK_WITH_ENTRY args; \
  }
#define XL_HD_HOST_BLOCK_F32(name, params, args) XL_HD_HOST_BLOCK_ENTRY(name, params, args, f32)
#define XL_HD_HOST_BLOCK_F64(name, params, args) XL_HD_HOST_BLOCK_ENTRY(name, params, args, f64)

namespace xl_hd_f32 {
using T = float;
XL_HD_ENTRIES(XL_HD_HOST_F32)
XL_HD_BLOCK_ENTRIES(XL_HD_HOST_BLOCK_F32)
}  // namespace xl_hd_f32
namespace xl_hd_f64 {
using T = double;
XL_HD_ENTRIES(XL_HD_HOST_F64)
XL_HD_BLOCK_ENTRIES(XL_HD_HOST_BLOCK_F64)
}  // namespace xl_hd_f64

// Tests: run the items of the block entries' phases in reverse order (non-zero) or in order.
extern "C" XL_API void xl_hd_set_phase_reversed(int reversed) { xl::hd::phase_reversed() = reversed != 0; }
