"""Each operator in its own process: a crash (segfault, abort) fails that operator's cells and
the run goes on.

:func:`run_operator` starts ``python -m xlinalg_conformance.isolation`` for one operator. The
worker runs the checks one after another and writes a line (:data:`MARK` and JSON) when it
starts a check and when the check finishes. When the worker dies, the check it had started is reported as a
failure naming the signal or exit status and the end of the worker's error output, and a new
worker takes the remaining checks.

The worker loads the backend again, so it must be importable: a name from
:data:`~xlinalg_conformance.backends.BACKENDS`, ``module:attr``, or an object bound to a
module-level name (found by :func:`backend_spec`).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict

#: characters of the worker's error output quoted in a crash report
STDERR_TAIL = 600
#: prefix of the worker's protocol lines (anything else it prints is ignored)
MARK = "@xlinalg-conformance "


def backend_spec(backend) -> str:
    """A string that loads ``backend`` in another process: the name itself, or
    ``module:attr`` of the module-level name bound to the object.

    Raises
    ------
    ValueError
        When the object is bound to no module-level name.
    """
    if isinstance(backend, str):
        return backend
    from .backends import BACKENDS, get_backend

    for name, target in BACKENDS.items():
        module = target.split(":", 1)[0]
        if module in sys.modules and get_backend(name) is backend:
            return name
    module = sys.modules.get(type(backend).__module__)
    for attr, value in vars(module or object()).items():
        if value is backend:
            return f"{module.__name__}:{attr}"
    raise ValueError(f"backend {backend.name}: running operators in separate processes needs a backend that can be imported there; pass it by name or as module:attr")


def run_operator(spec: str, op: str, checks, *, reference, dtypes, progress=None) -> list:
    """The :class:`~xlinalg_conformance.runner.Result` of every check of ``op``, each worker
    process running the checks left after the previous one crashed."""
    from .runner import Result

    remaining, results = list(checks), []
    while remaining:
        job = {"backend": spec, "op": op, "checks": remaining, "reference": reference, "dtypes": list(dtypes)}
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        with tempfile.TemporaryFile("w+", errors="replace") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "xlinalg_conformance.isolation", json.dumps(job)], stdout=subprocess.PIPE, stderr=err, text=True, errors="replace", env=env
            )
            started = None
            for line in proc.stdout:
                if not line.startswith(MARK):
                    continue
                message = json.loads(line[len(MARK) :])
                if "start" in message:
                    started = message["start"]
                    continue
                r = Result(**message["result"])
                results.append(r)
                remaining.remove(r.check)
                started = None
                if progress:
                    progress(r)
            status = proc.wait()
            err.seek(0)
            tail = _tail(err.read())
        if not remaining:
            break
        lost = [started] if started is not None else list(remaining)  # died before starting: all lost
        for check in lost:
            r = Result(
                op,
                check,
                "fail",
                ratio=math.inf,
                crashed=True,
                samples=1,
                failed=1,
                message=f"crashed: the process running {op} × {check} {_death(status)}" + (f"; it printed: {tail}" if tail else ""),
            )
            results.append(r)
            remaining.remove(check)
            if progress:
                progress(r)
    order = {c: i for i, c in enumerate(checks)}
    return sorted(results, key=lambda r: order[r.check])


def _tail(stderr: str) -> str:
    """The end of a worker's error output, without the list of extension modules that
    ``faulthandler`` appends to a fatal error's stack."""
    text = stderr.split("\nExtension modules:", 1)[0]
    text = re.sub(r'File "[^"]*[/\\]([^/\\"]+)"', r'File "\1"', text)  # file names without their folders
    return " ".join(text[-STDERR_TAIL:].split())


def _death(status: int) -> str:
    """How a process with exit ``status`` ended, in words."""
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


def main(argv=None) -> int:
    """The worker: run the checks of one operator, one JSON line per start and result."""
    import faulthandler

    from .runner import run_one

    faulthandler.enable()  # a fatal signal prints the Python stack to stderr (quoted in the report)
    job = json.loads((argv or sys.argv[1:])[0])
    for check in job["checks"]:
        print(MARK + json.dumps({"start": check}), flush=True)
        r = run_one(job["backend"], job["op"], check, reference=job["reference"], dtypes=tuple(job["dtypes"]))
        print(MARK + json.dumps({"result": asdict(r)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
