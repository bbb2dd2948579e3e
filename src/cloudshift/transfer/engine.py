"""The copy/sync engine: the coordinator of a job, from both listings to the journal.

:meth:`Engine.run` reads as the job's steps: open and check both sides, open the journal
(and clean up after a killed run), walk the merge-join of the two sorted listings with the
journal's ``done`` records alongside, decide per key, hand the objects that need work to an
executor (:mod:`cloudshift.jobs.executor`; this process's threads unless told otherwise),
record the outcomes that come back, and finish (flush the destination, record the run).

The coordinating thread is the only writer of the journal and keeps at most
``2 x workers`` pieces of work in flight. What runs on the workers, and how an object is
copied and checked, is :mod:`cloudshift.transfer.worker`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from cloudshift.core.checksums import common, mismatch
from cloudshift.core.errors import ConfigError, Interrupted, UsageError
from cloudshift.core.redact import describe
from cloudshift.core.uri import Location, parse
from cloudshift.jobs.events import Event, EventSink
from cloudshift.jobs.executor import Executor, ExecutorFactory, threads
from cloudshift.jobs.journal import job_folder
from cloudshift.storage.base import ObjectInfo, Store
from cloudshift.transfer.journal import DoneRecord, Journal, ObjectSpec, unstorable
from cloudshift.transfer.limits import Traffic
from cloudshift.transfer.listing import KeyFilter, SortedLookup, iter_pairs
from cloudshift.transfer.options import TransferOptions
from cloudshift.transfer.record import Recorder
from cloudshift.transfer.results import TransferResult
from cloudshift.transfer.worker import (
    Cancelled,
    CopyTask,
    Item,
    Outcome,
    StoreRef,
    Worker,
    WorkerConfig,
)

Action = Literal["copy", "check", "skip", "delete", "keep"]

# Between two local or in-memory stores an object takes ~0.2 ms to copy, about what handing
# it to a worker thread and back costs; such objects travel to workers in batches, to at
# most LOCAL_WORKERS threads. That work holds the GIL most of the time, and threads that
# create files in one folder at once also contend for its lock in the kernel: on ext4,
# 5,000 small files took 4.8 s on one worker, 6.2 s on two, 7.8 s on four, with system
# time growing from 1.9 s to 3.9 s. Two keep the listing and the journal overlapped with
# the copying.
BATCH_OBJECTS = 32
BATCH_BYTES = 4 << 20
LOCAL_WORKERS = 2
# After Ctrl-C, finished objects still get recorded; one stuck in a network call is not
# waited for longer than this: it is not recorded done, so the next run copies it again.
STOP_WAIT_S = 3.0


def check_overlap(src: Location, dst: Location) -> None:
    if src.scheme == "file" and dst.scheme == "file":
        src = replace(src, prefix=str(Path(src.prefix).resolve()))
        dst = replace(dst, prefix=str(Path(dst.prefix).resolve()))
    if dst.contains(src):
        raise UsageError(f"source {src} is the destination or inside it",
                         hint="choose a destination outside the source")
    if src.contains(dst):
        raise UsageError(f"destination {dst} is inside the source {src}",
                         hint="copying would copy its own output; choose a destination "
                              "outside the source")


def decide(src: ObjectInfo | None, dst: ObjectInfo | None, done: DoneRecord | None,
           src_store: Store, dst_store: Store, delete: bool) -> Action:
    """What to do with one key. ``check`` means: hash the side that is cheap to read, then
    copy only if it differs (done by a worker, not here)."""
    if src is None:
        return "delete" if delete else "keep"
    if dst is None or src.size != dst.size:
        return "copy"
    if common(src.checksums, dst.checksums):
        return "copy" if mismatch(src.checksums, dst.checksums) else "skip"
    if done is not None and done.matches(src, dst):
        return "skip"
    if src_store.features.cheap_read or dst_store.features.cheap_read:
        return "check"
    # Neither side has a comparable checksum nor is cheap to read: a destination written
    # after the source last changed is taken as current (documented in docs/integrity.md).
    if src.mtime is not None and dst.mtime is not None and dst.mtime >= src.mtime:
        return "skip"
    return "copy"


class Dispatcher:
    """Hands objects to the executor and keeps at most ``most`` of them in flight,
    recording what comes back while it waits.

    Between two cheap stores objects go in batches (up to BATCH_OBJECTS or BATCH_BYTES);
    otherwise, and for objects sent in parts, one by one."""

    def __init__(self, executor: Executor[list[Item], Outcome], recorder: Recorder,
                 batching: bool, part_size: int, most: int) -> None:
        self.executor, self.recorder = executor, recorder
        self.batching, self.part_size, self.most = batching, part_size, most
        self.inflight = 0
        self._batch: list[Item] = []
        self._batch_bytes = 0

    def send(self, item: Item, size: int) -> None:
        self.inflight += 1
        if self.batching and size <= self.part_size:
            self._batch.append(item)
            self._batch_bytes += size
            if len(self._batch) < BATCH_OBJECTS and self._batch_bytes < BATCH_BYTES:
                return
            self.flush()
        else:
            self.executor.submit([item])
        while self.inflight >= self.most:
            self.collect()

    def flush(self) -> None:
        """Send the batch being filled."""
        if self._batch:
            self.executor.submit(self._batch)
            self._batch, self._batch_bytes = [], 0

    def collect(self) -> None:
        """Wait a little for outcomes, record them and keep the journal current."""
        finished = self.executor.collect(Journal.COMMIT_EVERY_S)
        # Counted before they are recorded: an interrupt while recording must not leave
        # the count waiting for outcomes that already came back.
        self.inflight -= len(finished)
        self.recorder.record(finished)
        self.recorder.commit_if_due()

    def drop_unsent(self) -> None:
        """Forget the batch being filled (the run stops): nothing will come back for it."""
        self.inflight -= len(self._batch)
        self._batch, self._batch_bytes = [], 0

    def wait_all(self, deadline: float | None = None) -> None:
        """Record outcomes until nothing is in flight (or, given, until the deadline)."""
        while self.inflight and (deadline is None or time.monotonic() < deadline):
            self.collect()


class Engine:
    def __init__(self, spec: ObjectSpec, opts: TransferOptions, on_event: EventSink | None = None,
                 executors: ExecutorFactory[list[Item], Outcome] = threads) -> None:
        self.spec = spec
        self.opts = opts
        self._emit: EventSink = on_event or (lambda _e: None)
        self._executors = executors
        check_overlap(parse(spec.src), parse(spec.dst))
        self.config = WorkerConfig(
            src=StoreRef(spec.src, spec.src_endpoint, opts.timeout),
            dst=StoreRef(spec.dst, spec.dst_endpoint, opts.timeout),
            run=uuid.uuid4().hex, transfers=opts.transfers, part_size=opts.part_size,
            retries=opts.retries, dry_run=opts.dry_run, bwlimit=opts.bwlimit,
            max_rps=opts.max_rps)
        self.traffic = Traffic(opts.transfers, max_rps=opts.max_rps, bwlimit=opts.bwlimit)
        self.worker = Worker.open(self.config, self.traffic, self._emit)
        self.src, self.dst = self.worker.src, self.worker.dst
        self.keep = KeyFilter(spec.include, spec.exclude)

    # --- the job's steps ------------------------------------------------------------------
    def run(self) -> TransferResult:
        started = time.monotonic()
        self._check_both_sides()
        journal = self._open_journal()
        recorder = Recorder(self._new_result(journal),
                            None if self.opts.dry_run else journal, self._emit)
        if journal is not None and not self.opts.dry_run:
            try:
                self._start_run(journal)
            except BaseException:
                journal.close()
                raise
        dispatcher: Dispatcher | None = None
        try:
            dispatcher = self._dispatcher(recorder)
            self._march(journal, recorder, dispatcher)
            dispatcher.wait_all()
        except (KeyboardInterrupt, Cancelled):
            recorder.result.interrupted = True
            if dispatcher is not None:
                self._stop(dispatcher)
        except BaseException as exc:
            recorder.result.error = describe(exc)
            # Best effort: the run has failed already, and its own error is the one to tell.
            with contextlib.suppress(Exception):
                if dispatcher is not None:
                    self._stop(dispatcher)
            raise
        finally:
            self._finish(dispatcher, journal, recorder.result, started)
        if recorder.result.interrupted:
            raise Interrupted(f"interrupted after {recorder.result.copied} objects; the "
                              "journal is saved",
                              hint=f"run the same command again, or `cloudshift resume "
                                   f"{self.spec.job_id}`, to continue")
        return recorder.result

    def _check_both_sides(self) -> None:
        """Fail before anything moves if either root cannot be used."""
        self.src.check_source()
        self.dst.check()

    def _open_journal(self) -> Journal | None:
        if self.opts.dry_run:
            # A dry run changes nothing, not even the journal; it only reads an existing one.
            return Journal.existing(self.spec, self.opts.job_dir)
        try:
            return Journal.for_job(self.spec, self.opts.job_dir)
        except OSError as exc:
            folder = job_folder(self.spec, self.opts.job_dir)
            raise ConfigError(f"cannot create the job journal in '{folder}': {describe(exc)}",
                              hint="set CLOUDSHIFT_HOME or --job-dir to a writable folder"
                              ) from exc

    def _new_result(self, journal: Journal | None) -> TransferResult:
        return TransferResult(op=self.spec.op, src=self.src.uri, dst=self.dst.uri,
                              job_id=self.spec.job_id,
                              job_dir=str(journal.job_dir) if journal else None,
                              dry_run=self.opts.dry_run)

    def _start_run(self, journal: Journal) -> None:
        """Clean up what a killed run left, then record that this run started."""
        self._cleanup_interrupted(journal.interrupted_keys())
        journal.start_run()

    def _cleanup_interrupted(self, keys: list[str]) -> None:
        """A killed run cannot abort its multipart uploads or staged blocks; do it now."""
        if keys and self.dst.features.cleanup_incomplete:
            with contextlib.suppress(Exception):  # best effort; the copy does not need it
                self.dst.cleanup_incomplete(keys)

    def _dispatcher(self, recorder: Recorder) -> Dispatcher:
        batching = self.src.features.cheap_read and self.dst.features.cheap_read
        workers = min(self.opts.transfers, LOCAL_WORKERS) if batching else self.opts.transfers
        executor = self._executors(CopyTask(self.config, self.worker), workers)
        most = 2 * workers * (BATCH_OBJECTS if batching else 1)
        return Dispatcher(executor, recorder, batching, self.opts.part_size, most)

    def _march(self, journal: Journal | None, recorder: Recorder,
               dispatcher: Dispatcher) -> None:
        """Walk both listings joined by key, decide each key, send what needs work."""
        done = SortedLookup(journal.done_records() if journal else iter(()))
        delete = self.spec.delete   # read once: a spec reads its params by name
        result = recorder.result
        for key, s, d in iter_pairs(self.src, self.dst, self.keep):
            if s is not None:
                result.listed += 1
            action = decide(s, d, done.get(key), self.src, self.dst, delete)
            if action == "skip":
                recorder.skipped(key, s)
            elif action != "keep":
                self._plan(action, key, s, d, recorder, dispatcher)
        dispatcher.flush()
        self._emit(Event("listed", size=result.listed))

    def _plan(self, action: Literal["copy", "check", "delete"], key: str,
              s: ObjectInfo | None, d: ObjectInfo | None, recorder: Recorder,
              dispatcher: Dispatcher) -> None:
        """Count an object that needs work and send it; a dry run answers copies and
        deletions here, without a hop to a worker (nothing to read or write)."""
        refused = unstorable(key)
        if refused is not None:
            # Not copied: what the journal cannot name it cannot skip or resume either.
            recorder.refused(key, s, refused)
            return
        # Only what is sent in parts needs to be on record before it starts: after a kill,
        # the next run aborts the upload this one left open. A single-request object left
        # unfinished is simply copied again.
        recorder.planned(action, key, s, durable=action == "copy" and s is not None
                         and s.size > self.opts.part_size)
        if self.opts.dry_run and action != "check":
            recorder.record([Outcome("would-copy" if action == "copy" else "would-delete",
                                     s, key)])
            return
        dispatcher.send((action, key, s, d), s.size if s is not None else 0)

    def _stop(self, dispatcher: Dispatcher) -> None:
        """Ctrl-C or an error: ask the workers to stop, and record what finishes meanwhile
        (the outcomes already back included)."""
        dispatcher.executor.cancel()
        dispatcher.drop_unsent()
        dispatcher.wait_all(deadline=time.monotonic() + STOP_WAIT_S)

    def _finish(self, dispatcher: Dispatcher | None, journal: Journal | None,
                result: TransferResult, started: float) -> None:
        """Free the workers, make the destination durable, record the run: ``done``,
        ``failed`` (some objects failed, or the run itself; its summary says why) or
        ``interrupted``.

        Each step runs whatever the one before did: a destination that cannot be flushed
        or records that cannot be committed fail the run (their error in its summary, and
        raised once the run is on record, unless the run already failed or was
        interrupted), but never leave it ``running`` or the journal open."""
        stopped = result.interrupted or result.error is not None
        late: list[Exception] = []

        def step(do: Callable[[], object]) -> None:
            try:
                do()
            except Exception as exc:
                if result.error is None:
                    result.error = describe(exc)
                    late.append(exc)

        try:
            if dispatcher is not None:
                step(lambda: dispatcher.executor.shutdown(wait=not stopped))
            if self.dst.features.flush and not self.opts.dry_run:
                step(self.dst.flush)
            result.elapsed = time.monotonic() - started
            result.throttled = self.traffic.throttled
            result.lowest_concurrency = self.traffic.concurrency.lowest
            if journal is not None and not self.opts.dry_run:
                step(journal.commit)   # the last records, before the run's status is chosen
                status = ("interrupted" if result.interrupted
                          else "failed" if result.failures or result.error else "done")
                step(lambda: journal.finish_run(status, result.to_dict()))
        finally:
            if journal is not None:
                step(journal.close)
        if late and not result.interrupted:
            raise late[0]

def run(spec: ObjectSpec, opts: TransferOptions, on_event: EventSink | None = None,
        executors: ExecutorFactory[list[Item], Outcome] = threads) -> TransferResult:
    return Engine(spec, opts, on_event, executors).run()
