"""Reports of a conformance run: what ran where (:func:`metadata`), and every failing sample of
every cell as Markdown (:func:`markdown`) or one self-contained HTML page (:func:`html`)."""

from __future__ import annotations

import html as _html
import importlib.metadata
import math
import platform
import sys

from . import checks as C
from . import declarations
from .runner import Result, table

#: libraries whose versions a report names when the run imported them
LIBRARIES = ("numpy", "scipy", "torch", "jax", "jaxlib", "mxnet", "cupy", "array_api_strict")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def metadata(backend, reference: str | None = None) -> dict:
    """The versions (framework libraries loaded by the run, xlinalg, the suite), the platform,
    the backend's capabilities and declarations, and the tolerance constant of each check."""
    libraries = {name: getattr(sys.modules[name], "__version__", None) for name in LIBRARIES if name in sys.modules}
    return {
        "backend": backend.name,
        "reference": reference,
        "versions": {"xlinalg": _version("xlinalg"), "python": platform.python_version(), **libraries},
        "platform": platform.platform(),
        "capabilities": {c: backend.sources.get(c, "declared") for c in sorted(backend.capabilities)},
        "declarations": {
            "unsupported": dict(getattr(backend, "unsupported", {}) or {}),
            "error_contract": repr(declarations.error_contract(backend)),
            "symmetric_gradient": declarations.symmetric_gradient(backend),
            "sample_restrictions": sorted(getattr(backend, "sample_restrictions", ()) or ()),
            "known_failures": str(declarations.known_failures_path(backend) or "") or None,
        },
        "tolerances": dict(C.TOLERANCES),
    }


def _ratio(r) -> str:
    return "inf" if r in ("inf", math.inf) else f"{r:.3g}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _failing(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status in ("fail", "xfail") and r.failures]


def markdown(results: list[Result], meta: dict) -> str:
    """The table, then every failing sample of every failing (or known-failing) cell."""
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    out = [f"# Conformance: backend `{meta['backend']}`", "", f"{versions}; {meta['platform']}", "",
           "```", table(results), "```", ""]
    for r in _failing(results):
        label = "FAIL" if r.status == "fail" else f"xfail ({r.reason})"
        out += [f"## {r.op} × {r.check}: {label}, {r.failed}/{r.samples} samples", "",
                "| sample | error / tolerance | what it showed |", "|---|---|---|"]
        out += [f"| `{f['sample'] or '-'}` | {_ratio(f['ratio'])} | {_md_cell(f['message'])} |" for f in r.failures]
        out.append("")
    if not _failing(results):
        out.append("No failing sample.")
    return "\n".join(out) + "\n"


_STYLE = """body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%;text-align:right}td.msg{text-align:left}
td.fail{background:#f6c6c6}td.xfail{background:#f6e6b6}td.pass{background:#d6f0d6}code{font-size:90%}"""


def html(results: list[Result], meta: dict) -> str:
    """One HTML page with no outside resources: the coloured table and every failing sample."""
    e = _html.escape
    ops = list(dict.fromkeys(r.op for r in results))
    checks = list(dict.fromkeys(r.check for r in results))
    cell = {(r.op, r.check): r for r in results}
    rows = ["<tr><th>operator</th>" + "".join(f"<th>{e(c)}</th>" for c in checks) + "</tr>"]
    for o in ops:
        tds = []
        for c in checks:
            r = cell.get((o, c))
            if r is None:
                tds.append("<td></td>")
                continue
            kind = {"fail": "fail", "xfail": "xfail", "pass": "pass"}.get(r.status, "")
            text = r.status if r.ratio is None else f"{r.status if r.status != 'pass' else ''} {_ratio(r.ratio)}".strip()
            link = f'<a href="#{e(o)}-{e(c)}">{e(text)}</a>' if r.failures else e(text)
            tds.append(f'<td class="{kind}">{link}</td>')
        rows.append(f"<tr><th>{e(o)}</th>{''.join(tds)}</tr>")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Conformance: {e(meta['backend'])}</title>",
             f"<style>{_STYLE}</style></head><body><h1>Conformance: backend <code>{e(meta['backend'])}</code></h1>",
             "<p>" + e(", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)) + f"; {e(meta['platform'])}</p>",
             f"<table>{''.join(rows)}</table>"]
    for r in _failing(results):
        label = "FAIL" if r.status == "fail" else f"xfail ({r.reason})"
        parts.append(f"<h2 id='{e(r.op)}-{e(r.check)}'>{e(r.op)} × {e(r.check)}: {e(label)}, {r.failed}/{r.samples} samples</h2>")
        parts.append("<table><tr><th>sample</th><th>error / tolerance</th><th>what it showed</th></tr>" + "".join(
            f"<tr><td><code>{e(f['sample'] or '-')}</code></td><td>{_ratio(f['ratio'])}</td><td class='msg'>{e(f['message'])}</td></tr>"
            for f in r.failures) + "</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


__all__ = ["metadata", "markdown", "html"]
