"""Sizes, durations and money, read and written the way people type and read them."""

from __future__ import annotations

import math
import re

from cloudshift.core.errors import UsageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.I)
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.I)
_UNIT_S = {unit: seconds for seconds, units in (
    (1, ("s", "sec", "secs", "second", "seconds")),
    (60, ("m", "min", "mins", "minute", "minutes")),
    (3600, ("", "h", "hr", "hrs", "hour", "hours")),          # a bare number is hours
    (86400, ("d", "day", "days")),
    (604800, ("w", "wk", "week", "weeks"))) for unit in units}


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


def parse_duration(text: str | float, *, name: str = "a duration",
                   hint: str = "write e.g. 12h, 90m or 2d") -> float:
    """'12h', '90m', '2 days', '3600s' -> seconds; a bare number is hours. It must be positive:
    ``name`` and ``hint`` say so for the option it was given to."""
    if isinstance(text, int | float):
        seconds = float(text) * 3600
    else:
        m = _DURATION.match(text)
        unit = _UNIT_S.get(m.group(2).lower()) if m else None
        if m is None or unit is None:
            raise UsageError(f"'{text}' is not a duration", hint="write e.g. 12h, 90m or 2d")
        seconds = float(m.group(1)) * unit
    if not seconds > 0:
        raise UsageError(f"{name} must be positive (got {text})", hint=hint)
    if not math.isfinite(seconds):  # 400 digits overflow to inf, which JSON cannot hold
        raise UsageError(f"{name} is too large (got {text})", hint=hint)
    return seconds


def money(usd: float | None) -> str:
    """Whole dollars, for comparing platforms: '$1,235'; 'unknown' for no figure."""
    return "unknown" if usd is None else f"${usd:,.0f}"


def money_usd(usd: float) -> str:
    """An amount priced to the cent, '1,234.57 USD'; below a cent six decimals,
    '0.004000 USD', so that small moves stay apart."""
    return f"{usd:,.2f} USD" if usd >= 0.01 or usd == 0 else f"{usd:.6f} USD"
