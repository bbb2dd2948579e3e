"""``file:///path`` and plain paths: a directory tree as an object store.

Writes go to a hidden temporary file in the target folder, are read back and hashed, then
renamed into place, so a crash never leaves a half-written object under its real name.
Small files are the common case and cost mostly system calls, so the hot paths use file
descriptors directly (one ``open`` each, no buffered-IO wrappers) and remember the folders
they created. Keys that cannot
be held safely under the root (``..``, absolute paths, empty segments, NUL, trailing ``/``)
are refused per object with :class:`UnsafeKeyError` rather than written somewhere else.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import stat
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


_OPEN_NEW = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_OPEN_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


class LocalStore:
    capabilities = Capabilities(cheap_read=True)

    def __init__(self, loc: Location) -> None:
        self.root = Path(loc.prefix)
        self._root = str(self.root)
        self.uri = str(loc)
        self._made: set[str] = set()   # folders known to exist (created or found)
        # Temporary names: unique within this process by the counter, across processes by
        # the token; O_EXCL catches the rest.
        self._tmp_token = f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-"
        self._tmp_seq = itertools.count()

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

    def _file(self, key: str) -> str:
        return os.path.join(self._root, *_safe_parts(key))

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
            st = os.stat(self._file(key))
        except (FileNotFoundError, NotADirectoryError, UnsafeKeyError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        mtime = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        return ObjectInfo(key=key, size=st.st_size, mtime=mtime, meta=ObjectMeta(mtime=mtime))

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        fd = os.open(self._file(key), _OPEN_READ)
        try:
            while chunk := os.read(fd, chunk_size):
                yield chunk
        finally:
            os.close(fd)

    def _folder(self, path: str, key: str) -> str:
        folder = os.path.dirname(path)
        if folder not in self._made:
            try:
                os.makedirs(folder, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise UnsafeKeyError(f"key '{key}' needs a folder where a file of the same "
                                     "name already exists") from exc
            self._made.add(folder)
        return folder

    def write(self, key: str, stream: ByteStream, *, size: int, meta: ObjectMeta,
              checksums: Mapping[str, str], part_size: int = DEFAULT_PART_SIZE) -> ObjectInfo:
        path = self._file(key)
        folder = self._folder(path, key)
        while True:
            tmp = os.path.join(folder, f"{self._tmp_token}{next(self._tmp_seq)}")
            try:
                fd = os.open(tmp, _OPEN_NEW, 0o666)
                break
            except FileExistsError:
                continue
            except FileNotFoundError:
                # The folder was removed since we made it (a delete pruned it): make it again.
                self._made.discard(folder)
                self._folder(path, key)
        try:
            try:
                while chunk := stream.read(part_size):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                if stream.bytes_read != size:
                    raise SourceChangedError(f"source delivered {stream.bytes_read} bytes, "
                                             f"listed size was {size}")
                # Read back what the file holds: the checksum we report is of the stored
                # file, not of the bytes we meant to write.
                # Asking for one byte more than was written ends a small file in one call.
                stored = Hasher()
                offset = 0
                while True:
                    want = min(DEFAULT_CHUNK_SIZE, size - offset + 1)
                    chunk = os.pread(fd, want, offset)
                    stored.update(chunk)
                    offset += len(chunk)
                    if len(chunk) < want:
                        break
                digests = stored.hexdigests()
                bad = mismatch(digests, checksums)
                if bad is not None:
                    raise IntegrityError(f"{bad} of the written file differs from the source's")
                if meta.mtime is not None:
                    ts = meta.mtime.timestamp()
                    os.utime(fd, (ts, ts))
                st = os.fstat(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, OSError) and exc.errno in (errno.EISDIR, errno.ENOTEMPTY):
                raise UnsafeKeyError(f"key '{key}' names a folder that already exists at the "
                                     "destination") from exc
            raise
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
            self._made.discard(str(parent))
            parent = parent.parent
