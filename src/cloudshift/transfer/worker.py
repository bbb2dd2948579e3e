"""The worker side of a copy: a batch of objects in, their outcomes out.

A worker streams each object from source to destination through a :class:`ByteStream` that
hashes every byte, then compares that hash with what the source stored and with what the
destination reports it stored. It never writes the journal: its outcomes go back to the
coordinating thread, which records them.

What a worker is given is plain data: a :class:`CopyTask` names its job's stores by
:class:`StoreRef` (location, endpoint, options; never a live client, never a credential) in a
:class:`WorkerConfig`, and its batches are object listings. Pickled into another process, a
task opens the stores there, once per process and run (:func:`worker_for`), from the
process's own credential chain; in the engine's process it runs on the stores the engine
opened itself.
"""

from __future__ import annotations

import contextlib
import mimetypes
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from cloudshift.core.checksums import Hasher, common, mismatch
from cloudshift.core.errors import (
    ConfigError,
    IntegrityError,
    SourceChangedError,
    UnsafeKeyError,
)
from cloudshift.core.redact import describe
from cloudshift.jobs.events import Event, EventSink
from cloudshift.storage import open_store
from cloudshift.storage.base import ByteStream, ObjectInfo, ObjectMeta, RequestObserver, Store
from cloudshift.transfer.limits import Traffic

# What a worker is asked to do with an object (the coordinator answers skip and keep).
WorkAction = Literal["copy", "check", "delete"]
Item = tuple[WorkAction, str, ObjectInfo | None, ObjectInfo | None]
OutcomeKind = Literal["copied", "skipped", "deleted", "failed", "would-copy", "would-delete",
                      "interrupted"]
# A batch of more than one object reports back every PARTIAL_EVERY objects, so progress and
# the journal do not wait for the whole batch.
PARTIAL_EVERY = 8


class Cancelled(BaseException):
    """Raised inside workers when the run is interrupted, so writers clean up and stop."""


@dataclass(frozen=True, slots=True)
class StoreRef:
    """A store by description, what any process needs to open it (its own credentials
    come from that process's standard chain)."""

    uri: str
    endpoint: str | None = None
    timeout: float | None = None  # per-request network timeout, seconds

    def open(self, observer: RequestObserver | None = None) -> Store:
        return open_store(self.uri, endpoint=self.endpoint, observer=observer,
                          timeout=self.timeout)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker knows of its job. ``run`` is unique per run: workers of one run share
    their stores and limits, never those of another run."""

    src: StoreRef
    dst: StoreRef
    run: str
    transfers: int = 16
    part_size: int = 16 * 1024 * 1024
    retries: int = 3
    dry_run: bool = False
    bwlimit: float | None = None
    max_rps: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    src: ObjectInfo | None
    key: str
    dst: ObjectInfo | None = None
    level: str | None = None
    checksums: Mapping[str, str] | None = None
    attempts: int = 1
    reason: str | None = None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, UnsafeKeyError | FileNotFoundError | PermissionError | ConfigError):
        return False
    return isinstance(exc, Exception)


def hash_object(store: Store, key: str) -> dict[str, str]:
    h = Hasher()
    for chunk in store.read(key):
        h.update(chunk)
    return h.hexdigests()


class Worker:
    """A run's stores, limits and options, as the threads of one process share them."""

    def __init__(self, config: WorkerConfig, src: Store, dst: Store, traffic: Traffic,
                 on_event: EventSink | None = None) -> None:
        self.config = config
        self.src, self.dst, self.traffic = src, dst, traffic
        self._emit: EventSink = on_event or (lambda _e: None)
        # Set when the run is interrupted: each worker stops at its next byte or wait.
        self.stopping = threading.Event()

    @classmethod
    def open(cls, config: WorkerConfig, traffic: Traffic | None = None,
             on_event: EventSink | None = None) -> Worker:
        """Open both stores from their descriptions, every request observed by ``traffic``
        (this run's limits; a new one from the config when not given)."""
        traffic = traffic or Traffic(config.transfers, max_rps=config.max_rps,
                                     bwlimit=config.bwlimit)
        src, dst = config.src.open(traffic), config.dst.open(traffic)
        if dst.features.limit_parts:
            dst.limit_parts_in_memory(config.transfers)
        return cls(config, src, dst, traffic, on_event)

    def cancel(self) -> None:
        self.stopping.set()

    # --- one batch ------------------------------------------------------------------------
    def run(self, batch: list[Item]) -> Iterator[list[Outcome]]:
        """An outcome for every object of the batch, whatever happens to it."""
        done: list[Outcome] = []
        for action, key, s, d in batch:
            try:
                done.append(self._work(action, key, s, d))
            except BaseException as exc:  # never lose track of an object, whatever happened
                done.append(Outcome("failed", s, key, reason=describe(exc)))
            if len(done) >= PARTIAL_EVERY and len(batch) > 1:
                yield done
                done = []
        yield done

    def _work(self, action: WorkAction, key: str, s: ObjectInfo | None, d: ObjectInfo | None
              ) -> Outcome:
        try:
            if action == "delete":
                return self._delete(key)
            assert s is not None
            if action == "check" and d is not None and self._same_bytes(s, d):
                return Outcome("skipped", s, key)
            if self.config.dry_run:
                return Outcome("would-copy", s, key)
            return self._copy_within_limits(s)
        except Cancelled:
            # Not a failure: the journal still has it in flight, so the next run copies it.
            return Outcome("interrupted", s, key)
        except FileNotFoundError:
            return Outcome("failed", s, key, reason="the source object no longer exists "
                                                    "(deleted after it was listed)")
        except Exception as exc:
            return Outcome("failed", s, key, reason=describe(exc))

    def _delete(self, key: str) -> Outcome:
        if self.config.dry_run:
            return Outcome("would-delete", None, key)
        self.dst.delete(key)
        return Outcome("deleted", None, key)

    def _copy_within_limits(self, s: ObjectInfo) -> Outcome:
        """Copy under the adaptive concurrency limit, telling it how the copy went."""
        gate = self.traffic.concurrency
        try:
            gate.acquire(self.stopping)
        except InterruptedError:
            return Outcome("interrupted", s, s.key)
        ok = False
        try:
            out = self._copy_with_retries(s)
            ok = True
            return out
        finally:
            gate.release(ok)

    def _same_bytes(self, s: ObjectInfo, d: ObjectInfo) -> bool:
        src_sums = s.checksums or hash_object(self.src, s.key)
        if not common(src_sums, d.checksums):
            if not self.dst.features.cheap_read:
                return False
            dst_sums = hash_object(self.dst, d.key)
        else:
            dst_sums = dict(d.checksums)
        return bool(common(src_sums, dst_sums)) and mismatch(src_sums, dst_sums) is None

    # --- copying, checked -----------------------------------------------------------------
    def _copy_with_retries(self, s: ObjectInfo) -> Outcome:
        current = s
        retries = self.config.retries

        def attempt() -> Outcome:
            nonlocal current
            try:
                return self._copy_once(current)
            except SourceChangedError:
                if retries > 1:
                    # The next attempt copies the object as it is now.
                    current = self.src.stat(s.key) or current
                raise

        # Most objects go through on the first try; only a failure pays for the retry
        # machinery, which then makes the remaining attempts.
        try:
            return attempt()
        except Exception as exc:
            if retries <= 1 or not _retryable(exc):
                raise
        # The backoff before the second attempt: 0.2 s plus jitter, doubling from there.
        if self.stopping.wait(0.2 + random.uniform(0, 0.5)):
            raise Cancelled
        retrying = Retrying(stop=stop_after_attempt(retries - 1),
                            wait=wait_exponential_jitter(multiplier=0.4, max=5.0,
                                                         jitter=0.5),
                            retry=retry_if_exception(_retryable), reraise=True)
        out: Outcome = retrying(attempt)
        return replace(out, attempts=1 + retrying.statistics.get("attempt_number", 1))

    def _copy_once(self, s: ObjectInfo) -> Outcome:
        meta, src_sums, chunks = self._open_source(s)
        stream = ByteStream(chunks, on_bytes=self._progress_callback())
        try:
            stored = self.dst.write(s.key, stream, size=s.size, meta=meta, checksums=src_sums,
                                    part_size=self.config.part_size)
        finally:
            stream.close()
        sent = self._check_copy(s, stream, src_sums, stored)
        level = "checksum" if common(sent, stored.checksums) else "size"
        return Outcome("copied", s, s.key, dst=stored, level=level, checksums=sent)

    def _check_copy(self, s: ObjectInfo, stream: ByteStream, src_sums: Mapping[str, str],
                    stored: ObjectInfo) -> dict[str, str]:
        """The bytes sent against the listing, the source's checksums and the destination's
        report; a destination object that fails is removed (never leave bad bytes as good).
        Returns the checksums of the bytes sent."""
        if stream.bytes_read != s.size:
            self._discard(s.key)
            raise SourceChangedError(f"source delivered {stream.bytes_read} bytes, listed size "
                                     f"was {s.size}")
        sent = stream.checksums()
        bad = mismatch(sent, src_sums)
        if bad is not None:
            self._discard(s.key)
            raise IntegrityError(f"{bad} of the bytes read ({sent[bad]}) differs from the "
                                 f"source's stored {bad} ({src_sums[bad]})")
        bad = mismatch(sent, stored.checksums)
        if bad is not None:
            self._discard(s.key)
            raise IntegrityError(f"destination stored {bad} {stored.checksums[bad]}, the bytes "
                                 f"sent have {sent[bad]}")
        if stored.size != s.size:
            self._discard(s.key)
            raise IntegrityError(f"destination stored {stored.size} bytes, expected {s.size}")
        return sent

    def _open_source(self, s: ObjectInfo
                     ) -> tuple[ObjectMeta, dict[str, str], Iterator[bytes]]:
        """The metadata to carry, every checksum the source knows, and the byte stream.

        Listings of GCS, Azure and memory carry the metadata; S3's does not, and its
        ``open`` gets it from the GET that also streams the bytes (no extra HEAD)."""
        sums = dict(s.checksums)
        meta = s.meta
        if meta is None and not self.src.features.cheap_read:
            full, chunks = self._open_with_meta(s)
            meta = full.meta
            sums.update(full.checksums)
        else:
            chunks = self.src.read(s.key)
        if meta is None:
            # A filesystem stores no content type: guess it from the name, as browsers and
            # web servers will expect one on the cloud side.
            meta = ObjectMeta(content_type=mimetypes.guess_type(s.key, strict=False)[0])
        if meta.mtime is None and s.mtime is not None:
            meta = replace(meta, mtime=s.mtime)
        return meta, sums, chunks

    def _open_with_meta(self, s: ObjectInfo) -> tuple[ObjectInfo, Iterator[bytes]]:
        """The object as it is now (with its metadata) and its bytes; the source changed
        since it was listed when they differ."""
        full, chunks = self.src.open(s.key)  # one request where features.open
        if full.size != s.size or (s.etag and full.etag and full.etag != s.etag):
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            raise SourceChangedError("source object changed after it was listed")
        return full, chunks

    def _discard(self, key: str) -> None:
        """Remove a destination object that failed its check: never leave bad bytes as good."""
        with contextlib.suppress(Exception):  # best effort: the failure is reported anyway
            self.dst.delete(key)

    def _progress_callback(self) -> Callable[[int], None]:
        emit, cancel, throttle = self._emit, self.stopping, self.traffic.on_bytes

        def on_bytes(n: int) -> None:
            if cancel.is_set():
                raise Cancelled
            throttle(n)
            emit(Event("bytes", size=n))

        return on_bytes


# Workers opened from a config in this process, by run; a few, since a process that serves
# runs one after another needs only the current ones.
_OPENED: OrderedDict[WorkerConfig, Worker] = OrderedDict()
_OPENED_MAX = 4
_OPENED_LOCK = threading.Lock()


def worker_for(config: WorkerConfig) -> Worker:
    """This process's worker for a run, opened from its config on first use."""
    with _OPENED_LOCK:
        worker = _OPENED.get(config)
        if worker is None:
            worker = _OPENED[config] = Worker.open(config)
            while len(_OPENED) > _OPENED_MAX:
                _OPENED.popitem(last=False)
        return worker


class CopyTask:
    """The copy's :class:`cloudshift.jobs.executor.Task`: a batch of objects -> outcomes.

    It pickles as its config alone; the engine's own process runs it on the engine's
    worker (its stores, its limits, its progress events), any other process on one opened
    there from the config."""

    def __init__(self, config: WorkerConfig, worker: Worker | None = None) -> None:
        self.config = config
        self._worker = worker

    def __reduce__(self) -> tuple[Any, ...]:
        return (CopyTask, (self.config,))

    def __call__(self, batch: list[Item]) -> Iterator[list[Outcome]]:
        worker = self._worker if self._worker is not None else worker_for(self.config)
        return worker.run(batch)

    def failed(self, batch: list[Item], reported: int, reason: str) -> list[Outcome]:
        """Outcomes for a batch that raised (its stores could not be opened here, say): a
        worker reports objects in batch order, so each one after the first ``reported``
        fails with ``reason``."""
        return [Outcome("failed", s, key, reason=reason) for _, key, s, _ in batch[reported:]]

    def cancel(self) -> None:
        worker = self._worker if self._worker is not None else _OPENED.get(self.config)
        if worker is not None:
            worker.cancel()
