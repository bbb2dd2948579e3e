"""``cloudshift report JOB``: what the plan estimated next to what the copy actually did.

Actuals come from the job journal: bytes and objects from the ``done`` records, time from the
runs table (all runs, so a resumed job counts every attempt), and requests derived from the
copied objects' sizes with the same multipart rule the planner uses (the engine does not
count requests on the wire; the report says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudshift.core.errors import UsageError
from cloudshift.core.uri import parse
from cloudshift.cost.model import LIST_PAGE, writes_for
from cloudshift.cost.planner import PLAN_FILE, load_plan
from cloudshift.cost.prices import SCHEME_PROVIDER
from cloudshift.jobs.journal import JOURNAL_FILE, JobInfo, find_job, open_readonly, peek
from cloudshift.jobs.registry import JobRow
from cloudshift.storage.base import DEFAULT_PART_SIZE

COPY_KIND = "objects"  # the kind of job `cloudshift copy` records (transfer/journal.py)


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    estimated: float | None
    actual: float | None
    unit: str

    @property
    def ratio(self) -> float | None:
        if self.estimated in (None, 0) or self.actual is None:
            return None
        return self.actual / self.estimated

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "estimated": self.estimated, "actual": self.actual,
                "unit": self.unit,
                "actual_over_estimated": None if self.ratio is None else round(self.ratio, 4)}


@dataclass
class JobReport:
    job_id: str
    src: str
    dst: str
    status: str
    plan_option: str | None
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, metric: str) -> Row:
        return next(r for r in self.rows if r.metric == metric)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "report", "job_id": self.job_id, "src": self.src, "dst": self.dst,
                "status": self.status, "plan_option": self.plan_option,
                "rows": [r.to_dict() for r in self.rows], "notes": self.notes}


@dataclass(frozen=True)
class JobSummary:
    """What ``report`` shows of a job whose kind has no plan to compare with: its row of
    ``cloudshift jobs`` and its last run's summary record (None before any run ends)."""

    row: JobRow
    summary: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, info: JobInfo, row: JobRow) -> JobSummary:
        summary = info.last_run.get("summary") if info.last_run else None
        return cls(row, summary if isinstance(summary, Mapping) else None)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "report", "job_id": self.row.job_id, "kind": self.row.kind,
                "row": self.row.to_dict(),
                "summary": None if self.summary is None else dict(self.summary)}


def _actuals(path: Path) -> tuple[int, int, list[int], float, list[dict[str, Any]]]:
    import json

    db = open_readonly(path)
    try:
        sizes = [int(s or 0) for (s,) in db.execute(
            "SELECT size FROM objects WHERE state='done'")]
        runs = [(st, fin, summ) for st, fin, summ in db.execute(
            "SELECT started, finished, summary FROM runs ORDER BY id")]
    finally:
        db.close()
    elapsed = sum((fin - st) for st, fin, _ in runs if fin is not None)
    summaries = [json.loads(s) for _, _, s in runs if s]
    return len(sizes), sum(sizes), sizes, elapsed, summaries


def report(job: str, *, plan_file: str | Path | None = None,
           part_size: int = DEFAULT_PART_SIZE) -> JobReport:
    """Compare a finished copy job with its plan (saved by ``plan --save`` or given)."""
    info = peek(find_job(job))
    spec, last, folder = info.spec, info.last_run, info.folder
    if info.error is not None:
        raise UsageError(f"cannot read the journal of job '{job}': {info.error}")
    if spec is None:
        raise UsageError(f"job '{job}' has no recorded command")
    if spec.kind != COPY_KIND:
        raise UsageError(f"job '{job}' is a {spec.kind} job; report compares a plan with an "
                         "object copy", hint="give the id `cloudshift copy` printed")
    if last is None:
        raise UsageError(f"job '{job}' has not run yet", hint="run the copy first")
    src, dst = str(spec.params["src"]), str(spec.params["dst"])
    plan_path = Path(plan_file) if plan_file is not None else folder / PLAN_FILE
    if plan_file is None and not plan_path.exists():
        raise UsageError(f"no plan saved for job '{job}' (looked for {plan_path})",
                         hint="run `cloudshift plan SRC DST` with the same SRC, DST and "
                              "filters before the copy, or pass --plan FILE")
    est = load_plan(plan_path)
    objects, nbytes, sizes, elapsed, summaries = _actuals(folder / JOURNAL_FILE)
    listed = max((int(s.get("listed", 0)) for s in summaries), default=0)
    dst_provider = SCHEME_PROVIDER[parse(dst).scheme]
    writes = sum(writes_for(size, part_size, dst_provider) for size in sizes)
    best = next((o for o in est["options"] if o.get("best")), est["options"][0])
    wl = est["workload"]
    rep = JobReport(folder.name, src, dst, last["status"], best["name"])
    rep.rows = [
        Row("objects", wl["objects"], objects, "objects"),
        Row("bytes", wl["bytes"], nbytes, "bytes"),
        Row("GET requests", wl["objects"], objects, "requests"),
        Row("write requests", wl["write_requests"], writes, "requests"),
        Row("LIST requests", math.ceil(wl["src_listed"] / LIST_PAGE) or 1,
            math.ceil(listed / LIST_PAGE) or 1, "requests"),
        Row("time", best["time_s"], round(elapsed, 3), "seconds"),
    ]
    if src != est["src"] or dst != est["dst"]:
        rep.notes.append(f"the plan was made for {est['src']} -> {est['dst']}")
    rep.notes.append("requests are derived from the copied objects' sizes (part size "
                     f"{part_size} bytes), not counted on the wire")
    if last["status"] != "done":
        rep.notes.append(f"the last run ended '{last['status']}': actuals are partial")
    return rep
