// The GPU kernel layer's C entries: for every entry of entries.def and dtype,
//
//   int xl_cuda_<name>_<f32|f64>(params..., void* stream)
//   int xl_cuda_<name>_<f32|f64>_interleaved(params..., void* stream)
//   int xl_cuda_<name>_<f32|f64>_staged(params..., int stage, void* stream)
//
// launch xl_kernel_<name>_<f32|f64>[_interleaved|_staged] (kernels.cuh; packed: the kernel of order n
// where the entry has fixed-order ones for n, fixed.h) over the batch on ``stream`` (a
// cudaStream_t/CUstream; null is the default stream) and returns the launch's cudaError_t as an
// int: 0 when the kernel was queued. The kernel runs asynchronously: its errors (and the per-entry
// status of the factorizations) show once the stream is synchronized. A batch of 0 launches
// nothing and returns 0; a negative batch returns cudaErrorInvalidValue. Pointers are device
// (or managed) memory, row-major batches as on the CPU. A staged entry's ``stage`` is the sum,
// over its pointer parameters, of their elements per batch entry (what the Python rules pass);
// more only costs shared memory, less makes the kernel trap when an entry's arrays overflow its
// area (a trap ends the device's context, as any kernel fault does), and one whose group would
// take more than kStageMaxBytes returns cudaErrorInvalidValue before launching.
//
// Small helpers report the runtime and its devices (xl_cuda_runtime_version, ...) and move memory
// (xl_cuda_malloc, ...), so that a caller without a CUDA framework can drive the entries.
//
// Built as a shared library with -fvisibility=hidden and the CUDA runtime linked statically: only
// the functions marked XL_CUDA_API are exported, and the library loads on a machine without a
// driver (its calls then return cudaErrorInsufficientDriver or cudaErrorNoDevice).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "batch_argument.h"
#include "kernels.cuh"

#define XL_CUDA_API extern "C" __attribute__((visibility("default")))

// The identity of the sources the library was built from (set by the build, see setup.py)
#ifndef XL_CUDA_SOURCES_ID
#define XL_CUDA_SOURCES_ID unknown
#endif
#ifndef XL_CUDA_BUILD_ID
#define XL_CUDA_BUILD_ID unknown
#endif
#define XL_CUDA_STR2(x) #x
#define XL_CUDA_STR(x) XL_CUDA_STR2(x)

namespace xl_cuda {

// Threads per block. A thread does one matrix's whole (serial) computation with its scratch in
// local memory, so the batch is the only parallelism: small blocks spread a modest batch over more
// multiprocessors (a batch of 1024 fills 16 of them), while 64 threads are still two full warps
// per block. Not tuned on hardware.
constexpr int kBlock = 64;
// Blocks per launch at most; the kernels' grid-stride loop covers larger batches.
constexpr int64_t kMaxBlocks = 65535;

// The launch geometry: one thread per batch entry (kBlock threads per block), or one block of
// xl::hd::kBlockThreads threads per batch entry (the block entries), or staged: warps of one
// thread per entry, each staging its group's arrays in ``capacity`` bytes of shared memory
// (xl::hd::stage_warps of them per block).
struct Geometry {
  enum Kind { thread, block, staged } kind = thread;
  int64_t capacity = 0;
};

// The dynamic shared memory a block may have on the current device when it asks for it
// (cudaDevAttrMaxSharedMemoryPerBlockOptin) into *bytes (0 on any error, which is returned and
// cleared).
inline cudaError_t shared_limit(int* bytes) {
  *bytes = 0;
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status == cudaSuccess) status = cudaDeviceGetAttribute(bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (status != cudaSuccess) {
    *bytes = 0;
    (void)cudaGetLastError();
  }
  return status;
}

template <class... P, class Args, std::size_t... I>
cudaError_t launch(void (*kernel)(P...), int64_t batch, void* stream, Args args, Geometry geometry, std::index_sequence<I...>) {
  constexpr int at = batch_position<P...>();
  static_assert(at >= 0, "an entry has exactly one int64_t parameter, the batch size");
  static_assert(std::tuple_size<Args>::value + 1 == sizeof...(P), "an entry's args are its params less the batch size");
  static_assert((std::is_same<std::remove_reference_t<decltype(argument<at, I>(args, batch))>, P>::value && ...),
                "an entry's args name its params in order");
  if (batch < 0) return cudaErrorInvalidValue;
  if (batch == 0) return cudaSuccess;
  int64_t blocks = (batch + kBlock - 1) / kBlock, threads = kBlock, shared = 0;
  if (geometry.kind == Geometry::block) {
    blocks = batch, threads = xl::hd::kBlockThreads;
  } else if (geometry.kind == Geometry::staged) {
    if (geometry.capacity < 0 || geometry.capacity > xl::hd::kStageMaxBytes) return cudaErrorInvalidValue;
    const int warps = xl::hd::stage_warps(geometry.capacity);
    const int64_t entries = int64_t(warps) * xl::hd::kStageGroup;
    blocks = (batch + entries - 1) / entries, threads = warps * 32, shared = warps * geometry.capacity;
    if (shared > xl::hd::kStageBlockBytes) {  // more than a block has without asking
      // The kernel may then have all a group may take on this device (kStageMaxBytes, or less
      // where the device lets a block have less): one value for every launch, not this one's
      // size, so that host threads launching the kernel at once never lower it under another's.
      int allowed = 0;
      cudaError_t status = shared_limit(&allowed);
      if (allowed > xl::hd::kStageMaxBytes) allowed = int(xl::hd::kStageMaxBytes);
      if (status == cudaSuccess)
        status = cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      allowed >= shared ? allowed : int(shared));
      if (status != cudaSuccess) {
        (void)cudaGetLastError();
        return status;
      }
    }
  }
  const dim3 grid(unsigned(blocks < kMaxBlocks ? blocks : kMaxBlocks));
  void* pointers[] = {static_cast<void*>(&argument<at, I>(args, batch))...};
  const cudaError_t status = cudaLaunchKernel(reinterpret_cast<const void*>(kernel), grid, dim3(unsigned(threads)), pointers,
                                              std::size_t(shared), static_cast<cudaStream_t>(stream));
  if (status != cudaSuccess) (void)cudaGetLastError();  // reported here: not left for the next call to find
  return status;
}

template <class... P, class Args>
int launch(void (*kernel)(P...), int64_t batch, void* stream, Args args, Geometry geometry = Geometry()) {
  return int(launch(kernel, batch, stream, args, geometry, std::make_index_sequence<sizeof...(P)>()));
}

}  // namespace xl_cuda

// (params..., void* stream)
#define XL_CUDA_WITH_STREAM(...) (__VA_ARGS__, void* stream)
#define XL_CUDA_ENTRY(name, params, args, S, TAIL, PRELUDE)                                          \
  XL_CUDA_API int xl_cuda_##name##_##S##TAIL XL_CUDA_WITH_STREAM params {                           \
    PRELUDE                                                                                         \
    return xl_cuda::launch(xl_kernel_##name##_##S##TAIL, batch, stream, std::make_tuple args); \
  }
// The packed entry's prelude: the kernel of order n where the entry has fixed-order kernels
// (fixed.h) and n is one of their orders; else the kernel that takes the order at run time follows.
#define XL_CUDA_FIXED_KERNEL(name, S, N) xl_kernel_##name##_##S##_n##N,
#define XL_CUDA_FIXED_LAUNCH(name, args, S)                                                                \
  static decltype(&xl_kernel_##name##_##S) const fixed[] = {                                               \
      XL_HD_FIXED_ORDERS_##S(XL_CUDA_FIXED_KERNEL, name, S)};                                              \
  static_assert(sizeof(fixed) / sizeof(fixed[0]) == xl::hd::fixed_max_order<T>(), "the orders of fixed.h"); \
  if (n >= 1 && n <= xl::hd::fixed_max_order<T>())                                                         \
    return xl_cuda::launch(fixed[n - 1], batch, stream, std::make_tuple args);
// (params..., int stage, void* stream): the staged entries
#define XL_CUDA_WITH_STAGE_AND_STREAM(...) (__VA_ARGS__, int stage, void* stream)
#define XL_CUDA_STAGED_ENTRY(name, params, args, S)                                                                 \
  XL_CUDA_API int xl_cuda_##name##_##S##_staged XL_CUDA_WITH_STAGE_AND_STREAM params {                               \
    const xl_cuda::Geometry geometry{xl_cuda::Geometry::staged, xl::hd::stage_capacity(stage, int(sizeof(T)))};     \
    return xl_cuda::launch(xl_kernel_##name##_##S##_staged, batch, stream,                                          \
                           std::tuple_cat(std::make_tuple args, std::make_tuple(stage)), geometry);                 \
  }
#define XL_CUDA_ENTRIES(name, params, args, S)                                          \
  XL_CUDA_ENTRY(name, params, args, S, , XL_HD_IF_FIXED(name)(XL_CUDA_FIXED_LAUNCH(name, args, S))) \
  XL_CUDA_ENTRY(name, params, args, S, _interleaved, )                                   \
  XL_CUDA_STAGED_ENTRY(name, params, args, S)
#define XL_CUDA_ENTRY_F32(name, params, args) XL_CUDA_ENTRIES(name, params, args, f32)
#define XL_CUDA_ENTRY_F64(name, params, args) XL_CUDA_ENTRIES(name, params, args, f64)

#define XL_CUDA_BLOCK_ENTRY(name, params, args, S)                                                                  \
  XL_CUDA_API int xl_cuda_##name##_##S XL_CUDA_WITH_STREAM params {                                                   \
    return xl_cuda::launch(xl_kernel_##name##_##S, batch, stream, std::make_tuple args, {xl_cuda::Geometry::block}); \
  }
#define XL_CUDA_BLOCK_ENTRY_F32(name, params, args) XL_CUDA_BLOCK_ENTRY(name, params, args, f32)
#define XL_CUDA_BLOCK_ENTRY_F64(name, params, args) XL_CUDA_BLOCK_ENTRY(name, params, args, f64)

namespace xl_kernel_f32 {
XL_HD_ENTRIES(XL_CUDA_ENTRY_F32)
XL_HD_BLOCK_ENTRIES(XL_CUDA_BLOCK_ENTRY_F32)
}  // namespace xl_kernel_f32
namespace xl_kernel_f64 {
XL_HD_ENTRIES(XL_CUDA_ENTRY_F64)
XL_HD_BLOCK_ENTRIES(XL_CUDA_BLOCK_ENTRY_F64)
}  // namespace xl_kernel_f64

// ---- helpers ---------------------------------------------------------------------------------

// The CUDA runtime version the library was built with (e.g. 13000 for 13.0).
XL_CUDA_API int xl_cuda_runtime_version(void) {
  int version = 0;
  return cudaRuntimeGetVersion(&version) == cudaSuccess ? version : 0;
}

// The driver's CUDA version into *version (0 without a driver); returns the cudaError_t.
XL_CUDA_API int xl_cuda_driver_version(int* version) {
  *version = 0;
  const cudaError_t status = cudaDriverGetVersion(version);
  if (status != cudaSuccess) (void)cudaGetLastError();
  return int(status);
}

// The number of usable devices into *count (0 on any error); returns the cudaError_t
// (cudaErrorInsufficientDriver without a driver new enough, cudaErrorNoDevice without a device).
XL_CUDA_API int xl_cuda_device_count(int* count) {
  *count = 0;
  const cudaError_t status = cudaGetDeviceCount(count);
  if (status != cudaSuccess) {
    *count = 0;
    (void)cudaGetLastError();
  }
  return int(status);
}

// The device the calling thread launches on: the current one into *device (-1 on any error; it is
// the device of the thread's current context, whichever library made it current), or set it
// (cudaSetDevice). Each returns the cudaError_t.
XL_CUDA_API int xl_cuda_get_device(int* device) {
  *device = -1;
  const cudaError_t status = cudaGetDevice(device);
  if (status != cudaSuccess) {
    *device = -1;
    (void)cudaGetLastError();
  }
  return int(status);
}
XL_CUDA_API int xl_cuda_set_device(int device) { return int(cudaSetDevice(device)); }

// The name and description of a cudaError_t value.
XL_CUDA_API const char* xl_cuda_error_name(int status) { return cudaGetErrorName(cudaError_t(status)); }
XL_CUDA_API const char* xl_cuda_error_string(int status) { return cudaGetErrorString(cudaError_t(status)); }

// The dynamic shared memory a block may have on the current device when it asks for it
// (cudaDevAttrMaxSharedMemoryPerBlockOptin: 64 KiB on sm_75, 96 KiB on sm_70, 227 KiB on sm_90)
// into *bytes (0 on any error); returns the cudaError_t. A staged call whose group needs more
// runs packed.
XL_CUDA_API int xl_cuda_shared_limit(int* bytes) { return int(xl_cuda::shared_limit(bytes)); }

// Whether the library has code the current device runs: 0 when it has (cudaFuncGetAttributes on
// one of its kernels loads it), else the cudaError_t: cudaErrorNoKernelImageForDevice on a device
// older than every architecture it was built for, cudaErrorInsufficientDriver where the driver is
// older than the runtime linked in.
XL_CUDA_API int xl_cuda_kernel_image(void) {
  cudaFuncAttributes attributes;
  const cudaError_t status = cudaFuncGetAttributes(&attributes, reinterpret_cast<const void*>(xl_kernel_f32::xl_kernel_potrf_f32));
  if (status != cudaSuccess) (void)cudaGetLastError();
  return int(status);
}

// Threads per block of the one-thread-per-entry launches, and of the block entries' launches.
XL_CUDA_API int xl_cuda_block_size(void) { return xl_cuda::kBlock; }
XL_CUDA_API int xl_cuda_block_entry_threads(void) { return xl::hd::kBlockThreads; }

// "sources:<hash> build:<hash>": the sources and the build (sources, flags, compiler) the
// library was made from.
XL_CUDA_API const char* xl_cuda_build_id(void) {
  return "sources:" XL_CUDA_STR(XL_CUDA_SOURCES_ID) " build:" XL_CUDA_STR(XL_CUDA_BUILD_ID);
}

// Device memory: allocate, free, copy (any direction: cudaMemcpyDefault), wait for a stream.
XL_CUDA_API int xl_cuda_malloc(void** pointer, size_t bytes) {
  *pointer = nullptr;
  return int(cudaMalloc(pointer, bytes));
}
XL_CUDA_API int xl_cuda_free(void* pointer) { return int(cudaFree(pointer)); }
XL_CUDA_API int xl_cuda_memcpy(void* destination, const void* source, size_t bytes) {
  return int(cudaMemcpy(destination, source, bytes, cudaMemcpyDefault));
}
XL_CUDA_API int xl_cuda_stream_synchronize(void* stream) { return int(cudaStreamSynchronize(static_cast<cudaStream_t>(stream))); }
