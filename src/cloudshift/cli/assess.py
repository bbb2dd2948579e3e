"""``cloudshift assess``: parse options, run the assessment, hand the result to render/."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cloudshift.core.errors import UsageError

HELP = """Price a workload on AWS, Google Cloud and Azure, map it, and rank the platforms.

WORKLOAD is a YAML file (see examples/webshop.yaml) with compute groups (count, vcpus,
memory_gib, optional gpu, arch, hours_per_month, pricing: on_demand|spot|commit_1y|commit_3y),
storage per class (hot/cool/archive: gb, writes_per_month, reads_per_month), network egress,
managed databases, requirements (regions, residency such as EU, compliance such as HIPAA or
PCI DSS, min_sla) and where it runs today (current: provider, region).

Sizes: 4 means exactly 4, "4+" means at least 4. Every compute group is mapped to the cheapest
instance type that fits, with runners-up; each option is scored 0-100 on cost, performance,
reliability, security and availability and ranked by the weighted total.

Exit codes: 0 at least one option meets every requirement, 1 none does, 2 bad input.

Examples:

  cloudshift assess examples/webshop.yaml

  cloudshift assess w.yaml --providers aws,gcp --regions eu-west-1,europe-west4

  cloudshift assess w.yaml --weights cost=0.6,reliability=0.4 --html report.html

  cloudshift assess w.yaml --json | jq '.options[0]'
"""


def register(app: typer.Typer) -> None:
    """Add the ``assess`` command to the main ``cloudshift`` app."""

    @app.command("assess", help=HELP)
    def assess_command(
        workload: Annotated[Path, typer.Argument(help="Workload YAML file.",
                                                 show_default=False)],
        providers: Annotated[str | None, typer.Option(
            "--providers", help="Comma-separated providers to price: aws,gcp,azure "
                                "(default: all three).")] = None,
        regions: Annotated[list[str] | None, typer.Option(
            "--regions", help="Regions to price, comma-separated or repeated; 'eu-west-1' or "
                              "'aws:eu-west-1'. Replaces requirements.regions of the file.")]
        = None,
        weights: Annotated[str | None, typer.Option(
            "--weights", help="Criterion weights, e.g. cost=0.5,performance=0.2,"
                              "reliability=0.1,security=0.1,availability=0.1. Criteria not "
                              "named weigh 0; weights are scaled to sum to 1. Default: cost 0.4, "
                              "reliability 0.2, performance 0.15, security 0.15, "
                              "availability 0.1.")] = None,
        html: Annotated[Path | None, typer.Option(
            "--html", help="Also write a self-contained HTML report with charts here.")]
        = None,
        json_out: Annotated[bool, typer.Option(
            "--json", help="Print the whole assessment as one JSON document on stdout.")]
        = False,
        details: Annotated[bool, typer.Option(
            "--details", help="Also print every cost line and the evidence of every score.")]
        = False,
        data: Annotated[list[str] | None, typer.Option(
            "--data", help="A CSV file, or a folder of them, replacing a catalogue table of "
                           "the same name (vms.csv, storage.csv, network.csv, "
                           "egress_tiers.csv, databases.csv, slas.csv, compliance.csv, "
                           "regions.csv, commitments.csv, families.csv). Repeatable.")] = None,
    ) -> None:
        if html is not None and html.is_dir():
            raise UsageError(f"--html {html} is a folder", hint="give a file name, e.g. "
                                                                "report.html")
        # Imported here: pydantic and pygal cost ~0.4 s, which every other command would pay.
        from cloudshift.assess.assessment import assess
        from cloudshift.render.assess import render_assessment
        from cloudshift.render.assess_html import render_assessment_html, write_report
        from cloudshift.render.jsonl import write_json

        result = assess(workload, providers=providers, regions=regions, weights=weights,
                        data=data or ())
        if json_out:
            write_json(result.to_dict(), indent=2)
        else:
            render_assessment(result, sys.stdout, details=details)
        if html is not None:
            write_report(render_assessment_html(result), html)
            typer.echo(f"report written to {html}", err=True)
        if not result.ranked:
            raise typer.Exit(1)
