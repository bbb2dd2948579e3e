"""``cloudshift plan``, ``report`` and ``prices``: the plan, the estimate-vs-actual report and
the price sources as a person reads them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from cloudshift.core.units import human_bytes, human_time, money_usd
from cloudshift.cost.model import SIZE_BUCKETS, Line, Term
from cloudshift.render.jsonl import json_line

if TYPE_CHECKING:  # `prices show` renders without loading the planner's listing machinery
    from cloudshift.catalog.sources import Source
    from cloudshift.catalog.update import UpdateResult
    from cloudshift.cost.planner import Plan, RunningCost, TransferOption
    from cloudshift.cost.report import JobReport, JobSummary


def _line(line: Line) -> str:
    if line.price is None:
        return f"      {line.what}: {line.usd:,.4f} USD"
    p = line.price
    qty = f"{line.quantity:,.0f}" if line.quantity >= 100 else f"{line.quantity:,.4g}"
    return (f"      {line.what}: {qty} {line.unit} x {p.value:g} {p.unit} = "
            f"{line.usd:,.4f} USD  [{p.cite()}]")


def _term(term: Term, label: str) -> list[str]:
    out = [f"  {term.name} {label}: {money_usd(term.usd)}"]
    out += [_line(x) for x in term.lines] or ["      (none)"]
    return out


def render_plan(p: Plan) -> str:
    out = _what_moves(p)
    out.append("")
    out += _best_option(p.best)
    out.append("")
    out += _options_table(p)
    out.append("")
    out += _afterwards(p)
    return "\n".join(out)


def _what_moves(p: Plan) -> list[str]:
    wl = p.workload
    out = [f"plan: {p.src} -> {p.dst}  ({p.src_region} -> {p.dst_region}, "
           f"into {p.dst_class})"]
    out.append(f"to move: {wl.objects:,} objects, {human_bytes(wl.bytes)} "
               f"({wl.src_listed:,} listed under SRC, {wl.skipped:,} already identical "
               f"at DST)")
    if p.sampled:
        out.append(f"sampled: first {p.sampled['listed']:,} objects listed; scale "
                   f"x{p.sampled['factor']:g}")
    hist = [f"{label}: {c:,}" for (_, label), (c, _) in zip(SIZE_BUCKETS, wl.histogram,
                                                           strict=True) if c]
    if hist:
        out.append("sizes: " + ", ".join(hist))
    if wl.by_class:
        out.append("storage classes: " + ", ".join(
            f"{k} {v.objects:,} objects ({human_bytes(v.bytes)})"
            for k, v in sorted(wl.by_class.items())))
    for rs in p.restores:
        out.append(f"restore first: {rs.storage_class}: {rs.objects:,} objects, "
                   f"{human_bytes(rs.bytes)}, about {rs.hours:g} h, {money_usd(rs.usd)}")
    return out


def _best_option(b: TransferOption) -> list[str]:
    gbu = f", {b.gb_per_usd:,.1f} GB per USD" if b.gb_per_usd else ""
    out = [f"best: {b.name}: {money_usd(b.total_usd)}, {human_time(b.time_s)} "
           f"({human_bytes(b.timing.bytes_per_s)}/s{gbu})"]
    out += _term(b.c_s, "service and request fees")
    out += _term(b.c_d, "data transfer")
    out += _term(b.c_v, "worker machines")
    t = b.timing
    out.append(f"  T: {human_time(t.total_seconds)} = transfer {human_time(t.seconds)}"
               + (f" + restore wait {human_time(t.restore_seconds)}" if t.restore_seconds
                  else "") + f"; bound by {t.bottleneck}")
    for price in t.inputs:
        out.append(f"      {price.key}: {price.value:g} {price.unit}  [{price.cite()}]")
    return out


def _options_table(p: Plan) -> list[str]:
    out = ["options (* best, P Pareto-optimal cost vs time, - misses --deadline/--budget):",
           f"      {'cost USD':>12} {'time':>10} {'GB/USD':>8}  option"]
    # Small moves cost fractions of a cent per option; six decimals keep them apart.
    digits = 2 if max(o.total_usd for o in p.options) >= 10 else 6
    for o in sorted(p.options, key=lambda o: (o.total_usd, o.time_s)):
        mark = ("*" if o.best else " ") + ("P" if o.pareto else " ") + (" " if o.meets else "-")
        gpu = f"{o.gb_per_usd:8.1f}" if o.gb_per_usd else f"{'-':>8}"
        out.append(f"  {mark} {o.total_usd:12,.{digits}f} {human_time(o.time_s):>10} {gpu}  "
                   f"{o.name}")
    return out


def _afterwards(p: Plan) -> list[str]:
    out = [_storage_afterwards(p.running)]
    if p.running.note:
        out.append(f"  note: {p.running.note}")
    if p.probe:
        pr = p.probe
        bw = f", {human_bytes(pr.bytes_per_s)}/s" if pr.bytes_per_s else ""
        out.append(f"probe: copied {pr.objects} sample objects ({human_bytes(pr.bytes)}) in "
                   f"{pr.elapsed:.2f} s with {pr.transfers} transfers: "
                   f"{pr.seconds_per_object * 1000:.2f} ms/object{bw}; scratch removed")
    for w in p.warnings:
        out.append(f"note: {w}")
    if p.job_id and p.saved_to:
        out.append(f"estimate saved; after `cloudshift copy {p.src} {p.dst}` compare with: "
                   f"cloudshift report {p.job_id}")
    return out


def _storage_afterwards(r: RunningCost) -> str:
    saving = r.src_usd_month - r.dst_usd_month
    line = (f"storage afterwards: {money_usd(r.dst_usd_month)}/month at DST vs "
            f"{money_usd(r.src_usd_month)}/month at SRC")
    if r.payback_months is not None:
        return line + (f"; saves {money_usd(saving)}/month, pays back in "
                       f"{r.payback_months:.1f} months")
    return line + "; the move does not pay for itself in storage"


def render_report(rep: JobReport) -> str:
    out = [f"report: {rep.job_id} ({rep.status}) {rep.src} -> {rep.dst}",
           f"estimate: {rep.plan_option}",
           f"  {'':16} {'estimated':>16} {'actual':>16} {'actual/est':>10}"]
    for r in rep.rows:
        ratio = f"{r.ratio:10.2f}" if r.ratio is not None else f"{'-':>10}"
        if r.unit == "bytes":
            e = human_bytes(r.estimated or 0)
            a = human_bytes(r.actual or 0)
        elif r.unit == "seconds":
            e, a = human_time(r.estimated or 0), human_time(r.actual or 0)
        else:
            e, a = f"{r.estimated or 0:,.0f}", f"{r.actual or 0:,.0f}"
        out.append(f"  {r.metric:16} {e:>16} {a:>16} {ratio}")
    out += [f"note: {n}" for n in rep.notes]
    return "\n".join(out)


def render_job_summary(js: JobSummary) -> str:
    """``report`` of a job whose kind has no plan to compare with: its line of ``cloudshift
    jobs``, then each scalar figure of its last run's summary as ``name: value``, read as
    the jobs page reads them (a size or a duration also in words)."""
    from cloudshift.render.jobs import job_line
    from cloudshift.render.jobs_html import figures

    out = [job_line(js.row)]
    if js.summary is None:
        return "\n".join([*out, "no run of this job has recorded a summary yet"])
    out.append("last run:")
    out += [f"  {f.name}: {f.value}" + (f" ({f.readable})" if f.readable else "")
            for f in figures(js.summary)]
    return "\n".join(out)


def render_price_update(res: UpdateResult) -> str:
    out = [f"updated {len(res.rows)} price rows in {res.path}"]
    for row in res.rows:
        vals = ", ".join(f"{k}={row[k]}" for k in ("gb_month", "write_1k", "read_1k",
                                                   "retrieval_gb") if row.get(k))
        out.append(f"  {row['region']} {row['storage_class']}: {vals} "
                   f"({row.get('source_title', row.get('source'))}, {row.get('as_of')})")
    return "\n".join(out)


def render_update_skipped(res: UpdateResult) -> list[str]:
    """What the update could not refresh, one line each (for stderr)."""
    return [f"skipped: {s}" for s in res.skipped]


def render_sources(sources: Iterable[Source], *, json_lines: bool) -> list[str]:
    """``prices show``: one line per price source, with its date."""
    rows = [{"id": s.id, "title": s.title, "url": s.url, "as_of": s.as_of} for s in sources]
    return [json_line(r) if json_lines else f"{r['as_of']:<11} {r['title']}  {r['url']}"
            for r in rows]
