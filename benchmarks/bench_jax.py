"""JAX: jitted forward+backward of ``xlinalg.jax`` against JAX's own functions, in the same
process and run (``--threads`` threads, 1 by default).

    python benchmarks/bench_jax.py [--ops potrf potrs] [--dtypes float64] [--sizes 8 32]
                                   [--threads 1] [--quick] [--timeout 60] [--tries 2] [--json PATH]

For each case, ``jax.jit(jax.grad(loss))`` with ``loss = Σ W ∘ f(inputs)`` (random weights
``W``; gradients with respect to every input, the GP's with respect to the covariance) for
``f`` = xlinalg.jax's operator and for its native equivalent (see NATIVE), and ``jax.jit(f)``
of both, alternating round by round; compilation is outside the timing. Prints the ratio table
and the summary of the targets (``benchmarks/harness.py``).

The cases run in a worker process, one at a time. jaxlib 0.10's batched LAPACK calls
(triangular solves: cho_solve, solve_triangular and their gradients; xlinalg's as well as
JAX's own) deadlock in XLA's CPU thread pool when it has 2 threads; with ``--threads 1`` the
process is confined to one CPU and its pool has one thread, which avoids it. A worker that uses
no CPU time for 5 s (or has no result within ``--timeout`` seconds, times (n/1024)³ above
n = 1024) is killed and the case retried in a new one, up to ``--tries`` attempts; a case
without a result is listed as such.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import GP, differentiated, environment, gp_nll, inputs, kernel_layer, kernels_of, outputs, paired_medians, parse, print_results, run, write_json


def _options(p):
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case (up to n = 1024) before a retry")
    p.add_argument("--tries", type=int, default=2, help="attempts per case (a case that hangs is retried)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)


ARGS = parse(__doc__, _options)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import jax.scipy.linalg as jsl  # noqa: E402
import numpy as np  # noqa: E402

import xlinalg.jax as xj  # noqa: E402

NATIVE = {
    "potrf": "jnp.linalg.cholesky",
    "potri": "jax.scipy.linalg.cho_solve(identity)",
    "potrs": "jax.scipy.linalg.cho_solve",
    "trsm": "jax.scipy.linalg.solve_triangular(lower=True)",
    "trmm": "jnp.tril(A) @ B",
    "syrk": "A @ A.mT",
    "gemm": "A @ B + C",
    "sumlogdiag": "jnp.log(jnp.diagonal(A)).sum(-1)",
    "syevd": "jnp.linalg.eigh",
    "inverse": "jnp.linalg.inv",
    "det": "jnp.linalg.det",
    "slogdet": "jnp.linalg.slogdet",
    "gelqf": "jnp.linalg.qr(A.mT), transposed",
    GP: "cholesky, solve_triangular, log(diagonal).sum",
}
_NATIVE = {
    "potrf": jnp.linalg.cholesky,
    "potri": lambda f: jsl.cho_solve((f, True), jnp.broadcast_to(jnp.eye(f.shape[-1], dtype=f.dtype), f.shape)),
    "potrs": lambda f, b: jsl.cho_solve((f, True), b),
    "trsm": lambda a, b: jsl.solve_triangular(a, b, lower=True),
    "trmm": lambda a, b: jnp.tril(a) @ b,
    "syrk": lambda a: a @ a.mT,
    "gemm": lambda a, b, c: a @ b + c,
    "sumlogdiag": lambda a: jnp.log(jnp.diagonal(a, axis1=-2, axis2=-1)).sum(-1),
    "syevd": lambda a: jnp.linalg.eigh(a)[::-1],  # (vectors, values), in the order of xlinalg's outputs
    "inverse": jnp.linalg.inv,
    "det": jnp.linalg.det,
    "slogdet": jnp.linalg.slogdet,
    "gelqf": lambda a: tuple(x.mT for x in jnp.linalg.qr(a.mT)),
}
_NATIVE[GP] = gp_nll(_NATIVE["potrf"], _NATIVE["trsm"], _NATIVE["sumlogdiag"])


def functions(op):
    """``(xlinalg, native)``: each maps the inputs to the tuple of differentiated outputs."""
    ours = gp_nll(xj.potrf, xj.trsm, xj.sumlogdiag) if op == GP else getattr(xj, op)
    return (lambda *x: outputs(op, ours(*x))), (lambda *x: outputs(op, _NATIVE[op](*x)))


def measure(op, dtype, n, batch) -> dict:
    """The four times of one case, in seconds (in the worker)."""
    rng = np.random.default_rng(0)
    x = tuple(jnp.asarray(a) for a in inputs(op, n, batch, dtype, rng))
    ours, native = functions(op)
    weights = tuple(jnp.asarray(rng.standard_normal(y.shape), dtype=dtype) for y in native(*x))

    def gradient(f):
        def loss(*xs):
            return sum(jnp.sum(w * y) for w, y in zip(weights, f(*xs)))

        g = jax.jit(jax.grad(loss, argnums=differentiated(op, len(x))))
        return lambda: jax.block_until_ready(g(*x))

    def forward(f):
        f = jax.jit(f)
        return lambda: jax.block_until_ready(f(*x))

    t_xl, t_nt = paired_medians(gradient(ours), gradient(native), rounds=ARGS.rounds)
    tf_xl, tf_nt = paired_medians(forward(ours), forward(native), rounds=ARGS.rounds)
    return {"native_fwd": tf_nt, "xlinalg_fwd": tf_xl, "native_fwd_bwd": t_nt, "xlinalg_fwd_bwd": t_xl,
            "kernels": kernels_of(op, kernel_layer("jax"))}


PREFIX = "@@result "
#: A worker that uses no CPU time for this long while a case is pending is deadlocked.
IDLE_S = 5.0


def serve():
    """The worker: loads the kernel layer (the FFI library may be compiled now), says so, then
    measures each case read from stdin (a JSON list) and writes a result line."""
    print(PREFIX + json.dumps({"ready": kernel_layer("jax")["operators"]}), flush=True)
    for line in sys.stdin:
        try:
            result = measure(*json.loads(line))
        except Exception as exc:  # reported to the parent as the case's result
            result = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        print(PREFIX + json.dumps(result), flush=True)


class Worker:
    """A ``bench_jax.py --worker`` process, started on demand and killed when a case hangs:
    when it has used no CPU time for IDLE_S seconds (XLA's deadlock leaves every thread
    asleep) or has no result within the timeout."""

    def __init__(self):
        self.proc = None

    def _start(self, timeout):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(ARGS.threads), "--repeat", str(ARGS.rounds)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        return self._wait(timeout, idle=False)

    @staticmethod
    def _read(stream, lines):
        for line in stream:
            if line.startswith(PREFIX):
                lines.put(line[len(PREFIX):])
        lines.put(None)

    def _cpu_seconds(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):  # not Linux: no idle test
            return time.monotonic()

    def _wait(self, timeout, *, idle=True):
        """The next result line (a dict), or why there is none (a string; the worker is stopped)."""
        start = last = time.monotonic()
        cpu = self._cpu_seconds()
        while True:
            try:
                line = self.lines.get(timeout=0.5)
                break
            except queue.Empty:
                now, used = time.monotonic(), self._cpu_seconds()
                if used > cpu + 0.01:
                    cpu, last = used, now
                why = (f"no result within {timeout:.0f} s" if now - start > timeout
                       else f"deadlocked (no CPU time for {IDLE_S:g} s)" if idle and now - last > IDLE_S else None)
                if why:
                    self.stop()
                    return why
        if line is None:
            code = self.proc.wait()
            self.stderr.seek(0)
            why = f"the worker exited ({code}): {self.stderr.read().strip()[-200:]}"
            self.stop()
            return why
        result = json.loads(line)
        return result.get("error") or result

    def ask(self, case, timeout: float):
        """The case's times (a dict), or why there are none (a string)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.stop()
        if self.proc is None:
            ready = self._start(timeout)
            if isinstance(ready, str):
                return f"worker start: {ready}"
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        return self._wait(timeout)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def main():
    if ARGS.worker:
        return serve()
    worker, retried = Worker(), []

    def ask(op, dtype, n, batch):
        for attempt in range(max(1, ARGS.tries)):
            result = worker.ask([op, dtype, n, batch], ARGS.timeout * max(1.0, (n / 1024) ** 3))
            if isinstance(result, dict):
                break
            print(f"  {op} {dtype} n={n} batch={batch}, attempt {attempt + 1}: {result}", file=sys.stderr, flush=True)
        if attempt:
            retried.append(f"{op} {dtype} n={n} batch={batch}: {attempt + 1} attempts")
        return result

    print(f"jax {jax.__version__}, device {jax.devices()[0].device_kind}")
    try:
        records, missing = run(ARGS, "jax", ask)
    finally:
        worker.stop()
    print_results("jax", ARGS.threads, records, missing)
    if ARGS.json:
        write_json(
            ARGS.json, framework="jax", args=ARGS, records=records, missing=missing, retried=retried,
            native={op: NATIVE[op] for op in ARGS.ops},
            measures="forward: jax.jit(f); forward+backward: jax.jit(jax.grad(sum(W * f(x)))) with random weights W, "
            "with respect to every input (the GP: the covariance); the cases in a worker process",
            env=environment("jax", packages=("jax", "jaxlib", "numpy"), device=jax.devices()[0].device_kind),
        )


if __name__ == "__main__":
    main()
