"""``--probe``: measure what this machine really achieves, by copying a small sample.

The sample goes to a scratch prefix under the destination and is removed afterwards. Two
rounds separate the two costs a copy pays: many small objects (per-object overhead: requests,
round trips, journal work) and a few large ones (bytes per second). The fit
``T = objects x seconds_per_object + bytes / bytes_per_s`` then re-estimates the whole move.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from cloudshift.core.errors import CloudshiftError, ConfigError
from cloudshift.core.redact import describe
from cloudshift.core.uri import Location, parse
from cloudshift.cost.model import MiB, ProbeRate
from cloudshift.storage import open_store
from cloudshift.storage.base import ByteStream, ObjectInfo, ObjectMeta, Store

SMALL_ROUND_OBJECTS = 64
SMALL_ROUND_CAP = 64 * 1024     # bytes taken from each object in the per-object round
LARGE_ROUND_BYTES = 64 * MiB    # bytes copied in the bandwidth round
SCRATCH = ".cloudshift-probe-"


def _head(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """The first ``limit`` bytes of an object: a probe never needs to copy a whole 1 TB file."""
    left = limit
    try:
        for chunk in chunks:
            if left <= 0:
                break
            yield chunk[:left]
            left -= len(chunk)
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()


def _copy_all(src: Store, dst: Store, jobs: Sequence[tuple[ObjectInfo, str, int]],
              transfers: int, part_size: int) -> float:
    def one(job: tuple[ObjectInfo, str, int]) -> None:
        info, key, size = job
        stream = ByteStream(_head(src.read(info.key), size))
        try:
            dst.write(key, stream, size=size, meta=ObjectMeta(), checksums={},
                      part_size=part_size)
        finally:
            stream.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=transfers, thread_name_prefix="cloudshift-probe") as ex:
        for fut in [ex.submit(one, j) for j in jobs]:
            fut.result()
    return time.perf_counter() - started


def _scratch(dst_uri: str) -> Location:
    loc = parse(dst_uri)
    name = f"{SCRATCH}{uuid.uuid4().hex[:8]}"
    if loc.scheme == "file":
        return replace(loc, prefix=loc.prefix.rstrip("/") + "/" + name)
    return replace(loc, prefix=f"{loc.prefix}{name}/")


def probe(src: Store, dst_uri: str, candidates: Sequence[ObjectInfo], *, transfers: int = 16,
          part_size: int = 16 * MiB, dst_endpoint: str | None = None) -> ProbeRate:
    """Copy a sample of ``candidates`` into a scratch prefix of ``dst_uri``, time it, remove it."""
    if not candidates:
        raise ConfigError("--probe has nothing to copy: no object under SRC needs to move")
    scratch = _scratch(dst_uri)
    dst = open_store(scratch, endpoint=dst_endpoint)
    by_size = sorted(candidates, key=lambda o: o.size)
    # Round A: many objects, few bytes each -> seconds per object.
    small = [(o, f"a/{i}", min(o.size, SMALL_ROUND_CAP))
             for i, o in enumerate(by_size[:SMALL_ROUND_OBJECTS])]
    # Round B: the largest objects (or their first bytes) up to a budget -> bytes per second.
    large: list[tuple[ObjectInfo, str, int]] = []
    budget = LARGE_ROUND_BYTES
    for i, o in enumerate(reversed(by_size)):
        if budget <= 0 or o.size == 0:
            break
        take = min(o.size, budget)
        large.append((o, f"b/{i}", take))
        budget -= take
    try:
        t_small = _copy_all(src, dst, small, transfers, part_size)
        t_large = _copy_all(src, dst, large, transfers, part_size) if large else 0.0
    except CloudshiftError:
        raise
    except Exception as exc:
        raise ConfigError(f"--probe could not copy its sample to {scratch}: {describe(exc)}",
                          hint="check write access to DST, or plan without --probe") from exc
    finally:
        for _, key, _ in [*small, *large]:
            with contextlib.suppress(Exception):
                dst.delete(key)
        if scratch.scheme == "file":
            shutil.rmtree(scratch.prefix, ignore_errors=True)
    per_object = t_small / len(small)
    large_bytes = sum(size for _, _, size in large)
    bytes_per_s: float | None = None
    if large_bytes >= MiB:
        rest = t_large - len(large) * per_object
        bytes_per_s = large_bytes / max(rest, 0.05 * t_large, 1e-6)
    sample_bytes = sum(size for _, _, size in small) + large_bytes
    return ProbeRate(per_object, bytes_per_s, len(small) + len(large), sample_bytes,
                     t_small + t_large, transfers)
