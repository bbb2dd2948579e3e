"""The journal base: one SQLite file (WAL) per job, in the job's folder.

Every kind keeps the same two tables, ``job`` (facts: the spec, names the kind needs again on
a re-run) and ``runs`` (each run's start, end, status and summary), and adds its own: the
object mover its ``objects``, the database mover its ``steps`` and ``chunks``. ``cloudshift
jobs`` reads the two common tables of any journal without knowing its kind.

SQLite settings: WAL, so a reader (``jobs``, ``report``, the object engine's snapshot of
finished records) never waits for the writer; ``synchronous=NORMAL``, so a commit costs no
fsync, and a power cut loses at most the last commits, never the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudshift.core.errors import UsageError
from cloudshift.core.paths import jobs_root
from cloudshift.jobs.spec import JobSpec

JOURNAL_FILE = "journal.db"
BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS job (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    summary TEXT
);
"""


def job_folder(spec: JobSpec, job_dir: Path | None = None) -> Path:
    """Where a job's journal lives: ``job_dir``, or ``$CLOUDSHIFT_HOME/jobs/JOB_ID``."""
    return job_dir if job_dir is not None else jobs_root() / spec.job_id


class JournalBase:
    """The common tables and their verbs. Thread-safe: every statement holds one lock.

    ``SCHEMA`` is the kind's own tables. A kind that batches writes (the object mover keeps
    a transaction open and commits every quarter second) sets ``BATCHED``: the base then
    opens that transaction and its own writes commit it.
    """

    SCHEMA = ""
    BATCHED = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / JOURNAL_FILE
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(BASE_SCHEMA + self.SCHEMA)
        if self.BATCHED:
            self._db.execute("BEGIN")
        self.run_id: int | None = None

    @property
    def job_dir(self) -> Path:
        return self.folder

    # --- statements -----------------------------------------------------------------------
    def _exec(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(query, params).fetchall()

    def commit(self) -> None:
        """Make what was written durable (autocommit journals: nothing to do)."""
        if self.BATCHED:
            with self._lock:
                self._db.execute("COMMIT")
                self._db.execute("BEGIN")

    def close(self) -> None:
        with self._lock:
            if self.BATCHED:
                self._db.execute("COMMIT")
            self._db.close()

    # --- job facts ------------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        rows = self._exec("SELECT v FROM job WHERE k=?", (key,))
        return rows[0][0] if rows else None

    def put(self, key: str, value: str) -> None:
        self._exec("INSERT INTO job VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                   (key, value))
        self.commit()

    def spec(self) -> JobSpec | None:
        text = self.get("spec")
        return None if text is None else JobSpec.from_json(text)

    def record_spec(self, spec: JobSpec) -> None:
        self.put("spec", spec.to_json())

    # --- runs -----------------------------------------------------------------------------
    def start_run(self) -> None:
        # lastrowid, not INSERT ... RETURNING: that needs SQLite 3.35, newer than some
        # long-term distributions ship.
        with self._lock:
            cur = self._db.execute("INSERT INTO runs (started, status) VALUES (?, 'running')",
                                   (time.time(),))
            self.run_id = cur.lastrowid
        self.commit()

    def finish_run(self, status: str, summary: Mapping[str, Any]) -> None:
        self._exec("UPDATE runs SET finished=?, status=?, summary=? WHERE id=?",
                   (time.time(), status, json.dumps(summary), self.run_id))
        self.commit()

    def last_run(self) -> dict[str, Any] | None:
        rows = self._exec("SELECT started, finished, status, summary FROM runs "
                          "ORDER BY id DESC LIMIT 1")
        return _run(rows[0]) if rows else None

    def last_status(self) -> str | None:
        last = self.last_run()
        return None if last is None else str(last["status"])


@dataclass(frozen=True)
class JobInfo:
    """What any journal tells without knowing its kind (``cloudshift jobs``)."""

    job_id: str
    folder: Path
    spec: JobSpec | None
    last_run: dict[str, Any] | None
    error: str | None = None          # why the journal could not be read (then both None)


def peek(folder: Path) -> JobInfo:
    """Read a journal's spec and last run through a read-only connection: listing jobs must
    not create tables in, or wait for, a journal another process is writing. A journal that
    cannot be read gives a JobInfo saying why, so one bad file does not hide the others."""
    try:
        db = open_readonly(folder / JOURNAL_FILE)
        try:
            row = db.execute("SELECT v FROM job WHERE k='spec'").fetchone()
            last = db.execute("SELECT started, finished, status, summary FROM runs "
                              "ORDER BY id DESC LIMIT 1").fetchone()
        finally:
            db.close()
        spec = JobSpec.from_json(row[0]) if row else None
        return JobInfo(folder.name, folder, spec, _run(last) if last else None)
    except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
        return JobInfo(folder.name, folder, None, None, error=str(exc) or type(exc).__name__)


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to a journal another process may be writing. Through a file:
    URI built by pathlib, so a folder with '#', '?' or '%' in its name is still that folder
    (and 'mode=ro' is never cut off by a '#' into a read-write open)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


# How a run ends, for every kind. cloudshift 0.1's object jobs wrote "ok" for "done".
RUN_STATUSES = ("running", "done", "failed", "interrupted")
_OLD_STATUS = {"ok": "done"}


def run_status(recorded: str) -> str:
    """A run's status as recorded, in today's words."""
    return _OLD_STATUS.get(recorded, recorded)


def _run(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"started": row[0], "finished": row[1], "status": run_status(row[2]),
            "summary": json.loads(row[3]) if row[3] else None}


def find_job(job: str) -> Path:
    """A job's folder from its id (as printed by every kind) or its path."""
    folder = Path(job) if ("/" in job or Path(job).is_dir()) else jobs_root() / job
    if not (folder / JOURNAL_FILE).exists():
        raise UsageError(f"no job '{job}' (looked for {folder / JOURNAL_FILE})",
                         hint="`cloudshift jobs` lists the jobs on this machine")
    return folder


def all_jobs() -> list[JobInfo]:
    root = jobs_root()
    if not root.exists():
        return []
    return [peek(p.parent) for p in sorted(root.glob(f"*/{JOURNAL_FILE}"))]
