"""The C signatures of the GPU kernel layer's entries, read from ``src/entries.def``.

``entries.def`` is the one list of the entries (``X(name, params, args)`` in the macro
``XL_HD_ENTRIES``, and ``XL_HD_BLOCK_ENTRIES`` for those a block of threads runs per matrix); the
kernels, the exported C entries and the CPU build of the per-matrix code
are all expanded from it. This module parses the same file, so the Python side never restates a
signature: :func:`entries` gives every entry's parameters and their ctypes types.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from .sources import constant

#: The file the entries are read from (shipped with the package).
DEF_FILE = Path(__file__).with_name("src") / "entries.def"

#: The dtypes of every entry: the symbol suffix and the NumPy dtype name.
DTYPES = {"f32": "float32", "f64": "float64"}

#: The layouts of every entry's arrays (``per_matrix.h``) and their symbols' tails: ``packed``
#: row-major ``(batch, ...)`` arrays, ``interleaved`` their transposes ``(..., batch)``,
#: ``staged`` packed arrays that the kernel copies into shared memory, a warp's group of entries
#: at a time (its entries take :data:`STAGE` after the others).
LAYOUTS = {"packed": "", "interleaved": "_interleaved", "staged": "_staged"}

#: The ctypes types of the scalar parameter types; every pointer (``T*``, ``const T*``,
#: ``int32_t*``) is a ``c_void_p`` holding a device address.
SCALARS = {"int": ctypes.c_int, "int64_t": ctypes.c_int64, "double": ctypes.c_double}


@dataclass(frozen=True)
class Parameter:
    """One parameter of a C entry: its C type as written (``"const T*"``) and its name."""

    type: str
    name: str

    @property
    def pointer(self) -> bool:
        """Whether the parameter is a pointer (to device memory)."""
        return self.type.endswith("*")

    @property
    def input(self) -> bool:
        """Whether the parameter is an array the entry only reads (``const T*``)."""
        return self.pointer and self.type.startswith("const ")

    @property
    def ctype(self):
        """The ctypes type the parameter is passed as.

        Raises
        ------
        ValueError
            For a C type this module does not know.
        """
        if self.pointer:
            return ctypes.c_void_p
        try:
            return SCALARS[self.type]
        except KeyError:
            raise ValueError(f"entries.def: parameter {self.name!r} has the type {self.type!r}, which has no ctypes mapping") from None


#: The parameter the ``staged`` layout's entries take after the others: the elements per batch
#: entry of the arrays they stage (at least those of every array they take), which sizes the
#: staging area of a group.
STAGE = Parameter("int", "stage")


@dataclass(frozen=True)
class Entry:
    """One entry of ``entries.def``.

    Attributes
    ----------
    name : str
        The entry's name (``"potrf"``).
    params : tuple of Parameter
        The C parameters, in order (the CUDA entry appends ``void* stream``).
    args : tuple of str
        The names the per-matrix function receives after the batch index: ``params`` less
        ``batch``.
    block : bool
        Whether a block of threads runs each matrix (``XL_HD_BLOCK_ENTRIES``: packed layout
        only) rather than one thread.
    fixed : bool
        Whether the entry has fixed-order kernels (``XL_HD_FIXED_<name>``, ``src/fixed.h``): its
        packed launches run the kernel compiled for the order ``n`` where :func:`fixed_max_order`
        allows (:meth:`fixed_kernel`).
    """

    name: str
    params: tuple[Parameter, ...]
    args: tuple[str, ...]
    block: bool = False
    fixed: bool = False

    @property
    def layouts(self) -> tuple[str, ...]:
        """The layouts the entry is built in: all of :data:`LAYOUTS`, or ``packed`` for a block
        entry."""
        return ("packed",) if self.block else tuple(LAYOUTS)

    def parameters(self, layout: str = "packed") -> tuple[Parameter, ...]:
        """The C parameters of the entry in ``layout``: :attr:`params`, then :data:`STAGE` for
        ``staged``."""
        return (*self.params, STAGE) if layout == "staged" else self.params

    def symbol(self, suffix: str, layout: str = "packed") -> str:
        """The exported C entry for a dtype suffix (``"f32"``, ``"f64"``) and a layout:
        ``xl_cuda_<name>_<suffix>``, ``..._interleaved`` or ``..._staged``."""
        if suffix not in DTYPES:
            raise ValueError(f"dtype suffix must be one of {sorted(DTYPES)}, got {suffix!r}")
        if layout not in self.layouts:
            raise ValueError(f"{self.name}: layout must be one of {sorted(self.layouts)}, got {layout!r}")
        return f"xl_cuda_{self.name}_{suffix}{LAYOUTS[layout]}"

    def kernel(self, suffix: str, layout: str = "packed") -> str:
        """The ``__global__`` kernel of :meth:`symbol`: ``xl_kernel_<name>_<suffix>...``."""
        return "xl_kernel" + self.symbol(suffix, layout)[len("xl_cuda") :]

    def fixed_kernel(self, suffix: str, n: int) -> str | None:
        """The fixed-order kernel a packed launch of order ``n`` runs,
        ``xl_kernel_<name>_<suffix>_n<n>``, or ``None`` (the kernel of :meth:`kernel`)."""
        if self.fixed and 1 <= n <= fixed_max_order(suffix):
            return f"{self.kernel(suffix)}_n{n}"
        return None

    def kernels(self, suffix: str) -> list[str]:
        """Every ``__global__`` kernel of the entry for a dtype suffix: one per layout, then the
        fixed-order ones."""
        fixed = [self.fixed_kernel(suffix, n) for n in range(1, fixed_max_order(suffix) + 1)] if self.fixed else []
        return [self.kernel(suffix, layout) for layout in self.layouts] + fixed

    def argtypes(self, layout: str = "packed") -> list:
        """The ctypes argument types of the CUDA entry in ``layout``: its
        :meth:`parameters`', then the stream's."""
        return [p.ctype for p in self.parameters(layout)] + [ctypes.c_void_p]

    @property
    def batch_index(self) -> int:
        """The position of ``batch`` among the parameters."""
        return [p.name for p in self.params].index("batch")


_ENTRY = re.compile(r"\bX\s*\(")  # the start of an entry: X(


def _balanced(text: str, start: int) -> int:
    """The index just past the parenthesis closing the one at ``text[start]``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("entries.def: unbalanced parentheses")


def _split(text: str) -> list[str]:
    """``text`` split at its commas outside parentheses, each part stripped (none for a blank
    text)."""
    if not text.strip():
        return []
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        depth += ch == "("
        depth -= ch == ")"
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _parenthesized(text: str, what: str) -> str:
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError(f"entries.def: {what} must be parenthesized, got {text!r}")
    return text[1:-1]


def _parameter(text: str) -> Parameter:
    match = re.fullmatch(r"(.*?[\s*])(\w+)", text.strip())
    if match is None:
        raise ValueError(f"entries.def: cannot read the parameter {text!r}")
    ctype = re.sub(r"\s*\*", "*", " ".join(match.group(1).split()))
    return Parameter(ctype, match.group(2))


def _macro(text: str, name: str) -> str | None:
    """The body of ``#define <name>(X)`` in ``text`` (comments removed), up to the first line
    not continued; ``None`` without one."""
    head = re.search(rf"#\s*define\s+{name}\s*\(\s*X\s*\)", text)
    if head is None:
        return None
    return text[head.end() :].replace("\\\n", " ").split("\n", 1)[0]


def _read(body: str, block: bool, entries: dict) -> None:
    """The entries ``X(name, params, args)`` of a macro's body into ``entries``."""
    position = 0
    while (match := _ENTRY.search(body, position)) is not None:
        start = match.end() - 1
        position = _balanced(body, start)
        fields = _split(body[start + 1 : position - 1])
        if len(fields) != 3:
            raise ValueError(f"entries.def: X(name, params, args) expected, got {fields!r}")
        name, params, args = fields
        parameters = tuple(_parameter(p) for p in _split(_parenthesized(params, "params")))
        names = tuple(a.strip() for a in _split(_parenthesized(args, "args")))
        batch = [p for p in parameters if p.name == "batch"]
        if [p.type for p in batch] != ["int64_t"] or [p for p in parameters if p.type == "int64_t"] != batch:
            raise ValueError(f"entries.def: {name} must have exactly one int64_t parameter, 'int64_t batch'")
        if names != tuple(p.name for p in parameters if p.name != "batch"):
            raise ValueError(f"entries.def: the args of {name} must be its params less batch, in order")
        if name in entries:
            raise ValueError(f"entries.def: {name} is listed twice")
        for p in parameters:
            p.ctype  # noqa: B018  (raises for a type without a ctypes mapping)
        entries[name] = Entry(name, parameters, names, block)


def _mark_fixed(text: str, entries: dict) -> None:
    """The entries that ``#define XL_HD_FIXED_<name> ~, 1`` gives fixed-order kernels, marked in
    ``entries``; each must be a thread entry with ``int lower`` and ``int n``."""
    for name in re.findall(r"#\s*define\s+XL_HD_FIXED_(\w+)\s+~\s*,\s*1\s*$", text, flags=re.MULTILINE):
        entry = entries.get(name)
        if entry is None or entry.block:
            raise ValueError(f"entries.def: XL_HD_FIXED_{name} names no entry of XL_HD_ENTRIES")
        if not {Parameter("int", "lower"), Parameter("int", "n")} <= set(entry.params):
            raise ValueError(f"entries.def: {name} has fixed-order kernels but not the parameters 'int lower' and 'int n'")
        entries[name] = replace(entry, fixed=True)


def parse(text: str) -> dict[str, Entry]:
    """The entries of the text of ``entries.def``, by name, in the file's order: those of
    ``XL_HD_ENTRIES``, then those of ``XL_HD_BLOCK_ENTRIES`` (optional); those named by an
    ``XL_HD_FIXED_<name>`` definition have :attr:`Entry.fixed`.

    Raises
    ------
    ValueError
        When the text has no ``XL_HD_ENTRIES`` macro, an entry cannot be read, an entry's
        ``args`` are not its parameters less ``batch`` (a single ``int64_t batch``), or a
        fixed-order entry is not a thread entry with ``int lower`` and ``int n``.
    """
    text = re.sub(r"//[^\n]*", "", text)
    body = _macro(text, "XL_HD_ENTRIES")
    if body is None:
        raise ValueError("entries.def: no '#define XL_HD_ENTRIES(X)'")
    entries: dict[str, Entry] = {}
    _read(body, False, entries)
    if not entries:
        raise ValueError("entries.def: XL_HD_ENTRIES lists no entry")
    _read(_macro(text, "XL_HD_BLOCK_ENTRIES") or "", True, entries)
    _mark_fixed(text, entries)
    return entries


@cache
def fixed_max_order(suffix: str) -> int:
    """The largest order of the fixed-order kernels for a dtype suffix (``kFixedMaxOrderF32``,
    ``kFixedMaxOrderF64`` of ``src/fixed.h``); their orders are 1 to it."""
    return constant(f"kFixedMaxOrder{suffix.upper()}", "fixed.h")


@cache
def entries() -> dict[str, Entry]:
    """The entries of the package's ``entries.def``, by name (parsed once)."""
    return parse(DEF_FILE.read_text())


def symbols() -> list[str]:
    """Every exported C entry of the CUDA library: each entry for each dtype and its layouts."""
    return [entry.symbol(suffix, layout) for entry in entries().values() for suffix in DTYPES for layout in entry.layouts]
