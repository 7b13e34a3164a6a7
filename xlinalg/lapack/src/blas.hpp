// BLAS/LAPACK through function pointers set at run time (SciPy's cython_blas/cython_lapack,
// Fortran calling convention, LP64 int), and strided matrix views that let every routine run on
// row-major or column-major storage without transposing anything.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <vector>

namespace xl {

using Int = int;  // LAPACK's LP64 integer

// Allocates on 64-byte boundaries (a cache line, an AVX-512 register): MKL's dgetrf of order 256
// ran 9% slower on a matrix 16 bytes off one (malloc's alignment) than on one at a boundary.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlignment); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

// The layer's work arrays (the per-thread scratch of the entries, the routines' workspaces).
template <class T>
using Buffer = std::vector<T, CacheLineAllocator<T>>;

// ---- the pointer table ------------------------------------------------------------------------
template <class T>
struct Routines {
  void (*gemm)(const char*, const char*, const Int*, const Int*, const Int*, const T*, const T*, const Int*, const T*,
               const Int*, const T*, T*, const Int*) = nullptr;
  void (*trsm)(const char*, const char*, const char*, const char*, const Int*, const Int*, const T*, const T*,
               const Int*, T*, const Int*) = nullptr;
  void (*trmm)(const char*, const char*, const char*, const char*, const Int*, const Int*, const T*, const T*,
               const Int*, T*, const Int*) = nullptr;
  // uplo, trans, n, k, alpha, a, lda, beta, c, ldc
  void (*syrk)(const char*, const char*, const Int*, const Int*, const T*, const T*, const Int*, const T*, T*,
               const Int*) = nullptr;
  void (*potrf)(const char*, const Int*, T*, const Int*, Int*) = nullptr;
  void (*potri)(const char*, const Int*, T*, const Int*, Int*) = nullptr;
  // jobz, uplo, n, a, lda, w, work, lwork, iwork, liwork, info
  void (*syevd)(const char*, const char*, const Int*, T*, const Int*, T*, T*, const Int*, Int*, const Int*,
                Int*) = nullptr;
  void (*getrf)(const Int*, const Int*, T*, const Int*, Int*, Int*) = nullptr;                 // m, n, a, lda, ipiv, info
  void (*getri)(const Int*, T*, const Int*, const Int*, T*, const Int*, Int*) = nullptr;       // n, a, lda, ipiv, work, lwork, info
  void (*geqrf)(const Int*, const Int*, T*, const Int*, T*, T*, const Int*, Int*) = nullptr;  // m, n, a, lda, tau, work, lwork, info
  void (*orgqr)(const Int*, const Int*, const Int*, T*, const Int*, const T*, T*, const Int*,
                Int*) = nullptr;  // m, n, k, a, lda, tau, work, lwork, info
  // optional (MKL's; not in SciPy's): transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc (one
  // entry per group), group_count, group_size
  void (*gemm_batch)(const char*, const char*, const Int*, const Int*, const Int*, const T*, const T**, const Int*,
                     const T**, const Int*, const T*, T**, const Int*, const Int*, const Int*) = nullptr;
  bool complete() const {
    return gemm && trsm && trmm && syrk && potrf && potri && syevd && getrf && getri && geqrf && orgqr;
  }
};

template <class T>
Routines<T>& routines();

// The BLAS's own thread count, where the binding found its functions (OpenBLAS's
// openblas_get_num_threads / openblas_set_num_threads): SingleThreadedBlas (batch.hpp) reads and
// sets it. Without them the BLAS keeps whatever count it has.
struct BlasThreads {
  int (*get)() = nullptr;
  void (*set)(int) = nullptr;
};

inline BlasThreads& blas_threads() {
  static BlasThreads functions;
  return functions;
}

// A LAPACK workspace size returned as a float (work[0] of a query), rounded up; at least ``least``.
template <class T>
Int workspace_size(T w, Int least = 1) {
  return std::max<Int>(least, static_cast<Int>(double(w) * (1.0 + 1e-6)) + 1);
}

// ---- strided views ------------------------------------------------------------------------------
// Element (i, j) of a view lives at p[i * rs + j * cs]; every view here is column-major (rs == 1)
// or row-major (cs == 1). A row-major lower factor is a column-major upper one: the same buffer
// reads as either, and the BLAS calls below pick the flags that make it so.
template <class T>
struct View {
  T* p;
  std::ptrdiff_t rs, cs;
  T& operator()(std::ptrdiff_t i, std::ptrdiff_t j) const { return p[i * rs + j * cs]; }
  View at(std::ptrdiff_t i, std::ptrdiff_t j) const { return {&(*this)(i, j), rs, cs}; }
  View t() const { return {p, cs, rs}; }  // the transpose, same storage
  // (a row-major view with one column has rs == cs == 1 too: it counts as row-major)
  bool colmajor() const { return rs == 1 && cs != 1; }
  Int ld() const { return static_cast<Int>(std::max<std::ptrdiff_t>(1, colmajor() ? cs : rs)); }
};

template <class T>
View<T> rowmajor(T* p, std::ptrdiff_t rows, std::ptrdiff_t cols) {
  (void)rows;
  return {p, cols, 1};
}

}  // namespace xl

#include "small_gemm.hpp"
#include "small_triangular.hpp"

namespace xl {

// ---- a team for one matrix's level-3 calls ----------------------------------------------------------
// A binding that runs one matrix on several threads of its own pool sets the calling thread's team
// (TeamScope): gemm, trsm and trmm calls of at least kTeamMinFlops then run in ``size`` parts of
// independent columns (or rows) of their result, one single-threaded BLAS call each, through
// ``run``, which calls ``body(arg, i)`` for i in [0, parts) on the pool and returns when all have
// run. Without a team (the default) every call runs whole on the calling thread.
struct Team {
  int size = 1;
  void (*run)(int parts, void (*body)(void*, int), void* arg) = nullptr;
};

inline Team& team() {
  thread_local Team current;
  return current;
}

// The calling thread's team for one scope.
class TeamScope {
 public:
  explicit TeamScope(const Team& t) : saved_(team()) { team() = t; }
  ~TeamScope() { team() = saved_; }
  TeamScope(const TeamScope&) = delete;
  TeamScope& operator=(const TeamScope&) = delete;

 private:
  Team saved_;
};

// How many calls have run in parts since the library loaded (a diagnostic the tests read).
inline std::atomic<long long>& team_splits() {
  static std::atomic<long long> count{0};
  return count;
}

// Whether the BLAS is one to call whole (xl_set_blas_called_whole: torch's MKL, which threads its
// gemm and trsm on torch's OpenMP threads, the team's pool, and runs trsm and potrf at its gemm's
// rate): products, and solves with triangles of more than kSmallTriangular, go to it in one call,
// neither in the team's parts nor by halves; products from 16³ multiply-adds to it rather than to
// small_gemm; the Cholesky forward to LAPACK (cholesky.hpp); inverses from LU factors by ?getri's
// algorithm in its solves (inverse.hpp).
inline bool& blas_called_whole() {
  static bool on = false;
  return on;
}

// The BLAS's thread count for the calling thread alone (xl_set_blas_local_threads: MKL's
// MKL_Set_Num_Threads_Local, which returns the count it replaces; null for other BLAS libraries).
using LocalThreads = int (*)(int);
inline LocalThreads& blas_local_threads() {
  static LocalThreads set = nullptr;
  return set;
}

// Whether a product (m×k by k×n) of orders up to kSmallGemm runs in small_gemm: always with
// SciPy's OpenBLAS, below 16³ multiply-adds with a BLAS called whole (torch's MKL, in AVX-512 on
// the Intel CPU measured: forward+backward of 256 products of order 32, float64, 3.98 → 1.78 ms;
// 512 of order 24, float32, 1.74 → 1.27; 1024 of order 16, float32, 1.22 → 1.13, float64 even).
inline bool small_gemm_first(Int m, Int n, Int k) { return !blas_called_whole() || double(m) * n * k < 4096; }

// Below this many flops (2·m·n·k for a product, m·n·order for a triangular call) a call runs whole:
// handing parts to other threads costs a few microseconds.
constexpr double kTeamMinFlops = 1 << 21;

// A BLAS call of fewer than kTeamMinFlops on one of the BLAS's threads where it has a count for
// the calling thread (blas_local_threads): MKL spreads calls that small over all its threads at a
// loss (the Cholesky reverse's dozen calls at order 256, two threads, forward and backward against
// torch: 0.60–1.31 → 0.45–0.60). The count put back is the one MKL returns, the count in effect:
// torch.set_num_threads sets MKL's count for its calling thread in just this way, so resetting to
// MKL's global count (0) instead would step outside torch's setting.
class SmallCallOnOneThread {
 public:
  explicit SmallCallOnOneThread(double flops) : set_(flops < kTeamMinFlops ? blas_local_threads() : nullptr) {
    if (set_) saved_ = set_(1);
  }
  ~SmallCallOnOneThread() {
    if (set_) set_(saved_);
  }
  SmallCallOnOneThread(const SmallCallOnOneThread&) = delete;
  SmallCallOnOneThread& operator=(const SmallCallOnOneThread&) = delete;

 private:
  LocalThreads set_;
  int saved_ = 0;
};

// Parts are multiples of this many columns (rows): whole register blocks for the BLAS kernels.
constexpr Int kTeamQuantum = 16;

// Runs ``piece(begin, end)`` over [0, extent) in the team's parts when ``split``, the team has
// several threads and every part gets at least kTeamQuantum; whole otherwise.
template <class F>
void team_split_if(bool split, Int extent, const F& piece) {
  const Team& t = team();
  const Int parts = std::min<Int>(t.size, extent / kTeamQuantum);
  if (t.run == nullptr || parts < 2 || !split) {
    piece(Int(0), extent);
    return;
  }
  const Int step = (extent + parts - 1) / parts;
  const Int quantum_step = (step + kTeamQuantum - 1) / kTeamQuantum * kTeamQuantum;
  struct Work {
    const F* piece;
    Int extent, step;
  } work{&piece, extent, quantum_step};
  team_splits().fetch_add(1, std::memory_order_relaxed);
  const auto body = [](void* arg, int i) {
    const Work& w = *static_cast<const Work*>(arg);
    const Int begin = std::min<Int>(w.extent, Int(i) * w.step), end = std::min<Int>(w.extent, begin + w.step);
    if (begin < end) (*w.piece)(begin, end);
  };
  t.run(int(parts), body, &work);
}

// team_split_if for a call of ``flops``: split from kTeamMinFlops.
template <class F>
void team_split(Int extent, double flops, const F& piece) {
  team_split_if(flops >= kTeamMinFlops, extent, piece);
}

// Copies of at least this many values run in the team's parts (torch's grain size for its own
// copies, which run on its threads).
constexpr std::size_t kTeamMinCopy = 32768;

// dst[0, count) = src[0, count) (as memcpy), by pages of 4 KiB, in the team's parts from
// kTeamMinCopy values. Measured, torch's node, two threads, forward of gemm at order 256,
// float64 (C copied to the output): 0.29 → 0.24 ms (torch's addmm 0.25).
template <class T>
void team_copy(T* dst, const T* src, std::size_t count) {
  constexpr std::size_t page = 4096 / sizeof(T);
  team_split_if(count >= kTeamMinCopy, Int((count + page - 1) / page), [&](Int p0, Int p1) {
    const std::size_t begin = std::size_t(p0) * page, end = std::min(count, std::size_t(p1) * page);
    std::copy(src + begin, src + end, dst + begin);
  });
}

// The arguments of the column-major ?gemm call that computes C = alpha op(A) op(B) + beta C on views
// (C(m×n) stored by rows: Cᵀ = op(B)ᵀ op(A)ᵀ, the operands swapped).
template <class T>
struct GemmCall {
  char tra, trb;
  Int m, n, k, lda, ldb, ldc;
  T *a, *b, *c;
  bool swapped;  // a is B's storage and b A's
};

template <class T>
GemmCall<T> gemm_call(bool ta, View<T> a, bool tb, View<T> b, View<T> c, Int m, Int n, Int k) {
  const bool swapped = !c.colmajor();
  if (swapped) {  // Cᵀ = op(B)ᵀ op(A)ᵀ
    std::swap(a, b);
    std::swap(ta, tb);
    std::swap(m, n);
    ta = !ta;
    tb = !tb;
  }
  // a logical operand op(X) of a column-major call: stored row-major, X is the transpose of its storage
  const char tra = (ta != !a.colmajor()) ? 'T' : 'N';
  const char trb = (tb != !b.colmajor()) ? 'T' : 'N';
  return {tra, trb, m, n, k, a.ld(), b.ld(), c.ld(), a.p, b.p, c.p, swapped};
}

// C(m×n) = alpha op(A) op(B) + beta C, on the calling thread (small orders without the BLAS)
template <class T>
void gemm_whole(bool ta, View<T> a, bool tb, View<T> b, T alpha, T beta, View<T> c, Int m, Int n, Int k) {
  if (m == 0 || n == 0) return;
  if (small_gemm_first(m, n, k) && small_gemm<T>(ta, a, tb, b, alpha, beta, c, m, n, k)) return;
  const GemmCall<T> g = gemm_call(ta, a, tb, b, c, m, n, k);
  if (k == 0 || alpha == T(0)) {
    // The BLAS's rule: C = beta C, reading neither A nor B (an OpenBLAS's small-matrix kernels
    // multiply them all the same, so NaN or inf in them would reach C), and no zero-size call.
    for (Int j = 0; j < g.n; ++j)
      for (Int i = 0; i < g.m; ++i) {
        T& x = g.c[i + std::ptrdiff_t(j) * g.ldc];
        x = beta == T(0) ? T(0) : beta * x;
      }
    return;
  }
  const SmallCallOnOneThread one(2.0 * m * n * k);
  routines<T>().gemm(&g.tra, &g.trb, &g.m, &g.n, &g.k, &alpha, g.a, &g.lda, g.b, &g.ldb, &beta, g.c, &g.ldc);
}

// C(m×n) = alpha op(A) op(B) + beta C: in the team's parts of C's columns when C is stored by
// columns, of its rows when stored by rows (each part writes one contiguous block; the other way
// when that extent is too short to split).
template <class T>
void gemm(bool ta, View<T> a, bool tb, View<T> b, T alpha, T beta, View<T> c, Int m, Int n, Int k) {
  if (blas_called_whole()) return gemm_whole<T>(ta, a, tb, b, alpha, beta, c, m, n, k);
  const double flops = 2.0 * m * n * k;
  const bool by_columns = c.colmajor() ? n >= 2 * kTeamQuantum : m < 2 * kTeamQuantum;
  if (by_columns) {
    team_split(n, flops, [&](Int j0, Int j1) {
      gemm_whole<T>(ta, a, tb, tb ? b.at(j0, 0) : b.at(0, j0), alpha, beta, c.at(0, j0), m, j1 - j0, k);
    });
  } else {
    team_split(m, flops, [&](Int i0, Int i1) {
      gemm_whole<T>(ta, ta ? a.at(0, i0) : a.at(i0, 0), tb, b, alpha, beta, c.at(i0, 0), i1 - i0, n, k);
    });
  }
}

// Whether ``batch`` products C_i = alpha op(A_i) op(B_i) + beta C_i of these orders run in one
// ?gemm_batch call (gemm_each): the BLAS has one (MKL's) and would take each product anyway.
template <class T>
bool gemm_batch_applies(std::int64_t batch, Int m, Int n, Int k) {
  return routines<T>().gemm_batch && batch > 1 && m > 0 && n > 0 && k > 0 && !small_gemm_first(m, n, k) &&
         batch <= std::int64_t(std::numeric_limits<Int>::max());
}

// C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch, entry i's views at a.p + i·sa, b.p + i·sb,
// c.p + i·sc: in one ?gemm_batch call where gemm_batch_applies (and alpha ≠ 0), else one gemm
// each. MKL's per-call work (its kernel choice, its thread count) is then done once for the batch.
template <class T>
void gemm_each(std::int64_t batch, bool ta, View<T> a, std::ptrdiff_t sa, bool tb, View<T> b, std::ptrdiff_t sb,
               T alpha, T beta, View<T> c, std::ptrdiff_t sc, Int m, Int n, Int k) {
  if (alpha == T(0) || !gemm_batch_applies<T>(batch, m, n, k)) {
    for (std::int64_t i = 0; i < batch; ++i)
      gemm<T>(ta, {a.p + i * sa, a.rs, a.cs}, tb, {b.p + i * sb, b.rs, b.cs}, alpha, beta, {c.p + i * sc, c.rs, c.cs}, m, n, k);
    return;
  }
  const GemmCall<T> g = gemm_call(ta, a, tb, b, c, m, n, k);
  if (g.swapped) std::swap(sa, sb);
  std::vector<T*> pointers(3 * std::size_t(batch));
  for (std::int64_t i = 0; i < batch; ++i) {
    pointers[i] = g.a + i * sa;
    pointers[batch + i] = g.b + i * sb;
    pointers[2 * batch + i] = g.c + i * sc;
  }
  const Int groups = 1, size = Int(batch);
  const SmallCallOnOneThread one(2.0 * m * n * k * double(batch));
  routines<T>().gemm_batch(&g.tra, &g.trb, &g.m, &g.n, &g.k, &alpha, const_cast<const T**>(pointers.data()), &g.lda,
                           const_cast<const T**>(pointers.data() + batch), &g.ldb, &beta, pointers.data() + 2 * batch,
                           &g.ldc, &groups, &size);
}

// Rows per block of the routines that compute one triangle of an n×n result (at most 8 blocks:
// few BLAS calls, and the diagonal blocks' wasted half stays small).
inline Int triangle_block(Int n) { return std::max<Int>(64, n / 8); }

// One triangle of C (n×n: i ≥ j when ``lower``, else i ≤ j) of alpha op(A) op(B) + beta C, by
// blocks of rows, each one gemm over the columns its rows reach: about half the flops of the whole
// product. The other triangle is partly written (inside the diagonal blocks): callers mask it.
template <class T>
void gemm_triangle(bool lower, bool ta, View<T> a, bool tb, View<T> b, T alpha, T beta, View<T> c, Int n, Int k) {
  const Int block = triangle_block(n);
  for (Int r0 = 0; r0 < n; r0 += block) {
    const Int r1 = std::min(n, r0 + block), c0 = lower ? 0 : r0, c1 = lower ? r1 : n;
    const View<T> rows = ta ? a.at(0, r0) : a.at(r0, 0), cols = tb ? b.at(c0, 0) : b.at(0, c0);
    gemm<T>(ta, rows, tb, cols, alpha, beta, c.at(r0, c0), r1 - r0, c1 - c0, k);
  }
}

// One triangular solve or product on B (m×n) in place, on the calling thread: small_triangular when
// the triangle's order is at most kSmallTriangular (32), on B's other dimension in parts of at most
// that many, else one BLAS call.
template <class T>
void triangular_call(bool solve, bool left, bool lower, bool trans, bool unit, Int m, Int n, T alpha, View<T> a,
                     View<T> b) {
  if (m == 0 || n == 0) return;
  if ((left ? m : n) <= kSmallTriangular) {
    const Int other = left ? n : m;
    for (Int p0 = 0; p0 < other; p0 += kSmallTriangular) {
      const Int p = std::min<Int>(kSmallTriangular, other - p0);
      if (left)
        small_triangular(solve, left, lower, trans, unit, m, p, alpha, a, b.at(0, p0));
      else
        small_triangular(solve, left, lower, trans, unit, p, n, alpha, a, b.at(p0, 0));
    }
    return;
  }
  if (!b.colmajor()) {  // X op(A) = B  <=>  op(A)ᵀ Xᵀ = Bᵀ
    left = !left;
    trans = !trans;
    std::swap(m, n);
  }
  if (!a.colmajor()) {  // the stored column-major matrix is Aᵀ
    lower = !lower;
    trans = !trans;
  }
  const char side = left ? 'L' : 'R', uplo = lower ? 'L' : 'U', tr = trans ? 'T' : 'N', diag = unit ? 'U' : 'N';
  // (a view of one row or column has no stride between them to tell: any ld ≥ m is right)
  const Int lda = a.ld(), ldb = std::max(b.ld(), m);
  auto fn = solve ? routines<T>().trsm : routines<T>().trmm;
  const SmallCallOnOneThread one(double(m) * n * (left ? m : n));
  fn(&side, &uplo, &tr, &diag, &m, &n, &alpha, a.p, &lda, b.p, &ldb);
}

// Orders up to which a triangular solve is one call of triangular_call. Larger ones split the
// triangle in halves (recursively) and update the second half of B with one gemm, which OpenBLAS
// runs at a higher rate per flop than its trsm; the leaves, of order kSmallTriangular, run without
// the BLAS. One thread, B n×n: on an AMD CPU leaves of 128 (BLAS trsm) against none, float64 8–19%
// less time at n = 256 and 1024; on an Intel CPU whose OpenBLAS trsm runs at a third of its gemm's
// rate, leaves of 64 against 128 (both BLAS) 26% and 16% less (float32 11% and 12%), leaves of 32
// without the BLAS against 64 another 10–30% at n = 128–1024 in both dtypes.
constexpr Int kSolveBlock = kSmallTriangular;

// B (m×n) ← alpha M⁻¹ B for the triangular M (m×m; lower when ``lower``), by halves of M.
template <class T>
void solve_by_halves(bool lower, bool unit, Int m, Int n, T alpha, View<T> a, View<T> b) {
  if (m <= kSolveBlock) {
    triangular_call<T>(true, true, lower, false, unit, m, n, alpha, a, b);
    return;
  }
  const Int m1 = m / 2, m2 = m - m1;
  const View<T> b2 = b.at(m1, 0);
  if (lower) {  // X₁ = M₁₁⁻¹ αB₁, X₂ = M₂₂⁻¹ (αB₂ − M₂₁ X₁)
    solve_by_halves(lower, unit, m1, n, alpha, a, b);
    gemm_whole<T>(false, a.at(m1, 0), false, b, T(-1), alpha, b2, m2, n, m1);
    solve_by_halves(lower, unit, m2, n, T(1), a.at(m1, m1), b2);
  } else {  // X₂ = M₂₂⁻¹ αB₂, X₁ = M₁₁⁻¹ (αB₁ − M₁₂ X₂)
    solve_by_halves(lower, unit, m2, n, alpha, a.at(m1, m1), b2);
    gemm_whole<T>(false, a.at(0, m1), false, b2, T(-1), alpha, b, m1, n, m2);
    solve_by_halves(lower, unit, m1, n, T(1), a, b);
  }
}

// Triangular solve or product on B (m×n) in place, on the calling thread: a solve from the right
// is one from the left on Bᵀ, with M = op(A) read through a transposed view where ``trans``.
template <class T>
void triangular_whole(bool solve, bool left, bool lower, bool trans, bool unit, Int m, Int n, T alpha, View<T> a,
                      View<T> b) {
  if (!solve) {
    triangular_call(solve, left, lower, trans, unit, m, n, alpha, a, b);
    return;
  }
  if (!left) {  // X op(A) = αB  <=>  op(A)ᵀ Xᵀ = αBᵀ
    b = b.t();
    std::swap(m, n);
    trans = !trans;
  }
  solve_by_halves(lower != trans, unit, m, n, alpha, trans ? a.t() : a, b);
}

// Triangular solve or product on B (m×n) in place: op(A)⁻¹ or op(A) from the left (``left``) or right;
// A's diagonal is taken as ones when ``unit``. In the team's parts of B's columns (from the left)
// or rows (from the right), which the operation keeps apart.
template <class T>
void triangular(bool solve, bool left, bool lower, bool trans, bool unit, Int m, Int n, T alpha, View<T> a, View<T> b) {
  if (solve && blas_called_whole() && (left ? m : n) > kSmallTriangular)
    return triangular_call<T>(solve, left, lower, trans, unit, m, n, alpha, a, b);
  const double flops = double(m) * n * (left ? m : n);
  if (left) {
    team_split(n, flops, [&](Int j0, Int j1) {
      triangular_whole<T>(solve, left, lower, trans, unit, m, j1 - j0, alpha, a, b.at(0, j0));
    });
  } else {
    team_split(m, flops, [&](Int i0, Int i1) {
      triangular_whole<T>(solve, left, lower, trans, unit, i1 - i0, n, alpha, a, b.at(i0, 0));
    });
  }
}

template <class T>
void triangular(bool solve, bool left, bool lower, bool trans, Int m, Int n, T alpha, View<T> a, View<T> b) {
  triangular(solve, left, lower, trans, false, m, n, alpha, a, b);
}

template <class T>
void trsm(bool left, bool lower, bool trans, Int m, Int n, T alpha, View<T> a, View<T> b) {
  triangular(true, left, lower, trans, m, n, alpha, a, b);
}

template <class T>
void trmm(bool left, bool lower, bool trans, Int m, Int n, T alpha, View<T> a, View<T> b) {
  triangular(false, left, lower, trans, m, n, alpha, a, b);
}

// LAPACK's uplo for the lower (``lower``) triangle of a view
template <class T>
char uplo(View<T> a, bool lower) {
  return (lower == a.colmajor()) ? 'L' : 'U';
}

}  // namespace xl
