"""The typed Python API. The CLI is a thin shell over these functions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from cloudshift.jobs import journal as jobs_journal
from cloudshift.jobs.events import EventSink
from cloudshift.storage import open_store
from cloudshift.storage.base import DEFAULT_PART_SIZE, ObjectInfo
from cloudshift.transfer import engine, kind
from cloudshift.transfer.journal import Journal, object_spec
from cloudshift.transfer.listing import KeyFilter, filtered
from cloudshift.transfer.options import transfer_options
from cloudshift.transfer.results import TransferResult, VerifyResult
from cloudshift.transfer.verify import VerifyOptions
from cloudshift.transfer.verify import verify as _verify


def ls(uri: str, *, endpoint: str | None = None, include: Sequence[str] = (),
       exclude: Sequence[str] = ()) -> Iterator[ObjectInfo]:
    """Every object under ``uri``, sorted by key, streamed."""
    store = open_store(uri, endpoint=endpoint)
    store.check_source()
    return filtered(store.list(), KeyFilter(include, exclude))


def _transfer(op: str, src: str, dst: str, *, delete: bool, transfers: int, part_size: int,
              include: Sequence[str], exclude: Sequence[str], dry_run: bool, retries: int,
              job_dir: str | Path | None, src_endpoint: str | None, dst_endpoint: str | None,
              on_event: EventSink | None, bwlimit: float | None = None,
              max_rps: float | None = None, timeout: float | None = None) -> TransferResult:
    opts = transfer_options(transfers=transfers, part_size=part_size, retries=retries,
                            dry_run=dry_run, bwlimit=bwlimit, max_rps=max_rps, timeout=timeout,
                            job_dir=job_dir)
    spec = object_spec(op, src, dst, delete=delete, include=include, exclude=exclude,
                       src_endpoint=src_endpoint, dst_endpoint=dst_endpoint)
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
    return Journal(jobs_journal.find_job(job))


def resume(job: str, *, transfers: int = 16, part_size: int = DEFAULT_PART_SIZE,
           retries: int = 3, on_event: EventSink | None = None, bwlimit: float | None = None,
           max_rps: float | None = None, timeout: float | None = None) -> TransferResult:
    """Continue a copy or sync from its journal, skipping what it already finished."""
    info = jobs_journal.peek(jobs_journal.find_job(job))
    return kind.resume(info, {"transfers": transfers, "part_size": part_size,
                              "retries": retries, "bwlimit": bwlimit, "max_rps": max_rps,
                              "timeout": timeout}, on_event)
