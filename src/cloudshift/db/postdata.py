"""Post-data on the target: the statements of ``pg_dump --section=post-data`` and ANALYZE.

Any worker thread may call :meth:`PostData.run` or :meth:`PostData.analyze`; each thread gets
one target connection (:meth:`PostData.conn`), which the data step's loads use too, so a
worker never holds two. Every statement and every table's ANALYZE is recorded in the job
journal when it commits, so a re-run skips it.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pgerr
from psycopg import sql

from cloudshift.core.errors import ConfigError
from cloudshift.db import schema
from cloudshift.db.catalog import Table
from cloudshift.db.dsn import Dsn, connect
from cloudshift.db.journal import DbJournal
from cloudshift.jobs.events import EventSink, event

# Index builds sort in memory up to this much per build (per parallel worker share).
MAINTENANCE_WORK_MEM = "256MB"
# A cancel request to a server that does not answer must not hold up Ctrl-C for long.
CANCEL_TIMEOUT_S = 2.0
_EMPTY_SEARCH_PATH = re.compile(r"^SELECT pg_catalog\.set_config\('search_path', '', false\);"
                                r"[ \t]*$", re.M)


def analyze_key(table: str) -> str:
    return f"analyze:{table}"


class PostData:
    def __init__(self, dst: Dsn, path: Path, journal: DbJournal, resumed: bool,
                 emit: EventSink) -> None:
        self.dst = dst
        self.journal = journal
        self.resumed = resumed
        self.emit = emit
        preamble, entries = schema.parse(path.read_text())
        # pg_dump empties search_path for its DDL. Loads and ANALYZE keep the session's:
        # a CHECK, a generated column or an index expression may call a function whose body
        # finds other functions through it. run() empties it for each statement only.
        self.preamble = _EMPTY_SEARCH_PATH.sub("", preamble).strip()
        self.ddl_search_path = bool(_EMPTY_SEARCH_PATH.search(preamble))
        done = journal.steps_done("post:")
        self.todo = [e for e in entries if f"post:{e.key}" not in done]
        self._local = threading.local()
        self._conns: dict[psycopg.Connection[Any], threading.Thread] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # --- what is left ---------------------------------------------------------------------
    def table_builds(self, tables: Iterable[str]) -> dict[str, list[list[schema.Entry]]]:
        """Not-yet-done statements that need only one table's own rows, per table, in stages
        to run one after the other, taken out of :attr:`todo` for the caller to run.

        Stage one is the plain indexes, which may build side by side (each takes a SHARE
        lock). Then each key constraint (ACCESS EXCLUSIVE) and each extended statistics
        object (which the table's ANALYZE must follow, or it computes nothing for it) is a
        stage of its own, so no worker sits waiting on another's lock."""
        wanted = set(tables)
        out: dict[str, list[list[schema.Entry]]] = {}
        rest: list[schema.Entry] = []
        for e in self.todo:
            name = e.table
            if name is None or name not in wanted or (e.phase != 1 and e.kind != "STATISTICS"):
                rest.append(e)
                continue
            stages = out.setdefault(name, [[]])
            # pg_dump puts REPLICA IDENTITY USING INDEX and CLUSTER ON into the index's
            # entry: they lock the table, so such an entry gets a stage of its own.
            if e.kind == "INDEX" and not e.alters_table:
                stages[0].append(e)
            else:
                stages.append([e])
        self.todo = rest
        return {name: [st for st in stages if st] for name, stages in out.items()}

    # --- running --------------------------------------------------------------------------
    def conn(self) -> psycopg.Connection[Any]:
        c: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if c is None:
            c = connect(self.dst)
            # Durable before the journal says done (a chunk, a statement, an ANALYZE).
            c.execute("SET synchronous_commit = on")
            c.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
            if self.preamble:
                c.execute(self.preamble)
            self._local.conn = c
            with self._lock:
                self._conns[c] = threading.current_thread()
        return c

    def run(self, e: schema.Entry) -> None:
        """One statement group in its own transaction; deadlocks (foreign keys built side by
        side) are retried."""
        t0 = time.monotonic()
        for attempt in range(5):
            try:
                with self.conn().transaction():
                    if self.ddl_search_path:
                        self.conn().execute("SELECT pg_catalog.set_config('search_path', '', "
                                            "true)")
                    self.conn().execute(e.sql)
                break
            except pgerr.DeadlockDetected:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
            except (pgerr.DuplicateTable, pgerr.DuplicateObject, pgerr.InvalidTableDefinition
                    ) as exc:
                # Committed by a run that died before recording it: already there.
                if not self.resumed:
                    raise self._error(e, exc) from None
                break
            except psycopg.Error as exc:
                raise self._error(e, exc) from None
        self.journal.step(f"post:{e.key}", "done")
        if e.phase == 1 or e.kind in ("STATISTICS", schema.MATVIEW_DATA):
            self.emit(event("built", f"{e.schema}.{e.name}", object=e.kind, table=e.table,
                            seconds=round(time.monotonic() - t0, 3)))

    def analyze(self, table: Table) -> None:
        self.conn().execute(sql.SQL("ANALYZE {}").format(table.ident()))
        self.journal.step(analyze_key(table.qualified), "done")

    def run_rest(self, jobs: int) -> None:
        """Whatever :meth:`table_builds` left, in dependency order: indexes and keys, then
        partition index attachments, then foreign keys (each phase on ``jobs`` threads),
        then the rest (triggers, rules, comments...) in dump order, which ends with the
        REFRESH of each materialized view populated on the source, after those it reads."""
        by_phase: dict[int, list[schema.Entry]] = {}
        for e in self.todo:
            by_phase.setdefault(e.phase, []).append(e)
        self.todo = []
        # Biggest tables' indexes first: they take longest, the small ones fill in around them.
        sizes = self.journal.table_sizes()
        by_phase.get(1, []).sort(key=lambda e: -sizes.get(e.table or "", 0))
        for phase in sorted(by_phase):
            items = by_phase[phase]
            self.emit(event("step", f"post-data phase {phase}", statements=len(items)))
            if phase == schema.LAST_PHASE:
                for e in items:     # in dump order, one at a time
                    self.each([e], self._run_late, jobs)
                continue
            self.each(items, self.run, jobs)

    def analyze_rest(self, tables: list[Table], jobs: int) -> None:
        done = self.journal.steps_done("analyze:")
        left = [t for t in tables if analyze_key(t.qualified) not in done]
        if left:
            self.emit(event("step", "analyze", tables=len(left)))
            self.each(left, self.analyze, jobs)

    def each(self, items: list[Any], fn: Callable[[Any], None], jobs: int) -> None:
        # One pool for every later phase: its threads, and so their connections, are reused.
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max(1, jobs), thread_name_prefix="db-post")
        for f in [self._pool.submit(fn, x) for x in items]:
            f.result()

    def release(self) -> None:
        """Close the calling thread's connection (a worker that is done)."""
        c: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if c is None:
            return
        self._local.conn = None
        with self._lock:
            self._conns.pop(c, None)
        c.close()

    def cancel(self) -> None:
        """Ask the server to stop whatever each connection runs (on Ctrl-C or an error);
        the threads that own them then fail their statement."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(psycopg.Error):
                c.cancel_safe(timeout=CANCEL_TIMEOUT_S)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._lock:
            conns = list(self._conns.items())
            self._conns.clear()
        me = threading.current_thread()
        for c, owner in conns:
            # A thread still inside a statement owns its connection; closing it under the
            # thread could crash libpq. The process is leaving anyway.
            if owner is me or not owner.is_alive():
                c.close()

    def _run_late(self, e: schema.Entry) -> None:
        """A last-phase statement. Extended statistics land here only when their table could
        not be read from the statement, so after its ANALYZE: analyze it again at the end."""
        self.run(e)
        if e.kind != "STATISTICS":
            return
        row = self.conn().execute(
            "SELECT n.nspname, c.relname FROM pg_statistic_ext s "
            "JOIN pg_namespace sn ON sn.oid = s.stxnamespace "
            "JOIN pg_class c ON c.oid = s.stxrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE sn.nspname = %s AND s.stxname = %s", (e.schema, e.name)).fetchone()
        if row is not None:
            self.journal.step(analyze_key(f"{row[0]}.{row[1]}"), "todo")

    def _error(self, e: schema.Entry, exc: BaseException) -> ConfigError:
        msg = self.dst.scrub(" ".join(str(exc).split()))[:200]
        what = ("refreshing materialized view" if e.kind == schema.MATVIEW_DATA
                else f"building {e.kind}")
        return ConfigError(f"{what} {e.schema}.{e.name} on the target failed: {msg}")
