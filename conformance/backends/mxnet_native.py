"""``mxnet-native``: MXNet 1.x's own ``mx.nd.linalg`` operators in place of xlinalg's,
differentiated by ``mx.autograd``.

xlinalg takes its operators' names, parameters and layouts from ``mx.nd.linalg``, so most map
one to one. Conversions: the upper-triangle variants of ``potrf``/``potri`` (MXNet reads and
returns the lower triangle only) run on the transpose; ``sumlogdiag`` of one matrix returns
MXNet's legacy shape ``(1,)``, reshaped to ``()``. Every call runs under
``mx.util.np_shape(True)`` (zero-size arrays and 0-d outputs, as :mod:`.mxnet`).

Capabilities: ``vjp`` (``mx.autograd.backward`` with head gradients), ``errors``. MXNet 1.x has
no forward mode, no ``vmap`` and no double backward of these operators.

Declared: ``potrs`` unsupported (MXNet has none); batches that broadcast (MXNet requires equal
batch shapes) and empty batches (rejected by an explicit check, "Zero batch size"); MXNet's error contract — ``MXNetError`` for everything, raised by the engine
when it runs the operation (``timing="async"``: by ``mx.nd.waitall()``, this backend's
``synchronize``), no batch index, failures of ``trsm`` as non-finite entries; isolation
(MXNet crashes the process on some inputs); the known failures in
``known_failures/mxnet-native.toml``.
"""

from __future__ import annotations

from pathlib import Path

from ..declarations import ErrorContract
from .mxnet import MxnetBackend

KNOWN_FAILURES = Path(__file__).parent / "known_failures" / "mxnet-native.toml"


def _la():
    import mxnet

    return mxnet.nd.linalg


def _mT(x):
    return x.swapaxes(-1, -2)


def potrf(A, *, lower=True):
    # the upper factor U (A = Uᵀ U, read from the upper triangle) is the transposed lower
    # factor of Aᵀ
    return (_la().potrf(A) if lower else _mT(_la().potrf(_mT(A))),)


def potri(F, *, lower=True):
    return (_la().potri(F if lower else _mT(F)),)


def trsm(A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    return (_la().trsm(A, B, transpose=transpose, rightside=rightside, lower=lower, alpha=alpha),)


def trmm(A, B, *, transpose=False, rightside=False, lower=True, alpha=1.0):
    return (_la().trmm(A, B, transpose=transpose, rightside=rightside, lower=lower, alpha=alpha),)


def syrk(A, *, transpose=False, alpha=1.0):
    return (_la().syrk(A, transpose=transpose, alpha=alpha),)


def gemm2(A, B, *, transpose_a=False, transpose_b=False, alpha=1.0):
    return (_la().gemm2(A, B, transpose_a=transpose_a, transpose_b=transpose_b, alpha=alpha),)


def gemm(A, B, C, *, transpose_a=False, transpose_b=False, alpha=1.0, beta=1.0):
    return (_la().gemm(A, B, C, transpose_a=transpose_a, transpose_b=transpose_b, alpha=alpha, beta=beta),)


def sumlogdiag(A):
    return (_la().sumlogdiag(A).reshape(A.shape[:-2]),)  # (1,) for one matrix: MXNet's legacy shape


def syevd(A):
    u, lam = _la().syevd(A)
    return u, lam


def inverse(A):
    return (_la().inverse(A),)


def det(A):
    return (_la().det(A),)


def slogdet(A):
    sign, logabsdet = _la().slogdet(A)
    return sign, logabsdet


def extractdiag(A, *, offset=0):
    return (_la().extractdiag(A, offset=offset),)


def makediag(a, *, offset=0):
    return (_la().makediag(a, offset=offset),)


def extracttrian(A, *, offset=0, lower=True):
    return (_la().extracttrian(A, offset=offset, lower=lower),)


def maketrian(a, *, offset=0, lower=True):
    return (_la().maketrian(a, offset=offset, lower=lower),)


def gelqf(A):
    q, l = _la().gelqf(A)
    return q, l


FUNCTIONS = {
    f.__name__: f for f in (potrf, potri, trsm, trmm, syrk, gemm2, gemm, sumlogdiag, syevd, inverse, det, slogdet, extractdiag, makediag, extracttrian, maketrian, gelqf)
}


def _contract() -> ErrorContract:
    from mxnet.base import MXNetError

    # (MXNet's Python front end rejects an argument that is not an NDArray with an assert)
    return ErrorContract(
        value_error=(ValueError, MXNetError),
        type_error=(TypeError, MXNetError, AssertionError),
        linalg_error=(MXNetError,),
        failures="raise",
        failures_by_op={"trsm": "nan"},
        timing="async",
        index="none",
        messages=False,
    )


class MxnetNativeBackend(MxnetBackend):
    """``mx.nd.linalg`` (:data:`FUNCTIONS`) under ``mx.autograd``."""

    name = "mxnet-native"
    capabilities = frozenset({"vjp", "errors"})
    sources = {"vjp": "mx.autograd.backward with head gradients", "errors": "MXNetError from the engine"}
    unsupported = {"potrs": "MXNet 1.x has no Cholesky solve (linalg.potrs)"}
    sample_restrictions = frozenset({"broadcast", "empty_batch"})
    known_failures = KNOWN_FAILURES
    isolate = True

    @property
    def error_contract(self):
        return _contract()

    def call(self, op, arrays, params):
        with self._np_shape():
            return FUNCTIONS[op](*arrays, **params)

    def _function(self, op):
        return FUNCTIONS[op]  # (each returns a tuple of outputs)


BACKEND = MxnetNativeBackend()
