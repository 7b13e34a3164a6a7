"""Plots and tables of the benchmark results: reads the JSON files that
``benchmarks/bench_<framework>.py --json PATH`` write and regenerates

- ``docs/benchmarks/times-<framework>.svg``: time against n for each operator (columns) and
  dtype (rows), xlinalg against the framework's native function, forward and forward+backward;
- ``docs/benchmarks/ratios.svg``: xlinalg / native for each operator, every framework in one
  plot, forward (top) and forward+backward (bottom), with a line at 1;
- the generated sections of ``docs/benchmarks.md``: the text between
  ``<!-- generated:NAME ... -->`` and ``<!-- /generated:NAME -->`` (NAME: runs, plots, numpy,
  torch, jax, mxnet) is replaced, the rest of the page is left as it is.

    python benchmarks/plot.py [--results docs/benchmarks] [--page docs/benchmarks.md] [--no-plots]

Needs matplotlib (pinned in requirements/docs.txt, so ``.venv-docs/bin/python`` runs it);
``--no-plots`` regenerates only the tables. ``bash benchmarks/run_all.sh`` runs the benchmarks
and then this script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("numpy", "torch", "jax", "mxnet")
TITLES = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX", "mxnet": "MXNet"}
OPS = ("potrf", "trsm", "syevd", "inverse")
DTYPES = ("float64", "float32")
SCHEMA = "xlinalg-benchmark/1"
# colours: xlinalg against native in the time plots, one per framework in the ratio plot
XLINALG, NATIVE = "#3f51b5", "#e67e22"
COLOURS = {"numpy": "#555555", "torch": "#d62728", "jax": "#1f77b4", "mxnet": "#2ca02c"}
DTYPE_STYLE = {"float64": "-", "float32": "--"}


def load(results: Path) -> dict:
    """``{framework: document}`` for every ``<framework>.json`` in ``results``."""
    runs = {}
    for fw in FRAMEWORKS:
        path = results / f"{fw}.json"
        if not path.exists():
            continue
        doc = json.loads(path.read_text())
        if doc.get("schema") != SCHEMA:
            sys.exit(f"{path}: schema {doc.get('schema')!r}, expected {SCHEMA!r}")
        runs[fw] = doc
    return runs


def case_label(n: int, batch: int) -> str:
    return f"{n}\n×{batch}" if batch > 1 else f"{n}"


def series(doc, op, dtype, key):
    """(n values, values of ``key``, batch sizes) of one operator and dtype, by n."""
    rows = sorted((r for r in doc["records"] if r["op"] == op and r["dtype"] == dtype and r.get(key) is not None),
                  key=lambda r: r["n"])
    return [r["n"] for r in rows], [r[key] for r in rows], [r["batch"] for r in rows]


def _setup_matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "svg.fonttype": "none",  # text stays text: small files, the browser's sans-serif font
        "svg.hashsalt": "xlinalg-benchmarks",  # the same ids at every run: stable diffs
        # about 7.9 inches wide: shown at its own size in the documentation's text column
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


def _n_axis(ax, ns, batches):
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns)
    ax.set_xticklabels([case_label(n, b) for n, b in zip(ns, batches)])
    ax.minorticks_off()
    if ns:
        ax.set_xlim(min(ns) / 1.6, max(ns) * 1.6)


def _save(fig, path: Path):
    fig.savefig(path, format="svg", facecolor="white", metadata={"Date": None})
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr)


def plot_times(plt, fw, doc, out: Path) -> Path:
    """Time against n: one column per operator, one row per dtype."""
    ops = [op for op in OPS if any(r["op"] == op for r in doc["records"])]
    dtypes = [d for d in DTYPES if any(r["dtype"] == d for r in doc["records"])]
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(len(dtypes), len(ops), figsize=(1.9 * len(ops) + 0.3, 2.1 * len(dtypes) + 0.9),
                             squeeze=False, layout="constrained")
    has_bwd = any(r["native_fwd_bwd_ms"] is not None for r in doc["records"])
    for i, dtype in enumerate(dtypes):
        for j, op in enumerate(ops):
            ax = axes[i][j]
            lines = [
                ("xlinalg_fwd_bwd_ms", XLINALG, "-", "o", "xlinalg forward+backward"),
                ("native_fwd_bwd_ms", NATIVE, "-", "o", "native forward+backward"),
                ("xlinalg_fwd_ms", XLINALG, ":", "s", "xlinalg forward"),
                ("native_fwd_ms", NATIVE, ":", "s", "native forward"),
            ]
            for key, colour, style, marker, label in lines:
                ns, ts, batches = series(doc, op, dtype, key)
                if ns:
                    ax.plot(ns, ts, color=colour, linestyle=style, marker=marker, markersize=3.5, label=label)
            ns, _, batches = series(doc, op, dtype, "xlinalg_fwd_ms")
            _n_axis(ax, ns, batches)
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{op}" if i == 0 else "")
            if j == 0:
                ax.set_ylabel(f"{dtype}: ms per call")
            if i == len(dtypes) - 1:
                ax.set_xlabel("n (× batch)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    native = " / ".join(sorted(set(doc["native"].values()), key=list(doc["native"].values()).index))
    fig.suptitle(
        f"{TITLES[fw]}: xlinalg against the native functions"
        + ("" if has_bwd else " (NumPy has no backward pass)") + f"\n{native}",
        fontsize=8.5,
    )
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels) if len(ops) > 2 else 2, frameon=False)
    path = out / f"times-{fw}.svg"
    _save(fig, path)
    plt.close(fig)
    return path


def plot_ratios(plt, runs, out: Path) -> Path:
    """xlinalg / native for every framework: forward (top row), forward+backward (bottom)."""
    ops = [op for op in OPS if any(r["op"] == op for doc in runs.values() for r in doc["records"])]
    rows = (("ratio_fwd", "forward"), ("ratio_fwd_bwd", "forward+backward"))
    fig, axes = plt.subplots(len(rows), len(ops), figsize=(1.9 * len(ops) + 0.3, 5.4), squeeze=False,
                             layout="constrained", sharey="row")
    lo, hi = 1.0, 1.0
    for i, (key, ylabel) in enumerate(rows):
        for j, op in enumerate(ops):
            ax = axes[i][j]
            ax.axhline(1.0, color="black", linewidth=1.0)
            all_ns, all_batches = [], []
            for fw, doc in runs.items():
                for dtype in DTYPES:
                    ns, rs, batches = series(doc, op, dtype, key)
                    if not ns:
                        continue
                    lo, hi = min(lo, *rs), max(hi, *rs)
                    ax.plot(ns, rs, color=COLOURS[fw], linestyle=DTYPE_STYLE[dtype], marker="o", markersize=3,
                            label=f"{TITLES[fw]} {dtype}")
                    for n, b in zip(ns, batches):
                        if n not in all_ns:
                            all_ns.append(n)
                            all_batches.append(b)
            order = sorted(range(len(all_ns)), key=all_ns.__getitem__)
            _n_axis(ax, [all_ns[k] for k in order], [all_batches[k] for k in order])
            ax.set_yscale("log", base=2)
            ax.set_title(f"{op}" if i == 0 else f"{op}, forward+backward")
            if j == 0:
                ax.set_ylabel(ylabel)
            if i == len(rows) - 1:
                ax.set_xlabel("n (× batch)")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = [t for t in (0.125, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 8, 16, 32, 64) if lo / 1.3 <= t <= hi * 1.3]
    for ax in axes.flat:
        ax.set_ylim(lo / 1.2, hi * 1.2)
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    handles = {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.suptitle("xlinalg / native (below 1: xlinalg faster); solid float64, dashed float32", fontsize=8.5)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(4, 2 * len(ops)),
               frameon=False)
    path = out / "ratios.svg"
    _save(fig, path)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------- the page


def _ms(v):
    return "–" if v is None else f"{v:.3f}"


def _ratio(v, flag=False):
    return "–" if v is None else f"{v:.2f}" + (" ✗" if flag else "")


def _above_target(doc, r) -> bool:
    t = doc.get("target")
    if not t or r.get(t["ratio"]) is None:
        return False
    return r["n"] >= t.get("min_n", 0) and r[t["ratio"]] > t["max"]


def table(fw, doc) -> str:
    recs = doc["records"]
    if fw == "numpy" or all(r["native_fwd_bwd_ms"] is None for r in recs):
        head = ("| op | dtype | n | batch | NumPy fwd ms | xlinalg fwd ms | fwd ratio | xlinalg fwd+bwd ms "
                "| fwd+bwd / NumPy fwd |\n|---|---|---:|---:|---:|---:|---:|---:|---:|")
        body = [
            f"| {r['op']} | {r['dtype']} | {r['n']} | {r['batch']} | {_ms(r['native_fwd_ms'])} "
            f"| {_ms(r['xlinalg_fwd_ms'])} | {_ratio(r['ratio_fwd'])} | {_ms(r['xlinalg_fwd_bwd_ms'])} "
            f"| {_ratio(r['ratio_fwd_bwd_to_native_fwd'])} |"
            for r in recs
        ]
    else:
        head = ("| op | dtype | n | batch | native fwd ms | xlinalg fwd ms | fwd ratio | native fwd+bwd ms "
                "| xlinalg fwd+bwd ms | fwd+bwd ratio |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        body = [
            f"| {r['op']} | {r['dtype']} | {r['n']} | {r['batch']} | {_ms(r['native_fwd_ms'])} "
            f"| {_ms(r['xlinalg_fwd_ms'])} | {_ratio(r['ratio_fwd'])} | {_ms(r['native_fwd_bwd_ms'])} "
            f"| {_ms(r['xlinalg_fwd_bwd_ms'])} | {_ratio(r['ratio_fwd_bwd'], _above_target(doc, r))} |"
            for r in recs
        ]
    return "\n".join([head, *body])


def _link(path: Path, page: Path) -> str:
    """``path`` relative to the folder of ``page`` (links and images in the page)."""
    return Path(os.path.relpath(path, page.parent)).as_posix()


def framework_section(fw, doc, results: Path, page: Path) -> str:
    if doc is None:
        return (f"No results yet: `bash benchmarks/run_all.sh {fw}` writes "
                f"`docs/benchmarks/{fw}.json` and regenerates this section.")
    native = ", ".join(f"{op}: `{name}`" for op, name in doc["native"].items())
    parts = [
        f"`{doc['command']}` — {doc['measures']}. Native functions: {native}. "
        f"Ratio = xlinalg / native. Raw results: [{fw}.json]({_link(results / f'{fw}.json', page)}).",
        "",
        table(fw, doc),
    ]
    t = doc.get("target")
    if t:
        where = f" for n ≥ {t['min_n']}" if t.get("min_n") else ""
        parts += ["", f"Target: forward+backward ratio ≤ {t['max']}{where}; ✗: above it in this run."]
    for m in doc.get("missing", []):
        parts += ["", f"No result: {m}."]
    if doc.get("retried"):
        parts += ["", "Retried after a hang (see [JAX](jax.md#performance)): " + "; ".join(doc["retried"]) + "."]
    if doc.get("overhead_n4_us"):
        parts += [
            "",
            "Per-call overhead at n = 4, one matrix (µs, same run):",
            "",
            "| op | dtype | xlinalg fwd | native fwd | xlinalg fwd+bwd | native fwd+bwd |",
            "|---|---|---:|---:|---:|---:|",
            *(f"| {o['op']} | {o['dtype']} | {o['xlinalg_fwd_us']:.1f} | {o['native_fwd_us']:.1f} "
              f"| {o['xlinalg_fwd_bwd_us']:.1f} | {o['native_fwd_bwd_us']:.1f} |" for o in doc["overhead_n4_us"]),
        ]
    return "\n".join(parts)


def runs_section(runs) -> str:
    if not runs:
        return "No results yet: run `bash benchmarks/run_all.sh`."
    envs = {fw: doc["environment"] for fw, doc in runs.items()}

    def common(key):
        """The (name, value) pairs of ``env[key]`` that every run shares."""
        items = [set((k, str(v)) for k, v in env[key].items() if k != "framework" and v) for env in envs.values()]
        return set.intersection(*items)

    shared_versions, shared_threads = common("versions"), common("threads")

    def sizes(doc):
        return ", ".join(str(n) for n in sorted({r["n"] for r in doc["records"]} | _missing_sizes(doc)))

    def rounds(doc):
        return str(doc["settings"].get("rounds_per_median", "?"))

    same_sizes = len({sizes(doc) for doc in runs.values()}) == 1
    same_rounds = len({rounds(doc) for doc in runs.values()}) == 1
    head = ["framework", "date (UTC)", "duration"] + ["n"] * (not same_sizes) + ["rounds per median"] * (not same_rounds)
    head += ["versions", "threads", "load average (1 min)"]
    rows = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if h in ("duration", "rounds per median") else "---" for h in head) + "|"]
    for fw, doc in runs.items():
        env = envs[fw]
        versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v and (k, str(v)) not in shared_versions)
        threads = env["threads"]
        thr = [f"{fw} {threads['framework']}"] if threads.get("framework") is not None else []
        thr += [f"`{k}={v}`" for k, v in threads.items() if k != "framework" and (k, str(v)) not in shared_threads]
        load = env.get("load_average_1min", {})
        cells = [TITLES[fw], env["date"].replace("T", " ").rstrip("Z"), f"{env['duration_s']:.0f} s"]
        cells += [sizes(doc)] * (not same_sizes) + [rounds(doc)] * (not same_rounds)
        cells += [versions or "–", ", ".join(thr) or "–", f"{load.get('start', '?')} → {load.get('end', '?')}"]
        rows.append("| " + " | ".join(cells) + " |")
    total = sum(e["duration_s"] for e in envs.values())
    text = [f"{len(runs)} runs, {total / 60:.1f} minutes in all."]
    for cpu, count, plat, device in sorted({(e["cpu"], e["cpu_count"], e["platform"], e.get("device", "cpu")) for e in envs.values()}):
        text.append(f"Machine: {count} cores ({cpu}), {plat}, device {device}.")
    first = next(iter(envs.values()))
    docs = list(runs.values())
    if same_sizes:
        batched = sorted({(r["n"], r["batch"]) for doc in docs for r in doc["records"] if r["batch"] > 1})
        where = ", ".join(f"{n} × {b}" for n, b in batched)
        text.append(f"Matrix orders n = {sizes(docs[0])}" + (f" (batched: n × batch = {where})." if where else "."))
    if same_rounds:
        text.append(f"{rounds(docs[0])} rounds per median.")
    if shared_versions:
        text.append("In every run: " + ", ".join(f"{k} {v}" for k, v in first["versions"].items() if (k, str(v)) in shared_versions) + ".")
    if shared_threads:
        text.append("Threads: " + ", ".join(f"`{k}={v}`" for k, v in first["threads"].items() if (k, str(v)) in shared_threads) + ".")
    commits = sorted({e.get("git_commit") for e in envs.values()} - {None})
    if commits:
        text.append("Commit " + ", ".join(f"`{c}`" for c in commits) + " (with the working tree's changes, if any).")
    return "\n".join([" ".join(text), "", *rows])


def _missing_sizes(doc) -> set:
    """The n of the cases in ``doc["missing"]`` (text such as "trsm float64 n=32 batch=256: ...")."""
    return {int(m) for m in re.findall(r"\bn=(\d+)", " ".join(doc.get("missing", [])))}


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
    pattern = re.compile(
        rf"(<!-- generated:{name}\b[^>]*-->\n)(.*?)(<!-- /generated:{name} -->)", re.DOTALL
    )
    if not pattern.search(page):
        sys.exit(f"docs/benchmarks.md has no section <!-- generated:{name} ... --> ... <!-- /generated:{name} -->")
    return pattern.sub(lambda m: m.group(1) + "\n" + body.strip() + "\n\n" + m.group(3), page, count=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=ROOT / "docs" / "benchmarks",
                   help="folder with <framework>.json; the SVG files are written there too")
    p.add_argument("--page", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--no-plots", action="store_true", help="regenerate only the tables (no matplotlib needed)")
    args = p.parse_args()
    runs = load(args.results)
    if not runs:
        print(f"no results in {args.results} (run benchmarks/run_all.sh)", file=sys.stderr)
    images = {}
    if runs and not args.no_plots:
        plt = _setup_matplotlib()
        for fw, doc in runs.items():
            images[fw] = plot_times(plt, fw, doc, args.results)
        images["ratios"] = plot_ratios(plt, runs, args.results)
    elif runs:
        images = {fw: None for fw in runs if (args.results / f"times-{fw}.svg").exists()}
        if (args.results / "ratios.svg").exists():
            images["ratios"] = None
    page = args.page.read_text()
    page = replace_section(page, "runs", runs_section(runs))
    page = replace_section(page, "plots", plots_section(images, args.results, args.page))
    for fw in FRAMEWORKS:
        page = replace_section(page, fw, framework_section(fw, runs.get(fw), args.results, args.page))
    tmp = args.page.with_suffix(".md.tmp")
    tmp.write_text(page)
    os.replace(tmp, args.page)
    print(f"regenerated the tables of {args.page.name}", file=sys.stderr)


if __name__ == "__main__":
    main()
