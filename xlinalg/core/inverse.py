"""General square matrices: inverse, det, slogdet.

With ``X = A⁻¹``: ``dX = −X dA X`` and ``d log|det A| = tr(A⁻¹ dA)`` (Giles 2008).
"""

from __future__ import annotations

from .matrix import mT, trace_of_product
from .operator import Arg, Operator, Output, register


def _inverse_forward(xp, kern, a):
    return (kern.inv(a),)


def _inverse_jvp(xp, kern, inputs, outputs, tangents):
    (x,), (da,) = outputs, tangents
    return (-xp.matmul(x, xp.matmul(da, x)),)


def _inverse_vjp(xp, kern, inputs, outputs, cotangents):
    (x,), (g,) = outputs, cotangents
    xt = mT(xp, x)
    return (-xp.matmul(xt, xp.matmul(g, xt)),)


inverse = register(
    Operator(
        name="inverse",
        args=(Arg("A", square=True),),
        outputs=(Output("out"),),
        forward=_inverse_forward,
        jvp=_inverse_jvp,
        vjp=_inverse_vjp,
        failure="the matrix is singular",
        summary="Matrix inverse ``A⁻¹``.",
        math="""\
Forward:  ``X = A⁻¹``.
JVP:      ``dX = −X dA X``.
VJP:      ``Ā = −Xᵀ Ḡ Xᵀ``.""",
    )
)


def _inverse_transpose(xp, kern, a):
    return mT(xp, kern.inv(a))


def _det_forward(xp, kern, a):
    return (kern.det(a),)


def _det_jvp(xp, kern, inputs, outputs, tangents):
    (a,), (d,), (da,) = inputs, outputs, tangents
    return (d * trace_of_product(xp, _inverse_transpose(xp, kern, a), da),)


def _det_vjp(xp, kern, inputs, outputs, cotangents):
    (a,), (d,), (g,) = inputs, outputs, cotangents
    return ((g * d)[..., None, None] * _inverse_transpose(xp, kern, a),)


det = register(
    Operator(
        name="det",
        args=(Arg("A", square=True),),
        outputs=(Output("out", ndim=0),),
        forward=_det_forward,
        jvp=_det_jvp,
        vjp=_det_vjp,
        summary="Determinant ``det A``.",
        math="""\
Forward:  ``d = det A``.
JVP:      ``dd = d · tr(A⁻¹ dA)``.
VJP:      ``Ā = ḡ d A⁻ᵀ`` (not finite at exactly singular ``A``).""",
    )
)


def _slogdet_forward(xp, kern, a):
    return kern.slogdet(a)


def _slogdet_jvp(xp, kern, inputs, outputs, tangents):
    (a,), (sign, _), (da,) = inputs, outputs, tangents
    dlog = trace_of_product(xp, _inverse_transpose(xp, kern, a), da)
    return xp.zeros_like(sign), dlog


def _slogdet_vjp(xp, kern, inputs, outputs, cotangents):
    (a,), _, (_, glog) = inputs, outputs, cotangents
    return (glog[..., None, None] * _inverse_transpose(xp, kern, a),)


slogdet = register(
    Operator(
        name="slogdet",
        args=(Arg("A", square=True),),
        outputs=(Output("sign", ndim=0), Output("logabsdet", ndim=0)),
        forward=_slogdet_forward,
        jvp=_slogdet_jvp,
        vjp=_slogdet_vjp,
        summary="Sign and natural logarithm of the absolute value of the determinant.",
        math="""\
Forward:  ``(s, l)`` with ``det A = s · exp(l)``.
JVP:      ``ds = 0``,  ``dl = tr(A⁻¹ dA)``.
VJP:      ``Ā = l̄ A⁻ᵀ`` (the sign is piecewise constant: its cotangent is ignored).""",
    )
)
