"""``cloudshift plan``, ``cloudshift report`` and ``cloudshift prices``: parse the arguments,
call the API, hand the result to :mod:`cloudshift.render.plan`.

Hooked into the main app with :func:`register`.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cloudshift.core.errors import UsageError
from cloudshift.core.units import parse_size

# The planner, its catalogue and the renderers load inside the commands: the other commands
# of the CLI do not pay for them.
prices_app = typer.Typer(name="prices", help="The price catalogue plan and assess use.",
                         no_args_is_help=True, add_completion=False)

Json = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


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
    from cloudshift.render.jsonl import write_json
    from cloudshift.render.plan import render_plan

    result = plan(src, dst, src_region=src_region, dst_region=dst_region, dst_class=dst_class,
                  deadline=deadline, budget=budget, workers=workers, worker_type=worker_type,
                  link_gbps=link_gbps, sample=sample, total_objects=total_objects, probe=probe,
                  prices=prices, part_size=parse_size(part_size), transfers=transfers,
                  include=include or (), exclude=exclude or (), src_endpoint=src_endpoint,
                  dst_endpoint=dst_endpoint, save=save)
    if json_out:
        write_json(result.to_dict())
    else:
        typer.echo(render_plan(result))


def report_cmd(
    job: Annotated[str, typer.Argument(help="Job id printed by copy (or its folder).")],
    plan_file: Annotated[str | None, typer.Option(
        "--plan", help="A plan saved with `plan --json > FILE` (default: the one `plan` "
                       "saved for this job).")] = None,
    part_size: Annotated[str | None, typer.Option("--part-size", help="Part size the copy "
                                                  "used (default 16MiB).")] = None,
    json_out: Json = False,
) -> None:
    """Show estimated vs actual bytes, requests and time for a finished copy job; for a job
    of another kind, its line of `cloudshift jobs` and its last run's figures."""
    from cloudshift.cost.report import COPY_KIND, JobSummary, report
    from cloudshift.jobs.journal import find_job, peek
    from cloudshift.kinds import describe_job, kind_of
    from cloudshift.render.jsonl import write_json
    from cloudshift.render.plan import render_job_summary, render_report

    info = peek(find_job(job))
    if kind_of(info).name != COPY_KIND:   # a kind with no plan to compare with
        given = [flag for flag, value in (("--plan", plan_file), ("--part-size", part_size))
                 if value is not None]
        if given:
            raise UsageError(f"{given[0]} applies to object copy jobs; job '{job}' is a "
                             f"{kind_of(info).name} job", hint=f"run `cloudshift report {job}`")
        summary = JobSummary.of(info, describe_job(info))
        if json_out:
            write_json(summary.to_dict())
        else:
            typer.echo(render_job_summary(summary))
        return
    rep = report(job, plan_file=plan_file, part_size=parse_size(part_size or "16MiB"))
    if json_out:
        write_json(rep.to_dict())
    else:
        typer.echo(render_report(rep))


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
    over the prices shipped with cloudshift, for `plan` and `assess` alike; each row carries
    the date it was fetched.
    """
    from cloudshift.catalog.update import update
    from cloudshift.render.jsonl import write_json
    from cloudshift.render.plan import render_price_update, render_update_skipped

    endpoints = {k: v for k, v in (("aws", os.environ.get("CLOUDSHIFT_AWS_PRICING_URL")),
                                   ("azure", os.environ.get("CLOUDSHIFT_AZURE_PRICING_URL")),
                                   ("gcp", os.environ.get("CLOUDSHIFT_GCP_PRICING_URL")))
                 if v}
    res = update(region or (), gcp_api_key=gcp_api_key, endpoints=endpoints)
    if json_out:
        write_json(res.to_dict())
        return
    typer.echo(render_price_update(res))
    for line in render_update_skipped(res):
        typer.echo(line, err=True)


@prices_app.command("show")
def prices_show(json_out: Json = False) -> None:
    """List the price sources in use, with their dates."""
    from cloudshift.catalog.load import load_catalog
    from cloudshift.render.plan import render_sources

    for line in render_sources(load_catalog().sources.values(), json_lines=json_out):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add ``plan``, ``report`` and ``prices`` to the main ``cloudshift`` app."""
    app.command("plan")(plan_cmd)
    app.command("report")(report_cmd)
    app.add_typer(prices_app, name="prices")


__all__ = ["register"]
