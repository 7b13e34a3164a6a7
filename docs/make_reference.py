"""The operator reference, generated from the operator specs so it cannot drift from them.

    python docs/make_reference.py          # rewrite docs/operators.md (one page, all operators)
                                           # and docs/api.md (the other public functions)
    python docs/make_reference.py --check  # exit 1 when either is out of date

The same module is the MkDocs hook of the documentation site (``hooks:`` in mkdocs.yml,
built by ``bash scripts/docs.sh``). At every build it

- renders one page per operator, ``operators/<name>.md``: signature, shapes of each argument
  and output (``xlinalg.core.docs.shape_text``), parameters, dtypes, errors, the
  forward/JVP/VJP formulas (``Operator.math``), what the tests combine and the docstring;
- replaces ``operators.md`` on the site by an index of those pages (the file in docs/ stays
  the one-page reference for readers of the repository);
- renders ``api.md``, the other public functions (``vjp``, ``jvp``, the Array API-named
  aliases, ``LinAlgError``) from their docstrings (the same page as the file in docs/);
- expands the navigation entry ``operators.md`` into one entry per operator;
- adds KaTeX (fetched by scripts/docs.sh into ``$XLINALG_KATEX_DIR``) to the site, so the
  math renders without a network.

Nothing generated for the site is written into docs/.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from pathlib import Path

import xlinalg
from xlinalg.core import operators
from xlinalg.core.docs import docstring, shape_text
from xlinalg.core.shapes import doc_shape

ROOT = Path(__file__).resolve().parents[1]

NOTATION = [
    "Notation: `op(X)` is `Xᵀ` when the matching `transpose` flag is set; `Ḡ` (or `X̄`) is the",
    "cotangent of an output or input, `dX` a tangent; `sym(X) = (X + Xᵀ)/2`;",
    "`Φ(X) = tril(X) − diag(X)/2`. Leading axes are batch axes and broadcast between arguments.",
    "Each VJP is the adjoint of the JVP under ⟨X, Y⟩ = Σ X_ij Y_ij; the conformance suite checks",
    "this identity and finite differences for every operator and parameter combination.",
    "Shapes name each core axis; equal names must have equal sizes, and `...` are batch axes",
]


def _md(text: str) -> str:
    """reST inline markup of the specs and docstrings as Markdown."""
    text = re.sub(r":(?:func|class|mod|data|attr|meth):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


# ---- docs/operators.md: the one-page reference ------------------------------------------------
def render() -> str:
    lines = [
        "# Operator reference",
        "",
        "Generated from the operator specs by `docs/make_reference.py`; do not edit by hand.",
        "",
        *NOTATION,
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


# ---- the site: one page per operator ----------------------------------------------------------
_TYPES = {bool: "bool", int: "int", float: "float"}
_STRUCTURE = {
    "symmetric": "symmetric: only {triangle} is read; its gradient is symmetric, `sym(X) = (X + Xᵀ)/2`",
    "triangular": "triangular: only {triangle} is read; its gradient is masked to it",
}


def _reads(op, arg) -> str:
    if arg.structure == "general":
        return "every entry"
    triangle = "the triangle named by `lower`" if "lower" in op.params else "the lower triangle"
    return _STRUCTURE[arg.structure].format(triangle=triangle) + " ([conventions](../conventions.md#structured-arguments))"


def _tex_dim(dim: str) -> str:
    """An axis name of a signature (``n``, ``n-|offset|``) in TeX."""
    dim = re.sub(r"\|(\w+)\|", lambda m: r"\lvert " + _tex_name(m.group(1)) + r"\rvert ", dim)
    return re.sub(r"(?<![\\\w{])([A-Za-z]\w+)", lambda m: _tex_name(m.group(1)), dim)


def _tex_name(name: str) -> str:
    return name if len(name) == 1 else r"\mathtt{" + name.replace("_", r"\_") + "}"


def _tex_shape(item) -> str:
    space = r"\mathbb{R}^{" + r" \times ".join([r"\cdots", *(_tex_dim(d) for d in item.dims)]) + "}"
    return f"{_tex_name(item.name)} \\in {space}"


def _shape_md(item) -> str:
    """``shape_text`` with every shape as code: ``(..., m, k)``, or ``(..., k, m)`` when ``t``."""
    text = shape_text(item)
    text = re.sub(r"\(\.\.\.[^)]*\)", lambda m: f"`{m.group(0)}`", text)
    return text.replace("``", "`")


def _sections(doc: str) -> dict[str, str]:
    """The numpydoc sections of a docstring: {"": summary, "Parameters": ..., ...}."""
    parts = re.split(r"\n\n(\w+)\n-+\n", "\n\n" + doc.strip() + "\n")
    out = {"": parts[0].strip()}
    for title, body in zip(parts[1::2], parts[2::2]):
        out[title] = body.strip("\n")
    return out


def _raises(doc: str) -> list[tuple[str, str]]:
    """``(exception, explanation)`` pairs of a numpydoc Raises section."""
    items, current = [], None
    for line in _sections(doc).get("Raises", "").splitlines():
        if line and not line.startswith(" "):
            current = [line.strip(), []]
            items.append(current)
        elif current is not None:
            current[1].append(line.strip())
    return [(name, " ".join(text)) for name, text in items]


def _param_effects(op, key: str) -> str:
    effects = []
    for item in (*op.args, *op.outputs):
        if item.flip == key:
            effects.append(f"`{item.name}` is `{doc_shape(item.dims[::-1])}` when true")
    if key == "lower":
        structured = [a.name for a in op.args if a.structure != "general"]
        if structured:
            effects.append(f"which triangle of {', '.join(f'`{n}`' for n in structured)} is read: the lower one when true, else the upper")
    greek = {"alpha": "α", "beta": "β"}.get(key)
    if greek and greek in op.math:
        effects.append(f"{greek} in the formulas")
    return "; ".join(effects) or "see the summary and the formulas"


def _grid_text(op) -> list[str]:
    lines = []
    for key, values in op.grid.items():
        names = key if isinstance(key, tuple) else (key,)
        if isinstance(key, tuple):
            shown = ", ".join("(" + ", ".join(repr(v) for v in combo) + ")" for combo in values)
            lines.append(f"- `({', '.join(names)})` ∈ {{{shown}}}")
        else:
            lines.append(f"- `{key}` ∈ {{{', '.join(repr(v) for v in values)}}}")
    return lines


def operator_page(name: str, op) -> str:
    fn = getattr(xlinalg, name)
    sig = f"{name}{inspect.signature(fn)}"
    args = ", ".join(_tex_shape(a) for a in op.args)
    outs = ", ".join(_tex_shape(o) for o in op.outputs)
    lines = [
        f"# `{name}`",
        "",
        "<!-- Generated from the operator spec by docs/make_reference.py at build time. -->",
        "",
        _md(op.summary),
        "",
        "```python",
        f"xlinalg.{sig}",
        "```",
        "",
        f"The same function is `xlinalg.torch.{name}`, `xlinalg.jax.{name}` and `xlinalg.mxnet.{name}` "
        "(the MXNet one with MXNet's signature: [MXNet](../mxnet.md#operators-and-parameters)); "
        f"`xlinalg.{name}` takes arrays of any Array API library and dispatches tensors of those frameworks to them.",
        "",
        "## Shapes",
        "",
        "$$",
        f"{args} \\;\\longmapsto\\; {outs}",
        "$$",
        "",
        "`...` are batch axes: they broadcast between the arguments, and gradients are summed back to each "
        "argument's shape. Equal axis names must have equal sizes ([conventions](../conventions.md#shapes)).",
        "",
        '<div class="xl-ref" markdown>',
        "",
        "| argument | shape | reads |",
        "|---|---|---|",
        *(f"| `{a.name}` | {_shape_md(a)} | {_reads(op, a)} |" for a in op.args),
        "",
        "| output | shape |",
        "|---|---|",
        *(f"| `{o.name}` | {_shape_md(o)} |" for o in op.outputs),
        "",
        "</div>",
        "",
    ]
    if op.multiple_outputs:
        lines += [f"Returns the tuple `({', '.join(op.output_names)})`.", ""]
    lines += ["## Parameters", ""]
    if op.params:
        lines += ["Keyword-only, static Python values.", "", '<div class="xl-ref" markdown>', "",
                  "| name | type | default | effect |", "|---|---|---|---|"]
        for key, default in op.params.items():
            lines.append(f"| `{key}` | {_TYPES.get(type(default), type(default).__name__)} | `{default!r}` | {_param_effects(op, key)} |")
        lines += ["", "</div>"]
    else:
        lines += ["None."]
    lines += [
        "",
        "## dtypes",
        "",
        "float32 and float64; all arrays of one call share one dtype, and outputs and gradients keep it "
        "([conventions](../conventions.md#dtypes)).",
        "",
        "## Errors",
        "",
    ]
    for exc, text in _raises(docstring(op)):
        lines.append(f"- `{exc}`: {_md(text)}")
    if op.failure:
        lines += [
            "",
            f"`{name}` can fail on valid input: when {op.failure}. Eagerly that raises `xlinalg.LinAlgError` "
            "with the first failing batch index (`err.index`); under `jax.jit`, `vmap`, `torch.compile` and in MXNet "
            "symbols every output element of that batch entry is NaN instead "
            "([conventions](../conventions.md#failures-and-non-finite-input)).",
        ]
    else:
        lines += ["", f"`{name}` does not fail on valid input: it follows IEEE arithmetic (NaN in, NaN out)."]
    lines += [
        "",
        "## Formulas",
        "",
        "Forward, JVP (forward mode) and VJP (reverse mode), as stated in the operator spec; the notation is on "
        "the [operator index](../operators.md).",
        "",
        "```text",
        op.math.replace("``", ""),
        "```",
        "",
        "JAX " + ("differentiates in reverse mode by transposing the JVP, so forward mode, reverse mode and Hessians "
                  "all use these rules ([JAX](../jax.md#how-the-operators-are-bound))."
                  if op.jax_reverse == "transpose" else
                  "uses the VJP rule through `jax.custom_vjp`; forward mode is not available for this operator in JAX."),
        "",
        "## Tested combinations",
        "",
    ]
    grid = _grid_text(op)
    if grid:
        lines += ["Every test and the conformance suite run all combinations of", "", *grid, ""]
    else:
        lines += ["No parameters to combine: every test runs the defaults.", ""]
    lines += [
        f"Valid inputs are drawn from the domain{'s' if len(op.args) > 1 else ''} "
        + ", ".join(f"`{a.domain}` (`{a.name}`)" for a in op.args)
        + " ([conformance suite](../conformance.md#samples-conformancesamplespy)).",
        "",
        f'??? note "Docstring: `help(xlinalg.{name})`"',
        "",
        "    ```text",
        *("    " + line if line else "" for line in fn.__doc__.splitlines()),
        "    ```",
        "",
    ]
    return "\n".join(lines)


def index_page() -> str:
    lines = [
        "# Operator reference",
        "",
        "<!-- Generated from the operator specs by docs/make_reference.py at build time. -->",
        "",
        "One page per operator, generated from its registry entry at every build of this site; the same "
        "content is in each function's docstring. [Other functions](api.md): `vjp`, `jvp`, the Array API-named "
        "aliases and `LinAlgError`.",
        "",
        *NOTATION,
        "([conventions](conventions.md)).",
        "",
        '<div class="xl-ref" markdown>',
        "",
        "| operator | computes | arguments → outputs | can fail |",
        "|---|---|---|---|",
    ]
    for name, op in operators().items():
        args = ", ".join(f"`{a.name}` `{doc_shape(a.dims)}`" for a in op.args)
        outs = ", ".join(f"`{o.name}` `{doc_shape(o.dims)}`" for o in op.outputs)
        fails = "yes" if op.failure else "no"
        lines.append(f"| [`{name}`](operators/{name}.md){{#{name}}} | {_md(op.summary)} | {args} → {outs} | {fails} |")
    lines += [
        "",
        "</div>",
        "",
        "Shapes are shown with the parameters at their defaults; each operator's page gives the layouts its flags select.",
        "",
    ]
    return "\n".join(lines)


def _api_names() -> list[str]:
    """The public names of ``xlinalg`` that are not operators: ``vjp`` and ``jvp`` first."""
    skip = {*operators(), "FUNCTIONS", "OPERATORS", "__version__"}
    names = [n for n in xlinalg.__all__ if n not in skip]
    return sorted(names, key=lambda n: n not in ("vjp", "jvp"))


def api_page() -> str:
    lines = [
        "# Other functions",
        "",
        "<!-- Generated from the docstrings by docs/make_reference.py; do not edit by hand. -->",
        "",
        "Besides the [operators](operators.md), `xlinalg` exports explicit derivatives for every array library, "
        "aliases with the Array API standard's names and layouts, and its error type. `xlinalg.torch` and "
        "`xlinalg.jax` hold the same aliases.",
        "",
    ]
    for name in _api_names():
        obj = getattr(xlinalg, name)
        if inspect.isclass(obj) and issubclass(obj, tuple):
            head = f"xlinalg.{name}({', '.join(obj._fields)})"
            doc = f"A named tuple with the fields {', '.join(f'``{f}``' for f in obj._fields)}, returned by ``eigh``."
        elif inspect.isclass(obj):
            head = f"class xlinalg.{name}({obj.__mro__[1].__name__})"
            doc = inspect.getdoc(obj) or ""
        else:
            head = f"xlinalg.{name}{inspect.signature(obj)}"
            doc = inspect.getdoc(obj) or ""
        lines += [f"## `{name}` {{#{name.lower()}}}", "", "```python", head, "```", "", _md(doc), ""]
    return "\n".join(lines)


def site_pages() -> dict[str, str]:
    """Every page the site generates: {path under docs/: Markdown}."""
    pages = {"operators.md": index_page(), "api.md": api_page()}
    for name, op in operators().items():
        pages[f"operators/{name}.md"] = operator_page(name, op)
    return pages


# ---- MkDocs hooks -----------------------------------------------------------------------------
KATEX_FILES = ("katex.min.js", "katex.min.css", "LICENSE")


def _expand_nav(nav):
    """Replace the entry whose page is ``operators.md`` by a section: the index, then one page
    per operator."""
    if isinstance(nav, list):
        return [_expand_nav(item) for item in nav]
    if isinstance(nav, dict):
        out = {}
        for title, value in nav.items():
            if value == "operators.md":
                out[title] = [{"Index": "operators.md"}, *({name: f"operators/{name}.md"} for name in operators())]
            else:
                out[title] = _expand_nav(value)
        return out
    return nav


def on_config(config):
    config["nav"] = _expand_nav(config["nav"])
    return config


def on_files(files, config):
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    for path, text in site_pages().items():
        old = files.get_file_from_path(path)
        if old is not None:
            files.remove(old)
        files.append(File.generated(config, path, content=text))

    katex = Path(os.environ.get("XLINALG_KATEX_DIR", ROOT / ".venv-docs" / "katex" / "dist"))
    if not (katex / "katex.min.js").is_file():
        raise PluginError(f"KaTeX not found in {katex}: build the site with `bash scripts/docs.sh`, which fetches it")
    assets = [katex / f for f in KATEX_FILES] + sorted((katex / "fonts").iterdir())
    for path in assets:
        uri = "assets/katex/" + path.relative_to(katex).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def main():
    """Write (or with ``--check``, compare) the pages kept in docs/ for readers of the repository."""
    stale = 0
    for name, text in (("operators.md", render()), ("api.md", api_page())):
        target = Path(__file__).with_name(name)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        if "--check" in sys.argv:
            print(f"{target} is out of date: run python docs/make_reference.py")
            stale = 1
        else:
            target.write_text(text, encoding="utf-8")
    return stale


if __name__ == "__main__":
    sys.exit(main())
