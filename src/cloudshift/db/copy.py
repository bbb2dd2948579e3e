"""``db copy``: schema, then rows on one snapshot in parallel, then indexes and constraints.

Pipeline (each step waits for the one before; within a step, work runs on ``jobs`` workers;
each step is a method of that name on :class:`_Copy`):

1. snapshot: a transaction on the source exports a snapshot (or, with ``follow``, a
   replication slot is created with ``EXPORT_SNAPSHOT``, so replication starts exactly there);
2. pre-data: ``pg_dump --section=pre-data --snapshot`` applied on the target in one transaction;
3. data (:mod:`plan`, :mod:`data`): every table (partitions as their leaf tables), largest
   first; tables larger than ``split_bytes`` with an integer first key column are cut into
   key ranges so one table keeps several workers busy. Each chunk is one target
   transaction. When a table's last chunk commits, its indexes and keys are built and it
   is analyzed, on the same workers, while other tables still load;
4. post-data left over: partitioned parents' indexes and keys, then partition index
   attachments, then foreign keys in parallel, then the rest (triggers, rules,
   comments..., materialized view refreshes) in dump order;
5. sequences set to the source's values (:mod:`sequences`);
6. analyze: what the data step did not (partitioned and inheritance parents...);
7. follow, with ``follow``: a subscription on the target, on the slot of step 1.

Every finished step and chunk is recorded in the job journal. See docs/db.md for what a
re-run after a crash redoes and when it must start over.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from cloudshift.core.errors import CloudshiftError, ConfigError, UsageError
from cloudshift.core.redact import describe
from cloudshift.db import catalog, schema
from cloudshift.db.data import TableResult, copy_data
from cloudshift.db.dsn import Dsn, connect
from cloudshift.db.journal import KIND, DbJournal, db_spec
from cloudshift.db.plan import write_counters
from cloudshift.db.postdata import PostData
from cloudshift.db.sequences import copy_sequences
from cloudshift.jobs.events import Event, EventSink, event
from cloudshift.jobs.journal import JOURNAL_FILE, job_folder
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
    """Copy SRC into DST (an empty database), or resume the job its journal describes.
    A run that started ends recorded ``done``, ``interrupted`` (Ctrl-C) or ``failed`` (with
    the reason); one refused before it starts leaves no journal behind."""
    check_options(opts)
    job = _Copy(Dsn(src_text, "source"), Dsn(dst_text, "target"), opts)
    try:
        job.prepare()
        job.start()
        job.run_steps()
        return job.finish()
    except KeyboardInterrupt:
        job.ended("interrupted")
        raise
    except Exception as exc:
        job.ended("failed", exc)
        raise
    finally:
        job.close()


def check_options(opts: CopyOptions) -> None:
    """A bad value is one :class:`UsageError` line, before anything connects."""
    if opts.split_bytes <= 0:
        raise UsageError(f"--split-size must be more than 0 (got {opts.split_bytes} bytes)",
                         hint="write e.g. 1GiB or 256MiB")
    if opts.jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {opts.jobs})")


class _Copy:
    """One run of a db copy: both connections, the journal, the result, and the steps."""

    def __init__(self, src: Dsn, dst: Dsn, opts: CopyOptions) -> None:
        self.started = time.monotonic()
        self.src, self.dst, self.opts = src, dst, opts
        self.emit = _Emitter(opts.on_event)
        self.sconn, self.dconn = connect(src), connect(dst)
        self.spec = db_spec(src, dst, follow=opts.follow, no_owner=opts.no_owner,
                            no_acl=opts.no_acl, split_bytes=opts.split_bytes)
        self.folder = job_folder(self.spec, opts.job_dir)
        # The journal of an earlier run, if any; a new one is created only once the copy
        # may start, so a refused copy leaves no job behind.
        self.found = DbJournal(self.folder) if (self.folder / JOURNAL_FILE).exists() else None
        self.opened: DbJournal | None = None
        self.start_over = False
        self.pub, self.slot = names_for(self.spec.job_id)
        self.result = CopyResult(job_id=self.spec.job_id, job_dir=str(self.folder),
                                 resumed=False)
        self.holder: psycopg.Connection[Any] | None = None   # keeps the snapshot alive
        self.post: PostData | None = None

    @property
    def journal(self) -> DbJournal:
        """This run's journal, from :meth:`start` on."""
        assert self.opened is not None, "the journal is opened when the run starts"
        return self.opened

    # --- before anything is written -------------------------------------------------------
    def prepare(self) -> None:
        """Resume the journal found, or start over (if asked, or if it describes nothing
        any more); refuse, with the fix, what cannot work. Neither the journal nor, without
        --force, either server is written to."""
        if self.opts.follow:
            from cloudshift.db.follow import require_follow_ready

            require_follow_ready(self.sconn, self.src)
        found = self.found
        self.start_over = found is not None and (self.opts.force or self._stale(found))
        self.result.resumed = found is not None and not self.start_over and not found.fresh
        if found is not None and self.result.resumed:
            require_same_options(self.spec, found.spec())
            if self.opts.follow:
                self._require_follow_resumable(found)
        if self.opts.force:
            _wipe_target(self.dconn)
            _drop_replication(self.sconn, self.pub, self.slot)
        if not self.result.resumed:
            self._require_empty_target()

    def _stale(self, found: DbJournal) -> bool:
        """The journal describes nothing to resume: its job finished (running it again is
        a new copy), or the target was emptied or recreated since."""
        if found.fresh:
            return False
        if found.last_status() == "done":
            return True
        return found.step_state("pre-data") == "done" \
            and catalog.user_table_count(self.dconn) == 0

    def _require_empty_target(self) -> None:
        n = catalog.user_table_count(self.dconn)
        if n:
            raise ConfigError(f"the target database {self.dst.safe()} is not empty ({n} "
                              "tables, views or sequences)",
                              hint="copy into an empty database, or add --force to drop "
                                   "everything in its user schemas first")

    @staticmethod
    def _require_follow_resumable(j: DbJournal) -> None:
        if j.step_state("data") != "done" \
                and (j.get("slot") is not None or j.step_state("pre-data")):
            raise ConfigError(
                "the previous --follow run stopped during the data copy; its snapshot "
                "ended with it, so resuming could lose or repeat changes",
                hint="start over with --force (drops what the target holds)")

    def _create_journal(self) -> DbJournal:
        try:
            return DbJournal(self.folder)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot create the job journal in '{self.folder}': "
                              f"{describe(exc)}",
                              hint="set CLOUDSHIFT_HOME or --job-dir to a writable folder"
                              ) from exc

    def start(self) -> None:
        """The copy may start: open (or create) the journal and record what it runs."""
        journal = self.found if self.found is not None else self._create_journal()
        self.opened = journal
        if self.start_over:
            journal.reset()
        journal.record_spec(self.spec)
        journal.record_conninfo(self.src, self.dst)
        journal.start_run()
        if catalog_large_objects(self.sconn):
            self.result.warnings.append(
                "the source has large objects (pg_largeobject); they are not copied: move "
                "them with pg_dump --large-objects or store them as bytea")

    # --- the pipeline ---------------------------------------------------------------------
    def run_steps(self) -> None:
        """snapshot -> pre-data -> data -> post-data -> sequences -> analyze -> follow; a
        re-run skips what the journal records done."""
        try:
            if self.journal.step_state("data") != "done":
                snapshot, counters = self.snapshot()
                with self._timed("pre-data"):
                    self.pre_data(snapshot)
                with self._timed("data+indexes"):
                    self.data(snapshot, counters)
            with self._timed("post-data"):
                self.post_data()
            with self._timed("sequences+analyze"):
                self.sequences()
                self.analyze()
            if self.opts.follow:
                with self._timed("follow"):
                    self.follow()
        except BaseException:
            if self.post is not None:
                # Leaving early (Ctrl-C, an error): stop the statements still running
                # instead of waiting for them.
                self.post.cancel()
            raise
        finally:
            self._release()

    def snapshot(self) -> tuple[str, dict[str, int]]:
        """(the snapshot every worker reads, each table's write counters before it)."""
        # Read before the snapshot: a write in between then shows as a change on a resumed
        # run (a needless re-copy), never as a missed one.
        counters = write_counters(self.sconn)
        if self.opts.follow:
            from cloudshift.db.follow import create_slot

            self.holder, snapshot = create_slot(self.sconn, self.src, self.journal, self.pub,
                                                self.slot)
        else:
            self.holder, snapshot = _export_snapshot(self.src)
        self.emit(event("step", "schema", snapshot=snapshot))
        return snapshot, counters

    def pre_data(self, snapshot: str) -> None:
        _schema_files(self.src, self.dst, self.folder, self.journal, snapshot, self.opts)

    def data(self, snapshot: str, counters: dict[str, int]) -> None:
        self.result.tables, self.result.recopied = copy_data(
            self.src, self.dst, self.journal, snapshot, counters,
            split_bytes=self.opts.split_bytes, jobs=self.opts.jobs, post=self._post(),
            emit=self.emit)
        self.journal.step("data", "done")
        if self.holder is not None:
            # Every chunk is in: the source may forget the snapshot.
            self.holder.close()
            self.holder = None

    def post_data(self) -> None:
        self.emit(event("step", "post-data"))
        self._post().run_rest(self.opts.jobs)

    def sequences(self) -> None:
        if self.journal.step_state("sequences") != "done":
            copy_sequences(self.sconn, self.dconn)
            self.journal.step("sequences", "done")

    def analyze(self) -> None:
        if self.journal.step_state("analyze") != "done":
            # What the data step did not analyze: partitioned and inheritance parents,
            # tables whose extended statistics came in post-data, and tables of a run
            # that stopped before their turn.
            self._post().analyze_rest(catalog.tables(self.dconn, include_partitioned=True),
                                      self.opts.jobs)
            self.journal.step("analyze", "done")

    def follow(self) -> None:
        from cloudshift.db.follow import start_subscription

        self.result.follow = start_subscription(self.src, self.dst, self.dconn, self.sconn,
                                                self.pub, self.slot, self.journal, self.emit)

    # --- the end --------------------------------------------------------------------------
    def finish(self) -> CopyResult:
        r = self.result
        r.rows, r.bytes = self.journal.done_totals()
        r.elapsed = time.monotonic() - self.started
        self.journal.finish_run("done", {"rows": r.rows, "bytes": r.bytes})
        return r

    def ended(self, status: str, exc: BaseException | None = None) -> None:
        """Record how a run that started ended: ``interrupted``, or ``failed`` with the
        reason in one line (without passwords) in its summary."""
        if self.opened is None or self.opened.run_id is None:
            return
        summary = {}
        if exc is not None:
            reason = describe(exc)
            if not isinstance(exc, CloudshiftError):   # a bug, or an unmapped error
                reason = f"{type(exc).__name__}: {reason}"
            summary["error"] = self.src.scrub(self.dst.scrub(reason))
        with contextlib.suppress(sqlite3.Error):   # never hide the error that ended it
            self.opened.finish_run(status, summary)

    def close(self) -> None:
        journal = self.opened or self.found      # the same one once the run started
        if journal is not None:
            journal.close()
        self.sconn.close()
        self.dconn.close()

    # --- helpers --------------------------------------------------------------------------
    def _post(self) -> PostData:
        """The post-data runner, made once the pre-data step wrote its script."""
        if self.post is None:
            self.post = PostData(self.dst, self.folder / "post-data.sql", self.journal,
                                 self.result.resumed, self.emit)
        return self.post

    @contextlib.contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        t0 = time.monotonic()
        yield
        self.result.steps[step] = round(time.monotonic() - t0, 3)

    def _release(self) -> None:
        if self.holder is not None:
            self.holder.close()
            self.holder = None
        if self.post is not None:
            self.post.close()


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


def _wipe_target(dconn: psycopg.Connection[Any]) -> None:
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


def _drop_replication(sconn: psycopg.Connection[Any], pub: str, slot: str) -> None:
    from cloudshift.db.follow import drop_slot

    drop_slot(sconn, slot)
    sconn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(pub)))


def _export_snapshot(src: Dsn) -> tuple[psycopg.Connection[Any], str]:
    """A transaction that exports its snapshot; it must stay open, idle, until every worker
    imported it."""
    holder = connect(src)
    holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    row = holder.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return holder, str(row[0])


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
