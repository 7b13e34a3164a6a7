"""Reports of a conformance run: every failing sample, one-line messages, the metadata in the
JSON, and the Markdown and self-contained HTML reports written by the command line."""

from __future__ import annotations

import json

from xlinalg_conformance import report
from xlinalg_conformance.__main__ import main
from xlinalg_conformance.broken import BROKEN
from xlinalg_conformance.runner import one_line, run

BROKEN_NAME = "potrf_vjp_unsymmetrized"


def _broken_results():
    backend = BROKEN[BROKEN_NAME][0]()
    return backend, run(backend, ["potrf", "gemm"], ["forward", "structure"])


def test_every_failing_sample_is_kept_worst_first():
    _, results = _broken_results()
    (cell,) = [r for r in results if r.status == "fail"]
    assert (cell.op, cell.check) == ("potrf", "structure")
    assert cell.failed > 1 and len(cell.failures) == cell.failed
    ratios = [f["ratio"] for f in cell.failures]
    assert ratios == sorted(ratios, reverse=True) and ratios[0] == cell.ratio
    assert len({f["sample"] for f in cell.failures}) == cell.failed
    assert all(not r.failures for r in results if r.status == "pass")


def test_messages_are_single_bounded_lines():
    text = one_line("first line\n" + "x" * 5000 + "\n  last")
    assert "\n" not in text and len(text) <= 400
    assert text.startswith("first line") and text.endswith("last")


def test_reports_list_every_failing_sample(tmp_path):
    backend, results = _broken_results()
    (cell,) = [r for r in results if r.status == "fail"]
    meta = report.metadata(backend, "numpy")
    md, page = report.markdown(results, meta), report.html(results, meta)
    for f in cell.failures:
        assert f"`{f['sample']}`" in md
        assert f["sample"] in page
    assert "## potrf × structure: FAIL" in md
    assert "<script" not in page and "http" not in page and "<link" not in page  # nothing from outside
    assert 'id=\'potrf-structure\'' in page and 'href="#potrf-structure"' in page


def test_command_line_writes_json_markdown_and_html(tmp_path, capsys):
    paths = {k: tmp_path / f"out.{k}" for k in ("json", "md", "html")}
    status = main(["--backend", f"xlinalg_conformance.broken:{BROKEN_NAME.upper()}", "--ops", "potrf",
                   "--checks", "forward", "structure", "--json", str(paths["json"]), "--markdown", str(paths["md"]),
                   "--html", str(paths["html"]), "--no-progress"])
    assert status == 1
    data = json.loads(paths["json"].read_text())
    for key in ("versions", "platform", "capabilities", "declarations", "tolerances"):
        assert data[key], key
    assert data["versions"]["xlinalg"] and data["versions"]["numpy"]
    assert data["tolerances"]["structure"] > 0
    (cell,) = [r for r in data["results"] if r["status"] == "fail"]
    assert len(cell["failures"]) == cell["failed"]
    assert paths["md"].read_text().count("| `potrf[") == cell["failed"]
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    assert "\r[" not in capsys.readouterr().err  # --no-progress


def test_progress_line_on_request(capsys):
    main(["--backend", "numpy", "--ops", "potrf", "--checks", "forward", "--progress"])
    assert "[1/1] potrf × forward: pass" in capsys.readouterr().err
