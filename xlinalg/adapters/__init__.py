"""Framework adapters: one generic binding per framework, made from the operator specs.

An adapter module (``xlinalg.adapters.<framework>``) provides

``is_array(x) -> bool``
    whether ``x`` belongs to the framework (checked without importing it where possible);
``bind(op) -> function``
    the operator as a differentiable function of that framework's arrays, with the public
    signature ``f(*arrays, **params)`` and the public output layout (an array, or a tuple
    for several outputs).

Adapters are imported on first use only, so ``import xlinalg`` imports no framework. The
public functions route arrays of a framework listed here to its adapter; every other Array
API library runs the core rules directly (derivatives via :func:`xlinalg.vjp`/:func:`jvp`).
"""

from __future__ import annotations

import importlib
import sys

#: framework -> (module whose presence in sys.modules means arrays may exist, adapter module)
ADAPTERS = {
    "torch": ("torch", "xlinalg.adapters.torch"),
    "jax": ("jax", "xlinalg.adapters.jax"),
    "mxnet": ("mxnet", "xlinalg.adapters.mxnet"),
}


def _array_types(framework: str, module) -> tuple:
    """The array types of an imported framework (read from the module, importing nothing)."""
    if framework == "torch":
        return (module.Tensor,)
    if framework == "jax":
        return (module.Array,)
    nd, sym = getattr(module, "nd", None), getattr(module, "sym", None)
    return tuple(t for t in (getattr(nd, "NDArray", None), getattr(sym, "Symbol", None)) if isinstance(t, type))


_bound: dict[tuple[str, int], tuple] = {}


def adapter_for(arrays):
    """The adapter module for ``arrays``' framework, or ``None`` (no autograd framework).

    A framework is only considered when it is imported already (no array of it can exist
    otherwise), and its adapter is imported only when one of ``arrays`` belongs to it: NumPy
    arrays never import an adapter, whatever else the process has imported."""
    for framework, (marker, module) in ADAPTERS.items():
        loaded = sys.modules.get(marker)
        if loaded is None:
            continue
        types = _array_types(framework, loaded)
        if types and any(isinstance(x, types) for x in arrays):
            return _import(module)
    return None


def bound(adapter, op):
    """``adapter.bind(op)``, made once per (adapter, operator object): a modified spec that
    reuses a registered name gets a binding of its own."""
    key = (adapter.__name__, id(op))  # the id: torch.compile traces this lookup, and hashes keys by value
    hit = _bound.get(key)
    if hit is None or hit[0] is not op:
        hit = _bound[key] = (op, adapter.bind(op))
    return hit[1]


#: framework -> (modules whose absence means the framework is not installed, pip extra)
EXTRAS = {
    "torch": (("torch",), "torch"),
    "jax": (("jax", "jaxlib"), "jax"),
    "mxnet": (("mxnet",), "mxnet"),
}


def require(framework: str):
    """Import and return ``framework``'s module, or say how to install it.

    Parameters
    ----------
    framework : str
        ``"torch"``, ``"jax"`` or ``"mxnet"``.

    Returns
    -------
    module
        The framework's top-level module.

    Raises
    ------
    ModuleNotFoundError
        When the framework (or a module it needs, such as ``jaxlib``) is not installed; the
        message names the pip extra that installs it, e.g. ``pip install "xlinalg[torch]"``.
    """
    modules, extra = EXTRAS[framework]
    try:
        return importlib.import_module(framework)
    except ModuleNotFoundError as exc:
        if exc.name not in modules:
            raise
        raise ModuleNotFoundError(
            f"xlinalg.{framework} needs {exc.name}, which is not installed ({exc}); "
            f'install it with: pip install "xlinalg[{extra}]"',
            name=exc.name,
        ) from exc


def _import(module):
    loaded = sys.modules.get(module)  # no import machinery on the hot path (torch.compile traces it)
    if loaded is not None:
        return loaded
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None  # that adapter is not written (yet)
        raise
