"""Sizes and durations, read and written the way people type and read them."""

from __future__ import annotations

import re

from cloudshift.core.errors import UsageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def parse_size(text: str) -> int:
    """'16MiB', '16M', '8MB', '1048576' -> bytes (K/M/G/T are powers of 1024)."""
    m = _SIZE.match(text.removesuffix("/s"))
    if m is None:
        raise UsageError(f"'{text}' is not a size", hint="write e.g. 16MiB, 64M or 1048576")
    exp = " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * 1024**exp)


def human_time(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.2f} h"
    return f"{seconds / 86400:.1f} days"
