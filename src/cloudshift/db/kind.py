"""The PostgreSQL mover as a kind of job: what ``cloudshift jobs`` shows of a db copy, and
how ``cloudshift resume`` continues one.

Only the journal is imported here; psycopg and the copy load when a job is resumed, so
listing a hundred jobs stays fast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cloudshift.core.errors import UsageError
from cloudshift.core.units import parse_size
from cloudshift.db.journal import KIND, chunk_counts, recorded_conninfo, step_done
from cloudshift.jobs.events import EventSink
from cloudshift.jobs.journal import JobInfo
from cloudshift.jobs.registry import JobRow, Kind

if TYPE_CHECKING:
    from cloudshift.db.copy import CopyResult

OP = "db-copy"
# The generic resume options this kind takes: how many workers (``transfers`` is the
# objects' name for the same thing). Everything else about a db copy is its recorded spec.
WORKERS = ("jobs", "transfers")
# The range of db copy's -j/--jobs (cli/db.py), which a resume's workers must keep to.
MIN_WORKERS, MAX_WORKERS = 1, 64


def describe(info: JobInfo) -> JobRow:
    """Source and target (without passwords), the last run's status, chunks by state."""
    params = info.spec.params if info.spec is not None else {}
    status = str(info.last_run["status"]) if info.last_run else "never run"
    return JobRow(job_id=info.job_id, kind=KIND, op=OP, src=str(params.get("src", "?")),
                  dst=str(params.get("dst", "?")), status=status,
                  progress=chunk_counts(info.folder))


def resume(info: JobInfo, overrides: Mapping[str, Any], on_event: EventSink | None = None
           ) -> CopyResult:
    """Run the job's db copy again, with the options it was started with, from its journal:
    finished tables and key ranges are kept. It connects with the connection strings the
    last run recorded, which carry no password: libpq takes it from PGPASSWORD or
    ~/.pgpass. ``overrides`` may set the workers (:data:`WORKERS`); any other option given
    is refused, as is a job that finished."""
    from cloudshift.db.copy import CopyOptions, copy_database

    _refuse_other_options(overrides)
    workers = [int(overrides[k]) for k in WORKERS if overrides.get(k) is not None]
    if workers and not MIN_WORKERS <= workers[0] <= MAX_WORKERS:
        raise UsageError(f"--transfers {workers[0]}: a db job takes {MIN_WORKERS} to "
                         f"{MAX_WORKERS} workers (db copy's -j)")
    if info.spec is None:
        raise UsageError(f"job '{info.job_id}' has no recorded command; "
                         "run the db copy again instead")
    _refuse_finished(info)
    opts = CopyOptions(job_dir=info.folder, on_event=on_event)
    recorded = info.spec.options
    opts.follow = bool(recorded.get("--follow", opts.follow))
    opts.no_owner = bool(recorded.get("--no-owner", opts.no_owner))
    opts.no_acl = bool(recorded.get("--no-acl", opts.no_acl))
    if "--split-size" in recorded:
        opts.split_bytes = parse_size(str(recorded["--split-size"]))
    if workers:
        opts.jobs = workers[0]
    src, dst = recorded_conninfo(info.folder)
    if opts.follow:
        _refuse_subscribing_without_password(info, src)
    # A job cloudshift 0.1 started recorded only the DSNs people read.
    return copy_database(src or str(info.spec.params["src"]),
                         dst or str(info.spec.params["dst"]), opts)


def _refuse_other_options(overrides: Mapping[str, Any]) -> None:
    """The generic resume options a db job does not take (the object mover's part size,
    retries, limits), said in one line rather than ignored."""
    other = [name for name, value in overrides.items()
             if name not in WORKERS and value is not None]
    if other:
        flags = ", ".join("--" + name.replace("_", "-") for name in other)
        raise UsageError(f"{flags} appl{'ies' if len(other) == 1 else 'y'} to object jobs; "
                         "a db job takes --transfers (its workers) and --json")


def _refuse_subscribing_without_password(info: JobInfo, src: str | None) -> None:
    """A --follow job still to subscribe: the *target* server connects to the source with
    the source's connection string, and PGPASSWORD or ~/.pgpass here do not reach it.
    Refuse before post-data, sequences and ANALYZE run, rather than failing after them."""
    from cloudshift.db.dsn import Dsn

    if step_done(info.folder, "subscription"):
        return
    assert info.spec is not None
    shown = str(info.spec.params.get("src", "SRC"))
    if Dsn(src or shown, "source").params().get("password"):
        return
    raise UsageError(f"job {info.spec.job_id} still has to subscribe the target to the "
                     "source, and the journal holds no source password for the target "
                     "server to connect with",
                     hint=f"rerun the original `cloudshift db copy {shown} ... --follow` "
                          "with the password in the source DSN")


def _refuse_finished(info: JobInfo) -> None:
    """A finished copy has nothing to resume; a new copy is `db copy` again, by choice."""
    last = info.last_run
    if last is None or last["status"] != "done" or info.spec is None:
        return
    when = dt.datetime.fromtimestamp(float(last["finished"] or last["started"]), dt.UTC)
    raise UsageError(f"job {info.spec.job_id} finished at {when:%Y-%m-%d %H:%M:%S} UTC; nothing "
                     "to resume", hint="run `cloudshift db copy` again for a new copy")


DB = Kind(name=KIND, title="PostgreSQL", describe=describe, resume=resume)
