"""The data step of ``db copy``: every chunk on ``jobs`` workers, largest table first.

As soon as a table's last chunk commits, its indexes and keys are built, in stages, then it
is analyzed, on the same workers: those tasks go before further chunks, so one table's index
build overlaps other tables' loads instead of waiting for all of them. The workers share one
condition variable; the calling thread watches them, reports progress, and on an error or
Ctrl-C cancels what still runs on the target (a re-run redoes it) instead of waiting for it.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cloudshift.db import schema
from cloudshift.db.dsn import Dsn, connect
from cloudshift.db.journal import DbJournal
from cloudshift.db.plan import Plan, plan_chunks
from cloudshift.db.postdata import PostData, analyze_key
from cloudshift.db.pump import Chunk, copy_chunk
from cloudshift.jobs.events import Event, EventSink, event

Task = Callable[[], None]
WATCH_EVERY_S = 1.0          # the progress event's period, and how soon an error is seen


@dataclass
class TableResult:
    table: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    chunks: int = 0
    skipped_chunks: int = 0


def copy_data(src: Dsn, dst: Dsn, journal: DbJournal, snapshot: str, counters: dict[str, int],
              *, split_bytes: int, jobs: int, post: PostData, emit: EventSink
              ) -> tuple[list[TableResult], list[str]]:
    """Plan what is left, then load it: (the tables loaded, biggest first; the tables
    copied again in full because they were written to since the first run)."""
    with connect(dst) as dconn:
        plan = plan_chunks(src, dconn, journal, snapshot, counters, split_bytes)
    return _Loads(src, journal, snapshot, plan, post, emit).run(jobs), plan.recopied


class _Loads:
    """What the workers share, under :attr:`cond`: chunks still to load, and ready tasks (a
    loaded table's next build stage, or its ANALYZE), which go first."""

    def __init__(self, src: Dsn, journal: DbJournal, snapshot: str, plan: Plan,
                 post: PostData, emit: EventSink) -> None:
        self.src, self.journal, self.snapshot = src, journal, snapshot
        self.plan, self.post, self.emit = plan, post, emit
        self.stats = _table_stats(plan.chunks)
        self.remaining = {name: st.chunks for name, st in self.stats.items()}
        self.est_bytes = _estimate(plan.chunks, self.stats)
        self.work: collections.deque[Chunk] = collections.deque(plan.chunks)
        self.ready: collections.deque[Task] = collections.deque()
        self.builds: dict[str, list[list[schema.Entry]]] = {}
        self.building: dict[str, int] = {}
        self.analyzed: set[str] = set()
        self.cond = threading.Condition()
        self.rows = self.bytes = 0
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.busy = 0

    # --- the calling thread ---------------------------------------------------------------
    def run(self, jobs: int) -> list[TableResult]:
        self.emit(event("plan", chunks=len(self.work), tables=len(self.stats),
                        est_bytes=self.est_bytes))
        self.builds = self.post.table_builds(self.plan.tables)
        self.analyzed = self.journal.steps_done("analyze:")
        with self.cond:
            # Tables whose every chunk was done by an earlier run.
            for name in self.plan.tables:
                if name not in self.remaining:
                    self._next_stage(name)
        threads = [threading.Thread(target=self._worker, daemon=True, name=f"db-copy-{i}")
                   for i in range(max(1, jobs))]
        for th in threads:
            th.start()
        try:
            self._watch(threads)
        except KeyboardInterrupt:
            self._abort(threads)
            raise
        if self.errors:
            raise self.errors[0]
        return sorted(self.stats.values(), key=lambda s: -s.bytes)

    def _watch(self, threads: list[threading.Thread]) -> None:
        """Until the workers are done: progress every second; on the first error, cancel
        the loads and builds still running instead of waiting for them."""
        started = time.monotonic()
        cancelled = False
        while any(th.is_alive() for th in threads):
            for th in threads:
                th.join(timeout=WATCH_EVERY_S)
            if self.errors and not cancelled:
                self.post.cancel()
                cancelled = True
            self.emit(self._progress(time.monotonic() - started))

    def _progress(self, elapsed: float) -> Event:
        with self.cond:
            done_b, done_r = self.bytes, self.rows
        rate = done_b / elapsed if elapsed > 0 else 0.0
        eta = (self.est_bytes - done_b) / rate if rate > 0 and self.est_bytes > done_b else 0.0
        return event("progress", rows=done_r, bytes=done_b, est_bytes=self.est_bytes,
                     rate=rate, eta=eta)

    def _abort(self, threads: list[threading.Thread]) -> None:
        """Ctrl-C: no new tasks; stop the statements in flight; each worker then closes its
        own connection."""
        self.stop.set()
        with self.cond:
            self.cond.notify_all()
        self.post.cancel()
        for th in threads:
            th.join(timeout=5)

    # --- the workers ----------------------------------------------------------------------
    def _worker(self) -> None:
        try:
            while (task := self._next_task()) is not None:
                self._run(task)
        finally:
            self.post.release()

    def _next_task(self) -> Task | None:
        """A ready task, else the next chunk's load; None once nothing is queued and nothing
        runs that could queue more, or the step is stopped."""
        with self.cond:
            while not self.stop.is_set():
                if self.ready:
                    task = self.ready.popleft()
                elif self.work:
                    task = functools.partial(self._load, self.work.popleft())
                elif self.busy == 0:
                    self.cond.notify_all()
                    return None
                else:
                    self.cond.wait()
                    continue
                self.busy += 1
                return task
            return None

    def _run(self, task: Task) -> None:
        try:
            task()
        except BaseException as exc:
            self.errors.append(exc)
            self.stop.set()
        finally:
            with self.cond:
                self.busy -= 1
                self.cond.notify_all()

    def _load(self, chunk: Chunk) -> None:
        name = chunk.table.qualified
        self.journal.chunk_state(chunk.cid, "inflight")
        rows, nbytes, secs = copy_chunk(self.src, self.post.conn(), chunk, self.snapshot,
                                        self._moved)
        self.journal.chunk_state(chunk.cid, "done", rows, nbytes, secs)
        with self.cond:
            st = self.stats[name]
            st.rows += rows
            st.bytes += nbytes
            st.seconds += secs
            self.remaining[name] -= 1
            finished = self.remaining[name] == 0
            if finished:
                self._next_stage(name)
        if finished:
            self.emit(event("table", st.table, rows=st.rows, bytes=st.bytes,
                            seconds=round(st.seconds, 3), chunks=st.chunks))

    def _moved(self, rows: int, nbytes: int) -> None:
        with self.cond:
            self.rows += rows
            self.bytes += nbytes

    def _next_stage(self, name: str) -> None:
        """(cond held) Queue the table's next build stage; after the last, its ANALYZE."""
        stages = self.builds.get(name)
        if stages:
            stage = stages.pop(0)
            self.building[name] = len(stage)
            for e in stage:
                self.ready.append(functools.partial(self._build, name, e))
        elif analyze_key(name) not in self.analyzed and name not in self.plan.parents:
            # An inheritance parent waits for analyze_rest: its ANALYZE samples the
            # children too, and autovacuum never redoes that part.
            self.ready.append(functools.partial(self.post.analyze, self.plan.tables[name]))

    def _build(self, name: str, e: schema.Entry) -> None:
        self.post.run(e)
        with self.cond:
            self.building[name] -= 1
            if self.building[name] == 0:
                self._next_stage(name)


def _table_stats(chunks: list[Chunk]) -> dict[str, TableResult]:
    stats: dict[str, TableResult] = {}
    for c in chunks:
        stats.setdefault(c.table.qualified, TableResult(c.table.qualified)).chunks += 1
    return stats


def _estimate(chunks: list[Chunk], stats: dict[str, TableResult]) -> int:
    """Bytes to load, from the tables' sizes on disk: a range counts its share of its
    table's chunks still to do."""
    return sum(c.table.size if c.whole else c.table.size // max(1, stats[c.table.qualified].chunks)
               for c in chunks)
