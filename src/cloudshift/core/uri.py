"""Parse the URIs users type into a :class:`Location`.

``s3://bucket/prefix``, ``gs://bucket/prefix``, ``az://container/prefix``, ``mem://name/prefix``,
``file:///abs/path`` or a plain path. A non-empty prefix names a folder: ``s3://b/photos`` and
``s3://b/photos/`` both mean every key that starts with ``photos/``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote

from cloudshift.core.errors import UsageError

SCHEMES = ("file", "mem", "s3", "gs", "az")
_ALIASES = {"gcs": "gs", "azure": "az", "azblob": "az", "memory": "mem"}

_BUCKET_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "s3": (re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"),
           "3-63 characters: lower-case letters, digits, dots and hyphens"),
    "gs": (re.compile(r"^[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9]$"),
           "3-63 characters: lower-case letters, digits, dots, hyphens and underscores"),
    "az": (re.compile(r"^(?!.*--)[a-z0-9][a-z0-9\-]{1,61}[a-z0-9]$"),
           "3-63 characters: lower-case letters, digits and single hyphens"),
    "mem": (re.compile(r"^[A-Za-z0-9._\-]+$"), "letters, digits, dots, hyphens, underscores"),
}


@dataclass(frozen=True, slots=True)
class Location:
    scheme: str
    bucket: str  # bucket, container or memory-store name; "" for file
    prefix: str  # "" or ending in "/"; for file, the absolute root path

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.prefix}"
        return f"{self.scheme}://{self.bucket}/{self.prefix}"

    def contains(self, other: Location) -> bool:
        """True when ``other`` is this location or lies inside it."""
        if self.scheme != other.scheme or self.bucket != other.bucket:
            return False
        if self.scheme == "file":
            mine = self.prefix.rstrip("/") + "/"
            theirs = other.prefix.rstrip("/") + "/"
            return theirs.startswith(mine)
        return other.prefix.startswith(self.prefix)


def parse(uri: str) -> Location:
    """Parse ``uri``; raise :class:`UsageError` with a one-line reason when it is malformed."""
    if not uri or not uri.strip():
        raise UsageError("empty location", hint="give a path or a URI such as s3://bucket/prefix")
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", uri)
    if m is None:
        return Location("file", "", _abs_path(uri))
    scheme = _ALIASES.get(m.group(1).lower(), m.group(1).lower())
    rest = m.group(2)
    if scheme not in SCHEMES:
        raise UsageError(f"unsupported URI scheme '{m.group(1)}://' in '{uri}'",
                         hint="use one of s3://, gs://, az://, mem://, file:// or a plain path")
    if scheme == "file":
        if rest.startswith("localhost/"):
            rest = rest[len("localhost"):]
        if not rest.startswith("/"):
            raise UsageError(f"file URI '{uri}' must hold an absolute path",
                             hint="write file:///abs/path, or give a plain relative path")
        return Location("file", "", _abs_path(unquote(rest)))
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError(f"'{uri}' names no bucket", hint=f"write {scheme}://BUCKET/optional/prefix")
    rule, words = _BUCKET_RULES[scheme]
    if not rule.match(bucket):
        kind = "container" if scheme == "az" else "bucket"
        raise UsageError(f"'{bucket}' is not a valid {kind} name in '{uri}'", hint=words)
    prefix = prefix.lstrip("/")
    if "//" in prefix:
        raise UsageError(f"'{uri}' has an empty path segment ('//')")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return Location(scheme, bucket, prefix)


def _abs_path(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))
