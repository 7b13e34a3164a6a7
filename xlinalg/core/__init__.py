"""Framework-neutral operators: specs and forward/JVP/VJP rules (one module per family).

Every module of this package is imported here, in name order, so an operator registered in a
new module (``register(Operator(...))``, see ``docs/contributing.md``) is part of the registry,
and so of every namespace, test and conformance run, without an edit elsewhere.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from .operator import Arg, Operator, Output, get, operators

for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    _importlib.import_module(f"{__name__}.{_module}")

__all__ = ["Arg", "Operator", "Output", "get", "operators"]
