// The per-matrix algorithms of the GPU kernel layer: one call computes one batch entry, so that a
// kernel runs one thread per matrix and the CPU library runs the same code in a loop.
//
// xl::hd::<name>_entry<T>(layout, e, args...) is batch entry e of the entry <name> of entries.def:
// the arrays are the whole batch and each function finds entry e's part through ``layout``
// (Packed: row-major (batch, rows, cols), as the CPU entries take them; Interleaved: the same
// arrays transposed to (rows, cols, batch); Staged: packed arrays copied into shared memory, see
// below). Per-entry scalars (status, sumlogdiag's value and cotangent) are (batch,) arrays read
// and written directly, in every layout. The semantics are those of the CPU entries
// xl_<name>_<f32|f64> of xlinalg.h:
//
//   * only the named triangle of a triangular or symmetric argument is read (``lower``, or bit 2
//     of the trsm/trmm ``flags``); the other one may hold anything, NaN included;
//   * every output element is written: factors with zeros in their unused triangle, symmetric
//     results in full;
//   * status[e] is 0, or 1 when the entry failed (not positive definite, singular, not finite),
//     and then every element of the entry's outputs is NaN;
//   * gradients are projected onto each argument's structure: symmetric for potrf's A, masked
//     to the named triangle (zeros in the other) for a factor or a triangular matrix, diagonal
//     for sumlogdiag.
//
// Everything is plain loops in T (float accumulates in float): no heap, no recursion, no library
// call, only hd.h included (NVRTC). Most entries work in place on their outputs and need no
// scratch; potrs_vjp and potri_vjp keep vectors of kMaxOrder entries, and for a larger order they
// write NaN. Orders above kMaxOrder are the caller's to route elsewhere (one thread per matrix is
// the wrong shape for them anyway).
//
// Factors: a row-major lower factor L is the view (rs, cs) = (n, 1) of its buffer; a row-major
// upper factor U = Lᵀ is the view (1, n) of L, so every Cholesky routine below works on L only.
// Triangular matrices: an upper triangular M read with rows and columns in reverse order is lower
// triangular, so one forward substitution and one lower product serve all eight trsm/trmm cases.
#pragma once

#include "hd.h"

namespace xl {
namespace hd {
namespace detail {

// Batch entry e's part of an array: its element q at p[q * u].
template <class T>
struct Ptr {
  T* p;
  int64_t u;
  XL_HD T& operator[](int64_t q) const { return p[q * u]; }
};

}  // namespace detail

// Where batch entry e's elements are, in an array holding ``size`` elements per entry.
// Packed: entry after entry, element q of entry e at e·size + q (row-major (batch, ...) arrays).
// Interleaved: element by element, element q of entry e at q·batch + e (the transpose of the
// packed array): the threads of a warp, on consecutive entries, read and write consecutive
// addresses at every step of the per-matrix loops.
struct Packed {
  XL_HD explicit Packed(int64_t) {}
  template <class T>
  XL_HD detail::Ptr<T> at(T* p, int64_t e, int64_t size) const {
    return detail::Ptr<T>{p + e * size, 1};
  }
};
struct Interleaved {
  int64_t batch;
  XL_HD explicit Interleaved(int64_t batch_) : batch(batch_) {}
  template <class T>
  XL_HD detail::Ptr<T> at(T* p, int64_t e, int64_t) const {
    return detail::Ptr<T>{p + e, batch};
  }
};

// Staged: the arrays of a group of up to kStageGroup consecutive batch entries (a warp's on the
// device, one thread per entry) are copied into a staging area (shared memory) and the
// per-matrix code runs on those copies; the outputs are copied back when the entry returns
// (stage_finish). Global memory is read and written once, the group's threads on consecutive
// addresses (packed arrays: entry after entry); in the area, element q of the group's entry l is
// at q·s + l with s = count | 1 (odd), so that the threads, at the same q, hit distinct banks.
// Every array an entry reaches through at() is staged, inputs (const) copied in at the call, in
// the order of the calls: the calls must be the same, in the same order, on every thread of the
// group (the entries of this file make them first, before any branch on data). The area holds
// ``capacity`` bytes: the caller sizes it from the arrays' elements per batch entry (at most
// kStageMaxBytes per group), and an entry that asks for more stops the kernel (a trap).
constexpr int kStageGroup = 32;
constexpr int64_t kStageMaxBytes = 98304;  // 96 KiB: shared memory a block may have from sm_70 on
constexpr int kStageOutputs = 4;           // outputs an entry may stage
// Launches: up to kStageWarps warps per block while their areas fit in kStageBlockBytes (what a
// block may have without asking), else one warp per block.
constexpr int kStageWarps = 4;
constexpr int64_t kStageBlockBytes = 49152;

// The bytes of a group's staging area for ``stage`` elements per batch entry of ``itemsize`` bytes.
XL_HD int64_t stage_capacity(int stage, int itemsize) { return int64_t(stage) * (kStageGroup | 1) * itemsize; }
// The warps per block of a staged launch whose groups need ``capacity`` bytes each.
XL_HD int stage_warps(int64_t capacity) {
  const int64_t fit = capacity > 0 ? kStageBlockBytes / capacity : kStageWarps;
  return fit < 1 ? 1 : fit > kStageWarps ? kStageWarps : int(fit);
}

// The entries of the group from batch entry ``first``: kStageGroup, fewer for the batch's last.
XL_HD int stage_count(int64_t batch, int64_t first) {
  return int(batch - first < kStageGroup ? batch - first : kStageGroup);
}

// What one thread of a group has staged (its own copy on the device; the group's on the CPU).
struct StageState {
  unsigned char* area;
  int64_t capacity, used = 0;
  int outputs = 0;
  struct Output {
    void* global;
    int64_t offset, size;  // bytes into the area; elements per batch entry
  } output[kStageOutputs];
#if !defined(__CUDA_ARCH__)
  // CPU: the calls of the group's first entry, which the others must repeat (±size: input/output)
  int calls = 0, checked = 0;
  int64_t call[16];
#endif
  XL_HD StageState(unsigned char* area_, int64_t capacity_) : area(area_), capacity(capacity_) {}
  // a thread of the group starts: nothing of the area is its yet (the CPU runs them in turn)
  XL_HD void start() {
    used = 0, outputs = 0;
#if !defined(__CUDA_ARCH__)
    checked = 0;
#endif
  }
};

namespace detail {
[[noreturn]] XL_HD void layout_failure(const char* what) {
#if defined(__CUDA_ARCH__)
  (void)what;
  __trap();
#else
  std::fprintf(stderr, "xlinalg: per-matrix layout: %s\n", what);
  std::abort();
#endif
}

// The elements i = first, first + step, ... below count · size of a group's part of a packed
// array (entry i / size, element i % size), and their places in its staging area (element q of
// entry l at q·s + l, s = count | 1). On the device the group's threads share them (first: the
// lane, step: count); on the CPU one call does all (0, 1). Sizes fit an int: the area holds at
// most kStageMaxBytes.
struct StageCopy {
  int first, step, count, size;
  XL_HD int end() const { return count * size; }
  XL_HD int staged(int i) const {
    const int l = i / size;
    return (i - l * size) * (count | 1) + l;
  }
};

template <class T>
XL_HD void stage_in(StageCopy c, const T* global, T* area) {
  for (int i = c.first; i < c.end(); i += c.step) area[c.staged(i)] = global[i];
}
template <class T>
XL_HD void stage_out(StageCopy c, const T* area, T* global) {
  for (int i = c.first; i < c.end(); i += c.step) global[i] = area[c.staged(i)];
}
}  // namespace detail

struct Staged {
  StageState* st;
  int64_t first;    // the group's first batch entry
  int lane, count;  // this thread's entry in the group, the group's entries
  XL_HD Staged(StageState* state, int64_t first_, int lane_, int count_) : st(state), first(first_), lane(lane_), count(count_) {}
  XL_HD unsigned mask() const { return count >= 32 ? 0xffffffffu : (1u << count) - 1u; }
  // the copies of arrays of ``size`` elements per entry (the CPU's are the group's first thread's)
  XL_HD detail::StageCopy copies(int64_t size) const {
#if defined(__CUDA_ARCH__)
    return {lane, count, count, int(size)};
#else
    return {lane == 0 ? 0 : count * int(size), 1, count, int(size)};
#endif
  }

  template <class T>
  XL_HD detail::Ptr<const T> at(const T* p, int64_t, int64_t size) {
    T* region = claim<T>(size, false);
    detail::stage_in(copies(size), p + first * size, region);
#if defined(__CUDA_ARCH__)
    __syncwarp(mask());
#endif
    return detail::Ptr<const T>{region + lane, count | 1};
  }
  template <class T>
  XL_HD detail::Ptr<T> at(T* p, int64_t, int64_t size) {
    const int64_t offset = st->used;
    T* region = claim<T>(size, true);
    if (st->outputs == kStageOutputs) detail::layout_failure("more outputs than kStageOutputs");
    st->output[st->outputs++] = {static_cast<void*>(p), offset, size};
    return detail::Ptr<T>{region + lane, count | 1};
  }

 private:
  template <class T>
  XL_HD T* claim(int64_t size, bool output) {
    const int64_t bytes = size * (count | 1) * int64_t(sizeof(T));
    if (size < 0 || st->used + bytes > st->capacity) detail::layout_failure("the staging area is too small");
#if !defined(__CUDA_ARCH__)
    const int64_t call = output ? -size - 1 : size;
    if (lane > 0) {
      if (st->checked >= st->calls || st->call[st->checked++] != call) detail::layout_failure("the group's entries stage different arrays");
    } else if (st->calls == 16) {
      detail::layout_failure("more than 16 arrays");
    } else {
      st->call[st->calls++] = call;
    }
#else
    (void)output;
#endif
    T* region = reinterpret_cast<T*>(st->area + st->used);
    st->used += bytes;
    return region;
  }
};

// The group's outputs copied back to global memory, after every entry of it returned (on the
// CPU: once, after the last, through the group's first thread's layout).
template <class T>
XL_HD void stage_finish(const Staged& g) {
#if defined(__CUDA_ARCH__)
  __syncwarp(g.mask());
#endif
  for (int k = 0; k < g.st->outputs; ++k) {
    const StageState::Output& o = g.st->output[k];
    detail::stage_out(g.copies(o.size), reinterpret_cast<const T*>(g.st->area + o.offset), static_cast<T*>(o.global) + g.first * o.size);
  }
}

namespace detail {

// Element (i, j) at p[i * rs + j * cs]; strides may be negative (reversed order).
template <class T>
struct Strided {
  T* p;
  int64_t rs, cs;
  XL_HD T& operator()(int64_t i, int64_t j) const { return p[i * rs + j * cs]; }
  XL_HD Strided t() const { return Strided{p, cs, rs}; }  // the transpose, same storage
  // an m×m matrix with rows and columns in reverse order (m ≥ 1)
  XL_HD Strided reversed(int64_t m) const { return Strided{p + (m - 1) * (rs + cs), -rs, -cs}; }
  // an m×k matrix with its rows in reverse order (m ≥ 1)
  XL_HD Strided rows_reversed(int64_t m) const { return Strided{p + (m - 1) * rs, -rs, cs}; }
};

template <class T>
XL_HD Strided<T> rows_of(Ptr<T> m, int64_t cols) {  // a row-major matrix
  return Strided<T>{m.p, cols * m.u, m.u};
}

// The lower factor L of a row-major matrix holding L (``lower``) or U = Lᵀ.
template <class T>
XL_HD Strided<T> factor(Ptr<T> m, int n, bool lower) {
  return lower ? Strided<T>{m.p, n * m.u, m.u} : Strided<T>{m.p, m.u, n * m.u};
}

template <class T>
XL_HD bool finite(T x) {
  return x - x == T(0);  // false for ±inf and NaN
}

template <class T>
XL_HD void fill(Ptr<T> p, int64_t count, T value) {
  XL_UNROLL for (int64_t i = 0; i < count; ++i) p[i] = value;
}

template <class T>
XL_HD bool all_finite(Ptr<T> p, int64_t count) {
  bool ok = true;
  for (int64_t i = 0; i < count; ++i) ok = ok && finite(p[i]);
  return ok;
}

// the triangle i ≥ j (``lower``) or i ≤ j of an n×n view, finite
template <class T>
XL_HD bool triangle_finite(Strided<const T> a, int n, bool lower) {
  bool ok = true;
  for (int i = 0; i < n; ++i)
    for (int j = lower ? 0 : i; j < (lower ? i + 1 : n); ++j) ok = ok && finite(a(i, j));
  return ok;
}

// zeros in the strict upper triangle of an n×n view
template <class T>
XL_HD void zero_upper(Strided<T> a, int n) {
  XL_UNROLL for (int i = 0; i < n; ++i)
    XL_UNROLL for (int j = i + 1; j < n; ++j) a(i, j) = T(0);
}

// X ← L⁻¹ X, L n×n lower triangular (only i ≥ j read), X n×k: forward substitution, n²k flops.
template <class T>
XL_HD void solve_lower(Strided<const T> l, Strided<T> x, int n, int k) {
  for (int c = 0; c < k; ++c)
    for (int i = 0; i < n; ++i) {
      T s = x(i, c);
      for (int p = 0; p < i; ++p) s -= l(i, p) * x(p, c);
      x(i, c) = s / l(i, i);
    }
}

// X ← L X, L lower triangular: from the last row up (each row needs the rows above unchanged).
template <class T>
XL_HD void multiply_lower(Strided<const T> l, Strided<T> x, int n, int k) {
  for (int c = 0; c < k; ++c)
    for (int i = n - 1; i >= 0; --i) {
      T s = l(i, i) * x(i, c);
      for (int p = 0; p < i; ++p) s += l(i, p) * x(p, c);
      x(i, c) = s;
    }
}

// X ← M⁻¹ X for M triangular, lower or upper (an upper M in reverse order is lower)
template <class T>
XL_HD void solve_triangular(Strided<const T> m, bool lower, Strided<T> x, int n, int k) {
  if (n == 0) return;
  if (lower)
    solve_lower(m, x, n, k);
  else
    solve_lower(m.reversed(n), x.rows_reversed(n), n, k);
}

// X ← M X for M triangular, lower or upper
template <class T>
XL_HD void multiply_triangular(Strided<const T> m, bool lower, Strided<T> x, int n, int k) {
  if (n == 0) return;
  if (lower)
    multiply_lower(m, x, n, k);
  else
    multiply_lower(m.reversed(n), x.rows_reversed(n), n, k);
}

// A trsm/trmm problem as one on the left: E X̃ = α B̃ (solve) or X̃ = α E B̃ (product), E n×n and
// X̃, B̃ n×k. From the left (op(A) X = α B) E = op(A), X̃ = X; from the right (X op(A) = α B)
// E = op(A)ᵀ, X̃ = Xᵀ. E is A or Aᵀ, and its triangle that holds A's read one is ``lower``.
struct Triangular {
  int n, k;
  bool transposed;  // E = Aᵀ
  bool lower;       // E is lower triangular
  bool rightside;
  int cols;  // the row-major rows×cols operands' row stride
  XL_HD Triangular(int flags, int rows, int cols_) : cols(cols_) {
    const bool transpose = flags & 1, lower_a = (flags & 4) != 0;
    rightside = (flags & 2) != 0;
    n = rightside ? cols : rows;
    k = rightside ? rows : cols;
    transposed = transpose != rightside;
    lower = lower_a != transposed;
  }
  template <class T>
  XL_HD Strided<T> e(Ptr<T> a) const {  // E, from A (or the same view of Ā)
    const Strided<T> v = rows_of(a, n);
    return transposed ? v.t() : v;
  }
  template <class T>
  XL_HD Strided<T> tilde(Ptr<T> b) const {  // X̃ (n×k), from a rows×cols matrix
    return rightside ? Strided<T>{b.p, b.u, cols * b.u} : Strided<T>{b.p, cols * b.u, b.u};
  }
  // (i, j) in E's triangle
  XL_HD bool in_triangle(int i, int j) const { return lower ? j <= i : j >= i; }
};

}  // namespace detail

// ---- potrf --------------------------------------------------------------------------------------
// out = the Cholesky factor of the symmetric matrix whose ``lower`` (or upper) triangle is a's:
// L with A = L Lᵀ, or U = Lᵀ, zeros in the other triangle. Left-looking, by columns, in place on
// the read triangle copied into out; n³/3 flops. Fails (out NaN, status 1) when a pivot is not
// positive or not finite: a non-finite element of the read triangle always reaches a pivot.
template <class T, class Layout>
XL_HD void potrf_entry(Layout lay, int64_t e, int lower, int n, const T* a_, T* out_, int32_t* status) {
  using namespace detail;
  const int64_t size = int64_t(n) * n;
  const auto a = lay.at(a_, e, size);
  const auto out = lay.at(out_, e, size);
  const Strided<const T> av = factor(a, n, lower);
  const Strided<T> l = factor(out, n, lower);
  XL_UNROLL for (int i = 0; i < n; ++i)
    XL_UNROLL for (int j = 0; j <= i; ++j) l(i, j) = av(i, j);
  bool ok = true;
  XL_UNROLL for (int j = 0; j < n && ok; ++j) {
    T sq = T(0);
    XL_UNROLL for (int p = 0; p < j; ++p) sq += l(j, p) * l(j, p);
    const T d2 = l(j, j) - sq;
    if (!(d2 > T(0))) {  // also NaN
      ok = false;
      break;
    }
    const T d = xl_sqrt(d2);
    ok = finite(d);
    l(j, j) = d;
    XL_UNROLL for (int i = j + 1; i < n; ++i) {
      T dot = T(0);
      XL_UNROLL for (int p = 0; p < j; ++p) dot += l(i, p) * l(j, p);
      l(i, j) = (l(i, j) - dot) / d;
    }
  }
  status[e] = !ok;
  if (!ok) {
    fill(out, size, quiet_nan<T>());
    return;
  }
  zero_upper(l, n);
}

// Ā = Φ-based reverse of potrf (Murray 2016, unblocked): from the factor f and its cotangent g
// (their named triangles), the symmetric gradient: ga_ii = Ā_ii, ga_ij = ga_ji = Ā_ij / 2 for
// i > j, Ā being the gradient with respect to the lower triangle of A (each off-diagonal element
// standing for both of its triangles). The forward's columns are undone from the last, in place on
// the copy of ḡ's triangle in ga; about 2n³/3 flops.
template <class T, class Layout>
XL_HD void potrf_vjp_entry(Layout lay, int64_t e, int lower, int n, const T* f_, const T* g_, T* ga_) {
  using namespace detail;
  const int64_t size = int64_t(n) * n;
  const auto f = lay.at(f_, e, size);
  const auto g = lay.at(g_, e, size);
  const auto ga = lay.at(ga_, e, size);
  const Strided<const T> l = factor(f, n, lower), gl = factor(g, n, lower);
  const Strided<T> a = factor(ga, n, lower);
  XL_UNROLL for (int i = 0; i < n; ++i)
    XL_UNROLL for (int j = 0; j <= i; ++j) a(i, j) = gl(i, j);
  XL_UNROLL for (int j = n - 1; j >= 0; --j) {
    const T ljj = l(j, j);
    T ajj = a(j, j);
    XL_UNROLL for (int i = j + 1; i < n; ++i) {  // L_ij = (A_ij − Σ_p L_ip L_jp) / L_jj
      const T t = a(i, j) / ljj;
      a(i, j) = t;
      ajj -= t * l(i, j);
      XL_UNROLL for (int p = 0; p < j; ++p) a(i, p) -= t * l(j, p);
      XL_UNROLL for (int p = 0; p < j; ++p) a(j, p) -= t * l(i, p);
    }
    const T s = ajj / (T(2) * ljj);  // L_jj = √(A_jj − Σ_p L_jp²)
    a(j, j) = s;
    XL_UNROLL for (int p = 0; p < j; ++p) a(j, p) -= T(2) * s * l(j, p);
  }
  XL_UNROLL for (int i = 0; i < n; ++i)
    XL_UNROLL for (int j = 0; j < i; ++j) a(j, i) = a(i, j) = a(i, j) * T(0.5);
}

// ---- potrs --------------------------------------------------------------------------------------
// out (n×k) = A⁻¹ B with A = L Lᵀ, L from f's named triangle: L Y = B, then Lᵀ X = Y, in place
// on out; 2n²k flops. Fails (out NaN) when X is not finite or, with k = 0, when L's read
// triangle is not.
template <class T, class Layout>
XL_HD void potrs_entry(Layout lay, int64_t e, int lower, int n, int k, const T* f_, const T* b_, T* out_, int32_t* status) {
  using namespace detail;
  const int64_t size = int64_t(n) * n, sizeb = int64_t(n) * k;
  const auto f = lay.at(f_, e, size);
  const auto b = lay.at(b_, e, sizeb);
  const auto out = lay.at(out_, e, sizeb);
  const Strided<const T> l = factor(f, n, lower);
  for (int64_t i = 0; i < sizeb; ++i) out[i] = b[i];
  const Strided<T> x = rows_of(out, k);
  solve_triangular(l, true, x, n, k);
  solve_triangular(l.t(), false, x, n, k);
  const bool ok = k > 0 ? all_finite(out, sizeb) : triangle_finite(l, n, true);
  status[e] = !ok;
  if (!ok) fill(out, sizeb, quiet_nan<T>());
}

// B̄ = A⁻¹ Ḡ and L̄ = −tril(B̄ Yᵀ + X Zᵀ) with Y = L⁻¹ B, Z = L⁻¹ Ḡ (Y solved from B rather than
// multiplied back from X, whose error is of order κ(A)). One right-hand side column at a time:
// y, z (n-vectors) by forward substitution, b̄ = L⁻ᵀ z written to gb, and the rank-2 update of
// L̄'s triangle in gf (zeros in the other one); 5n²k flops.
template <class T, class Layout>
XL_HD void potrs_vjp_entry(Layout lay, int64_t e, int lower, int n, int k, const T* f_, const T* b_, const T* x_, const T* g_, T* gf_,
                           T* gb_) {
  using namespace detail;
  const int64_t size = int64_t(n) * n, sizeb = int64_t(n) * k;
  const auto f = lay.at(f_, e, size);
  const auto gf = lay.at(gf_, e, size);
  const auto b = lay.at(b_, e, sizeb);
  const auto x = lay.at(x_, e, sizeb);
  const auto g = lay.at(g_, e, sizeb);
  const auto gb = lay.at(gb_, e, sizeb);
  if (n > kMaxOrder) {
    fill(gf, size, quiet_nan<T>());
    fill(gb, sizeb, quiet_nan<T>());
    return;
  }
  const Strided<const T> l = factor(f, n, lower);
  const Strided<const T> bv = rows_of(b, k), xv = rows_of(x, k), gv = rows_of(g, k);
  const Strided<T> gl = factor(gf, n, lower), gbv = rows_of(gb, k);
  fill(gf, size, T(0));
  T y[kMaxOrder], z[kMaxOrder];
  const Strided<T> yv{y, 1, 1}, zv{z, 1, 1};
  for (int c = 0; c < k; ++c) {
    for (int i = 0; i < n; ++i) {
      y[i] = bv(i, c);
      z[i] = gv(i, c);
    }
    solve_lower(l, yv, n, 1);
    solve_lower(l, zv, n, 1);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j <= i; ++j) gl(i, j) -= xv(i, c) * z[j];
    solve_triangular(l.t(), false, zv, n, 1);  // z ← b̄ = L⁻ᵀ z
    for (int i = 0; i < n; ++i) {
      gbv(i, c) = z[i];
      for (int j = 0; j <= i; ++j) gl(i, j) -= z[i] * y[j];
    }
  }
}

// ---- potri --------------------------------------------------------------------------------------
// out = (L Lᵀ)⁻¹ in full, L from f's named triangle: W = L⁻¹ in place (columns from the last,
// each row of a column from the bottom), then the lower triangle of Wᵀ W in place (rows from
// the first, each row's diagonal last), mirrored; 2n³/3 flops. Fails (out NaN) when the result
// is not finite (a zero or non-finite element of L's read triangle).
template <class T, class Layout>
XL_HD void potri_entry(Layout lay, int64_t e, int lower, int n, const T* f_, T* out_, int32_t* status) {
  using namespace detail;
  const int64_t size = int64_t(n) * n;
  const auto f = lay.at(f_, e, size);
  const auto out = lay.at(out_, e, size);
  const Strided<const T> fv = factor(f, n, lower);
  const Strided<T> w = factor(out, n, lower);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) w(i, j) = fv(i, j);
  for (int j = n - 1; j >= 0; --j) {  // W_ij = −(Σ_{p=j+1..i} W_ip L_pj) / L_jj
    const T djj = T(1) / w(j, j);
    for (int i = n - 1; i > j; --i) {
      T s = T(0);
      for (int p = j + 1; p <= i; ++p) s += w(i, p) * w(p, j);
      w(i, j) = -s * djj;
    }
    w(j, j) = djj;
  }
  for (int i = 0; i < n; ++i) {  // (Wᵀ W)_ij = Σ_{p ≥ i} W_pi W_pj, j ≤ i
    for (int j = 0; j <= i; ++j) {
      T s = T(0);
      for (int p = i; p < n; ++p) s += w(p, i) * w(p, j);
      w(i, j) = s;
    }
  }
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < i; ++j) w(j, i) = w(i, j);
  const bool ok = all_finite(out, size);
  status[e] = !ok;
  if (!ok) fill(out, size, quiet_nan<T>());
}

// L̄ = −tril(X S L⁻ᵀ), S = Ḡ + Ḡᵀ, X = (L Lᵀ)⁻¹ (x read in full, like g). Row i of R = (X S) L⁻ᵀ
// solves R_i· Lᵀ = (X S)_i·, and its entries j ≤ i need only (X S)_ij for j ≤ i: per row, those
// entries of X S (3n flops each) and a forward substitution; about 11n³/6 flops.
template <class T, class Layout>
XL_HD void potri_vjp_entry(Layout lay, int64_t e, int lower, int n, const T* f_, const T* x_, const T* g_, T* gf_) {
  using namespace detail;
  const int64_t size = int64_t(n) * n;
  const auto f = lay.at(f_, e, size);
  const auto x = lay.at(x_, e, size);
  const auto g = lay.at(g_, e, size);
  const auto gf = lay.at(gf_, e, size);
  if (n > kMaxOrder) {
    fill(gf, size, quiet_nan<T>());
    return;
  }
  const Strided<const T> l = factor(f, n, lower), xv = rows_of(x, n), gv = rows_of(g, n);
  const Strided<T> gl = factor(gf, n, lower);
  T r[kMaxOrder];
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j <= i; ++j) {
      T m = T(0);
      for (int q = 0; q < n; ++q) m += xv(i, q) * (gv(q, j) + gv(j, q));
      for (int p = 0; p < j; ++p) m -= r[p] * l(j, p);
      r[j] = m / l(j, j);
      gl(i, j) = -r[j];
    }
    for (int j = i + 1; j < n; ++j) gl(i, j) = T(0);
  }
}

// ---- sumlogdiag ---------------------------------------------------------------------------------
// out[e] = Σ_i log a_ii (n logarithms).
template <class T, class Layout>
XL_HD void sumlogdiag_entry(Layout lay, int64_t e, int n, const T* a_, T* out) {
  const auto a = lay.at(a_, e, int64_t(n) * n);
  T s = T(0);
  for (int i = 0; i < n; ++i) s += xl_log(a[int64_t(i) * (n + 1)]);
  out[e] = s;
}

// ga = diag(g[e] / a_ii), zeros off the diagonal.
template <class T, class Layout>
XL_HD void sumlogdiag_vjp_entry(Layout lay, int64_t e, int n, const T* a_, const T* g, T* ga_) {
  const int64_t size = int64_t(n) * n;
  const auto a = lay.at(a_, e, size);
  const auto ga = lay.at(ga_, e, size);
  detail::fill(ga, size, T(0));
  for (int i = 0; i < n; ++i) ga[int64_t(i) * (n + 1)] = g[e] / a[int64_t(i) * (n + 1)];
}

// ---- trsm ---------------------------------------------------------------------------------------
// out = α op(A)⁻¹ B (left) or α B op(A)⁻¹ (``flags`` bit 1), op(A) = A or Aᵀ (bit 0), A n×n
// triangular with its lower (bit 2) or upper triangle read; B rows×cols. As E X̃ = α B̃
// (detail::Triangular) by forward substitution in place on out; n²k flops. α = 0 gives zeros
// without reading A or B (as BLAS does). Fails (out NaN) when the result is not finite or, for an
// empty B, A's read triangle is not.
template <class T, class Layout>
XL_HD void trsm_entry(Layout lay, int64_t e, int flags, double alpha, int rows, int cols, const T* a_, const T* b_, T* out_,
                      int32_t* status) {
  using namespace detail;
  const Triangular p(flags, rows, cols);
  const int n = p.n;
  const int64_t size = int64_t(n) * n, sizeb = int64_t(rows) * cols;
  const auto a = lay.at(a_, e, size);
  const auto b = lay.at(b_, e, sizeb);
  const auto out = lay.at(out_, e, sizeb);
  const T al = T(alpha);
  if (al == T(0)) {
    fill(out, sizeb, T(0));
  } else {
    for (int64_t i = 0; i < sizeb; ++i) out[i] = al * b[i];
    solve_triangular(p.e(a), p.lower, p.tilde(out), n, p.k);
  }
  const bool ok = sizeb > 0 ? all_finite(out, sizeb) : triangle_finite(rows_of(a, n), n, (flags & 4) != 0);
  status[e] = !ok;
  if (!ok) fill(out, sizeb, quiet_nan<T>());
}

// With X̃ = E⁻¹ α B̃: Ỹ = E⁻ᵀ Ḡ̃, B̄̃ = α Ỹ, Ē = −Ỹ X̃ᵀ on E's triangle, i.e. B̄ = α op(A)⁻ᵀ Ḡ and
// op(A)‾ = −Y Xᵀ from the left, B̄ = α Ḡ op(A)⁻ᵀ and op(A)‾ = −Xᵀ Y from the right; Ā masked to
// A's read triangle (zeros in the other). Ỹ in place on gb; 2n²k flops.
template <class T, class Layout>
XL_HD void trsm_vjp_entry(Layout lay, int64_t e, int flags, double alpha, int rows, int cols, const T* a_, const T* x_, const T* g_,
                          T* ga_, T* gb_) {
  using namespace detail;
  const Triangular p(flags, rows, cols);
  const int n = p.n, k = p.k;
  const int64_t size = int64_t(n) * n, sizeb = int64_t(rows) * cols;
  const auto a = lay.at(a_, e, size);
  const auto ga = lay.at(ga_, e, size);
  const auto x = lay.at(x_, e, sizeb);
  const auto g = lay.at(g_, e, sizeb);
  const auto gb = lay.at(gb_, e, sizeb);
  for (int64_t i = 0; i < sizeb; ++i) gb[i] = g[i];
  const Strided<T> yv = p.tilde(gb);
  solve_triangular(p.e(a).t(), !p.lower, yv, n, k);
  const Strided<const T> xv = p.tilde(x);
  const Strided<T> ge = p.e(ga);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      T s = T(0);
      if (p.in_triangle(i, j))
        for (int c = 0; c < k; ++c) s -= yv(i, c) * xv(j, c);
      ge(i, j) = s;
    }
  if (alpha != 1.0) {
    const T al = T(alpha);
    for (int64_t i = 0; i < sizeb; ++i) gb[i] *= al;
  }
}

// ---- trmm ---------------------------------------------------------------------------------------
// out = α op(A) B (left) or α B op(A) (``flags`` as for trsm): X̃ = α E B̃, in place on out from
// the last row of X̃ up; n²k flops. α = 0 gives zeros without reading A or B (as BLAS does).
template <class T, class Layout>
XL_HD void trmm_entry(Layout lay, int64_t e, int flags, double alpha, int rows, int cols, const T* a_, const T* b_, T* out_) {
  using namespace detail;
  const Triangular p(flags, rows, cols);
  const int n = p.n;
  const int64_t size = int64_t(n) * n, sizeb = int64_t(rows) * cols;
  const auto a = lay.at(a_, e, size);
  const auto b = lay.at(b_, e, sizeb);
  const auto out = lay.at(out_, e, sizeb);
  const T al = T(alpha);
  if (al == T(0)) {
    fill(out, sizeb, T(0));
    return;
  }
  for (int64_t i = 0; i < sizeb; ++i) out[i] = al * b[i];
  multiply_triangular(p.e(a), p.lower, p.tilde(out), n, p.k);
}

// Ē = α Ḡ̃ B̃ᵀ on E's triangle and B̄̃ = α Eᵀ Ḡ̃, i.e. op(A)‾ = α Ḡ Bᵀ and B̄ = α op(A)ᵀ Ḡ from the
// left, op(A)‾ = α Bᵀ Ḡ and B̄ = α Ḡ op(A)ᵀ from the right; Ā masked to A's read triangle.
// 2n²k flops; α = 0 gives zero gradients (as BLAS does).
template <class T, class Layout>
XL_HD void trmm_vjp_entry(Layout lay, int64_t e, int flags, double alpha, int rows, int cols, const T* a_, const T* b_, const T* g_,
                          T* ga_, T* gb_) {
  using namespace detail;
  const Triangular p(flags, rows, cols);
  const int n = p.n, k = p.k;
  const int64_t size = int64_t(n) * n, sizeb = int64_t(rows) * cols;
  const auto a = lay.at(a_, e, size);
  const auto ga = lay.at(ga_, e, size);
  const auto b = lay.at(b_, e, sizeb);
  const auto g = lay.at(g_, e, sizeb);
  const auto gb = lay.at(gb_, e, sizeb);
  const T al = T(alpha);
  if (al == T(0)) {
    fill(ga, size, T(0));
    fill(gb, sizeb, T(0));
    return;
  }
  const Strided<const T> bv = p.tilde(b), gv = p.tilde(g);
  const Strided<T> ge = p.e(ga);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      T s = T(0);
      if (p.in_triangle(i, j)) {
        for (int c = 0; c < k; ++c) s += gv(i, c) * bv(j, c);
        s *= al;
      }
      ge(i, j) = s;
    }
  for (int64_t i = 0; i < sizeb; ++i) gb[i] = al * g[i];
  multiply_triangular(p.e(a).t(), !p.lower, p.tilde(gb), n, k);
}

}  // namespace hd
}  // namespace xl

#include "eigen.h"
