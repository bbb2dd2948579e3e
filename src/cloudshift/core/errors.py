"""User-facing errors: each carries a one-line message and the exit code the CLI returns."""

from __future__ import annotations


class CloudshiftError(Exception):
    """Base of every error meant for the user. ``str(err)`` is the one line we print."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message} ({hint})")


class UsageError(CloudshiftError):
    """Bad arguments: a malformed URI, conflicting options, SRC inside DST."""


class ConfigError(CloudshiftError):
    """The environment is wrong: missing bucket, bad credentials, unreachable endpoint."""


class ObjectError(CloudshiftError):
    """One object could not be transferred; the run goes on and exits 1 at the end."""

    exit_code = 1


class IntegrityError(ObjectError):
    """Checksums disagree: the bytes read or written are not the bytes of the source."""


class SourceChangedError(ObjectError):
    """The source object changed (size or etag) between listing and reading."""


class UnsafeKeyError(ObjectError):
    """A key that cannot be stored safely under a filesystem root (``..``, absolute, NUL...)."""


class Interrupted(CloudshiftError):
    """Stopped by a signal; the job can be resumed."""

    exit_code = 130
