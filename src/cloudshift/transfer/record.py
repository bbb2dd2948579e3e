"""What the coordinating thread does with each decision and outcome: count it in the
result, write it to the journal, tell it as an event.

Only the coordinating thread calls a :class:`Recorder`, so the journal has one writer
whatever executor runs the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from cloudshift.jobs.events import Event, EventSink
from cloudshift.storage.base import ObjectInfo
from cloudshift.transfer.journal import Journal
from cloudshift.transfer.results import Failure, TransferResult
from cloudshift.transfer.worker import Outcome


class Recorder:
    """Counts in ``result``, rows in ``journal`` (None: write nothing, as a dry run),
    events to ``emit``."""

    def __init__(self, result: TransferResult, journal: Journal | None, emit: EventSink
                 ) -> None:
        self.result, self.journal, self._emit = result, journal, emit

    # --- decisions, as the listing is walked ----------------------------------------------
    def skipped(self, key: str, src: ObjectInfo | None) -> None:
        self.result.skipped += 1
        self._emit(Event("skipped", key, src.size if src else 0))

    def planned(self, action: str, key: str, src: ObjectInfo | None, durable: bool) -> None:
        """An object that needs work; ``durable`` puts it on record in flight at once."""
        if action == "delete":
            self.result.to_delete += 1
            return
        if src is None:
            return
        self.result.planned += 1
        self.result.planned_bytes += src.size
        self._emit(Event("planned", key, src.size))
        if durable and self.journal is not None:
            self.journal.planned(src, durable=True)

    def refused(self, key: str, src: ObjectInfo | None, reason: str) -> None:
        """An object that cannot be recorded in the journal (its key cannot be stored):
        failed with ``reason`` here and in the summary, and no row written for it."""
        self.result.failures.append(Failure(key, reason))
        self._emit(Event("failed", key, src.size if src else 0, reason=reason))

    # --- outcomes, as the workers report them ---------------------------------------------
    def record(self, finished: Iterable[Outcome]) -> None:
        on = self._ON
        for out in finished:
            on[out.kind](self, out)

    def commit_if_due(self) -> None:
        if self.journal is not None:
            self.journal.maybe_commit()

    def _copied(self, out: Outcome) -> None:
        if out.src is None or out.dst is None:
            self._failed(out)   # a copy that cannot say what it copied is not one
            return
        level = out.level or "none"
        self.result.copied += 1
        self.result.copied_bytes += out.src.size
        self.result.levels[level] += 1
        if self.journal is not None:
            self.journal.done(out.src, out.dst, level, out.checksums or {}, out.attempts)
        self._emit(Event("copied", out.key, out.src.size, level=out.level))

    def _found_same(self, out: Outcome) -> None:
        """A worker hashed both sides and found them identical: skipped, not planned."""
        size = out.src.size if out.src else 0
        self.result.skipped += 1
        self.result.planned -= 1
        self.result.planned_bytes -= size
        self._emit(Event("skipped", out.key, size))

    def _deleted(self, out: Outcome) -> None:
        self.result.deleted += 1
        if self.journal is not None:
            self.journal.deleted(out.key)
        self._emit(Event("deleted", out.key))

    def _interrupted(self, out: Outcome) -> None:
        """Not recorded: the journal still has it in flight, or nothing, and the next run
        copies it."""

    def _would(self, out: Outcome) -> None:
        self._emit(Event("would-copy" if out.kind == "would-copy" else "would-delete",
                         out.key, out.src.size if out.src else 0))

    def _failed(self, out: Outcome) -> None:
        reason = out.reason or "unknown error"
        self.result.failures.append(Failure(out.key, reason))
        if self.journal is not None:
            self.journal.failed(out.key, reason, out.attempts)
        self._emit(Event("failed", out.key, reason=reason))

    _ON: ClassVar[dict[str, Callable[[Recorder, Outcome], None]]] = {
        "copied": _copied, "skipped": _found_same, "deleted": _deleted,
        "interrupted": _interrupted, "would-copy": _would, "would-delete": _would,
        "failed": _failed,
    }
