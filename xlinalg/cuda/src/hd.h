// Host-and-device portability for the per-matrix algorithms of xlinalg's GPU kernel layer.
//
// The same per-matrix code compiles three ways: nvcc (device and host), NVRTC (device only, no
// include outside the CUDA headers) and the host C++17 compiler of the CPU library, which runs it
// in every CI job without a GPU. Nothing here may include a header under NVRTC.
//
// The same operations, not always the same roundings: nvcc and NVRTC fuse a multiply and an add
// into one fused multiply-add (one rounding instead of two; their default, kept for speed); the
// host build's baseline x86-64 code has no such instruction. A GPU's results agree with the CPU build's to rounding, not bit for bit;
// expressions whose exact value matters (a difference that must be 0 for symmetric data) are
// written so that fusing cannot change it.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define XL_HD __host__ __device__ __forceinline__
#else
#define XL_HD inline
#endif

#if defined(__CUDACC_RTC__)
typedef int int32_t;
typedef long long int64_t;
#else
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#endif

// Unrolls the loop that follows completely where its trip count is a compile-time constant (the
// fixed-order kernels of fixed.h, whose matrices then live in registers); nvcc leaves a loop whose
// count is known only at run time as it is. Nothing on the host.
#if defined(__CUDA_ARCH__)
#define XL_UNROLL _Pragma("unroll")
#else
#define XL_UNROLL
#endif

namespace xl {
namespace hd {

// The largest square order the per-matrix entries take (their scratch is sized by it); the
// bindings run larger matrices through the pure rules on the framework's own GPU kernels.
constexpr int kMaxOrder = 32;

template <class T>
XL_HD T quiet_nan() {
  return T(0) / T(0);  // IEEE: 0/0 is a quiet NaN on the host and the device alike
}

XL_HD float xl_sqrt(float x) { return sqrtf(x); }
XL_HD double xl_sqrt(double x) { return sqrt(x); }
XL_HD float xl_log(float x) { return logf(x); }
XL_HD double xl_log(double x) { return log(x); }
XL_HD float xl_abs(float x) { return fabsf(x); }
XL_HD double xl_abs(double x) { return fabs(x); }

}  // namespace hd
}  // namespace xl
