"""Checksums computed while bytes stream past, and the rules for comparing them.

Checksums travel as ``{algorithm: lowercase hex}``. ``md5`` is 32 hex digits, ``crc32c`` is the
big-endian 32-bit value as 8 hex digits (the byte order GCS and S3 use before base64).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

import google_crc32c

ALGORITHMS = ("md5", "crc32c")


class Hasher:
    """MD5 and CRC32C of everything passed to :meth:`update`."""

    __slots__ = ("_crc", "_md5", "size")

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._crc = google_crc32c.Checksum()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._md5.update(data)
        self._crc.update(data)
        self.size += len(data)

    def hexdigests(self) -> dict[str, str]:
        return {"md5": self._md5.hexdigest(), "crc32c": self._crc.digest().hex()}


def hash_bytes(data: bytes) -> dict[str, str]:
    h = Hasher()
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
