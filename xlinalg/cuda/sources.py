"""The identity of the GPU library's sources: the hash its build records and :mod:`xlinalg.cuda`
checks (a library built from other sources is stale). Standard library only: ``setup.py`` loads
this file by path, before the package can be imported."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: The sources' folder (shipped with the package).
SOURCE_DIR = Path(__file__).with_name("src")
#: Which files of :data:`SOURCE_DIR` the library is built from.
SOURCE_PATTERNS = ("*.h", "*.cuh", "*.cu", "*.def")


def constant(name: str, header: str) -> int:
    """The integer constant ``name`` (``constexpr int name = <value>;``) of the source ``header``,
    for the Python side's copies of the kernels' limits and launch sizes."""
    return int(re.search(rf"\b{name}\s*=\s*(\d+)", (SOURCE_DIR / header).read_text()).group(1))


def sources_id(directory: Path = SOURCE_DIR) -> str:
    """A hash of the library's sources (every file of ``directory`` matching
    :data:`SOURCE_PATTERNS`, by name and content)."""
    digest = hashlib.sha256()
    files = sorted({path for pattern in SOURCE_PATTERNS for path in Path(directory).glob(pattern)}, key=lambda path: path.name)
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
