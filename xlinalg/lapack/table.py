"""Which entries of the C ABI (``src/xlinalg.h``) each operator's compiled rule calls, and how.

The bindings that call the entries themselves, without :mod:`xlinalg.lapack.rules` (the XLA FFI
handlers of :mod:`xlinalg.lapack.jax_ffi`, the autograd node of :mod:`xlinalg.lapack.torch_node`),
read this table: an operator's forward entry (its operands, its parameters, whether it writes a
status), its VJP entry (its operands, picked from the inputs, the forward's outputs and the
cotangents; it writes one cotangent per input) and the variant whose forward also writes the
residuals its reverse reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import threads

DTYPES = {"float32": "f32", "float64": "f64"}


def _lower(params) -> dict:
    return {"lower": np.int32(bool(params["lower"])), "threads": np.int32(threads())}


def _triangular(params) -> dict:
    flags = int(params["transpose"]) | int(params["rightside"]) << 1 | int(params["lower"]) << 2
    return {"flags": np.int32(flags), "alpha": np.float64(params["alpha"]), "threads": np.int32(threads())}


def _rank_k(params) -> dict:
    return {"transpose": np.int32(bool(params["transpose"])), "alpha": np.float64(params["alpha"]), "threads": np.int32(threads())}


def _product(params) -> dict:
    flags = int(params["transpose_a"]) | int(params["transpose_b"]) << 1
    alpha, beta = np.float64(params["alpha"]), np.float64(params.get("beta", 0.0))
    return {"flags": np.int32(flags), "alpha": alpha, "beta": beta, "threads": np.int32(threads())}


def _threads(params) -> dict:
    return {"threads": np.int32(threads())}


def _same(inputs) -> tuple:
    return tuple(inputs)


@dataclass(frozen=True)
class Entry:
    """The entries of one operator.

    ``name``: the forward entry (``xl_<name>_<f32|f64>``); ``vjp_name``: the VJP entry, by
    default ``<name>_vjp``. ``status``: the forward entry writes an int32 status per batch entry
    after its outputs. ``attrs(params)``: the parameters of both entries by name (FFI attributes;
    ``threads``: :func:`xlinalg.lapack.threads`). ``forward_args(inputs)``: the forward entry's
    operands (``None``: an absent optional array). ``vjp_args(inputs, outputs, cotangents)``: the
    VJP entry's operands; ``outputs`` holds the forward's outputs and then its ``residuals``
    further arrays (written after the outputs, before the status), which only the reverse reads;
    ``residual_shapes(input shapes, output shapes)`` their shapes, ``residual_cores`` how many
    of their trailing axes are not batch axes. ``scaled_cotangents``: ``(input, output,
    parameter)`` triples, each an input whose cotangent is ``parameter`` times the cotangent of
    ``output`` (``gemm``'s ``C̄ = β Ḡ``) and which the VJP entry writes only when asked (an
    optional array): a binding that can hand the output's cotangent itself back (the PyTorch
    node) forms it without a pass over memory.
    """

    name: str
    status: bool
    attrs: Callable[[dict], dict]
    vjp_args: Callable[[tuple, tuple, tuple], tuple]
    vjp_name: str = ""
    forward_args: Callable[[tuple], tuple] = _same
    #: the residuals' shapes from the inputs' and outputs' shapes, and their core dimensions
    residual_shapes: Callable[[tuple, tuple], tuple] = lambda inputs, outputs: ()
    residual_cores: tuple = ()
    scaled_cotangents: tuple = ()

    @property
    def residuals(self) -> int:
        """How many residuals the forward writes after its outputs."""
        return len(self.residual_cores)

    def entry(self, kind: str) -> str:
        """The entry's name for ``kind`` (``"forward"`` or ``"vjp"``)."""
        return self.name if kind == "forward" else self.vjp_name or f"{self.name}_vjp"

    def target(self, kind: str, dtype) -> str:
        """The XLA FFI target of the ``kind`` entry for ``dtype``."""
        return f"xl_ffi_{self.entry(kind)}_{DTYPES[np.dtype(dtype).name]}"


#: operator name -> its entries (the operators of :data:`xlinalg.lapack.rules.RULES` but the
#: products, which JAX leaves to XLA's own).
TABLE = {
    "potrf": Entry("potrf", True, _lower, lambda i, o, g: (o[0], g[0])),
    "potri": Entry("potri", True, _lower, lambda i, o, g: (i[0], o[0], g[0])),
    "potrs": Entry("potrs", True, _lower, lambda i, o, g: (i[0], i[1], o[0], g[0])),
    "sumlogdiag": Entry("sumlogdiag", False, lambda params: {}, lambda i, o, g: (i[0], g[0])),
    "trsm": Entry("trsm", True, _triangular, lambda i, o, g: (i[0], o[0], g[0])),
    "trmm": Entry("trmm", False, _triangular, lambda i, o, g: (i[0], i[1], g[0])),
    "syrk": Entry("syrk", False, _rank_k, lambda i, o, g: (i[0], g[0])),
    "syevd": Entry("syevd", False, _threads, lambda i, o, g: (o[0], o[1], g[0], g[1])),
    "inverse": Entry("inverse", True, _threads, lambda i, o, g: (o[0], g[0])),
    "det": Entry("det", False, _threads, lambda i, o, g: (i[0], g[0])),
    "slogdet": Entry("slogdet", False, _threads, lambda i, o, g: (i[0], g[1])),  # the sign's cotangent: ignored
    "gelqf": Entry("gelqf", True, _threads, lambda i, o, g: (o[0], o[1], g[0], g[1])),
}

#: The products (``gemm2``: ``gemm``'s entries without ``c`` and its cotangent).
PRODUCTS = {
    "gemm": Entry("gemm", False, _product, lambda i, o, g: (i[0], i[1], g[0]), scaled_cotangents=((2, 0, "beta"),)),
    "gemm2": Entry("gemm", False, _product, lambda i, o, g: (i[0], i[1], g[0]), forward_args=lambda i: (i[0], i[1], None)),
}

#: The operators whose entries spend their time in the layer's own code and level-3 BLAS calls
#: (``gemm``, ``trsm``, ``trmm``; their LAPACK calls, such as ``potrf``'s forward, are the smaller
#: part; ``sumlogdiag`` calls no BLAS): with a team of threads (``src/blas.hpp``) one large matrix
#: runs those calls in parts on the team. The others spend theirs inside LAPACK routines
#: (``getrf``, ``getri``, ``potri``, ``syevd``, ``geqrf``), which only the BLAS's own threads can
#: split.
TEAM_SPLIT = frozenset({"potrf", "potrs", "trsm", "trmm", "syrk", "gemm", "gemm2", "sumlogdiag"})

def _lu_shapes(inputs, outputs) -> tuple:
    return inputs[0], inputs[0][:-1]  # the factors, the pivots (as floats)


#: operator name -> the variant whose forward keeps residuals for its reverse (as
#: :data:`xlinalg.lapack.rules.SAVING`): Y = L⁻¹B for potrs, A's LU factors and pivots for det
#: and slogdet.
SAVING = {
    "potrs": Entry(
        "potrs_y", True, _lower, lambda i, o, g: (i[0], o[1], o[0], g[0]), "potrs_vjp_y",
        residual_shapes=lambda inputs, outputs: (outputs[0],), residual_cores=(2,),
    ),
    "det": Entry(
        "det_lu", False, _threads, lambda i, o, g: (o[1], o[2], g[0]), "det_vjp_lu",
        residual_shapes=_lu_shapes, residual_cores=(2, 1),
    ),
    "slogdet": Entry(
        "slogdet_lu", False, _threads, lambda i, o, g: (o[2], o[3], g[1]), "slogdet_vjp_lu",
        residual_shapes=_lu_shapes, residual_cores=(2, 1),
    ),
}
