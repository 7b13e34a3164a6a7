"""Checks the built documentation site in a real browser (headless Chromium).

    python scripts/check_site.py [--site site] [--out build/site-check] [--chromium PATH]
                                 [--only PAGE ...]

Serves ``--site`` on 127.0.0.1 (Python's ``http.server``), drives Debian's ``chromium`` through
the DevTools protocol over ``--remote-debugging-pipe`` (no extra packages), and loads every
HTML page of the site. For each page it checks that

- the page loads (HTTP 200) and has its article with a heading;
- every math element left by ``pymdownx.arithmatex`` was typeset by KaTeX, no raw ``\\(`` or
  ``\\[`` delimiters remain in the text, and KaTeX's stylesheet and fonts were applied;
- nothing was reported to the console (errors, failed assertions, uncaught exceptions), no
  request failed or answered with an HTTP error, and no resource came from outside the site
  (every host but 127.0.0.1 is unreachable for the browser, so the site must work offline);

and it expects math on the front page and on the operator pages. It saves screenshots (1280 ×
2000) of the front page, an operator page and the benchmarks page into ``--out``. Exit status 1
when a check fails. ``bash scripts/docs.sh check`` builds the site and runs this.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = {"index.html": "front.png", "operators/potrf/index.html": "operator-potrf.png", "benchmarks/index.html": "benchmarks.png"}
MATH_EXPECTED = ("index.html", "operators/")
WIDTH, HEIGHT = 1280, 2000

# Evaluated in the page after load: what the checks need, as one JSON-able object.
INSPECT = r"""
(async () => {
  await document.fonts.ready;
  const article = document.querySelector("article");
  const text = article ? (() => {
    const copy = article.cloneNode(true);
    copy.querySelectorAll("pre, code, .katex, script").forEach(e => e.remove());
    return copy.textContent;
  })() : "";
  const katex = document.querySelector(".katex");
  const origin = location.origin;
  return {
    title: document.title,
    h1: article && article.querySelector("h1") ? article.querySelector("h1").textContent.trim() : null,
    math: document.querySelectorAll(".arithmatex").length,
    typeset: document.querySelectorAll(".arithmatex[data-typeset] .katex").length,
    katexErrors: document.querySelectorAll(".katex-error").length,
    rawDelimiters: ["\\(", "\\)", "\\[", "\\]", "$$"].filter(d => text.includes(d)),
    katexFont: katex ? getComputedStyle(katex).fontFamily : null,
    katexFontsLoaded: [...document.fonts].filter(f => f.family.replace(/"/g, "").startsWith("KaTeX") && f.status === "loaded").length,
    tables: article ? article.querySelectorAll("table").length : 0,
    foreign: performance.getEntriesByType("resource").map(r => r.name).filter(n => !n.startsWith(origin) && !n.startsWith("data:")),
  };
})()
"""


class DevTools:
    """The DevTools protocol over a pipe: JSON messages separated by NUL bytes, written to the
    browser's fd 3 and read from its fd 4."""

    def __init__(self, chromium: str, flags: list[str]):
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        # (the browser's ends move above fd 10, so the redirections to 3 and 4 below cannot clash)
        to_browser_r, from_browser_w = _above_10(to_browser_r), _above_10(from_browser_w)
        shell = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", shell, chromium, *flags, "--remote-debugging-pipe", "about:blank"],
            pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.stderr: list[bytes] = []
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self, deadline: float) -> dict | None:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe:\n" + b"".join(self.stderr[-20:]).decode(errors="replace"))
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise TimeoutError(f"no answer to {method} within {timeout} s")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            if any(e["method"] == name for e in self.events[seen:]):
                return True
            reply = self._read(deadline)
            if reply is None:
                return False
            if "method" in reply:
                self.events.append(reply)

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _above_10(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


def problems_in(events: list[dict]) -> list[str]:
    """Console errors, exceptions and failed requests among the DevTools events."""
    out = []
    for e in events:
        method, p = e["method"], e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            details = p.get("exceptionDetails", {})
            out.append("uncaught exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append("browser log: " + p["entry"].get("text", "") + " " + p["entry"].get("url", ""))
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"request failed: {p.get('errorText')} ({p.get('type')})")
        elif method == "Network.responseReceived" and p.get("response", {}).get("status", 200) >= 400:
            out.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
    return out


def serve(site: Path):
    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site-check")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--only", nargs="*", help="pages to check (paths under the site), default: every page")
    parser.add_argument("--screenshot", nargs="*", default=[], metavar="PAGE",
                        help="more pages to take a screenshot of (e.g. mapping/index.html)")
    args = parser.parse_args(argv)
    shots = {**SCREENSHOTS, **{p: p.replace("/index.html", "").replace("/", "-").replace(".html", "") + ".png" for p in args.screenshot}}

    if not (args.site / "index.html").is_file():
        print(f"no site in {args.site}: build it first (bash scripts/docs.sh)")
        return 1
    if not shutil.which(args.chromium):
        print(f"{args.chromium} not found: install Debian's chromium (apt-get install -y chromium)")
        return 1
    pages = args.only or sorted(
        p.relative_to(args.site).as_posix() for p in args.site.rglob("*.html") if p.name != "404.html"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for shot in shots.values():
        (args.out / shot).unlink(missing_ok=True)

    start = time.monotonic()
    server = serve(args.site)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    profile = tempfile.mkdtemp(prefix="xlinalg-site-check-")
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars",
        "--disable-dev-shm-usage", "--no-default-browser-check",
        # every host but the local server is unreachable: a resource fetched from elsewhere fails
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]
    browser = DevTools(args.chromium, flags)
    failures: list[str] = []
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.call(f"{domain}.enable", session=session)
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session=session)
        print(f"checking {len(pages)} pages of {args.site} at {base} in {browser.call('Browser.getVersion')['product']}")
        for page in pages:
            url = base + (page[: -len("index.html")] if page.endswith("index.html") else page)
            browser.events.clear()
            browser.call("Page.navigate", {"url": url}, session=session)
            if not browser.wait_event("Page.loadEventFired", 30):
                failures.append(f"{page}: no load event within 30 s")
                continue
            result = browser.call("Runtime.evaluate", {"expression": INSPECT, "awaitPromise": True, "returnByValue": True},
                                  session=session)
            if "exceptionDetails" in result:
                failures.append(f"{page}: inspecting the page failed: {result['exceptionDetails'].get('text')}")
                continue
            info = result["result"]["value"]
            issues = problems_in([e for e in browser.events if e.get("sessionId") in (None, session)])
            if not info["h1"]:
                issues.append("no article heading")
            if info["math"] != info["typeset"]:
                issues.append(f"{info['math'] - info['typeset']} of {info['math']} math elements not typeset")
            if info["katexErrors"]:
                issues.append(f"{info['katexErrors']} KaTeX errors")
            if info["rawDelimiters"]:
                issues.append(f"raw math delimiters in the text: {info['rawDelimiters']}")
            if info["math"] and ("KaTeX" not in (info["katexFont"] or "") or not info["katexFontsLoaded"]):
                issues.append(f"KaTeX stylesheet or fonts missing (font-family {info['katexFont']!r}, {info['katexFontsLoaded']} KaTeX fonts loaded)")
            if page.startswith(MATH_EXPECTED) and page != "operators/index.html" and not info["math"]:
                issues.append("no math on a page that should have some")
            if info["foreign"]:
                issues.append(f"resources from outside the site: {info['foreign']}")
            shot = shots.get(page)
            if shot:
                png = base64.b64decode(browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"])
                (args.out / shot).write_bytes(png)
            status = "ok" if not issues else "FAIL"
            extra = f", screenshot {args.out / shot}" if shot else ""
            print(f"  {status:4} {page:40} math {info['typeset']}/{info['math']}, tables {info['tables']}{extra}")
            failures += [f"{page}: {issue}" for issue in issues]
    finally:
        browser.close()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    missing = [p for p in shots if p in pages and not (args.out / shots[p]).is_file()]
    failures += [f"{p}: no screenshot" for p in missing]
    print(f"{len(pages)} pages in {time.monotonic() - start:.1f} s: " + ("all checks passed" if not failures else f"{len(failures)} problems"))
    for failure in failures:
        print("  " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
