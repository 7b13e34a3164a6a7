"""Writes docs/operators.md, the operator reference, from the operator specs.

    python docs/make_reference.py          # rewrite the file
    python docs/make_reference.py --check  # exit 1 when the file is out of date
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import xlinalg
from xlinalg.core import operators
from xlinalg.core.docs import shape_text

TARGET = Path(__file__).with_name("operators.md")


def render() -> str:
    lines = [
        "# Operator reference",
        "",
        "Generated from the operator specs by `docs/make_reference.py`; do not edit by hand.",
        "",
        "Notation: `op(X)` is `Xᵀ` when the matching `transpose` flag is set; `Ḡ` (or `X̄`) is the",
        "cotangent of an output or input, `dX` a tangent; `sym(X) = (X + Xᵀ)/2`;",
        "`Φ(X) = tril(X) − diag(X)/2`. Leading axes are batch axes and broadcast between arguments.",
        "Each VJP is the adjoint of the JVP under ⟨X, Y⟩ = Σ X_ij Y_ij; the conformance suite checks",
        "this identity and finite differences for every operator and parameter combination.",
        "Shapes name each core axis; equal names must have equal sizes, and `...` are batch axes",
        "([conventions](conventions.md)).",
        "",
    ]
    for name, op in operators().items():
        fn = getattr(xlinalg, name)
        lines += [f"## `{name}{inspect.signature(fn)}`", "", op.summary, ""]
        args = "; ".join(
            f"`{a.name}` {shape_text(a).replace('``', '`')}{' ' + a.structure if a.structure != 'general' else ''}"
            for a in op.args
        )
        outs = "; ".join(f"`{o.name}` {shape_text(o).replace('``', '`')}" for o in op.outputs)
        lines += [f"- arguments: {args}", f"- returns: {outs}"]
        if op.failure:
            lines.append(
                f"- raises `LinAlgError` (eagerly) when {op.failure} or the read input is not finite; "
                "under a compiler or `vmap` that batch entry is NaN ([conventions](conventions.md#failures-and-non-finite-input))"
            )
        lines += ["", "```text", op.math.replace("``", ""), "```", ""]
    return "\n".join(lines)


def main():
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run python docs/make_reference.py")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
