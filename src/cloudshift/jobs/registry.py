"""What a kind of move tells the commands that work on any job (``jobs``, ``resume``).

A kind is a :class:`Kind` value its package defines (``transfer/kind.py``, ``db/kind.py``);
:mod:`cloudshift.kinds` lists them. Its functions import the kind's machinery only when
called, so listing jobs stays fast and a kind's SDKs load only for its own work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudshift.jobs.events import EventSink
from cloudshift.jobs.journal import JobInfo
from cloudshift.jobs.results import JobResult


@dataclass(frozen=True)
class JobRow:
    """One line of ``cloudshift jobs``: where from, where to, and how far it got."""

    job_id: str
    kind: str
    op: str
    src: str
    dst: str
    status: str
    progress: Mapping[str, int]          # the kind's own counters (done, failed, chunks...)
    reason: str = ""                     # why a job could not be described ("unreadable")

    def to_dict(self) -> dict[str, Any]:
        row = {"job": self.job_id, "kind": self.kind, "op": self.op, "src": self.src,
               "dst": self.dst, "status": self.status, "progress": dict(self.progress)}
        return {**row, "reason": self.reason} if self.reason else row


@dataclass(frozen=True)
class Kind:
    name: str                                               # "objects", "db", ...
    title: str                                              # for people: "object storage"
    describe: Callable[[JobInfo], JobRow]                   # for ``cloudshift jobs``
    # Continue a job from its journal. ``overrides`` are the generic resume options the
    # user gave (transfers, retries...); a kind takes those it knows.
    resume: Callable[[JobInfo, Mapping[str, Any], EventSink | None], JobResult]
