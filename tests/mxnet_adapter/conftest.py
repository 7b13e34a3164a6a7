"""Fixtures and operator cases of the MXNet adapter tests, all from the operator registry. The
test modules use them through ``_helpers`` (which also holds the NDArray helpers and skips a
module when MXNet is not installed); this file imports no MXNet.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import xlinalg
from xlinalg.core import operators
from xlinalg.core.samples import draw

if importlib.util.find_spec("mxnet") is None:
    collect_ignore_glob = ["test_*.py"]  # the MXNet tests need MXNet (its own environment)

#: Every registered operator (MXNet's own linalg operators and the ones it lacks, e.g. potrs).
OPERATORS = tuple(xlinalg.OPERATORS)


def param_combinations(op):
    """Every combination of ``op``'s registry grid, defaults filled in."""
    yield from operators()[op].param_grid()


def inputs(op, params, rng, *, batch=(3,), n=4, dtype="float64", garbage=True):
    """Well-conditioned NumPy inputs of ``op`` for ``params`` from its registry entry.
    Structured arguments (symmetric, triangular) carry unrelated values in the triangle not
    read when ``garbage``."""
    spec = operators()[op]
    arrays, _ = draw(spec, rng, [batch], n, {**spec.params, **params}, garbage=garbage)
    return [np.ascontiguousarray(x, dtype=dtype) for x in arrays]


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)
