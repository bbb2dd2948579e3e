"""``file:///path`` and plain paths: a directory tree as an object store.

Writes go to a hidden temporary file in the target folder, are fsynced, then renamed into
place, so a crash never leaves a half-written object under its real name. Keys that cannot
be held safely under the root (``..``, absolute paths, empty segments, NUL, trailing ``/``)
are refused per object with :class:`UnsafeKeyError` rather than written somewhere else.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from cloudshift.errors import ConfigError, IntegrityError, SourceChangedError, UnsafeKeyError
from cloudshift.storage.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PART_SIZE,
    ByteStream,
    Capabilities,
    ObjectInfo,
    ObjectMeta,
)
from cloudshift.transfer.checksums import Hasher, mismatch
from cloudshift.uri import Location

TMP_PREFIX = ".cloudshift-partial-"
_NAME_MAX = 255  # bytes per path segment on Linux/macOS filesystems


def _safe_parts(key: str) -> list[str]:
    if key.endswith("/"):
        raise UnsafeKeyError(f"key '{key}' ends in '/' (a folder marker) and cannot be a file; "
                             "skipped")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafeKeyError(f"key '{key}' has an empty, '.' or '..' path segment and "
                                 "would escape or alias the destination root; refused")
        if "\x00" in part:
            raise UnsafeKeyError(f"key {key!r} contains a NUL byte, which no filesystem can hold")
        if len(os.fsencode(part)) > _NAME_MAX:
            raise UnsafeKeyError(f"key '{key[:60]}...' has a path segment longer than "
                                 f"{_NAME_MAX} bytes")
        if part.startswith(TMP_PREFIX):
            raise UnsafeKeyError(f"key '{key}' uses the reserved name prefix '{TMP_PREFIX}'")
    return parts


class LocalStore:
    capabilities = Capabilities(cheap_read=True)

    def __init__(self, loc: Location) -> None:
        self.root = Path(loc.prefix)
        self.uri = str(loc)

    def check(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"'{self.root}' is a file, not a folder",
                              hint="give the folder that holds the objects")

    def check_source(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(f"folder '{self.root}' does not exist",
                              hint="check the path, or create it first")

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_safe_parts(key))

    def list(self) -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        yield from self._walk(self.root, "")

    def _walk(self, folder: Path, prefix: str) -> Iterator[ObjectInfo]:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        # A folder's entries sort as "name/" so the whole walk yields keys in code-point order
        # ("a-b" < "a/c" because '-' < '/').
        tagged = []
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX):
                continue
            is_dir = entry.is_dir(follow_symlinks=True)
            tagged.append((entry.name + "/" if is_dir else entry.name, is_dir, entry))
        tagged.sort(key=lambda t: t[0])
        for name, is_dir, entry in tagged:
            if is_dir:
                yield from self._walk(Path(entry.path), prefix + name)
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                continue  # removed while we listed
            yield ObjectInfo(key=prefix + name, size=st.st_size,
                             mtime=datetime.fromtimestamp(st.st_mtime, tz=UTC))

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError, UnsafeKeyError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        mtime = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        return ObjectInfo(key=key, size=st.st_size, mtime=mtime, meta=ObjectMeta(mtime=mtime))

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def write(self, key: str, stream: ByteStream, *, size: int, meta: ObjectMeta,
              checksums: Mapping[str, str], part_size: int = DEFAULT_PART_SIZE) -> ObjectInfo:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise UnsafeKeyError(f"key '{key}' needs a folder where a file of the same name "
                                 "already exists") from exc
        tmp = path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex[:12]}")
        try:
            with open(tmp, "wb") as f:
                while chunk := stream.read(part_size):
                    f.write(chunk)
            if stream.bytes_read != size:
                raise SourceChangedError(f"source delivered {stream.bytes_read} bytes, "
                                         f"listed size was {size}")
            # Read back what the disk holds: the checksum we report is of the stored file,
            # not of the bytes we meant to write.
            stored = Hasher()
            with open(tmp, "rb") as f:
                while chunk := f.read(DEFAULT_CHUNK_SIZE):
                    stored.update(chunk)
            digests = stored.hexdigests()
            bad = mismatch(digests, checksums)
            if bad is not None:
                raise IntegrityError(f"{bad} of the written file differs from the source's")
            if meta.mtime is not None:
                ts = meta.mtime.timestamp()
                os.utime(tmp, (ts, ts))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        st = path.stat()
        return ObjectInfo(key=key, size=st.st_size,
                          mtime=datetime.fromtimestamp(st.st_mtime, tz=UTC),
                          checksums=digests)

    def flush(self) -> None:
        """Make the files written so far durable. Called at the end of a run instead of an
        fsync per file, which costs more than copying a small file: a process crash loses
        nothing either way (the page cache survives it); only a power loss in the window
        before this call could, and the journal would then re-copy (see docs/integrity.md)."""
        os.sync()

    def delete(self, key: str) -> None:
        try:
            path = self._path(key)
        except UnsafeKeyError:
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # Remove folders the delete left empty, up to (not including) the root.
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
