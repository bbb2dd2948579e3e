"""Files cloudshift writes for people and for its next run (HTML reports, refreshed price
tables): whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cloudshift.core.errors import CloudshiftError, UsageError


def write_atomic(path: Path, text: str, *, error: type[CloudshiftError] = UsageError,
                 hint: str = "choose a writable path") -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder, renamed
    over ``path`` once complete, so a reader never sees half a page and a failed write leaves
    the old one. The file gets the mode a plain open() would give it; a failure is one line,
    an ``error`` with ``hint``.

    A symbolic link is followed (its target is replaced, the link stays); a path that exists
    and is not a regular file (a FIFO, /dev/stdout) is written in place, as a plain open()
    would, since renaming over it would replace the device or pipe with a file."""
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        _write_in_place(path, text, error, hint)
        return
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise error(f"cannot write {path}: {exc.strerror}", hint=hint) from None


def _write_in_place(path: Path, text: str, error: type[CloudshiftError], hint: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise error(f"cannot write {path}: {exc.strerror}", hint=hint) from None
