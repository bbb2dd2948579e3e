"""What the object mover returns: ``TransferResult`` (copy, sync) and ``VerifyResult``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from cloudshift.jobs.events import LEVELS, Event, EventSink
from cloudshift.jobs.results import ResultBase, summary

# Event and EventSink are cloudshift 0.1's names from here, kept for its on_event callbacks.
__all__ = ["Event", "EventSink", "Failure", "TransferResult", "VerifiedObject", "VerifyResult"]


@dataclass(frozen=True, slots=True)
class Failure:
    key: str
    reason: str


@dataclass(slots=True)
class TransferResult(ResultBase):
    """The outcome of ``copy`` or ``sync``. ``ok`` is False when any object failed, or the
    run itself (``error``: why, in one line; the run raised it, and its journal records it)."""

    op: str
    src: str
    dst: str
    job_id: str
    job_dir: str | None
    dry_run: bool = False
    listed: int = 0
    planned: int = 0
    planned_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    deleted: int = 0
    to_delete: int = 0
    failures: list[Failure] = field(default_factory=list)
    levels: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    interrupted: bool = False
    throttled: int = 0  # responses with 429/503 (the SDKs retried them)
    lowest_concurrency: int = 0  # how far adaptive concurrency backed off
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and not self.interrupted and self.error is None

    @property
    def rate(self) -> float:
        """Bytes per second over the whole run."""
        return self.copied_bytes / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        failed_run = {} if self.error is None else {"error": self.error}
        return summary("objects", self.op, self.ok, **failed_run, **{
            "src": self.src, "dst": self.dst,
            "job_id": self.job_id, "job_dir": self.job_dir, "dry_run": self.dry_run,
            "interrupted": self.interrupted, "listed": self.listed,
            "planned": self.planned, "planned_bytes": self.planned_bytes,
            "copied": self.copied, "copied_bytes": self.copied_bytes, "skipped": self.skipped,
            "deleted": self.deleted, "to_delete": self.to_delete,
            "failed": len(self.failures),
            "failures": [{"key": f.key, "reason": f.reason} for f in self.failures],
            "levels": {lvl: self.levels.get(lvl, 0) for lvl in LEVELS},
            "elapsed_s": round(self.elapsed, 3), "bytes_per_s": round(self.rate, 1),
            "throttled": self.throttled, "lowest_concurrency": self.lowest_concurrency,
        })


@dataclass(frozen=True, slots=True)
class VerifiedObject:
    key: str
    status: Literal["match", "missing", "extra", "mismatch", "error"]
    level: str  # checksum | size | none
    detail: str = ""


@dataclass(slots=True)
class VerifyResult(ResultBase):
    src: str
    dst: str
    matched: int = 0
    missing: list[VerifiedObject] = field(default_factory=list)
    extra: list[VerifiedObject] = field(default_factory=list)
    mismatched: list[VerifiedObject] = field(default_factory=list)
    errors: list[VerifiedObject] = field(default_factory=list)
    levels: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.mismatched or self.errors)

    @property
    def problems(self) -> list[VerifiedObject]:
        return sorted(self.missing + self.extra + self.mismatched + self.errors,
                      key=lambda o: o.key)

    def to_dict(self) -> dict[str, Any]:
        return summary("objects", "verify", self.ok, **{
            "src": self.src, "dst": self.dst,
            "matched": self.matched, "missing": len(self.missing), "extra": len(self.extra),
            "mismatched": len(self.mismatched), "errors": len(self.errors),
            "levels": {lvl: self.levels.get(lvl, 0) for lvl in LEVELS},
            "problems": [{"key": o.key, "status": o.status, "level": o.level,
                          "detail": o.detail} for o in self.problems],
            "elapsed_s": round(self.elapsed, 3),
        })
