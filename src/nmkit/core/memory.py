"""Memory checks before large allocations: a size that will not fit is refused with its estimate (exit 2)
instead of swapping the machine or dying half-way with a MemoryError."""

from __future__ import annotations

import os
import re
from pathlib import Path

from nmkit.core.errors import InputError

_limit: int | None = None
"""Bytes a run may allocate at once: --max-memory / NMKIT_MAX_MEMORY, or None for what the machine has free."""

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str, source: str = "--max-memory") -> int:
    """``"512M"``, ``"8G"``, ``"1.5T"`` or a plain byte count -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), flags=re.IGNORECASE)
    if not match or float(match[1]) <= 0:
        raise InputError(f"{source}: expected a size such as 512M or 8G, found {str(text)[:40]!r}")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def set_limit(text: str | None) -> None:
    """Apply --max-memory (or NMKIT_MAX_MEMORY when the flag is absent)."""
    global _limit
    source = "--max-memory"
    if text is None:
        text, source = os.environ.get("NMKIT_MAX_MEMORY") or None, "NMKIT_MAX_MEMORY"
    _limit = parse_size(text, source) if text is not None else None


def available_bytes() -> int:
    """Memory the machine (or this cgroup) can still give: MemAvailable, capped by a cgroup v2 limit."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    if free is None:
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    try:
        cap = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if cap != "max":
            free = min(free, int(cap) - used)
    except (OSError, ValueError):
        pass
    return max(free, 0)


def budget() -> int:
    return _limit if _limit is not None else available_bytes()


def require(nbytes: float, what: str) -> None:
    """Refuse (exit 2) when ``nbytes`` is more than the run may allocate; ``what`` names the input."""
    allowed = budget()
    if nbytes > allowed:
        where = "--max-memory allows" if _limit is not None else "this machine has free"
        raise InputError(f"{what}: needs about {format_bytes(nbytes)} of memory, more than the "
                         f"{format_bytes(allowed)} {where}")


def format_bytes(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    raise AssertionError("unreachable")
