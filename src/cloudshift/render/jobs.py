"""``cloudshift jobs``: one line (or JSON record) per job, whatever its kind (its HTML page:
:mod:`cloudshift.render.jobs_html`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from cloudshift.jobs.registry import JobRow
from cloudshift.render.jsonl import write_json


def job_line(row: JobRow, width: int = 0) -> str:
    """``JOB  KIND OP STATUS PROGRESS  SRC -> DST``, the id padded to ``width``."""
    if row.reason:
        return f"{row.job_id:<{width}}  {row.status}: {row.reason}"
    progress = progress_text(row)
    return (f"{row.job_id:<{width}}  {row.kind:<7} {row.op:<7} {row.status:<11} {progress}  "
            f"{row.src} -> {row.dst}")


def progress_text(row: JobRow) -> str:
    """A job's own counters, ``3 done, 1 failed``, or ``-`` when it has none."""
    return ", ".join(f"{n} {state}" for state, n in row.progress.items()) or "-"


def print_jobs(rows: Sequence[JobRow], json_out: bool, root: Path,
               out: TextIO | None = None, err: TextIO | None = None) -> None:
    out = out or sys.stdout
    width = max((len(row.job_id) for row in rows), default=0)
    for row in rows:
        if json_out:
            record = row.to_dict()
            if row.kind == "objects":  # cloudshift 0.1's key for the same counters
                record["objects"] = record["progress"]
            write_json(record, out)
        else:
            out.write(job_line(row, width) + "\n")
    if not rows and not json_out:
        (err or sys.stderr).write(f"no jobs under {root}\n")
