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
    """The checksums (``algorithms``, default MD5 and CRC32C) of everything passed to
    :meth:`update`, and its size."""

    __slots__ = ("_digests", "_updates", "size")

    def __init__(self, algorithms: Iterable[str] = DEFAULT_ALGORITHMS) -> None:
        names = tuple(algorithms)
        unknown = [a for a in names if a not in _NEW]
        if unknown:
            raise ValueError(f"unknown checksum algorithm {unknown[0]!r} "
                             f"(known: {', '.join(KNOWN)})")
        self._digests = {name: _NEW[name]() for name in names}
        # Bound once: the object hot path calls update() per chunk.
        self._updates = tuple(d.update for d in self._digests.values())
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        for update in self._updates:
            update(data)  # type: ignore[arg-type]  # hashlib takes any buffer; crc32c bytes
        self.size += len(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: d.digest().hex() for name, d in self._digests.items()}


def hash_bytes(data: bytes, algorithms: Iterable[str] = DEFAULT_ALGORITHMS) -> dict[str, str]:
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
