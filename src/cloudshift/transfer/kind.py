"""The object mover as a kind of job: what ``cloudshift jobs`` shows of a copy or sync, and
how ``cloudshift resume`` continues one.

Only the journal is imported here; the engine (and with it the cloud SDKs) is imported when
a job is resumed, so listing a hundred jobs stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudshift.core.errors import UsageError
from cloudshift.jobs.events import EventSink
from cloudshift.jobs.journal import JobInfo
from cloudshift.jobs.registry import JobRow, Kind
from cloudshift.transfer.journal import KIND, ObjectSpec, state_counts
from cloudshift.transfer.results import TransferResult

# What ``resume`` may change: how the job runs, never what it copies.
RESUME_OPTIONS = ("transfers", "part_size", "retries", "bwlimit", "max_rps", "timeout")


def describe(info: JobInfo) -> JobRow:
    """Where from, where to, the last run's status and the objects by state."""
    spec = ObjectSpec.of(info.spec) if info.spec is not None else None
    status = str(info.last_run["status"]) if info.last_run else "never run"
    return JobRow(job_id=info.job_id, kind=KIND, op=spec.op if spec else "?",
                  src=spec.src if spec else "?", dst=spec.dst if spec else "?",
                  status=status, progress=state_counts(info.folder))


def resume(info: JobInfo, overrides: Mapping[str, Any], on_event: EventSink | None = None
           ) -> TransferResult:
    """Run the job's recorded command again from its journal: objects recorded done (and
    unchanged since) are skipped. ``overrides`` may set any of :data:`RESUME_OPTIONS`;
    others are not this kind's and are ignored, as are those given as None."""
    from cloudshift.transfer.engine import run
    from cloudshift.transfer.options import transfer_options

    if info.spec is None:
        raise UsageError(f"job '{info.job_id}' has no recorded command; "
                         "run the copy again instead")
    spec = ObjectSpec.of(info.spec)
    given = {k: overrides[k] for k in RESUME_OPTIONS if overrides.get(k) is not None}
    return run(spec, transfer_options(**given, job_dir=info.folder), on_event)


OBJECTS = Kind(name=KIND, title="object storage", describe=describe, resume=resume)
