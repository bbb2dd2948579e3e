"""``cloudshift jobs --html FILE``: every job on this machine, of every kind, as one
self-contained HTML page (inline CSS, no script, nothing fetched): the rows of ``cloudshift
jobs``, each job's runs from its journal, and the figures of its last run's summary.

The figures are read generically: every scalar field of the summary record, a mapping's
scalars by dotted name (``levels.checksum``), so a new kind's summary shows without code
here. Every string shown passes through :func:`cloudshift.core.redact.redact` and the
template escapes it: job keys, paths and DSNs are user data.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from cloudshift.core.errors import UsageError
from cloudshift.core.files import write_atomic
from cloudshift.core.redact import redact
from cloudshift.core.units import human_bytes, human_time
from cloudshift.jobs.journal import JOURNAL_FILE, open_readonly, run_status
from cloudshift.jobs.registry import JobRow
from cloudshift.render.jobs import progress_text

# Summary fields the job's own row shows already, and the record's type.
_SHOWN = frozenset({"type", "kind", "op", "job_id", "src", "dst"})
_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Run:
    """One row of a journal's ``runs`` table."""

    number: int
    started: float
    finished: float | None
    status: str
    summary: Mapping[str, Any] | None

    @property
    def duration(self) -> float | None:
        return None if self.finished is None else max(0.0, self.finished - self.started)


def job_runs(folder: Path) -> list[Run]:
    """Every run a journal recorded, oldest first, read through a read-only connection (as
    :func:`cloudshift.jobs.journal.peek` does): the page must not write to, or wait for, a
    journal another process is writing. A journal that cannot be read has no runs to show
    (its row says why); a summary that is not a JSON object shows no figures."""
    try:
        db = open_readonly(folder / JOURNAL_FILE)
        try:
            rows = db.execute("SELECT id, started, finished, status, summary FROM runs "
                              "ORDER BY id").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return [Run(int(n), float(started), None if finished is None else float(finished),
                run_status(str(status)), _summary(text))
            for n, started, finished, status, text in rows]


def _summary(text: str | None) -> Mapping[str, Any] | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class Figure:
    """One scalar field of a run's summary, as shown: ``readable`` is a size for a field
    named ``bytes`` or ``*_bytes``, a rate for ``*bytes_per_s``, a duration for ``*_s``."""

    name: str
    value: str
    readable: str = ""
    number: bool = False


def figures(summary: Mapping[str, Any] | None, prefix: str = "") -> list[Figure]:
    """Each scalar field of a summary, in its order: a mapping's fields by dotted name
    (``levels.checksum``); lists (a copy's failures, one per object) are left out, and so are
    the fields the job's row shows already."""
    out: list[Figure] = []
    for key, value in (summary or {}).items():
        name = f"{prefix}{key}"
        if not prefix and key in _SHOWN:
            continue
        if isinstance(value, Mapping):
            out += figures(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append(Figure(redact(name), str(value), _readable(str(key), value), True))
        elif value is None or isinstance(value, str | bool):
            out.append(Figure(redact(name), redact(_scalar(value))))
    return out


def _scalar(value: str | bool | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _readable(key: str, value: float) -> str:
    if key.endswith("bytes_per_s"):
        return f"{human_bytes(value)}/s"
    if key == "bytes" or key.endswith("_bytes"):
        return human_bytes(value)
    if key.endswith("_s"):
        return human_time(value)
    return ""


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime(_TIME)


def _job(row: JobRow, root: Path) -> dict[str, Any]:
    """What the page shows of one job, every string redacted."""
    runs = job_runs(root / row.job_id)
    last = runs[-1] if runs else None
    return {
        "id": redact(row.job_id), "kind": redact(row.kind), "op": redact(row.op),
        "route": redact(f"{row.src} -> {row.dst}"), "status": redact(row.status),
        "progress": redact(progress_text(row)), "reason": redact(row.reason),
        "runs": [{"number": r.number, "started": _when(r.started),
                  "finished": _when(r.finished), "status": redact(r.status),
                  "duration": "-" if r.duration is None else human_time(r.duration)}
                 for r in runs],
        "last": last.number if last else None,
        "figures": figures(last.summary) if last else [],
    }


def render_jobs_html(rows: Sequence[JobRow], root: Path) -> str:
    """The page for the jobs ``rows`` (``cloudshift jobs``' rows) whose journals are under
    ``root``."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    source = resources.files("cloudshift.render") / "templates" / "jobs.html.j2"
    return env.from_string(source.read_text(encoding="utf-8")).render(
        jobs=[_job(row, root) for row in rows], root=redact(str(root)),
        generated=dt.datetime.now(dt.UTC).strftime(f"{_TIME} UTC"))


def check_target(path: Path) -> None:
    """Refuse, before any job is listed, a page that could not be written there."""
    if path.is_dir():
        raise UsageError(f"--html {path} is a folder", hint="give a file name, e.g. jobs.html")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: there is no folder {path.parent}",
                         hint="make the folder first, or choose another path")


def write_jobs_html(path: Path, rows: Sequence[JobRow], root: Path) -> None:
    """Write the page to ``path`` atomically (:func:`cloudshift.core.files.write_atomic`)."""
    check_target(path)
    write_atomic(path, render_jobs_html(rows, root))
