"""scripts/gpu_check.sh runs end to end in its dry mode (no GPU: the same steps on the CPU) and
writes its results: the configuration, the steps, the test and conformance logs, the conformance
JSON and the benchmark's JSON and markdown table with every workload; the benchmark checks each
cell's values, keeps what it measured when stopped, and fails when xlinalg's values are wrong."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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
    command = ["bash", str(ROOT / "scripts/gpu_check.sh"), "--dry", "--out", str(tmp_path), "--python", sys.executable]
    # a session of its own, so that a timeout ends the script's children too (they hold its pipes)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True) as run:
        try:
            stdout, stderr = run.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            stdout, stderr = run.communicate()
            pytest.fail("the dry run took over 900 s: " + stdout[-4000:] + stderr[-2000:])
    assert run.returncode == 0, stdout[-4000:] + stderr[-2000:]
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
    assert "torch " in (tmp_path / "environment.txt").read_text()
    steps = [line.split("] ", 1)[1] for line in (tmp_path / "steps.txt").read_text().splitlines()]
    assert steps.index("benchmark") < steps.index("conformance suite on CUDA tensors (operators with GPU kernels)") < steps.index("CUDA tests")
    assert steps[-1].startswith("done (status 0)")


def _helpers(tmp_path, script: str, started_ago: int = 0, budget: int = 520, dry: int = 0, root: Path = ROOT):
    """``script`` run by bash after sourcing scripts/gpu_check_helpers.sh, the check's settings
    as on a GPU (``dry`` 0) started ``started_ago`` seconds ago, ``root`` its repository (where
    .whl/ is); its steps in tmp_path/steps.txt."""
    settings = f"ROOT={root}; out={tmp_path}; py={sys.executable}; dry={dry}; budget={budget}; started=$(( $(date +%s) - {started_ago} ))"
    setup = f"set -euo pipefail; {settings}; source {ROOT}/scripts/gpu_check_helpers.sh\n"
    return subprocess.run(["bash", "-c", setup + script], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_a_step_with_no_time_left_is_skipped_and_says_so(tmp_path):
    run = _helpers(tmp_path, "limit 100 touch ran || echo status=$?", started_ago=495)
    assert "status=124" in run.stdout and not (tmp_path / "ran").exists(), run.stdout + run.stderr
    assert "skipped, the budget is spent" in (tmp_path / "steps.txt").read_text()
    run = _helpers(tmp_path, "limit 100 touch ran; echo status=$?", started_ago=400)
    assert "status=0" in run.stdout and (tmp_path / "ran").exists(), run.stdout + run.stderr


def test_a_step_is_interrupted_at_the_end_of_the_budget_on_a_gpu_only(tmp_path):
    """Its own limit is 100 s, 25 s are left of the budget less its 10 s margin (24 where the
    clock's second ticks between the start and the step; 20 is the least a step is given):
    interrupted after them."""
    start = time.monotonic()
    run = _helpers(tmp_path, "limit 100 sleep 60 || echo status=$?", started_ago=485)
    assert "status=124" in run.stdout and 23 < time.monotonic() - start < 45, run.stdout + run.stderr
    run = _helpers(tmp_path, "limit 20 true; echo status=$?", started_ago=10**6, dry=1)  # dry: no limit, no budget
    assert "status=0" in run.stdout, run.stdout + run.stderr


def test_provide_unpacks_a_missing_module_from_its_wheel(tmp_path):
    import zipfile

    (tmp_path / ".whl").mkdir()
    for version in ("1.9", "1.10"):  # the newest wheel is taken, by version
        with zipfile.ZipFile(tmp_path / ".whl" / f"xl_fake_module-{version}-py3-none-any.whl", "w") as wheel:
            wheel.writestr("xl_fake_module/__init__.py", f"__version__ = '{version}'\n")
    run = _helpers(tmp_path, "provide xl_fake_module 1.10; $py -c 'import xl_fake_module; print(xl_fake_module.__version__)'", root=tmp_path)
    assert run.returncode == 0 and run.stdout.splitlines()[-1] == "1.10", run.stdout + run.stderr
    run = _helpers(tmp_path, "provide xl_no_such_module 1.0", root=tmp_path)
    assert run.returncode == 1 and "lacks xl_no_such_module 1.0 or later" in run.stderr
    (tmp_path / ".whl" / "xl_broken_module-1.0-py3-none-any.whl").write_text("not a zip file")
    run = _helpers(tmp_path, "provide xl_broken_module 1.0 || echo status=$?", root=tmp_path)
    assert "status=1" in run.stdout and "cannot unpack" in run.stderr, run.stdout + run.stderr
    run = _helpers(tmp_path, "provide numpy 1.0; echo kept $site")  # present and new enough: nothing unpacked
    assert run.returncode == 0 and run.stdout.strip() == "kept", run.stdout + run.stderr
    with zipfile.ZipFile(tmp_path / ".whl" / "numpy-999.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("numpy/__init__.py", "__version__ = '999.0'\n")
    run = _helpers(tmp_path, "provide numpy 999.0; $py -c 'import numpy; print(numpy.__version__)'", root=tmp_path)  # too old: the wheel's
    assert run.returncode == 0 and run.stdout.splitlines()[-1] == "999.0", run.stdout + run.stderr


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
