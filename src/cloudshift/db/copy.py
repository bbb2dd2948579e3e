"""``db copy``: schema, then rows on one snapshot in parallel, then indexes and constraints.

Pipeline (each step waits for the one before; within a step, work runs on ``jobs`` workers):

1. snapshot: a transaction on the source exports a snapshot (or, with ``follow``, a
   replication slot is created with ``EXPORT_SNAPSHOT``, so replication starts exactly there);
2. pre-data: ``pg_dump --section=pre-data --snapshot`` applied on the target in one transaction;
3. data: every table (partitions as their leaf tables), largest first; tables larger than
   ``split_bytes`` with an integer first key column are cut into key ranges so one table
   keeps several workers busy. Each chunk is one target transaction. When a table's last
   chunk commits, its indexes and keys are built and it is analyzed, on the same workers,
   while other tables still load;
4. post-data left over: partitioned parents' indexes and keys, then partition index
   attachments, then foreign keys in parallel, then the rest (triggers, rules,
   comments...) in dump order;
5. sequences set to the source's values, then ANALYZE of partitioned and inheritance parents;
6. with ``follow``: a subscription on the target, on the slot of step 1.

Every finished step and chunk is recorded in the job journal. See docs/db.md for what a
re-run after a crash redoes and when it must start over.
"""

from __future__ import annotations

import collections
import functools
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cloudshift.core.errors import ConfigError
from cloudshift.db import catalog, schema
from cloudshift.db.catalog import Table
from cloudshift.db.dsn import Dsn, connect
from cloudshift.db.journal import KIND, DbJournal, db_spec
from cloudshift.db.postdata import PostData, analyze_key
from cloudshift.db.pump import Chunk, copy_chunk
from cloudshift.jobs.events import Event, EventSink, event
from cloudshift.jobs.journal import job_folder
from cloudshift.jobs.results import ResultBase, summary
from cloudshift.jobs.spec import JobSpec


@dataclass
class CopyOptions:
    jobs: int = 4
    follow: bool = False
    force: bool = False
    no_owner: bool = False
    no_acl: bool = False
    job_dir: Path | None = None
    # Splitting a table costs COPY FREEZE, and on pgbench scale 20 two ranges of one table
    # loaded slower than one stream (3.1-3.2 s vs 2.7-2.9 s: the two target backends and
    # their sources then compete for two cores). Big tables still split, which also bounds
    # what a resume re-copies.
    split_bytes: int = 1 << 30
    on_event: EventSink | None = None


@dataclass
class TableResult:
    table: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    chunks: int = 0
    skipped_chunks: int = 0


@dataclass
class CopyResult(ResultBase):
    job_id: str
    job_dir: str
    resumed: bool
    tables: list[TableResult] = field(default_factory=list)
    recopied: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    steps: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    follow: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A copy that returns is complete: failures and interruptions raise."""
        return True

    def to_dict(self) -> dict[str, Any]:
        return summary(KIND, "db-copy", self.ok, job_id=self.job_id, job_dir=self.job_dir,
                       resumed=self.resumed, rows=self.rows, bytes=self.bytes,
                       elapsed=round(self.elapsed, 3), steps=self.steps,
                       recopied=self.recopied, follow=self.follow, warnings=self.warnings,
                       tables=[vars(t) for t in self.tables])


def names_for(jid: str) -> tuple[str, str]:
    """(publication, slot/subscription) names for a job: stable, so a re-run finds them."""
    base = "cloudshift_" + jid.replace("-", "_")
    return base + "_pub", base


class _Emitter:
    """The caller's sink, called by one thread at a time (workers emit too)."""

    def __init__(self, fn: EventSink | None) -> None:
        self.fn = fn
        self.lock = threading.Lock()

    def __call__(self, ev: Event) -> None:
        if self.fn is not None:
            with self.lock:
                self.fn(ev)


def copy_database(src_text: str, dst_text: str, opts: CopyOptions) -> CopyResult:
    started = time.monotonic()
    emit = _Emitter(opts.on_event)
    src, dst = Dsn(src_text, "source"), Dsn(dst_text, "target")
    sconn, dconn = connect(src), connect(dst)
    spec = db_spec(src, dst, follow=opts.follow, no_owner=opts.no_owner, no_acl=opts.no_acl,
                   split_bytes=opts.split_bytes)
    jid = spec.job_id
    folder = job_folder(spec, opts.job_dir)
    journal = DbJournal(folder)
    pub, slot = names_for(jid)
    try:
        if opts.force:
            _wipe_target(dconn, dst)
            _drop_replication(sconn, dconn, pub, slot)
            journal.reset()
        if not journal.fresh:
            if journal.last_status() == "done":
                # A finished job: running it again is a new copy, not a resume.
                journal.reset()
            elif journal.step_state("pre-data") == "done" \
                    and catalog.user_table_count(dconn) == 0:
                # The target was emptied or recreated since: the journal describes nothing.
                journal.reset()
        resumed = not journal.fresh
        if resumed:
            require_same_options(spec, journal.spec())
        if not resumed:
            n = catalog.user_table_count(dconn)
            if n:
                raise ConfigError(f"the target database {dst.safe()} is not empty ({n} tables, "
                                  "views or sequences)",
                                  hint="copy into an empty database, or add --force to drop "
                                       "everything in its user schemas first")
        if opts.follow:
            from cloudshift.db.follow import require_follow_ready

            require_follow_ready(sconn, src)
        data_done = journal.step_state("data") == "done"
        if resumed and opts.follow and not data_done \
                and (journal.get("slot") is not None or journal.step_state("pre-data")):
            raise ConfigError(
                "the previous --follow run stopped during the data copy; its snapshot "
                "ended with it, so resuming could lose or repeat changes",
                hint="start over with --force (drops what the target holds)")
        journal.start_run()
        journal.record_spec(spec)
        result = CopyResult(job_id=jid, job_dir=str(folder), resumed=resumed)
        if catalog_large_objects(sconn):
            result.warnings.append("the source has large objects (pg_largeobject); they are "
                                   "not copied: move them with pg_dump --large-objects or "
                                   "store them as bytea")
        holder: psycopg.Connection[Any] | None = None
        post: PostData | None = None
        try:
            if not data_done:
                # Read before the snapshot: a write in between then shows as a change on a
                # resumed run (a needless re-copy), never as a missed one.
                counters = _write_counters(sconn)
                if opts.follow:
                    holder, snapshot = _slot_snapshot(sconn, src, journal, pub, slot)
                else:
                    holder = connect(src)
                    holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    row = holder.execute("SELECT pg_export_snapshot()").fetchone()
                    assert row is not None
                    snapshot = str(row[0])
                emit(event("step", "schema", snapshot=snapshot))
                t0 = time.monotonic()
                _schema_files(src, dst, folder, journal, snapshot, opts)
                result.steps["pre-data"] = round(time.monotonic() - t0, 3)
                t0 = time.monotonic()
                post = PostData(dst, folder / "post-data.sql", journal, resumed, emit)
                _copy_data(src, dst, journal, snapshot, counters, opts, emit, result, post)
                result.steps["data+indexes"] = round(time.monotonic() - t0, 3)
                journal.step("data", "done")
                if holder is not None:
                    holder.close()
                    holder = None
            t0 = time.monotonic()
            if post is None:
                post = PostData(dst, folder / "post-data.sql", journal, resumed, emit)
            emit(event("step", "post-data"))
            post.run_rest(opts.jobs)
            result.steps["post-data"] = round(time.monotonic() - t0, 3)
            t0 = time.monotonic()
            if journal.step_state("sequences") != "done":
                copy_sequences(sconn, dconn)
                journal.step("sequences", "done")
            if journal.step_state("analyze") != "done":
                # What the data step did not analyze: partitioned and inheritance parents,
                # tables whose extended statistics came in post-data, and tables of a run
                # that stopped before their turn.
                post.analyze_rest(catalog.tables(dconn, include_partitioned=True), opts.jobs)
                journal.step("analyze", "done")
            result.steps["sequences+analyze"] = round(time.monotonic() - t0, 3)
            if opts.follow:
                from cloudshift.db.follow import start_subscription

                t0 = time.monotonic()
                result.follow = start_subscription(src, dst, dconn, sconn, pub, slot, journal,
                                                   emit)
                result.steps["follow"] = round(time.monotonic() - t0, 3)
        except BaseException:
            if post is not None:
                # Leaving early (Ctrl-C, an error): stop the statements still running
                # instead of waiting for them.
                post.cancel()
            raise
        finally:
            if holder is not None:
                holder.close()
            if post is not None:
                post.close()
        result.rows, result.bytes = journal.done_totals()
        result.elapsed = time.monotonic() - started
        journal.finish_run("done", {"rows": result.rows, "bytes": result.bytes})
        return result
    except KeyboardInterrupt:
        if journal.run_id is not None:
            journal.finish_run("interrupted", {})
        raise
    finally:
        journal.close()
        sconn.close()
        dconn.close()


def require_same_options(spec: JobSpec, recorded: JobSpec | None) -> None:
    """A resume must produce what the first run started: refuse, in one line, when an
    option that changes the result differs from the recorded one. Options an older journal
    did not record (cloudshift 0.1 kept only --follow) are not compared."""
    if recorded is None:
        return
    known = {k: v for k, v in spec.options.items() if k in recorded.options}
    diffs = replace(spec, options=known).differences(recorded)
    if diffs:
        raise ConfigError("this job was started with other options: " + "; ".join(diffs),
                          hint="rerun with the same options, or add --force to start over")


def catalog_large_objects(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
    return int(row[0]) if row else 0


def _wipe_target(dconn: psycopg.Connection[Any], dst: Dsn) -> None:
    """--force: drop every user schema with all it holds, then give back an empty public."""
    for sub, in dconn.execute(
            "SELECT s.subname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid "
            "WHERE d.datname = current_database() AND s.subname LIKE 'cloudshift\\_%'"
            ).fetchall():
        ident = sql.Identifier(sub)
        dconn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
        dconn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
        dconn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
    schemas = [r[0] for r in dconn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', "
        "'information_schema') AND nspname NOT LIKE 'pg\\_%'")]
    for name in schemas:
        dconn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
    for ext, in dconn.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"
                              ).fetchall():
        dconn.execute(sql.SQL("DROP EXTENSION IF EXISTS {} CASCADE").format(sql.Identifier(ext)))
    dconn.execute("CREATE SCHEMA IF NOT EXISTS public")


def _drop_replication(sconn: psycopg.Connection[Any], dconn: psycopg.Connection[Any],
                      pub: str, slot: str) -> None:
    from cloudshift.db.follow import drop_slot

    drop_slot(sconn, slot)
    sconn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(pub)))


def _slot_snapshot(sconn: psycopg.Connection[Any], src: Dsn, journal: DbJournal, pub: str,
                   slot: str) -> tuple[psycopg.Connection[Any], str]:
    from cloudshift.db.follow import create_slot

    return create_slot(sconn, src, journal, pub, slot)


def _schema_files(src: Dsn, dst: Dsn, folder: Path, journal: DbJournal, snapshot: str,
                  opts: CopyOptions) -> None:
    pre, post = folder / "pre-data.sql", folder / "post-data.sql"
    if journal.step_state("pre-data") == "done" and post.exists():
        return
    with ThreadPoolExecutor(2) as pool:
        futs = [pool.submit(schema.dump, src, section, path, snapshot=snapshot,
                            no_owner=opts.no_owner, no_acl=opts.no_acl)
                for section, path in (("pre-data", pre), ("post-data", post))]
        for f in futs:
            f.result()
    schema.apply_file(dst, pre)
    journal.step("pre-data", "done")


def _write_counters(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {f"{s}.{t}": int(n) for s, t, n in conn.execute(
        "SELECT schemaname, relname, n_tup_ins + n_tup_upd + n_tup_del "
        "FROM pg_stat_all_tables")}


def _plan(src: Dsn, dst_conn: psycopg.Connection[Any], journal: DbJournal, snapshot: str,
          counters: dict[str, int], opts: CopyOptions, result: CopyResult
          ) -> tuple[list[Chunk], dict[str, Table], set[str]]:
    """(chunks still to copy, largest table first; every table of the copy by name; the
    tables that have inheritance children). Tables written to on the source since an
    earlier run's snapshot are planned again."""
    with connect(src) as pconn:
        pconn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        pconn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        tables = catalog.tables(pconn)
        parents = {f"{n}.{t}" for n, t in pconn.execute(
            "SELECT DISTINCT n.nspname, c.relname FROM pg_inherits i JOIN pg_class c "
            "ON c.oid = i.inhparent JOIN pg_namespace n ON n.oid = c.relnamespace")}
        known = journal.table_writes()
        by_name = {t.qualified: t for t in tables}
        planned = {tbl for _, tbl, *_ in journal.chunks()}
        redo: set[str] = set()
        for name in planned:
            if name in known and counters.get(name, -1) != known[name]:
                # Written to since the first run's snapshot: its done chunks are stale.
                redo.add(name)
        for name in sorted(redo):
            journal.drop_table_chunks(name)
            if name in by_name:
                dst_conn.execute(sql.SQL("TRUNCATE ONLY {}").format(by_name[name].ident()))
            journal.step(analyze_key(name), "todo")
            result.recopied.append(name)
        planned -= redo
        for t in tables:
            if t.qualified in planned:
                continue
            journal.set_table(t.qualified, counters.get(t.qualified, 0), t.size)
            for i, (lo, hi) in enumerate(_ranges(pconn, t, opts)):
                journal.add_chunk(f"{t.qualified}#{i}", t.qualified, lo, hi)
        pconn.execute("COMMIT")
    sizes = {t.qualified: t.size for t in tables}
    todo: list[Chunk] = []
    for cid, tbl, lo, hi, state in journal.chunks():
        if state == "done" or tbl not in by_name:
            continue
        clean = None
        if state == "inflight":
            clean = "truncate" if lo is None and hi is None else "delete"
        todo.append(Chunk(cid, by_name[tbl], lo, hi, clean))
    todo.sort(key=lambda c: (-sizes.get(c.table.qualified, 0), int(c.cid.rsplit("#", 1)[1])))
    return todo, by_name, parents


def _ranges(conn: psycopg.Connection[Any], t: Table, opts: CopyOptions
            ) -> list[tuple[int | None, int | None]]:
    if not t.int_key or t.size <= opts.split_bytes:
        return [(None, None)]
    row = conn.execute(sql.SQL("SELECT min({k}), max({k}) FROM ONLY {t}").format(
        k=sql.Identifier(t.pk[0]), t=t.ident())).fetchone()
    if row is None or row[0] is None:
        return [(None, None)]
    lo, hi = int(row[0]), int(row[1])
    n = min(math.ceil(t.size / opts.split_bytes), 256, hi - lo + 1)
    if n <= 1:
        return [(None, None)]
    width = math.ceil((hi - lo + 1) / n)
    bounds = [lo + i * width for i in range(1, n)]
    # The outer ranges are open, so a re-plan on a later snapshot still covers every key.
    edges: list[int | None] = [None, *bounds, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def _copy_data(src: Dsn, dst: Dsn, journal: DbJournal, snapshot: str, counters: dict[str, int],
               opts: CopyOptions, emit: _Emitter, result: CopyResult, post: PostData) -> None:
    """Every chunk on ``opts.jobs`` workers, largest table first. As soon as a table's last
    chunk commits, its indexes and keys are built, then it is analyzed, on the same workers:
    those come before further chunks, so one table's index build overlaps other tables'
    loads instead of waiting for all of them."""
    with connect(dst) as dconn:
        chunks, tables, parents = _plan(src, dconn, journal, snapshot, counters, opts, result)
    stats: dict[str, TableResult] = {}
    remaining: dict[str, int] = {}
    for c in chunks:
        stats.setdefault(c.table.qualified, TableResult(c.table.qualified, chunks=0))
        stats[c.table.qualified].chunks += 1
        remaining[c.table.qualified] = remaining.get(c.table.qualified, 0) + 1
    total_bytes = sum(c.table.size for c in chunks if c.whole) + sum(
        c.table.size // max(1, stats[c.table.qualified].chunks) for c in chunks if not c.whole)
    emit(event("plan", chunks=len(chunks), tables=len(stats), est_bytes=total_bytes))
    builds = post.table_builds(tables)
    analyzed = journal.steps_done("analyze:")
    work: collections.deque[Chunk] = collections.deque(chunks)
    ready: collections.deque[Callable[[], None]] = collections.deque()
    building: dict[str, int] = {}
    cond = threading.Condition()
    moved = {"rows": 0, "bytes": 0}
    t_start = time.monotonic()
    errors: list[BaseException] = []
    stop = threading.Event()
    busy = 0

    def on_bytes(rows: int, nbytes: int) -> None:
        with cond:
            moved["rows"] += rows
            moved["bytes"] += nbytes

    def next_stage(name: str) -> None:
        """(cond held) Queue the table's next build stage; after the last, its ANALYZE."""
        stages = builds.get(name)
        if stages:
            stage = stages.pop(0)
            building[name] = len(stage)
            for e in stage:
                ready.append(functools.partial(build, name, e))
        elif analyze_key(name) not in analyzed and name not in parents:
            # An inheritance parent waits for analyze_rest: its ANALYZE samples the
            # children too, and autovacuum never redoes that part.
            ready.append(functools.partial(post.analyze, tables[name]))

    def build(name: str, e: schema.Entry) -> None:
        post.run(e)
        with cond:
            building[name] -= 1
            if building[name] == 0:
                next_stage(name)

    def load(chunk: Chunk) -> None:
        journal.chunk_state(chunk.cid, "inflight")
        rows, nbytes, secs = copy_chunk(src, post.conn(), chunk, snapshot, on_bytes)
        journal.chunk_state(chunk.cid, "done", rows, nbytes, secs)
        with cond:
            st = stats[chunk.table.qualified]
            st.rows += rows
            st.bytes += nbytes
            st.seconds += secs
            remaining[chunk.table.qualified] -= 1
            finished = remaining[chunk.table.qualified] == 0
            if finished:
                next_stage(chunk.table.qualified)
        if finished:
            emit(event("table", st.table, rows=st.rows, bytes=st.bytes,
                       seconds=round(st.seconds, 3), chunks=st.chunks))

    def worker() -> None:
        try:
            work_loop()
        finally:
            post.release()

    def work_loop() -> None:
        nonlocal busy
        while True:
            with cond:
                while True:
                    if stop.is_set():
                        return
                    if ready:
                        task = ready.popleft()
                        break
                    if work:
                        task = functools.partial(load, work.popleft())
                        break
                    if busy == 0:
                        # Nothing queued and nothing running that could queue more.
                        cond.notify_all()
                        return
                    cond.wait()
                busy += 1
            try:
                task()
            except BaseException as exc:
                errors.append(exc)
                stop.set()
            finally:
                with cond:
                    busy -= 1
                    cond.notify_all()

    with cond:
        # Tables whose every chunk was done by an earlier run.
        for name in tables:
            if name not in remaining:
                next_stage(name)
    threads = [threading.Thread(target=worker, daemon=True, name=f"db-copy-{i}")
               for i in range(max(1, opts.jobs))]
    for th in threads:
        th.start()
    cancelled = False
    try:
        while any(th.is_alive() for th in threads):
            for th in threads:
                th.join(timeout=1.0)
            if errors and not cancelled:
                # The run has failed: stop the loads and builds still running instead of
                # waiting for them (a re-run redoes them).
                post.cancel()
                cancelled = True
            with cond:
                done_b, done_r = moved["bytes"], moved["rows"]
            el = time.monotonic() - t_start
            rate = done_b / el if el > 0 else 0.0
            eta = (total_bytes - done_b) / rate if rate > 0 and total_bytes > done_b else 0.0
            emit(event("progress", rows=done_r, bytes=done_b, est_bytes=total_bytes,
                       rate=rate, eta=eta))
    except KeyboardInterrupt:
        stop.set()
        with cond:
            cond.notify_all()
        # Stop the statements in flight; each worker then closes its own connection.
        post.cancel()
        for th in threads:
            th.join(timeout=5)
        raise
    if errors:
        raise errors[0]
    result.tables = sorted(stats.values(), key=lambda s: -s.bytes)


def copy_sequences(sconn: psycopg.Connection[Any], dconn: psycopg.Connection[Any]) -> int:
    """Set every target sequence to the source's value (logical replication does not)."""
    have = {s.qualified for s in catalog.sequences(dconn)}
    n = 0
    for s in catalog.sequences(sconn):
        if s.qualified not in have or s.last_value is None:
            continue
        dconn.execute(sql.SQL("SELECT setval({}, {}, {})").format(
            sql.Literal(s.ident().as_string(dconn)), sql.Literal(s.last_value),
            sql.Literal(s.is_called)))
        n += 1
    return n
