"""``cloudshift plan``, ``cloudshift report`` and ``cloudshift prices update``: parse, call, print.

Hooked into the main app with :func:`register`.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated

import typer

from cloudshift.core.units import human_bytes, human_time, parse_size

if TYPE_CHECKING:  # the planner loads its price tables: only the commands that use it pay
    from cloudshift.cost.model import Line, Term
    from cloudshift.cost.planner import Option, Plan
    from cloudshift.cost.report import JobReport

prices_app = typer.Typer(name="prices", help="The price tables the planner uses.",
                         no_args_is_help=True, add_completion=False)

Json = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


def _money(usd: float) -> str:
    return f"{usd:,.2f} USD" if usd >= 0.01 or usd == 0 else f"{usd:.6f} USD"


def _line(line: Line) -> str:
    if line.price is None:
        return f"      {line.what}: {line.usd:,.4f} USD"
    p = line.price
    qty = f"{line.quantity:,.0f}" if line.quantity >= 100 else f"{line.quantity:,.4g}"
    return (f"      {line.what}: {qty} {line.unit} x {p.value:g} {p.unit} = "
            f"{line.usd:,.4f} USD  [{p.cite()}]")


def _term(term: Term, label: str) -> list[str]:
    out = [f"  {term.name} {label}: {_money(term.usd)}"]
    out += [_line(x) for x in term.lines] or ["      (none)"]
    return out


def render_plan(p: Plan) -> str:
    wl = p.workload
    out = [f"plan: {p.src} -> {p.dst}  ({p.src_region} -> {p.dst_region}, "
           f"into {p.dst_class})"]
    out.append(f"to move: {wl.objects:,} objects, {human_bytes(wl.bytes)} "
               f"({wl.src_listed:,} listed under SRC, {wl.skipped:,} already identical "
               f"at DST)")
    if p.sampled:
        out.append(f"sampled: first {p.sampled['listed']:,} objects listed; scale "
                   f"x{p.sampled['factor']:g}")
    from cloudshift.cost.model import SIZE_BUCKETS

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
                   f"{human_bytes(rs.bytes)}, about {rs.hours:g} h, {_money(rs.usd)}")
    b = p.best
    gbu = f", {b.gb_per_usd:,.1f} GB per USD" if b.gb_per_usd else ""
    out.append("")
    out.append(f"best: {b.name}: {_money(b.total_usd)}, {human_time(b.time_s)} "
               f"({human_bytes(b.timing.bytes_per_s)}/s{gbu})")
    out += _term(b.c_s, "service and request fees")
    out += _term(b.c_d, "data transfer")
    out += _term(b.c_v, "worker machines")
    t = b.timing
    out.append(f"  T: {human_time(t.total_seconds)} = transfer {human_time(t.seconds)}"
               + (f" + restore wait {human_time(t.restore_seconds)}" if t.restore_seconds
                  else "") + f"; bound by {t.bottleneck}")
    for price in t.inputs:
        out.append(f"      {price.key}: {price.value:g} {price.unit}  [{price.cite()}]")
    out.append("")
    out.append("options (* best, P Pareto-optimal cost vs time, - misses --deadline/--budget):")
    out.append(f"      {'cost USD':>12} {'time':>10} {'GB/USD':>8}  option")
    digits = 2 if max(o.total_usd for o in p.options) >= 10 else 6
    for o in sorted(p.options, key=lambda o: (o.total_usd, o.time_s)):
        mark = ("*" if o.best else " ") + ("P" if o.pareto else " ") + (" " if o.meets else "-")
        gpu = f"{o.gb_per_usd:8.1f}" if o.gb_per_usd else f"{'-':>8}"
        out.append(f"  {mark} {o.total_usd:12,.{digits}f} {human_time(o.time_s):>10} {gpu}  "
                   f"{o.name}")
    r = p.running
    out.append("")
    saving = r.src_usd_month - r.dst_usd_month
    line = (f"storage afterwards: {_money(r.dst_usd_month)}/month at DST vs "
            f"{_money(r.src_usd_month)}/month at SRC")
    if r.payback_months is not None:
        line += f"; saves {_money(saving)}/month, pays back in {r.payback_months:.1f} months"
    else:
        line += "; the move does not pay for itself in storage"
    out.append(line)
    if r.note:
        out.append(f"  note: {r.note}")
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
    return "\n".join(out)


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


def plan_cmd(
    src: Annotated[str, typer.Argument(help="What would be moved.")],
    dst: Annotated[str, typer.Argument(help="Where it would go.")],
    src_region: Annotated[str | None, typer.Option(
        "--src-region", help="provider:region of SRC, e.g. aws:us-east-1 (default: the "
                             "provider's us-east-1/us-central1/eastus, flagged).")] = None,
    dst_region: Annotated[str | None, typer.Option(
        "--dst-region", help="provider:region of DST, e.g. gcp:us-central1.")] = None,
    dst_class: Annotated[str | None, typer.Option(
        "--dst-class", help="Storage class written at DST (default STANDARD / HOT).")] = None,
    deadline: Annotated[str | None, typer.Option(
        "--deadline", help="Pick the cheapest option that finishes within this time "
                           "(12h, 90m, 2d).")] = None,
    budget: Annotated[float | None, typer.Option(
        "--budget", help="Pick the fastest option that costs at most this many USD.")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="Worker VMs per hop (default: compare 1..32; 0: this machine "
                          "only).")] = None,
    worker_type: Annotated[str | None, typer.Option(
        "--worker-type", help="VM type for the workers (default m5.8xlarge / "
                              "n2-standard-32 / Standard_D32_v5).")] = None,
    link_gbps: Annotated[float | None, typer.Option(
        "--link-gbps", help="This machine's usable bandwidth in Gbit/s (default 1, "
                            "flagged).")] = None,
    sample: Annotated[int | None, typer.Option(
        "--sample", help="List only the first N source objects (huge buckets).")] = None,
    total_objects: Annotated[int | None, typer.Option(
        "--total-objects", help="With --sample: the bucket's real object count, to scale "
                                "the sample up.")] = None,
    probe: Annotated[bool, typer.Option(
        "--probe", help="Copy a small sample to a scratch prefix under DST (removed "
                        "afterwards) to measure this machine's real rate.")] = False,
    prices: Annotated[str | None, typer.Option(
        "--prices", help="TOML/JSON/CSV file overriding any price (see "
                         "docs/planning.md).")] = None,
    part_size: Annotated[str, typer.Option(
        "--part-size", help="Multipart part size the copy will use.")] = "16MiB",
    transfers: Annotated[int, typer.Option("--transfers", "-t", min=1, max=1024,
                                           help="Objects at once for --probe.")] = 16,
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Only keys matching this glob (as for copy).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Skip keys matching this glob (as for copy).")] = None,
    src_endpoint: Annotated[str | None, typer.Option("--src-endpoint")] = None,
    dst_endpoint: Annotated[str | None, typer.Option("--dst-endpoint")] = None,
    save: Annotated[bool, typer.Option(
        "--save/--no-save", help="Keep the estimate beside the copy job's journal for "
                                 "`cloudshift report`.")] = True,
    json_out: Json = False,
) -> None:
    """Estimate what moving SRC to DST costs and how long it takes, and pick the best way.

    Lists SRC and compares it with DST like `copy` would, then prices the move as
    C = C_s (request, retrieval and restore fees) + C_d (egress, with volume tiers) +
    C_v (worker VMs x time), and estimates the time T from measured inter-region throughput.
    Every price is printed with its source and date. Options compared: direct or relayed
    through a faster third region, 1..32 worker VMs, or this machine.

    Example: cloudshift plan s3://logs gs://logs --src-region aws:us-east-1
    --dst-region gcp:us-central1 --deadline 12h
    """
    from cloudshift.cost.planner import plan

    result = plan(src, dst, src_region=src_region, dst_region=dst_region, dst_class=dst_class,
                  deadline=deadline, budget=budget, workers=workers, worker_type=worker_type,
                  link_gbps=link_gbps, sample=sample, total_objects=total_objects, probe=probe,
                  prices=prices, part_size=parse_size(part_size), transfers=transfers,
                  include=include or (), exclude=exclude or (), src_endpoint=src_endpoint,
                  dst_endpoint=dst_endpoint, save=save)
    if json_out:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        typer.echo(render_plan(result))


def report_cmd(
    job: Annotated[str, typer.Argument(help="Job id printed by copy (or its folder).")],
    plan_file: Annotated[str | None, typer.Option(
        "--plan", help="A plan saved with `plan --json > FILE` (default: the one `plan` "
                       "saved for this job).")] = None,
    part_size: Annotated[str, typer.Option("--part-size", help="Part size the copy "
                                           "used.")] = "16MiB",
    json_out: Json = False,
) -> None:
    """Show estimated vs actual bytes, requests and time for a finished copy job."""
    from cloudshift.cost.report import report

    rep = report(job, plan_file=plan_file, part_size=parse_size(part_size))
    typer.echo(json.dumps(rep.to_dict()) if json_out else render_report(rep))


@prices_app.command("update")
def prices_update(
    region: Annotated[list[str] | None, typer.Option(
        "--region", help="provider:region to refresh (repeatable; default aws:us-east-1, "
                         "gcp:us-central1, azure:eastus).")] = None,
    gcp_api_key: Annotated[str | None, typer.Option(
        "--gcp-api-key", envvar="CLOUDSHIFT_GCP_API_KEY", show_envvar=True,
        help="API key for the Cloud Billing Catalog (GCP only).")] = None,
    json_out: Json = False,
) -> None:
    """Refresh storage and request prices from the providers' public price APIs.

    AWS Price List bulk files and the Azure Retail Prices API need no account; the Google
    Cloud Billing Catalog needs an API key. Results go to $CLOUDSHIFT_HOME/prices/ and win
    over the prices shipped with cloudshift; each row carries the date it was fetched.
    """
    from cloudshift.cost.update import update

    endpoints = {k: v for k, v in (("aws", os.environ.get("CLOUDSHIFT_AWS_PRICING_URL")),
                                   ("azure", os.environ.get("CLOUDSHIFT_AZURE_PRICING_URL")),
                                   ("gcp", os.environ.get("CLOUDSHIFT_GCP_PRICING_URL")))
                 if v}
    res = update(region or (), gcp_api_key=gcp_api_key, endpoints=endpoints)
    if json_out:
        typer.echo(json.dumps(res.to_dict()))
        return
    typer.echo(f"updated {len(res.rows)} price rows in {res.path}")
    for row in res.rows:
        vals = ", ".join(f"{k}={row[k]}" for k in ("gb_month", "write_1k", "read_1k",
                                                   "retrieval_gb") if row.get(k))
        typer.echo(f"  {row['region']} {row['storage_class']}: {vals} "
                   f"({row.get('source_title', row.get('source'))}, {row.get('as_of')})")
    for s in res.skipped:
        typer.echo(f"skipped: {s}", err=True)


@prices_app.command("show")
def prices_show(json_out: Json = False) -> None:
    """List the price sources in use, with their dates."""
    from cloudshift.cost.prices import PriceBook

    book = PriceBook.load()
    rows = [{"id": s.id, "title": s.title, "url": s.url, "as_of": s.as_of}
            for s in book.sources.values()]
    for r in rows:
        typer.echo(json.dumps(r) if json_out else f"{r['as_of']:<11} {r['title']}  {r['url']}")


def register(app: typer.Typer) -> None:
    """Add ``plan``, ``report`` and ``prices`` to the main ``cloudshift`` app."""
    app.command("plan")(plan_cmd)
    app.command("report")(report_cmd)
    app.add_typer(prices_app, name="prices")


__all__ = ["Option", "register", "render_plan", "render_report"]
