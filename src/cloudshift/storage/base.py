"""The small protocol every storage backend implements, and the types it speaks.

A backend is synchronous and thread-safe: the transfer engine runs many calls at once on a
thread pool. The official SDKs are synchronous (google-cloud-storage has no async client) and
release the GIL while waiting on sockets, so threads give the concurrency we need without an
async rewrite of each SDK (see docs/architecture.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
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
class Features:
    """What a backend can do beyond the verbs every store has, declared in one place.

    Each backend declares one record as its class attribute ``features``, so callers ask
    ``store.features.flush`` instead of probing for methods, and choose without knowing
    which backend it is. ``docs/backends/README.md`` lists every backend's record (a test
    keeps the two in step). Entries are of three sorts:

    * how the plain verbs behave (``cheap_read``, ``ranged_list``, ``metadata``);
    * optional verbs (:data:`FEATURE_VERBS`): :class:`Store` has a default for each (a no-op,
      or the plain verbs composed), so calling one is always safe; a backend declares the
      feature exactly when it overrides the default with its own (the conformance suite in
      tests/test_store_conformance.py checks both ways);
    * what the provider's API offers that no verb uses yet (``server_side_copy``,
      ``page_blobs``), declared now so planners can choose by it before the verbs arrive.
    """

    cheap_read: bool = False
    """Bytes can be read again for almost nothing (local disk, memory): verify hashes
    them, and the engine compares contents rather than trusting a modified time."""

    ranged_list: bool = False
    """``list(start_after=KEY)`` starts on the server at KEY (S3 StartAfter, GCS
    startOffset, a pruned directory walk), so a listing resumed or split by key ranges
    costs only what follows KEY. Without it the listing still honours ``start_after``,
    but reads everything before KEY to skip it."""

    metadata: bool = False
    """Content headers (type, encoding, disposition, cache control, language) and user
    metadata written with an object come back from :meth:`Store.stat`. Every backend keeps
    the modified time (``ObjectMeta.mtime``) either way."""

    open: bool = False
    """:meth:`Store.open` gets the object's info (with ``meta``) and its bytes from one
    request (S3 GetObject) instead of a stat and a read."""

    check_source: bool = False
    """:meth:`Store.check_source` is stricter than :meth:`Store.check`: a root that may
    be written to (it is created on the way) may still not be read from (local folders)."""

    flush: bool = False
    """:meth:`Store.flush` makes the writes so far durable; call it once at the end of a
    run (local disk: one sync instead of an fsync per file)."""

    cleanup_incomplete: bool = False
    """:meth:`Store.cleanup_incomplete` removes what a killed upload leaves behind,
    invisible and billed (S3 multipart uploads, Azure uncommitted blocks)."""

    limit_parts: bool = False
    """:meth:`Store.limit_parts_in_memory` bounds how many upload parts the store holds in
    memory at once across all objects (S3 multipart)."""

    server_side_copy: bool = False
    """The provider copies an object within itself without the bytes passing through the
    client: S3 CopyObject / UploadPartCopy, GCS rewrite, Azure Copy Blob From URL and Put
    Block From URL (which may also read from another provider's presigned URL). No verb
    yet: the petabyte issue (18) adds one."""

    page_blobs: bool = False
    """Azure page blobs: random-access 512-byte pages, the format of VM disks (VHD).
    No verb yet: the VM issue (16) adds one."""


# Optional verbs: the feature that declares each, and the :class:`Store` method a backend
# overrides when it declares it.
FEATURE_VERBS: Mapping[str, str] = {
    "open": "open",
    "check_source": "check_source",
    "flush": "flush",
    "cleanup_incomplete": "cleanup_incomplete",
    "limit_parts": "limit_parts_in_memory",
}


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
    """One bucket/container/directory root. All keys are relative to :attr:`uri`.

    Backends subclass this class: the six verbs without a body are required, the optional
    ones below them have defaults, and :attr:`features` says which ones a backend overrides
    (see :class:`Features`).
    """

    uri: str
    features: Features

    def check(self) -> None:
        """Raise ``ConfigError`` with one clear line when the root cannot be used (missing
        bucket, wrong credentials, unreachable endpoint). Cheap: one request at most."""

    def list(self, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under the root, recursively, sorted by key (code-point order),
        streamed page by page; with ``start_after``, only the keys after it (see
        :attr:`Features.ranged_list` for what that costs)."""

    def stat(self, key: str) -> ObjectInfo | None:
        """The object with its ``meta`` filled, or None when it does not exist."""

    def read(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """The object's bytes, streamed in chunks of at most ``chunk_size``;
        ``FileNotFoundError`` when it does not exist."""

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

    # -- optional verbs: defaults, overridden where :attr:`features` declares them -----------

    def open(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE
             ) -> tuple[ObjectInfo, Iterator[bytes]]:
        """The object's info (with ``meta``) and its bytes; ``FileNotFoundError`` when it
        does not exist. Default: :meth:`stat`, then :meth:`read`."""
        info = self.stat(key)
        if info is None:
            raise FileNotFoundError(f"'{key}' does not exist in {self.uri} (deleted after it "
                                    "was listed?)")
        return info, self.read(key, chunk_size)

    def check_source(self) -> None:
        """As :meth:`check`, for a root that is to be read from. Default: :meth:`check`."""
        self.check()

    def flush(self) -> None:
        """Make the writes so far durable. Default: nothing to do."""
        return None

    def cleanup_incomplete(self, keys: Iterable[str]) -> int:
        """After a killed run, remove what unfinished uploads of ``keys`` left behind;
        returns how many keys had some. Default: uploads leave nothing, 0."""
        return 0

    def limit_parts_in_memory(self, slots: int) -> None:
        """Hold at most ``slots`` upload parts in memory at once, across all objects (the
        engine passes its --transfers). Default: the store holds one part per write."""
        return None


def after(items: Iterable[ObjectInfo], start_after: str | None) -> Iterator[ObjectInfo]:
    """The items of a sorted listing whose keys come after ``start_after`` (all of them when
    it is None): how a backend without :attr:`Features.ranged_list` honours it."""
    if start_after is None:
        return iter(items)
    return itertools.dropwhile(lambda info: info.key <= start_after, items)


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
