"""The db job journal: one SQLite file (WAL) per source/target pair, in the job folder.

It records the steps done (schema, each post-data statement, sequences, ANALYZE), every data
chunk (a table, or one key range of a table) with its state and counts, and each table's
write counters at the snapshot, so a re-run after a crash can tell which tables changed on
the source since and must be copied again in full. It holds no password: the job is named
after the DSNs with their passwords removed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from cloudshift.core.paths import jobs_root
from cloudshift.db.dsn import Dsn

SCHEMA = """
CREATE TABLE IF NOT EXISTS job (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (name TEXT PRIMARY KEY, state TEXT NOT NULL,
                                  updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,           -- schema.table#n
    tbl TEXT NOT NULL,             -- schema.table
    lo INTEGER, hi INTEGER,        -- key range [lo, hi), NULL = unbounded; both NULL = whole
    state TEXT NOT NULL,           -- planned, inflight, done
    rows INTEGER, bytes INTEGER, seconds REAL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tables (tbl TEXT PRIMARY KEY, writes INTEGER, size INTEGER);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL,
                                 finished REAL, status TEXT NOT NULL, summary TEXT);
"""


def job_id(src: Dsn, dst: Dsn) -> str:
    ident = json.dumps([src.safe(), dst.safe()])
    return "db-" + hashlib.sha256(ident.encode()).hexdigest()[:12]


def default_dir(src: Dsn, dst: Dsn) -> Path:
    return jobs_root() / job_id(src, dst)


class DbJournal:
    """Thread-safe: workers record their chunks directly, each write its own transaction
    (chunks are few and large, so per-write commits cost nothing worth batching)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "journal.db"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self.run_id: int | None = None

    def _exec(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(query, params).fetchall()

    # --- job-level facts ------------------------------------------------------------------
    def get(self, key: str) -> str | None:
        rows = self._exec("SELECT v FROM job WHERE k=?", (key,))
        return rows[0][0] if rows else None

    def put(self, key: str, value: str) -> None:
        self._exec("INSERT INTO job VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                   (key, value))

    @property
    def fresh(self) -> bool:
        """Nothing was ever done under this journal."""
        return not self._exec("SELECT 1 FROM steps LIMIT 1") and \
            not self._exec("SELECT 1 FROM chunks LIMIT 1")

    def reset(self) -> None:
        with self._lock:
            for t in ("job", "steps", "chunks", "tables"):
                self._db.execute(f"DELETE FROM {t}")

    # --- steps ----------------------------------------------------------------------------
    def step_state(self, name: str) -> str | None:
        rows = self._exec("SELECT state FROM steps WHERE name=?", (name,))
        return rows[0][0] if rows else None

    def step(self, name: str, state: str) -> None:
        self._exec("INSERT INTO steps VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                   "state=excluded.state, updated=excluded.updated", (name, state, time.time()))

    def steps_done(self, prefix: str) -> set[str]:
        return {r[0] for r in self._exec("SELECT name FROM steps WHERE state='done' AND "
                                         "name LIKE ?", (prefix + "%",))}

    # --- chunks ---------------------------------------------------------------------------
    def add_chunk(self, cid: str, tbl: str, lo: int | None, hi: int | None) -> None:
        self._exec("INSERT OR IGNORE INTO chunks (id, tbl, lo, hi, state, updated) "
                   "VALUES (?, ?, ?, ?, 'planned', ?)", (cid, tbl, lo, hi, time.time()))

    def chunks(self) -> list[tuple[str, str, int | None, int | None, str]]:
        return [tuple(r) for r in self._exec(
            "SELECT id, tbl, lo, hi, state FROM chunks ORDER BY rowid")]

    def chunk_state(self, cid: str, state: str, rows: int | None = None,
                    nbytes: int | None = None, seconds: float | None = None) -> None:
        self._exec("UPDATE chunks SET state=?, rows=coalesce(?, rows), "
                   "bytes=coalesce(?, bytes), seconds=coalesce(?, seconds), updated=? "
                   "WHERE id=?", (state, rows, nbytes, seconds, time.time(), cid))

    def drop_table_chunks(self, tbl: str) -> None:
        self._exec("DELETE FROM chunks WHERE tbl=?", (tbl,))

    def done_totals(self) -> tuple[int, int]:
        row = self._exec("SELECT coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM chunks "
                         "WHERE state='done'")[0]
        return int(row[0]), int(row[1])

    # --- per-table write counters at the snapshot -----------------------------------------
    def table_writes(self) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in self._exec("SELECT tbl, writes FROM tables")}

    def table_sizes(self) -> dict[str, int]:
        return {r[0]: int(r[1] or 0) for r in self._exec("SELECT tbl, size FROM tables")}

    def set_table(self, tbl: str, writes: int, size: int) -> None:
        self._exec("INSERT INTO tables VALUES (?, ?, ?) ON CONFLICT(tbl) DO UPDATE SET "
                   "writes=excluded.writes, size=excluded.size", (tbl, writes, size))

    # --- runs -----------------------------------------------------------------------------
    def start_run(self) -> None:
        rows = self._exec("INSERT INTO runs (started, status) VALUES (?, 'running') "
                          "RETURNING id", (time.time(),))
        self.run_id = int(rows[0][0])

    def last_status(self) -> str | None:
        rows = self._exec("SELECT status FROM runs ORDER BY id DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    def finish_run(self, status: str, summary: dict[str, Any]) -> None:
        self._exec("UPDATE runs SET finished=?, status=?, summary=? WHERE id=?",
                   (time.time(), status, json.dumps(summary), self.run_id))

    def close(self) -> None:
        with self._lock:
            self._db.close()
