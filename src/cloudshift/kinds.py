"""Every kind of move cloudshift knows: what ``cloudshift jobs`` lists and ``cloudshift
resume`` continues. A new kind adds its ``Kind`` value to :data:`KINDS`.

Each kind's module imports only its journal; its SDKs (boto3, psycopg) load when one of its
jobs is resumed, so listing jobs stays fast.
"""

from __future__ import annotations

from cloudshift.core.errors import UsageError
from cloudshift.core.redact import describe
from cloudshift.db.kind import DB
from cloudshift.jobs.journal import JobInfo, all_jobs
from cloudshift.jobs.registry import JobRow, Kind
from cloudshift.transfer.kind import OBJECTS

KINDS: dict[str, Kind] = {k.name: k for k in (OBJECTS, DB)}


def kind_of(info: JobInfo) -> Kind:
    """The kind that can continue this job, or a one-line error saying why none can."""
    if info.error is not None:
        raise UsageError(f"the journal of job '{info.job_id}' cannot be read: {info.error}",
                         hint="run the command that started the job again instead")
    if info.spec is None:
        raise UsageError(f"job '{info.job_id}' has no recorded command",
                         hint="run the command that started it again instead")
    kind = KINDS.get(info.spec.kind)
    if kind is None:
        raise UsageError(f"job '{info.job_id}' is a '{info.spec.kind}' job, which this "
                         f"cloudshift does not know (it knows: {', '.join(KINDS)})",
                         hint="a newer cloudshift started it: resume it with that version")
    return kind


def describe_job(info: JobInfo) -> JobRow:
    """A job's line in ``cloudshift jobs``, whatever its state: a journal that cannot be
    read, or that a kind this version does not know wrote, is listed as such."""
    if info.error is not None:
        return _unreadable(info, info.error)
    if info.spec is not None and info.spec.kind not in KINDS:
        return _foreign(info)
    try:
        return kind_of(info).describe(info)
    except Exception as exc:  # one broken journal must not hide the others
        return _unreadable(info, describe(exc))


def list_jobs() -> list[JobRow]:
    return [describe_job(info) for info in all_jobs()]


def _unreadable(info: JobInfo, reason: str) -> JobRow:
    return JobRow(info.job_id, "?", "?", "?", "?", "unreadable", {}, reason=reason)


def _foreign(info: JobInfo) -> JobRow:
    """What any spec tells of a kind unknown here: its params' usual names."""
    assert info.spec is not None
    params = info.spec.params
    status = str(info.last_run["status"]) if info.last_run else "never run"
    return JobRow(info.job_id, info.spec.kind, str(params.get("op", "?")),
                  str(params.get("src", "?")), str(params.get("dst", "?")), status, {})
