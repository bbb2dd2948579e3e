"""The db job journal: one SQLite file (WAL) per source/target pair, in the job folder.

On top of the journal base's ``job`` and ``runs`` tables it records the steps done (schema,
each post-data statement, sequences, ANALYZE), every data chunk (a table, or one key range
of a table) with its state and counts, and each table's write counters at the snapshot, so
a re-run after a crash can tell which tables changed on the source since and must be copied
again in full.

The job's spec is ``JobSpec("db", {"src", "dst"}, options)``: the two DSNs without their
passwords name the job (its id hashes them as cloudshift 0.1 did, so a 0.1 journal, and its
replication slot, are still found); the options that change what the copy produces are
compared when it resumes. Each run also records both connection strings as given, less their
passwords (sslmode, unix-socket or several hosts...), which ``cloudshift resume`` reconnects
with. The journal holds no password.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cloudshift.core.units import human_bytes, parse_size
from cloudshift.jobs.journal import JOURNAL_FILE, JournalBase, open_readonly
from cloudshift.jobs.spec import JobSpec

if TYPE_CHECKING:  # db.dsn loads psycopg: `cloudshift jobs` reads journals without it
    from cloudshift.db.dsn import Dsn

KIND = "db"
# The job facts holding each side's connection string without its password.
CONNINFO = ("src_conninfo", "dst_conninfo")

SCHEMA = """
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
"""


def db_spec(src: Dsn, dst: Dsn, *, follow: bool, no_owner: bool, no_acl: bool,
            split_bytes: int) -> JobSpec:
    """The job of copying ``src`` into ``dst``. Options are keyed by their flag and hold
    what a person reads, so a refused resume can say what differs. ``--follow`` is one of
    them: a slot created for one run and not for the next cannot be resumed safely. The id
    hashes ``[src, dst]``, as cloudshift 0.1 did."""
    names = [src.safe(), dst.safe()]
    return JobSpec(KIND, {"src": names[0], "dst": names[1]},
                   {"--follow": follow, "--no-owner": no_owner, "--no-acl": no_acl,
                    "--split-size": size_option(split_bytes)}, prefix=KIND, ident=names)


def size_option(n: int) -> str:
    """``1.0 GiB`` where that reads back as exactly ``n`` bytes, else ``n B``: a size as
    people read it, never two sizes shown alike."""
    text = human_bytes(n)
    return text if parse_size(text) == n else f"{n} B"


class DbJournal(JournalBase):
    """Thread-safe (the base's lock): workers record their chunks directly, each write its
    own transaction (chunks are few and large, so per-write commits cost nothing worth
    batching)."""

    SCHEMA = SCHEMA

    @property
    def fresh(self) -> bool:
        """Nothing was ever done under this journal."""
        return not self._exec("SELECT 1 FROM steps LIMIT 1") and \
            not self._exec("SELECT 1 FROM chunks LIMIT 1")

    def reset(self) -> None:
        """Forget what was done, to start over; the runs stay, and so does the spec (the
        new run records its own over it): the job never shows without one."""
        with self._lock:
            self._db.execute("DELETE FROM job WHERE k <> 'spec'")
            for t in ("steps", "chunks", "tables"):
                self._db.execute(f"DELETE FROM {t}")

    # --- how to connect again -------------------------------------------------------------
    def record_conninfo(self, src: Dsn, dst: Dsn) -> None:
        """Both connection strings as this run was given them, less their secrets: what
        ``cloudshift resume`` connects with (the spec's DSNs are only what people read)."""
        for key, dsn in zip(CONNINFO, (src, dst), strict=True):
            self.put(key, dsn.without_secrets())

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


def recorded_conninfo(folder: Path) -> tuple[str | None, str | None]:
    """(source, target) connection strings the job's last run recorded, without passwords;
    None where it recorded none (cloudshift 0.1 did not)."""
    db = open_readonly(folder / JOURNAL_FILE)
    try:
        found = dict(db.execute("SELECT k, v FROM job WHERE k IN (?, ?)", CONNINFO))
    finally:
        db.close()
    return found.get(CONNINFO[0]), found.get(CONNINFO[1])


def step_done(folder: Path, name: str) -> bool:
    """Whether the job recorded step ``name`` done, read without writing or waiting."""
    db = open_readonly(folder / JOURNAL_FILE)
    try:
        return bool(db.execute("SELECT 1 FROM steps WHERE name=? AND state='done'",
                               (name,)).fetchone())
    except sqlite3.DatabaseError:
        return False
    finally:
        db.close()


def chunk_counts(folder: Path) -> dict[str, int]:
    """How many chunks of a job are in each state, read without writing or waiting (for
    ``cloudshift jobs``, while the copy may be running in another process)."""
    db = open_readonly(folder / JOURNAL_FILE)
    try:
        return {str(s): int(n) for s, n in
                db.execute("SELECT state, COUNT(*) FROM chunks GROUP BY state")}
    except sqlite3.DatabaseError:
        return {}
    finally:
        db.close()
