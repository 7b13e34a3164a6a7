"""The walk-through in docs/conformance.md ("conformance for a new framework") runs as written:
its files are written from the page's titled code blocks and its commands run in order, with
the exit statuses and failures the page states."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Walk-through: conformance for a new framework"


def walkthrough() -> tuple[dict, list]:
    """The section's titled code blocks (file name -> text) and its bash commands, in order."""
    text = (ROOT / "docs" / "conformance.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    files = dict(re.findall(r'```\w+ title="([^"]+)"\n(.*?)```', section, re.S))
    commands = [shlex.split(c.strip()) for c in re.findall(r"```bash\n(.*?)```", section, re.S)]
    return files, commands


def run(command, cwd):
    assert command[:2] == ["python", "-m"], command
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), *sys.path])}
    return subprocess.run([sys.executable, *command[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_walkthrough_runs_as_documented(tmp_path):
    files, (first, ci) = walkthrough()
    assert set(files) == {"numpy_linalg_backend.py", "numpy-linalg.toml"}
    (tmp_path / "numpy_linalg_backend.py").write_text(files["numpy_linalg_backend.py"])
    (tmp_path / "numpy-linalg.toml").write_text("")  # step 2: no known failures yet
    proc = run(first, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failing = set(re.findall(r"^FAIL (\w+) × (\w+)", proc.stdout, re.M))
    assert failing == {("potrf", "errors"), ("inverse", "errors"), ("det", "errors"), ("potrf", "nan_policy"), ("inverse", "nan_policy")}, proc.stdout
    assert "declares gemm unsupported" in proc.stdout
    for line in re.findall(r"^FAIL \w+ × errors .*?: (.*)$", proc.stdout, re.M):  # with the declared error contract,
        cases = [case.split(":")[0] for case in line.split("; ")]  # only the dtype conversions remain
        assert set(cases) <= {"int32 inputs", "int64 inputs", "bool inputs"}, line
    (tmp_path / "numpy-linalg.toml").write_text(files["numpy-linalg.toml"])  # step 3
    proc = run(ci, tmp_path)  # step 4
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "conformance.json").read_text())["results"]
    assert sorted((r["op"], r["check"]) for r in results if r["status"] == "xfail") == sorted(failing)
