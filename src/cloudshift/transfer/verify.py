"""``verify``: compare source and destination object by object, and say how each was checked.

Levels: ``checksum`` (the same MD5/CRC32C on both sides, from what the stores report or from
hashing the bytes), ``size`` (sizes agree, no comparable checksum was available: rerun with
``download=True`` to hash the bytes), ``none`` (the object is missing on one side, or could not
be read). A store that is cheap to read (local disk, memory) is always hashed when needed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from cloudshift.core.checksums import common, mismatch
from cloudshift.core.redact import describe
from cloudshift.jobs.events import Event, EventSink
from cloudshift.storage import open_store
from cloudshift.storage.base import ObjectInfo, Store
from cloudshift.transfer.listing import KeyFilter, iter_pairs
from cloudshift.transfer.results import VerifiedObject, VerifyResult
from cloudshift.transfer.worker import hash_object


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    download: bool = False
    transfers: int = 16
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    src_endpoint: str | None = None
    dst_endpoint: str | None = None


def _compare_sums(key: str, a: Mapping[str, str], b: Mapping[str, str]) -> VerifiedObject:
    bad = mismatch(a, b)
    if bad is None:
        return VerifiedObject(key, "match", "checksum")
    return VerifiedObject(key, "mismatch", "checksum",
                          f"{bad} differs: source {a[bad]}, destination {b[bad]}")


class _Verifier:
    def __init__(self, src: Store, dst: Store, download: bool) -> None:
        self.src, self.dst, self.download = src, dst, download

    def _can_hash(self, store: Store) -> bool:
        return self.download or store.features.cheap_read

    def quick(self, key: str, s: ObjectInfo | None, d: ObjectInfo | None
              ) -> VerifiedObject | None:
        """The answer when the listings settle it; None when bytes must be hashed."""
        if d is None:
            return VerifiedObject(key, "missing", "none", "not in destination")
        if s is None:
            return VerifiedObject(key, "extra", "none", "only in destination")
        if s.size != d.size:
            return VerifiedObject(key, "mismatch", "size",
                                  f"size differs: source {s.size}, destination {d.size}")
        if common(s.checksums, d.checksums):
            return _compare_sums(key, s.checksums, d.checksums)
        if self._can_hash(self.src) or self._can_hash(self.dst):
            return None
        return VerifiedObject(key, "match", "size",
                              "no comparable checksum stored; use --download to hash the bytes")

    def deep(self, key: str, s: ObjectInfo, d: ObjectInfo) -> VerifiedObject:
        try:
            src_sums: Mapping[str, str] = s.checksums
            dst_sums: Mapping[str, str] = d.checksums
            # Hash the side that lacks a checksum; if neither has one, both (where allowed).
            if not src_sums and not dst_sums:
                if self._can_hash(self.src):
                    src_sums = hash_object(self.src, key)
                if self._can_hash(self.dst):
                    dst_sums = hash_object(self.dst, key)
            elif dst_sums and self._can_hash(self.src):
                src_sums = hash_object(self.src, key)
            elif src_sums and self._can_hash(self.dst):
                dst_sums = hash_object(self.dst, key)
            if common(src_sums, dst_sums):
                return _compare_sums(key, src_sums, dst_sums)
            return VerifiedObject(key, "match", "size",
                                  "no comparable checksum; use --download to hash the bytes")
        except Exception as exc:
            return VerifiedObject(key, "error", "none", describe(exc))


def verify(src_uri: str, dst_uri: str, opts: VerifyOptions | None = None,
           on_event: EventSink | None = None) -> VerifyResult:
    opts = opts or VerifyOptions()
    emit: EventSink = on_event or (lambda _e: None)
    started = time.monotonic()
    src = open_store(src_uri, endpoint=opts.src_endpoint)
    dst = open_store(dst_uri, endpoint=opts.dst_endpoint)
    src.check_source()
    dst.check()
    result = VerifyResult(src=src.uri, dst=dst.uri)
    checker = _Verifier(src, dst, opts.download)

    def record(obj: VerifiedObject) -> None:
        result.levels[obj.level] += 1
        if obj.status == "match":
            result.matched += 1
        else:
            {"missing": result.missing, "extra": result.extra, "mismatch": result.mismatched,
             "error": result.errors}[obj.status].append(obj)
        emit(Event("verified", obj.key, level=obj.level,
                   reason=None if obj.status == "match" else f"{obj.status}: {obj.detail}"))

    inflight: set[Future[VerifiedObject]] = set()
    with ThreadPoolExecutor(max_workers=opts.transfers, thread_name_prefix="verify") as pool:
        for key, s, d in iter_pairs(src, dst, KeyFilter(opts.include, opts.exclude)):
            answer = checker.quick(key, s, d)
            if answer is not None:
                record(answer)
                continue
            assert s is not None and d is not None
            inflight.add(pool.submit(checker.deep, key, s, d))
            if len(inflight) >= 2 * opts.transfers:
                finished, inflight = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    record(fut.result())
        for fut in inflight:
            record(fut.result())
    result.elapsed = time.monotonic() - started
    return result
