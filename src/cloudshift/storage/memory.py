"""``mem://name/prefix``: an in-process store, for tests, demos and benchmarks.

Stores with the same name share their objects within one Python process. The store keeps its
own MD5 of every object, computed when it was stored, so reads can be checked against it.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cloudshift.core.checksums import hash_bytes, mismatch
from cloudshift.core.errors import IntegrityError, SourceChangedError
from cloudshift.core.uri import Location
from cloudshift.storage.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PART_SIZE,
    ByteStream,
    Features,
    ObjectInfo,
    ObjectMeta,
    Store,
)


@dataclass(slots=True)
class _Blob:
    data: bytes
    info: ObjectInfo


_BUCKETS: dict[str, dict[str, _Blob]] = {}
_LOCK = threading.Lock()


def reset(name: str | None = None) -> None:
    """Forget one memory store, or all of them."""
    with _LOCK:
        if name is None:
            _BUCKETS.clear()
        else:
            _BUCKETS.pop(name, None)


class MemoryStore(Store):
    features = Features(cheap_read=True, ranged_list=True, metadata=True)

    def __init__(self, loc: Location) -> None:
        self.uri = str(loc)
        self._prefix = loc.prefix
        with _LOCK:
            self._objects = _BUCKETS.setdefault(loc.bucket, {})

    def check(self) -> None:
        return None

    def list(self, start_after: str | None = None) -> Iterator[ObjectInfo]:
        with _LOCK:
            keys = sorted(k for k in self._objects if k.startswith(self._prefix))
        first = 0 if start_after is None else bisect.bisect_right(keys,
                                                                   self._prefix + start_after)
        for full in keys[first:]:
            blob = self._objects.get(full)
            if blob is not None:
                yield replace(blob.info, key=full[len(self._prefix):])

    def stat(self, key: str) -> ObjectInfo | None:
        blob = self._objects.get(self._prefix + key)
        return None if blob is None else replace(blob.info, key=key)

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        blob = self._objects.get(self._prefix + key)
        if blob is None:
            raise FileNotFoundError(key)
        view = memoryview(blob.data)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start:start + chunk_size])

    def write(self, key: str, stream: ByteStream, *, size: int, meta: ObjectMeta,
              checksums: Mapping[str, str], part_size: int = DEFAULT_PART_SIZE) -> ObjectInfo:
        parts = []
        while chunk := stream.read(part_size):
            parts.append(chunk)
        data = b"".join(parts)
        if len(data) != size:
            raise SourceChangedError(f"source delivered {len(data)} bytes, listed size was "
                                     f"{size}")
        stored = hash_bytes(data)
        bad = mismatch(stored, checksums)
        if bad is not None:
            raise IntegrityError(f"{bad} of the bytes received differs from the source's {bad}")
        info = ObjectInfo(key=key, size=len(data), mtime=datetime.now(UTC),
                          etag=stored["md5"], checksums={"md5": stored["md5"]}, meta=meta)
        with _LOCK:
            self._objects[self._prefix + key] = _Blob(data, info)
        return info

    def delete(self, key: str) -> None:
        with _LOCK:
            self._objects.pop(self._prefix + key, None)

    # Test and demo helper: store bytes directly.
    def put_bytes(self, key: str, data: bytes, meta: ObjectMeta | None = None) -> ObjectInfo:
        return self.write(key, ByteStream(iter([data])), size=len(data),
                          meta=meta or ObjectMeta(), checksums={})
