// A C entry's kernel arguments: the entry takes its kernel's parameters but the batch size, which
// the kernel takes as its only int64_t parameter. Host code (launch.cu, and the tests' emulation
// of the kernels on CPU threads); not for NVRTC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>

namespace xl_cuda {

// The position of the batch size in a kernel's parameters: its only int64_t parameter (-1 when
// there is not exactly one).
template <class... P>
constexpr int batch_position() {
  constexpr bool is_batch[] = {std::is_same<P, int64_t>::value..., false};
  int found = -1, count = 0;
  for (int i = 0; i < int(sizeof...(P)); ++i) {
    if (is_batch[i]) {
      found = i;
      ++count;
    }
  }
  return count == 1 ? found : -1;
}

// The I-th kernel argument: the batch at position At, else the next of ``args``.
template <int At, std::size_t I, class Args>
constexpr auto& argument(Args& args, int64_t& batch) {
  if constexpr (I == std::size_t(At)) {
    return batch;
  } else if constexpr (I < std::size_t(At)) {
    return std::get<I>(args);
  } else {
    return std::get<I - 1>(args);
  }
}

}  // namespace xl_cuda
