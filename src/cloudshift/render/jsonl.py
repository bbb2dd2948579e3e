"""JSON Lines: one record per line on stdout, the same encoding for every kind."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO


def json_line(record: Mapping[str, Any], *, indent: int | None = None) -> str:
    """One record as a line: UTF-8 as is (keys are often non-ASCII), anything JSON cannot
    encode (a datetime, a Path) as its string. With ``indent``, the same encoding spread
    over lines for people to read (``assess --json``)."""
    return json.dumps(record, ensure_ascii=False, default=str, indent=indent)


def write_json(record: Mapping[str, Any], out: TextIO | None = None, *,
               indent: int | None = None) -> None:
    """One record, or one whole document (``plan --json``), on ``out`` (stdout)."""
    (out or sys.stdout).write(json_line(record, indent=indent) + "\n")
