"""Plots and tables of the benchmark results: reads the JSON files that
``benchmarks/bench_<framework>.py --threads T --json <results>/<framework>-<T>t.json`` write and
regenerates

- ``<results>/times-<framework>.svg``: time against n for each operator and dtype, xlinalg
  against the framework's native function, forward and forward+backward (the run with the
  fewest threads);
- ``<results>/ratios.svg``: xlinalg / native, forward+backward, for each operator, one line per
  framework (PyTorch, JAX, MXNet) and dtype, with a line at 1 (the runs with the fewest threads);
- the generated sections of the page (``docs/benchmarks.md``): the text between
  ``<!-- generated:NAME ... -->`` and ``<!-- /generated:NAME -->`` (NAME: runs, plots, numpy,
  torch, jax, mxnet) is replaced, the rest of the page is left as it is. ``runs`` has the runs
  and the summary of the targets, each framework's section its ratio table per thread count
  (operator × n × dtype, ✓/✗ against the target; ``benchmarks/harness.py`` has the targets).

    python benchmarks/plot.py [--results docs/benchmarks] [--page docs/benchmarks.md] [--no-plots]

Needs matplotlib (pinned in requirements/docs.txt, so ``.venv-docs/bin/python`` runs it);
``--no-plots`` regenerates only the tables. ``bash benchmarks/run_all.sh`` runs the benchmarks
and then this script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import CASES, DTYPES, OPS, SCHEMA, case_label, describe, ratio_grid, target_summary

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("numpy", "torch", "jax", "mxnet")
TITLES = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX", "mxnet": "MXNet"}
# colours: xlinalg against native in the time plots, one per framework in the ratio plot
XLINALG, NATIVE = "#3f51b5", "#e67e22"
COLOURS = {"numpy": "#555555", "torch": "#d62728", "jax": "#1f77b4", "mxnet": "#2ca02c"}
DTYPE_STYLE = {"float64": "-", "float32": "--"}
COLUMNS = 5  # operators per row of panels


def load(results: Path) -> dict:
    """``{(framework, threads): document}`` for every ``<framework>-<threads>t.json`` in ``results``."""
    runs = {}
    for fw in FRAMEWORKS:
        for path in sorted(results.glob(f"{fw}-*t.json"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)):
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("schema") != SCHEMA:
                sys.exit(f"{path}: schema {doc.get('schema')!r}, expected {SCHEMA!r}")
            runs[fw, doc["threads"]] = doc
    return runs


def fewest_threads(runs) -> dict:
    """``{framework: document}``: each framework's run with the fewest threads."""
    out = {}
    for (fw, _), doc in sorted(runs.items(), key=lambda kv: kv[0][1], reverse=True):
        out[fw] = doc
    return {fw: out[fw] for fw in FRAMEWORKS if fw in out}


def series(doc, op, dtype, key):
    """(n values, values of ``key``, batch sizes) of one operator and dtype, by n."""
    rows = sorted((r for r in doc["records"] if r["op"] == op and r["dtype"] == dtype and r.get(key) is not None),
                  key=lambda r: r["n"])
    return [r["n"] for r in rows], [r[key] for r in rows], [r["batch"] for r in rows]


def _ops(docs) -> list:
    return [op for op in OPS if any(r["op"] == op for doc in docs for r in doc["records"])]


def _setup_matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none",  # text stays text: small files, the browser's sans-serif font
        "svg.hashsalt": "xlinalg-benchmarks",  # the same ids at every run: stable diffs
        "font.size": 8,
        "axes.titlesize": 8.5,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 7.5,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
    return plt


def _n_axis(ax, cases):
    """The cases, evenly spaced (n = 8 and 32 are batches: the time is not monotone in n)."""
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([case_label(n, b).replace("×", "\n×") for n, b in cases])
    ax.set_xlim(-0.4, len(cases) - 0.6)


def _x(cases, ns):
    """The positions of the matrix orders ``ns`` on the axis of ``cases``."""
    order = [n for n, _ in cases]
    return [order.index(n) for n in ns]


def _all_cases(docs):
    """The (n, batch) of every record, in the order of CASES."""
    present = {(r["n"], r["batch"]) for doc in docs for r in doc["records"]}
    return [c for c in CASES if c in present]


def _panels(plt, count, height):
    """A figure with ``count`` panels in rows of COLUMNS; the unused ones hidden."""
    rows = math.ceil(count / COLUMNS)
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(1.9 * COLUMNS + 0.3, height * rows + 1.0), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _save(fig, path: Path):
    fig.savefig(path, format="svg", facecolor="white", metadata={"Date": None})
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr)


def plot_times(plt, fw, doc, out: Path) -> Path:
    """Time against n: a panel per operator and dtype (rows of COLUMNS operators, a row per dtype)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ops = _ops([doc])
    dtypes = [d for d in DTYPES if any(r["dtype"] == d for r in doc["records"])]
    chunks = [ops[i:i + COLUMNS] for i in range(0, len(ops), COLUMNS)]
    panels = [(op, dtype) for chunk in chunks for dtype in dtypes for op in chunk + [None] * (COLUMNS - len(chunk))]
    fig, axes = _panels(plt, len(panels), 2.0)
    cases = _all_cases([doc])
    lines = [
        ("xlinalg_fwd_bwd_ms", XLINALG, "-", "o", "xlinalg forward+backward"),
        ("native_fwd_bwd_ms", NATIVE, "-", "o", "native forward+backward"),
        ("xlinalg_fwd_ms", XLINALG, ":", "s", "xlinalg forward"),
        ("native_fwd_ms", NATIVE, ":", "s", "native forward"),
    ]
    for ax, (op, dtype) in zip(axes, panels):
        if op is None:
            ax.set_visible(False)
            continue
        for key, colour, style, marker, label in lines:
            ns, ts, _ = series(doc, op, dtype, key)
            if ns:
                ax.plot(_x(cases, ns), ts, color=colour, linestyle=style, marker=marker, markersize=3, label=label)
        _n_axis(ax, cases)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 3)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{op}, {dtype}")
    axes[0].set_ylabel("ms per call")
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.suptitle(f"{TITLES[fw]}, {doc['threads']} thread(s): xlinalg against the native functions"
                 + ("" if fw != "numpy" else " (NumPy has no backward pass)") + "; n = 8 and 32 are batches",
                 fontsize=8.5)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=4, frameon=False)
    path = out / f"times-{fw}.svg"
    _save(fig, path)
    plt.close(fig)
    return path


def plot_ratios(plt, docs: dict, out: Path) -> Path:
    """xlinalg / native, forward+backward, a panel per operator, a line per framework and dtype."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    docs = {fw: doc for fw, doc in docs.items() if fw != "numpy"}
    ops = _ops(docs.values())
    fig, axes = _panels(plt, len(ops), 2.1)
    cases = _all_cases(docs.values())
    lo, hi = 1.0, 1.0
    for ax, op in zip(axes, ops):
        ax.axhline(1.0, color="black", linewidth=1.0)
        for fw, doc in docs.items():
            for dtype in DTYPES:
                ns, rs, _ = series(doc, op, dtype, "ratio_fwd_bwd")
                if ns:
                    lo, hi = min(lo, *rs), max(hi, *rs)
                    ax.plot(_x(cases, ns), rs, color=COLOURS[fw], linestyle=DTYPE_STYLE[dtype], marker="o", markersize=3,
                            label=f"{TITLES[fw]} {dtype}")
        _n_axis(ax, cases)
        ax.set_yscale("log", base=2)
        ax.set_title(op)
    ticks = [t for t in (0.0625, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64) if lo / 1.3 <= t <= hi * 1.3]
    for ax in axes[:len(ops)]:
        ax.set_ylim(lo / 1.2, hi * 1.2)
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    threads = sorted({doc["threads"] for doc in docs.values()})
    fig.suptitle(f"xlinalg / native, forward+backward ({', '.join(map(str, threads))} thread(s); below 1: xlinalg "
                 "faster); solid float64, dashed float32", fontsize=8.5)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=6, frameon=False)
    path = out / "ratios.svg"
    _save(fig, path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------- the page
def md_table(head, rows, right=None) -> str:
    """A Markdown table: the columns ``right`` (default: all but the first two) right-aligned."""
    right = range(2, len(head)) if right is None else right
    align = ["---:" if i in right else "---" for i in range(len(head))]
    return "\n".join("| " + " | ".join(str(c).strip() for c in row) + " |" for row in [head, align, *rows])


def _link(path: Path, page: Path) -> str:
    """``path`` relative to the folder of ``page`` (links and images in the page)."""
    return Path(os.path.relpath(path, page.parent)).as_posix()


def _json_path(results: Path, fw: str, threads: int) -> Path:
    return results / f"{fw}-{threads}t.json"


def framework_section(fw, docs: dict, results: Path, page: Path) -> str:
    """``docs``: ``{threads: document}`` of the framework."""
    if not docs:
        return (f"No results yet: `bash benchmarks/run_all.sh {fw}` writes `docs/benchmarks/{fw}-1t.json` and "
                f"`{fw}-2t.json` and regenerates this section.")
    first = next(iter(docs.values()))
    native = ", ".join(f"{op}: `{name}`" for op, name in first["native"].items())
    what = "forward (NumPy has no backward pass; no targets)" if fw == "numpy" else "forward+backward; ✓/✗: against the target"
    parts = [f"{first['measures']}. Native functions: {native}. Cells: xlinalg / native, {what}."]
    for threads, doc in docs.items():
        json_link = _link(_json_path(results, fw, threads), page)
        layer = doc["environment"].get("kernel_layer", {})
        compiled = ", ".join(layer.get("operators", [])) or "none"
        parts += [
            "", f"**{threads} thread{'s' * (threads != 1)}** — `{doc['command']}`; compiled kernels: {compiled}. "
            f"Raw results: [{json_link.rsplit('/', 1)[-1]}]({json_link}).",
            "", md_table(*ratio_grid(fw, doc["records"], doc.get("missing", []))),
        ]
        notes = [f"No result: {describe(m)}." for m in doc.get("missing", [])]
        if doc.get("retried"):
            notes.append("Retried after a hang: " + "; ".join(doc["retried"]) + ".")
        parts += ["", *notes] if notes else []
        if doc.get("overhead_n4"):
            head = ["op", "dtype", "xlinalg fwd", "native fwd", "xlinalg fwd+bwd", "native fwd+bwd", "ratio"]
            rows = [[o["op"], o["dtype"], *(f"{o[k] * 1e3:.1f}" for k in ("xlinalg_fwd_ms", "native_fwd_ms",
                     "xlinalg_fwd_bwd_ms", "native_fwd_bwd_ms")), f"{o['ratio_fwd_bwd']:.2f}"] for o in doc["overhead_n4"]]
            parts += ["", "Per-call cost at n = 4, one matrix (µs, same run):", "", md_table(head, rows)]
    return "\n".join(parts)


def runs_section(runs: dict) -> str:
    """The runs (one row each), the machine, and the summary of the targets."""
    if not runs:
        return "No results yet: run `bash benchmarks/run_all.sh`."
    envs = {key: doc["environment"] for key, doc in runs.items()}

    def common(key):
        """The (name, value) pairs of ``env[key]`` that every run shares."""
        items = [set((k, str(v)) for k, v in env[key].items() if k != "framework" and v) for env in envs.values()]
        return set.intersection(*items)

    shared_versions = common("versions")
    head = ["framework", "threads", "date (UTC)", "duration", "rounds per median", "versions", "kernel layer",
            "load average (1 min)"]
    rows = []
    for (fw, threads), doc in runs.items():
        env = envs[fw, threads]
        versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v and (k, str(v)) not in shared_versions)
        layer = env.get("kernel_layer", {})
        active = f"compiled ({len(layer.get('operators', []))} operators)" if layer.get("operators") else "pure rules"
        load = env.get("load_average_1min", {})
        rows.append([TITLES[fw], str(threads), env["date"].replace("T", " ").rstrip("Z"), f"{env['duration_s']:.0f} s",
                     str(doc["settings"].get("rounds", "?")), versions or "–", active,
                     f"{load.get('start', '?')} → {load.get('end', '?')}"])
    total = sum(e["duration_s"] for e in envs.values())
    text = [f"{len(runs)} runs, {total / 60:.1f} minutes in all."]
    for cpu, count, plat in sorted({(e["cpu"], e["cpu_count"], e["platform"]) for e in envs.values()}):
        text.append(f"Machine: {count} cores ({cpu}), {plat}.")
    first = next(iter(envs.values()))
    if shared_versions:
        text.append("In every run: " + ", ".join(f"{k} {v}" for k, v in first["versions"].items() if (k, str(v)) in shared_versions) + ".")
    commits = sorted({e.get("git_commit") for e in envs.values()} - {None})
    if commits:
        text.append("Commit " + ", ".join(f"`{c}`" for c in commits) + " (with the working tree's changes, if any).")
    judged = {key: [*doc["records"], *doc.get("overhead_n4", [])] for key, doc in runs.items()}
    summary = md_table(*target_summary(judged))
    return "\n".join([
        " ".join(text), "", md_table(head, rows, right=(1, 3, 4)), "",
        "Targets (forward+backward medians, xlinalg / native; the targets are set for 1 thread, 2 threads are "
        "reported against the same numbers). A cell: ✓ or ✗, the worst ratio, and how many of the cases the target "
        "judges meet it (a case is judged by the first target that applies to it; cases skipped or without a result are not counted):",
        "", summary,
    ])


def plots_section(images, results: Path, page: Path) -> str:
    if not images:
        return "No plots yet: run `bash benchmarks/run_all.sh`."
    out = []
    if "ratios" in images:
        link = _link(results / "ratios.svg", page)
        out += [f"[![xlinalg / native for every framework and operator]({link})]({link})", ""]
    for fw in FRAMEWORKS:
        if fw in images:
            link = _link(results / f"times-{fw}.svg", page)
            out += [f"[![{TITLES[fw]}: time against n, xlinalg and native]({link})]({link})", ""]
    return "\n".join(out).rstrip()


def replace_section(page: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- generated:{name}\b[^>]*-->\n)(.*?)(<!-- /generated:{name} -->)", re.DOTALL)
    if not pattern.search(page):
        sys.exit(f"the page has no section <!-- generated:{name} ... --> ... <!-- /generated:{name} -->")
    return pattern.sub(lambda m: m.group(1) + "\n" + body.strip() + "\n\n" + m.group(3), page, count=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=ROOT / "docs" / "benchmarks",
                   help="folder with <framework>-<threads>t.json; the SVG files are written there too")
    p.add_argument("--page", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--no-plots", action="store_true", help="regenerate only the tables (no matplotlib needed)")
    args = p.parse_args()
    runs = load(args.results)
    if not runs:
        print(f"no results in {args.results} (run benchmarks/run_all.sh)", file=sys.stderr)
    plotted = fewest_threads(runs)
    images = {}
    if runs and not args.no_plots:
        plt = _setup_matplotlib()
        for fw, doc in plotted.items():
            images[fw] = plot_times(plt, fw, doc, args.results)
        if any(fw != "numpy" for fw in plotted):
            images["ratios"] = plot_ratios(plt, plotted, args.results)
    elif runs:
        images = {fw: None for fw in plotted if (args.results / f"times-{fw}.svg").exists()}
        if (args.results / "ratios.svg").exists():
            images["ratios"] = None
    page = args.page.read_text(encoding="utf-8")
    page = replace_section(page, "runs", runs_section(runs))
    page = replace_section(page, "plots", plots_section(images, args.results, args.page))
    for fw in FRAMEWORKS:
        docs = {t: doc for (f, t), doc in runs.items() if f == fw}
        page = replace_section(page, fw, framework_section(fw, docs, args.results, args.page))
    tmp = args.page.with_suffix(".md.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, args.page)
    print(f"regenerated the tables of {args.page}", file=sys.stderr)


if __name__ == "__main__":
    main()
