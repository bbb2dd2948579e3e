"""What every kind's result offers: ``ok``, ``exit_code`` and ``to_dict()``.

``to_dict()`` is the summary record, the last JSON line of a ``--json`` run: it always has
``type: "summary"``, the ``kind`` and ``ok``. The exit codes are the CLI's: 0 success, 1 some
items failed or differ, 130 interrupted (resumable); usage and configuration errors (2) are
raised, not returned.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@runtime_checkable
class JobResult(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def exit_code(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


class ResultBase:
    """``exit_code`` from ``ok`` (and ``interrupted``, where a result has it)."""

    __slots__ = ()

    @property
    def ok(self) -> bool:  # pragma: no cover - every result defines it
        raise NotImplementedError

    @property
    def exit_code(self) -> int:
        if getattr(self, "interrupted", False):
            return EXIT_INTERRUPTED
        return EXIT_OK if self.ok else EXIT_FAILED


def summary(kind: str, op: str, ok: bool, **fields: Any) -> dict[str, Any]:
    """The head every summary record starts with, so scripts can read any kind alike."""
    return {"type": "summary", "kind": kind, "op": op, "ok": ok, **fields}
