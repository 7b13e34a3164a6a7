"""Memoization that is safe under compilers: one rule for every cache of the core."""

from __future__ import annotations

import sys


def compiling() -> bool:
    """Whether ``torch.compile`` is tracing (looked up through ``sys.modules``: the core never
    imports a framework)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.compiler.is_compiling()


def memo(fn=None, *, maxsize: int = 4096):
    """``fn`` memoized in a plain dict on its positional arguments (calls with an unhashable
    one are computed each time).

    Bypassed entirely while ``torch.compile`` traces: the compiler warns when it traces an
    ``functools.lru_cache`` wrapper, must not see the dict written (a side effect), and symbolic
    sizes are not keys. Only results are cached, never exceptions. The dict is emptied when it
    reaches ``maxsize`` entries, so a program calling with ever new shapes keeps a bounded cache.
    """
    if fn is None:
        return lambda f: memo(f, maxsize=maxsize)
    cache: dict = {}

    def wrapper(*args):
        if compiling():
            return fn(*args)
        try:
            hit = cache.get(args)
        except TypeError:  # an unhashable argument: computed, not remembered
            return fn(*args)
        if hit is None:
            hit = fn(*args)
            if len(cache) >= maxsize:
                cache.clear()
            cache[args] = hit
        return hit

    wrapper.__wrapped__ = fn
    wrapper.__doc__ = fn.__doc__
    wrapper.cache = cache
    return wrapper
