"""scripts/gpu_check.sh runs end to end in its dry mode (no GPU: the same steps on the CPU) and
writes its results: the configuration, the steps, the test and conformance logs, the conformance
JSON and the benchmark's JSON and markdown table with every workload; the benchmark checks each
cell's values, keeps what it measured when stopped, and fails when xlinalg's values are wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xlinalg import lapack

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_writes_every_result(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    if lapack.library() is None:
        pytest.skip("the dry run checks the GPU layer's rules on the CPU build of its entries")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts/gpu_check.sh"), "--dry", "--out", str(tmp_path), "--python", sys.executable],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    from benchmarks.bench_gpu import FRAMEWORKS, WORKLOADS, XLINALG

    bench = json.loads((tmp_path / "gpu-benchmark.json").read_text())
    assert bench["dry"] and [r["label"] for r in bench["rows"]] == [w.label for w in WORKLOADS]
    for row in bench["rows"]:
        assert set(FRAMEWORKS) <= set(row)
        assert all(row[column]["ms"] > 0 for column in (*XLINALG, "torch", "jax")), row
        assert all(row[column]["values_ok"] for column in (*XLINALG, "torch", "jax")), row
    table = (tmp_path / "gpu-benchmark.md").read_text()
    assert all(w.label in table for w in WORKLOADS) and "dry run" in table
    from xlinalg.cuda.rules import RULES

    conformance = json.loads((tmp_path / "conformance.json").read_text())
    assert sorted({c["op"] for c in conformance["results"]}) == sorted(RULES)
    config = (tmp_path / "config.txt").read_text()
    lines = ("CUDA kernel layer", "PyTorch autograd node", "JAX FFI kernels", "JAX FFI handlers for CUDA", "GPU entries on device 0")
    assert all(f"{name}: " in config for name in lines), config
    assert "passed" in (tmp_path / "tests.txt").read_text()
    steps = [line.split("] ", 1)[1] for line in (tmp_path / "steps.txt").read_text().splitlines()]
    assert steps.index("benchmark") < steps.index("CUDA tests") and steps[-1].startswith("done (status 0)")


def test_a_slow_cell_stops_at_its_time_budget(monkeypatch):
    import benchmarks.bench_gpu as bench

    calls, now = [], [0.0]

    def slow():  # each call takes 0.4 s of the patched clock
        calls.append(1)
        now[0] += 0.4

    monkeypatch.setattr(bench, "clock", lambda: now[0])
    assert bench.median_ms(slow, lambda: None, 20, budget_s=1.0) == pytest.approx(400.0)
    assert len(calls) == 2 + 3  # two warm-up calls, then rounds until 1 s has gone (at least 3)
    calls.clear()
    bench.median_ms(lambda: calls.append(1), lambda: None, 20, budget_s=1.0)
    assert len(calls) == 2 + 20


def test_cells_with_wrong_values_are_marked_and_do_not_meet_the_target(monkeypatch):
    pytest.importorskip("torch")
    import benchmarks.bench_gpu as bench
    import xlinalg.torch as xt

    w = bench.WORKLOADS[0]
    c = bench.case(w, dry=True)
    right = bench.measure(c, "xlinalg torch", "cpu", 3)
    assert right["values_ok"] and right["max_rel_error"] < 1e-5, right
    potrf = xt.potrf
    monkeypatch.setattr(xt, "potrf", lambda a: potrf(a) * 1.05)  # a kernel 5 % off
    wrong = bench.measure(c, "xlinalg torch", "cpu", 3)
    assert not wrong["values_ok"] and wrong["max_rel_error"] == pytest.approx(0.05, rel=1e-3), wrong
    row = {"label": w.label, "target_ms": 1e9, **{f: {"error": "absent"} for f in bench.FRAMEWORKS}}
    results = {"environment": {}, "dry": False, "rows": [{**row, "xlinalg torch": wrong}]}
    table = bench.markdown(results)
    assert f"{wrong['ms']:.3g} †" in table and "xlinalg torch: 0.05" in table
    assert table.splitlines()[4].endswith("| — |")  # no right xlinalg cell: the target is not judged
    results["rows"][0]["xlinalg torch interleaved"] = right
    assert bench.markdown(results).splitlines()[4].endswith("| ✓ |")


def test_one_wrong_matrix_of_a_batch_is_caught():
    import benchmarks.bench_gpu as bench

    ref = np.ones((1000, 4, 4))
    values = ref.copy()
    assert bench.relative_error(values, ref, batched=True) == 0
    values[-1, 0, 0] = 2.0  # the last matrix, off by 1 in one of its 16 entries
    assert bench.relative_error(values, ref, batched=True) == pytest.approx(0.25)


def test_a_run_stopped_early_keeps_the_workloads_it_measured(tmp_path, monkeypatch):
    import benchmarks.bench_gpu as bench

    def measure(c, framework, device, rounds):
        if c.w is bench.WORKLOADS[1]:
            raise KeyboardInterrupt  # the run is stopped during the second workload
        return {"ms": 1.0, "max_rel_error": 0.0, "values_ok": True}

    monkeypatch.setattr(bench, "measure", measure)
    monkeypatch.setattr(bench, "versions", lambda: {"device": "test"})
    monkeypatch.setattr(bench, "case", lambda w, dry: bench.Case(w, *(np.zeros(1),) * 3, {}))
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--json", str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md")])
    assert [r["label"] for r in json.loads((tmp_path / "b.json").read_text())["rows"]] == [bench.WORKLOADS[0].label]
    assert f"incomplete: 1 of {len(bench.WORKLOADS)} workloads" in (tmp_path / "b.md").read_text()


@pytest.mark.parametrize("wrong_column, status", [("xlinalg jax staged", 1), ("torch", 0)])
def test_the_run_fails_when_xlinalgs_values_are_wrong(tmp_path, monkeypatch, wrong_column, status):
    import benchmarks.bench_gpu as bench

    def measure(c, framework, device, rounds):
        return {"ms": 1.0, "max_rel_error": 0.5, "values_ok": framework != wrong_column}

    monkeypatch.setattr(bench, "measure", measure)
    monkeypatch.setattr(bench, "versions", lambda: {"device": "test"})
    monkeypatch.setattr(bench, "case", lambda w, dry: bench.Case(w, *(np.zeros(1),) * 3, {}))
    assert bench.main(["--markdown", str(tmp_path / "b.md")]) == status  # a native's wrong values are reported only
    assert f"{wrong_column}: 0.5" in (tmp_path / "b.md").read_text()
