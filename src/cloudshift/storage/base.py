"""The small protocol every storage backend implements, and the types it speaks.

A backend is synchronous and thread-safe: the transfer engine runs many calls at once on a
thread pool. The official SDKs are synchronous (google-cloud-storage has no async client) and
release the GIL while waiting on sockets, so threads give the concurrency we need without an
async rewrite of each SDK (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from cloudshift.core.checksums import Hasher

# Key under which a source's modified time rides along in user metadata (same name rclone
# uses on S3, so objects copied by either tool keep their time for the other).
MTIME_KEY = "mtime"

DEFAULT_PART_SIZE = 16 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What a copy carries besides the bytes; ``user`` keys are lower-case, provider-neutral."""

    content_type: str | None = None
    content_encoding: str | None = None
    content_disposition: str | None = None
    cache_control: str | None = None
    content_language: str | None = None
    user: Mapping[str, str] = field(default_factory=dict)
    mtime: datetime | None = None  # the modified time to preserve (timezone-aware UTC)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object as a listing or a write reports it.

    ``key`` is relative to the store's root prefix, '/'-separated. ``checksums`` holds only
    values the store itself reports or confirmed (never values we merely computed), as
    ``{"md5": hex, "crc32c": hex}``. ``meta`` is filled by :meth:`Store.stat`, and by listings
    that get it for free.
    """

    key: str
    size: int
    mtime: datetime | None = None
    etag: str | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)
    storage_class: str | None = None
    meta: ObjectMeta | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do, so the engine can choose without knowing which backend it is."""

    # Local disk and memory can re-read bytes for almost nothing, so verify hashes them.
    cheap_read: bool = False


class ByteStream:
    """A pull stream over an iterator of chunks, hashing every byte handed out.

    Writers call :meth:`read` with their part size and get exactly that many bytes until the
    end, or :meth:`readinto` to fill a buffer they own (no intermediate copy). Writers
    compare :attr:`bytes_read` with the listed size to catch a source that changed since.

    Bytes are copied once on their way through: a chunk is kept as it came (bytes are
    immutable) until a caller takes it, then copied into the caller's buffer, or into the
    ``bytes`` that :meth:`read` returns (a read of exactly one whole chunk returns the chunk).
    """

    def __init__(self, chunks: Iterator[bytes],
                 on_bytes: Callable[[int], None] | None = None) -> None:
        self._chunks = chunks
        self._rest = memoryview(b"")  # what is left of the current chunk
        self._eof = False
        self.hasher = Hasher()
        self._on_bytes = on_bytes

    def _take(self, limit: int) -> memoryview | bytes | None:
        """Up to ``limit`` bytes (all of the current chunk when ``limit < 0``), without
        copying; None at the end."""
        while not self._rest:
            if self._eof:
                return None
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._eof = True
                return None
            if not chunk:
                continue
            if not isinstance(chunk, bytes):
                # A mutable chunk (bytearray, memoryview) may be reused by its source once we
                # ask for the next one: keep a copy.
                chunk = bytes(chunk)
            if limit < 0 or len(chunk) <= limit:
                return chunk
            self._rest = memoryview(chunk)
        rest = self._rest
        if limit < 0 or len(rest) <= limit:
            self._rest = memoryview(b"")
            return rest
        self._rest = rest[limit:]
        return rest[:limit]

    def _handed_out(self, n: int) -> None:
        if n and self._on_bytes is not None:
            self._on_bytes(n)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when ``n < 0``); ``b""`` at the end. Fewer
        than ``n`` only at the end."""
        pieces: list[memoryview | bytes] = []
        got = 0
        while n < 0 or got < n:
            piece = self._take(-1 if n < 0 else n - got)
            if piece is None:
                break
            pieces.append(piece)
            got += len(piece)
        # Exactly one whole chunk goes on as it is; anything else is joined (one copy).
        first = pieces[0] if len(pieces) == 1 else None
        out = first if isinstance(first, bytes) else b"".join(pieces)
        del pieces
        if out:
            self.hasher.update(out)
            self._handed_out(got)
        return out

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` from the stream; returns how many bytes were written, fewer than
        ``len(buffer)`` only at the end (0 once the stream is exhausted)."""
        got = 0
        with memoryview(buffer) as whole, whole.cast("B") as view:
            size = len(view)
            while got < size:
                piece = self._take(size - got)
                if piece is None:
                    break
                end = got + len(piece)
                view[got:end] = piece
                # google-crc32c takes only bytes: hash the chunk itself (copying a slice of
                # one only where a chunk straddles the end of the buffer).
                self.hasher.update(piece if isinstance(piece, bytes) else bytes(piece))
                got = end
        self._handed_out(got)
        return got

    @property
    def bytes_read(self) -> int:
        return self.hasher.size

    def checksums(self) -> dict[str, str]:
        """Checksums of everything read so far (call after the writer read to the end)."""
        return self.hasher.hexdigests()

    def close(self) -> None:
        self._rest = memoryview(b"")
        close = getattr(self._chunks, "close", None)
        if callable(close):
            close()


class RequestObserver(Protocol):
    """Told about every HTTP request a cloud backend makes, so one run can limit its request
    rate and back off when the provider throttles. ``before_request`` may block."""

    def before_request(self) -> None: ...

    def after_response(self, status: int) -> None: ...


@runtime_checkable
class Store(Protocol):
    """One bucket/container/directory root. All keys are relative to :attr:`uri`."""

    uri: str
    capabilities: Capabilities

    def check(self) -> None:
        """Raise ``ConfigError`` with one clear line when the root cannot be used (missing
        bucket, wrong credentials, unreachable endpoint). Cheap: one request at most."""

    def list(self) -> Iterator[ObjectInfo]:
        """Every object under the root, recursively, sorted by key (code-point order),
        streamed page by page."""

    def stat(self, key: str) -> ObjectInfo | None:
        """The object with its ``meta`` filled, or None when it does not exist."""

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes, streamed in chunks of about ``chunk_size``."""

    def write(self, key: str, stream: ByteStream, *, size: int, meta: ObjectMeta,
              checksums: Mapping[str, str], part_size: int = DEFAULT_PART_SIZE) -> ObjectInfo:
        """Store ``size`` bytes read from ``stream`` under ``key``, atomically: a reader never
        sees a partial object, and a failed write leaves no partial object or parts behind.

        ``checksums`` are the source's own values known before the write; send them with the
        write where the API lets the server reject corrupt bytes. Objects up to
        ``part_size`` go in one request; larger ones in parts of ``part_size`` (memory held:
        one part). Returns what the destination stored; its ``checksums`` are only values
        the destination reported or verified itself for these bytes.
        """

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    # Optional: ``open(key, chunk_size) -> (ObjectInfo with meta, Iterator[bytes])`` for
    # backends whose listing lacks metadata but whose read response carries it (S3). The
    # engine uses it when present to save a metadata request per object.


def mtime_to_str(mtime: datetime) -> str:
    """How a preserved modified time is written into user metadata: Unix seconds."""
    return f"{mtime.timestamp():.9f}".rstrip("0").rstrip(".")


def mtime_from_str(value: str | None) -> datetime | None:
    """Parse :func:`mtime_to_str` output (also RFC 3339); None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def split_user_meta(user: Mapping[str, str]) -> tuple[dict[str, str], datetime | None]:
    """Separate the preserved mtime from the rest of a provider's user metadata."""
    rest = {k.lower(): v for k, v in user.items()}
    return rest, mtime_from_str(rest.pop(MTIME_KEY, None))


def user_meta_for_write(meta: ObjectMeta) -> dict[str, str]:
    """User metadata to send, with the mtime to preserve folded in."""
    out = {k.lower(): v for k, v in meta.user.items()}
    if meta.mtime is not None:
        out[MTIME_KEY] = mtime_to_str(meta.mtime)
    return out
