"""Known failures: operator × check cells a backend is expected to fail, so that CI flags only
regressions.

A known-failures file is TOML (``.toml``) or JSON (``.json``) with one table per operator and
one entry per check, either a reason or a table::

    [syevd]
    forward = "eigenvector signs are LAPACK's, not xlinalg's sign rule"

    [potrs.structure]
    reason = "the gradient of the factor has entries in the triangle not read"
    kind = "defect"                     # or "convention" (default)
    link = "https://github.com/owner/project/issues/1"
    repro = '''
    import torch
    ...
    '''

``kind`` says whether the failure is a ``defect`` of the library or a ``convention`` it
differs in on purpose; ``link`` points to the report; ``repro`` is a minimal reproduction
outside the suite (plain framework code; the native-conformance page runs it). In the results
a listed cell that fails becomes ``xfail`` and one that passes ``xpass`` (reported: the entry
can go); neither counts as a failure. Unlisted failures still fail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

#: what a failure may be
KINDS = ("convention", "defect")
FIELDS = ("reason", "kind", "link", "repro")


@dataclass(frozen=True)
class KnownFailure:
    """One listed operator × check."""

    op: str
    check: str
    reason: str
    kind: str = "convention"
    link: str = ""
    repro: str = ""


def load(path) -> dict[tuple[str, str], KnownFailure]:
    """The entries of the file at ``path`` by ``(operator, check)``.

    Raises
    ------
    ValueError
        For an unknown operator, check, field or kind, or a file that is neither TOML nor
        JSON; the message names the file and the entry.
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".toml":
        import tomllib

        data = tomllib.loads(text)
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"known failures {path}: expected a .toml or .json file")
    return parse(data, str(path))


def parse(data: dict, where: str = "known failures") -> dict[tuple[str, str], KnownFailure]:
    """Entries from the parsed file contents ``data`` (see :func:`load`)."""
    import xlinalg

    from .checks import CHECKS

    out = {}
    for op, entries in data.items():
        if op not in xlinalg.OPERATORS:
            raise ValueError(f"{where}: unknown operator {op!r}")
        if not isinstance(entries, dict):
            raise ValueError(f"{where}: [{op}] must be a table of check = reason entries")
        for check, entry in entries.items():
            if check not in CHECKS:
                raise ValueError(f"{where}: {op}.{check}: unknown check; expected one of {', '.join(CHECKS)}")
            entry = {"reason": entry} if isinstance(entry, str) else dict(entry)
            unknown = set(entry) - set(FIELDS)
            if unknown:
                raise ValueError(f"{where}: {op}.{check}: unknown field(s) {', '.join(sorted(unknown))}; expected {', '.join(FIELDS)}")
            if not entry.get("reason"):
                raise ValueError(f"{where}: {op}.{check}: a reason is required")
            if entry.setdefault("kind", "convention") not in KINDS:
                raise ValueError(f"{where}: {op}.{check}: kind {entry['kind']!r}; expected one of {', '.join(KINDS)}")
            out[op, check] = KnownFailure(op, check, **entry)
    return out


def apply(results, known: dict) -> list:
    """``results`` with the listed cells marked: a failing one ``xfail``, a passing one
    ``xpass`` (reason: the entry's). Other cells are unchanged; returns the same list."""
    for r in results:
        entry = known.get((r.op, r.check))
        if entry is None:
            continue
        if r.status == "fail":
            r.status, r.reason = "xfail", entry.reason
        elif r.status == "pass":
            r.status, r.reason = "xpass", entry.reason
    return results
