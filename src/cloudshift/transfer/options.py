"""How a copy or sync runs (not what it copies: that is the job's spec), checked once.

The same options come from ``cloudshift copy|sync``, the Python API and ``cloudshift resume``;
:func:`transfer_options` turns any of them into :class:`TransferOptions` or says, in one line,
which value is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cloudshift.core.errors import UsageError
from cloudshift.storage.base import DEFAULT_PART_SIZE

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest allowed multipart part


@dataclass(frozen=True, slots=True)
class TransferOptions:
    transfers: int = 16
    part_size: int = DEFAULT_PART_SIZE
    retries: int = 3
    dry_run: bool = False
    job_dir: Path | None = None
    bwlimit: float | None = None  # bytes per second, all transfers together
    max_rps: float | None = None  # HTTP requests per second to the cloud endpoints
    timeout: float | None = None  # per-request network timeout, seconds


def transfer_options(*, transfers: int = 16, part_size: int = DEFAULT_PART_SIZE,
                     retries: int = 3, dry_run: bool = False, job_dir: str | Path | None = None,
                     bwlimit: float | None = None, max_rps: float | None = None,
                     timeout: float | None = None) -> TransferOptions:
    """Options as a user gave them, checked: a bad value is a :class:`UsageError`."""
    if transfers < 1:
        raise UsageError(f"--transfers must be at least 1 (got {transfers})")
    if part_size < MIN_PART_SIZE:
        raise UsageError(f"--part-size must be at least 5 MiB (got {part_size} bytes)",
                         hint="S3 rejects smaller multipart parts")
    for name, value in (("--bwlimit", bwlimit), ("--max-rps", max_rps),
                        ("--timeout", timeout)):
        if value is not None and value <= 0:
            raise UsageError(f"{name} must be positive (got {value})")
    return TransferOptions(transfers=transfers, part_size=part_size, retries=retries,
                           dry_run=dry_run, bwlimit=bwlimit, max_rps=max_rps, timeout=timeout,
                           job_dir=Path(job_dir) if job_dir is not None else None)
