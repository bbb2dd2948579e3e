"""The typed Python API. The CLI is a thin shell over these functions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from cloudshift.core.errors import UsageError
from cloudshift.core.paths import jobs_root
from cloudshift.jobs.events import EventSink
from cloudshift.storage import open_store
from cloudshift.storage.base import DEFAULT_PART_SIZE, ObjectInfo
from cloudshift.transfer import engine
from cloudshift.transfer.journal import JobSpec, Journal
from cloudshift.transfer.listing import KeyFilter, filtered
from cloudshift.transfer.results import TransferResult, VerifyResult
from cloudshift.transfer.verify import VerifyOptions
from cloudshift.transfer.verify import verify as _verify

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest allowed multipart part


def ls(uri: str, *, endpoint: str | None = None, include: Sequence[str] = (),
       exclude: Sequence[str] = ()) -> Iterator[ObjectInfo]:
    """Every object under ``uri``, sorted by key, streamed."""
    store = open_store(uri, endpoint=endpoint)
    getattr(store, "check_source", store.check)()
    return filtered(store.list(), KeyFilter(include, exclude))


def _transfer(op: str, src: str, dst: str, *, delete: bool, transfers: int, part_size: int,
              include: Sequence[str], exclude: Sequence[str], dry_run: bool, retries: int,
              job_dir: str | Path | None, src_endpoint: str | None, dst_endpoint: str | None,
              on_event: EventSink | None, bwlimit: float | None = None,
              max_rps: float | None = None, timeout: float | None = None) -> TransferResult:
    if transfers < 1:
        raise UsageError(f"--transfers must be at least 1 (got {transfers})")
    if part_size < MIN_PART_SIZE:
        raise UsageError(f"--part-size must be at least 5 MiB (got {part_size} bytes)",
                         hint="S3 rejects smaller multipart parts")
    for name, value in (("--bwlimit", bwlimit), ("--max-rps", max_rps),
                        ("--timeout", timeout)):
        if value is not None and value <= 0:
            raise UsageError(f"{name} must be positive (got {value})")
    spec = JobSpec(op=op, src=src, dst=dst, delete=delete, include=tuple(include),
                   exclude=tuple(exclude), src_endpoint=src_endpoint, dst_endpoint=dst_endpoint)
    opts = engine.TransferOptions(transfers=transfers, part_size=part_size, retries=retries,
                                  dry_run=dry_run, bwlimit=bwlimit, max_rps=max_rps,
                                  timeout=timeout,
                                  job_dir=Path(job_dir) if job_dir is not None else None)
    return engine.run(spec, opts, on_event)


def copy(src: str, dst: str, *, transfers: int = 16, part_size: int = DEFAULT_PART_SIZE,
         include: Sequence[str] = (), exclude: Sequence[str] = (), dry_run: bool = False,
         retries: int = 3, job_dir: str | Path | None = None, src_endpoint: str | None = None,
         dst_endpoint: str | None = None, on_event: EventSink | None = None,
         bwlimit: float | None = None, max_rps: float | None = None,
         timeout: float | None = None) -> TransferResult:
    """Copy every object under ``src`` that is missing or different under ``dst``.

    Nothing in ``dst`` is deleted. Re-running the same call resumes from its journal.
    ``bwlimit`` caps bytes/s, ``max_rps`` HTTP requests/s, ``timeout`` each request (s).
    """
    return _transfer("copy", src, dst, delete=False, transfers=transfers, part_size=part_size,
                     include=include, exclude=exclude, dry_run=dry_run, retries=retries,
                     job_dir=job_dir, src_endpoint=src_endpoint, dst_endpoint=dst_endpoint,
                     on_event=on_event, bwlimit=bwlimit, max_rps=max_rps, timeout=timeout)


def sync(src: str, dst: str, *, delete: bool = False, transfers: int = 16,
         part_size: int = DEFAULT_PART_SIZE, include: Sequence[str] = (),
         exclude: Sequence[str] = (), dry_run: bool = False, retries: int = 3,
         job_dir: str | Path | None = None, src_endpoint: str | None = None,
         dst_endpoint: str | None = None, on_event: EventSink | None = None,
         bwlimit: float | None = None, max_rps: float | None = None,
         timeout: float | None = None) -> TransferResult:
    """Make ``dst`` match ``src``; with ``delete=True`` also remove what ``src`` lacks."""
    return _transfer("sync", src, dst, delete=delete, transfers=transfers, part_size=part_size,
                     include=include, exclude=exclude, dry_run=dry_run, retries=retries,
                     job_dir=job_dir, src_endpoint=src_endpoint, dst_endpoint=dst_endpoint,
                     on_event=on_event, bwlimit=bwlimit, max_rps=max_rps, timeout=timeout)


def verify(src: str, dst: str, *, download: bool = False, transfers: int = 16,
           include: Sequence[str] = (), exclude: Sequence[str] = (),
           src_endpoint: str | None = None, dst_endpoint: str | None = None,
           on_event: EventSink | None = None) -> VerifyResult:
    """Compare both sides object by object; see :mod:`cloudshift.transfer.verify` for the levels."""
    opts = VerifyOptions(download=download, transfers=transfers, include=tuple(include),
                         exclude=tuple(exclude), src_endpoint=src_endpoint,
                         dst_endpoint=dst_endpoint)
    return _verify(src, dst, opts, on_event)


def find_job(job: str) -> Journal:
    """Open a job's journal by id (as printed by copy/sync) or by folder."""
    folder = Path(job) if ("/" in job or Path(job).is_dir()) else jobs_root() / job
    path = folder / "journal.db"
    if not path.exists():
        raise UsageError(f"no job '{job}' (looked for {path})",
                         hint="`cloudshift jobs` lists the jobs on this machine")
    return Journal(path)


def resume(job: str, *, transfers: int = 16, part_size: int = DEFAULT_PART_SIZE,
           retries: int = 3, on_event: EventSink | None = None, bwlimit: float | None = None,
           max_rps: float | None = None, timeout: float | None = None) -> TransferResult:
    """Continue a copy or sync from its journal, skipping what it already finished."""
    journal = find_job(job)
    spec = journal.spec()
    folder = journal.job_dir
    journal.close()
    if spec is None:
        raise UsageError(f"job '{job}' has no recorded command; run the copy again instead")
    return _transfer(spec.op, spec.src, spec.dst, delete=spec.delete, transfers=transfers,
                     part_size=part_size, include=spec.include, exclude=spec.exclude,
                     dry_run=False, retries=retries, job_dir=folder,
                     src_endpoint=spec.src_endpoint, dst_endpoint=spec.dst_endpoint,
                     on_event=on_event, bwlimit=bwlimit, max_rps=max_rps, timeout=timeout)
