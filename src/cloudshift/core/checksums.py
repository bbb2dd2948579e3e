"""Checksums computed while bytes stream past, and the rules for comparing them.

Checksums travel as ``{algorithm: lowercase hex}``. ``md5`` is 32 hex digits, ``crc32c`` is the
big-endian 32-bit value as 8 hex digits (the byte order GCS and S3 use before base64),
``sha256`` is 64 hex digits (an OCI image digest is ``"sha256:" + hex``).

Which algorithms a :class:`Hasher` computes is a parameter; the default, MD5 and CRC32C, is
what object stores report and what every object copy computes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

import google_crc32c


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


def _md5() -> _Digest:
    return hashlib.md5(usedforsecurity=False)


# Each algorithm's running digest; hex is always ``digest().hex()``.
_NEW: dict[str, Callable[[], _Digest]] = {
    "md5": _md5,
    "crc32c": google_crc32c.Checksum,
    "sha256": hashlib.sha256,
}
KNOWN = tuple(sorted(_NEW))
DEFAULT_ALGORITHMS = ("md5", "crc32c")
# The order in which two checksum sets are compared: strongest first.
ALGORITHMS = ("sha256", "md5", "crc32c")


class Hasher:
    """The checksums (``algorithms``: names, or one name; default MD5 and CRC32C) of
    everything passed to :meth:`update`, and its size.

    The default is what every object copy computes, one Hasher per object (ByteStream, the
    local store's read-back), so it has a path of its own: its two digests in slots, no
    validation, no dict until :meth:`hexdigests`. Measured with timeit (a Hasher, one 1 KiB
    update, the digests): 2.5 us, as when MD5 and CRC32C were all it computed; through the
    general path, 3.8-4.1 us.
    """

    __slots__ = ("_chosen", "_crc", "_md5", "_updates", "size")

    def __init__(self, algorithms: str | Iterable[str] = DEFAULT_ALGORITHMS) -> None:
        self.size = 0
        if algorithms is DEFAULT_ALGORITHMS or algorithms == DEFAULT_ALGORITHMS:
            self._md5 = hashlib.md5(usedforsecurity=False)
            self._crc = google_crc32c.Checksum()
            self._updates: tuple[Callable[[bytes], object], ...] | None = None
            return
        names = (algorithms,) if isinstance(algorithms, str) else tuple(algorithms)
        unknown = [a for a in names if a not in _NEW]
        if unknown:
            raise ValueError(f"unknown checksum algorithm {unknown[0]!r} "
                             f"(known: {', '.join(KNOWN)})")
        self._chosen = {name: _NEW[name]() for name in names}
        # Bound once: the object hot path calls update() per chunk.
        self._updates = tuple(d.update for d in self._chosen.values())

    def update(self, data: bytes | memoryview) -> None:
        updates = self._updates
        if updates is None:
            self._md5.update(data)
            self._crc.update(data)
        else:
            for update in updates:
                update(data)  # type: ignore[arg-type]  # hashlib takes any buffer; crc32c bytes
        self.size += len(data)

    def hexdigests(self) -> dict[str, str]:
        if self._updates is None:
            return {"md5": self._md5.hexdigest(), "crc32c": self._crc.digest().hex()}
        return {name: d.digest().hex() for name, d in self._chosen.items()}


def hash_bytes(data: bytes, algorithms: str | Iterable[str] = DEFAULT_ALGORITHMS
               ) -> dict[str, str]:
    h = Hasher(algorithms)
    h.update(data)
    return h.hexdigests()


def b64_to_hex(value: str | bytes | bytearray | None) -> str | None:
    """Providers report md5/crc32c as base64 (GCS, Azure, S3 checksums); we keep hex."""
    if value is None or value == "" or value == b"":
        return None
    raw = base64.b64decode(value) if isinstance(value, str) else bytes(value)
    return raw.hex()


def hex_to_b64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def common(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
    """Algorithms both sides know, strongest first."""
    return [alg for alg in ALGORITHMS if a.get(alg) and b.get(alg)]


def mismatch(a: Mapping[str, str], b: Mapping[str, str]) -> str | None:
    """The first algorithm on which two checksum sets disagree, or None when they agree."""
    for alg in common(a, b):
        if a[alg].lower() != b[alg].lower():
            return alg
    return None
