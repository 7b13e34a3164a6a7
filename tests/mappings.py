"""The memory mappings of this process (Linux: /proc/self/smaps)."""

from __future__ import annotations


def mapping_flags(address: int) -> list[str]:
    """The VmFlags of the mapping that holds ``address`` (``hg``: advised onto huge pages)."""
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "VmFlags:":
                return line.split()[1:]
    raise AssertionError(f"no mapping holds {address:#x}")
