"""scripts/gpu_check.sh runs end to end in its dry mode (no GPU: the same steps on the CPU) and
writes its results: the configuration, the test and conformance logs, the conformance JSON and
the benchmark's JSON and markdown table with every workload."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    from benchmarks.bench_gpu import FRAMEWORKS, WORKLOADS, XLINALG

    bench = json.loads((tmp_path / "gpu-benchmark.json").read_text())
    assert bench["dry"] and [r["label"] for r in bench["rows"]] == [w.label for w in WORKLOADS]
    for row in bench["rows"]:
        assert set(FRAMEWORKS) <= set(row)
        assert all(row[column]["ms"] > 0 for column in (*XLINALG, "torch", "jax")), row
    table = (tmp_path / "gpu-benchmark.md").read_text()
    assert all(w.label in table for w in WORKLOADS) and "dry run" in table
    from xlinalg.cuda.rules import RULES

    conformance = json.loads((tmp_path / "conformance.json").read_text())
    assert sorted({c["op"] for c in conformance["results"]}) == sorted(RULES)
    assert "CUDA kernel layer" in (tmp_path / "config.txt").read_text()
    assert "passed" in (tmp_path / "tests.txt").read_text()


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
