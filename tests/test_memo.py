"""The core's memoization (xlinalg.core.memo) and the remembered signature checks."""

import pytest

import xlinalg  # noqa: F401  (registers the operators)
from xlinalg.core import apply
from xlinalg.core.memo import memo
from xlinalg.core.operator import get


def counting(maxsize=4096):
    calls = []

    @memo(maxsize=maxsize)
    def f(*args):
        calls.append(args)
        if args and args[0] == "bad":
            raise ValueError("bad")
        return ("value", *args)

    return f, calls


def test_results_are_remembered_errors_are_not():
    f, calls = counting()
    assert f(1, 2) == f(1, 2) == ("value", 1, 2)
    assert calls == [(1, 2)]
    for _ in range(2):
        with pytest.raises(ValueError):
            f("bad")
    assert calls.count(("bad",)) == 2


def test_unhashable_arguments_are_computed_each_time():
    f, calls = counting()
    assert f([1]) == ("value", [1]) and f([1]) == ("value", [1])
    assert calls == [([1],), ([1],)]


def test_the_cache_is_bounded():
    f, calls = counting(maxsize=3)
    for i in range(10):
        f(i)
    assert len(f.cache) <= 3
    f(9)
    assert calls.count((9,)) == 1  # the newest entry survived the last clearing


def test_signature_check_raises_every_time_and_remembers_valid_calls():
    op = get("potrf")
    for _ in range(2):
        with pytest.raises(ValueError, match="must be square"):
            apply.check_signature(op, [(3, 4)], ["float64"], {"lower": True})
    first = apply.check_signature(op, [(2, 3, 3)], ["float64"], {"lower": True})
    assert first == ((2,), ((2, 3, 3),), "float64")
    assert apply.check_signature(op, [[2, 3, 3]], ["float64"], {"lower": True}) is first
