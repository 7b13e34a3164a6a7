// The GPU layer's kernels (kernels.cuh, device code paths) on CPU threads (emulator.h), for tests:
//
//   void xl_emu_<name>_<f32|f64>[_interleaved|_staged](params..., [int stage,] int grid, int threads,
//                                                     int64_t shared)
//
// for every entry of entries.def (the kernel that takes the order at run time for the packed
// layout) and the block entries: the CUDA entry's parameters less the stream, then the launch's
// grid, block size and dynamic shared memory per block (the caller's geometry: any grid covers
// any batch; a staged launch needs a group's area per warp, and writing beyond ``shared`` is a
// fault). A launch that faulted (a trap, a deadlock, a write beyond its shared memory) returns
// with the fault in xl_emu_failure() (nullptr: none).
#include "emulator.h"

#include <tuple>
#include <utility>

#include "batch_argument.h"
#include "kernels.cuh"

#define XL_EMU_API extern "C" __attribute__((visibility("default")))

// The dynamic shared memory of the staged kernels.
extern "C" {
alignas(16) unsigned char xl_stage_area[xl_emu::kSharedBytes];
}

namespace xl_emu {

template <class... P, class Args, std::size_t... I>
void run(void (*kernel)(P...), int64_t batch, Args args, int grid, int threads, int64_t shared, std::index_sequence<I...>) {
  constexpr int at = xl_cuda::batch_position<P...>();
  static_assert(at >= 0, "a kernel takes the batch size as its only int64_t parameter");
  launch([&] { kernel(xl_cuda::argument<at, I>(args, batch)...); }, grid, threads, xl_stage_area, sizeof(xl_stage_area),
         std::size_t(shared));  // a negative size: beyond the area, a failed launch
}

template <class... P, class Args>
void run(void (*kernel)(P...), int64_t batch, Args args, int grid, int threads, int64_t shared) {
  run(kernel, batch, args, grid, threads, shared, std::make_index_sequence<sizeof...(P)>());
}

}  // namespace xl_emu

XL_EMU_API const char* xl_emu_failure(void) { return xl_emu::failure.load(); }

#define XL_EMU_WITH_LAUNCH(...) (__VA_ARGS__, int grid, int threads, int64_t shared)
#define XL_EMU_WITH_STAGE_AND_LAUNCH(...) (__VA_ARGS__, int stage, int grid, int threads, int64_t shared)
#define XL_EMU_ENTRY(name, params, args, S, TAIL)                                                    \
  XL_EMU_API void xl_emu_##name##_##S##TAIL XL_EMU_WITH_LAUNCH params {                              \
    xl_emu::run(xl_kernel_##name##_##S##TAIL, batch, std::make_tuple args, grid, threads, shared); \
  }
#define XL_EMU_STAGED_ENTRY(name, params, args, S)                                                                    \
  XL_EMU_API void xl_emu_##name##_##S##_staged XL_EMU_WITH_STAGE_AND_LAUNCH params {                                  \
    xl_emu::run(xl_kernel_##name##_##S##_staged, batch, std::tuple_cat(std::make_tuple args, std::make_tuple(stage)), \
                grid, threads, shared);                                                                               \
  }
#define XL_EMU_ENTRIES(name, params, args, S) \
  XL_EMU_ENTRY(name, params, args, S, )       \
  XL_EMU_ENTRY(name, params, args, S, _interleaved) XL_EMU_STAGED_ENTRY(name, params, args, S)
#define XL_EMU_F32(name, params, args) XL_EMU_ENTRIES(name, params, args, f32)
#define XL_EMU_F64(name, params, args) XL_EMU_ENTRIES(name, params, args, f64)
#define XL_EMU_BLOCK_F32(name, params, args) XL_EMU_ENTRY(name, params, args, f32, )
#define XL_EMU_BLOCK_F64(name, params, args) XL_EMU_ENTRY(name, params, args, f64, )

namespace xl_kernel_f32 {
XL_HD_ENTRIES(XL_EMU_F32)
XL_HD_BLOCK_ENTRIES(XL_EMU_BLOCK_F32)
}  // namespace xl_kernel_f32
namespace xl_kernel_f64 {
XL_HD_ENTRIES(XL_EMU_F64)
XL_HD_BLOCK_ENTRIES(XL_EMU_BLOCK_F64)
}  // namespace xl_kernel_f64
